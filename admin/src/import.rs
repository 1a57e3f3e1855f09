//! `admin import`: a people file (JSON lines) into the people store.
//!
//! One blocking thread reads the file line by line, checks each line as the
//! local server does (`people_core::jsonl::parse_person`) and hands batches of
//! valid people over a bounded channel to the writer, which keeps at most
//! `concurrency` batches in flight. Memory stays bounded by about
//! `(2 * concurrency + 1) * batch_size` people whatever the file's size.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use people_app::ports::{PeopleStore, StoreError, WriteReport};
use people_core::domain::Person;
use people_core::jsonl::parse_person;
use rand::RngExt;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::progress::Counters;

/// Rejected lines and failed ids kept for the summary; the rest are counted
/// (and, for rejects, written to the rejects file).
pub(crate) const SHOWN: usize = 10;
/// The reader's buffer; lines are read from it one at a time.
const READ_BUFFER: usize = 1 << 20;

#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub batch_size: usize,
    pub concurrency: usize,
    pub retry: Retry,
    /// Where every rejected line is written as `{"line": N, "reason": "..."}`.
    pub rejects: Option<PathBuf>,
}

/// How a batch that failed with `StoreError::Unavailable` is retried (the
/// adapter has already retried throttled requests and unprocessed items by
/// then, so this is for longer outages: a dropped connection, a timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retry {
    /// Calls per batch, the first included.
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl Retry {
    /// The sleep before retry `retry` (1-based): exponential, capped, with
    /// equal jitter, so that batches that failed together come back apart.
    fn delay(&self, retry: u32) -> Duration {
        let exp = self
            .first_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20));
        let half = exp.min(self.max_delay) / 2;
        let jitter = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(rand::rng().random_range(0..=jitter))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Reject {
    pub line: u64,
    pub reason: String,
}

/// What an import did, beyond the counts in `Counters`.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    /// The first `SHOWN` rejected lines.
    pub first_rejects: Vec<Reject>,
    /// The first `SHOWN` ids that could not be written.
    pub first_failed: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ImportError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the rejected lines to {path}")]
    Rejects {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("import stopped: the store refused the batch that starts at line {line}")]
    Store {
        line: u64,
        #[source]
        source: StoreError,
    },
    #[error("an import task ended abnormally")]
    Task(#[source] tokio::task::JoinError),
}

/// Up to `batch_size` valid people read from consecutive lines.
struct Batch {
    first_line: u64,
    people: Vec<Person>,
    /// The bytes of the file read for it since the previous batch (its
    /// lines, and the blank and rejected lines among and before them):
    /// counted as done when it is, so that the progress shown (and its ETA)
    /// follows the writes, not the reader, which runs ahead.
    bytes: u64,
}

impl Batch {
    fn new(first_line: u64, batch_size: usize) -> Self {
        Self {
            first_line,
            people: Vec::with_capacity(batch_size),
            bytes: 0,
        }
    }
}

/// Imports `path` into `store`, counting into `counters` as it goes.
/// Rejected lines and failed ids are counted and returned, not errors; an
/// error is what stops the import (an unreadable file, a store that refuses
/// a write for good).
pub(crate) async fn import(
    store: Arc<dyn PeopleStore>,
    path: &Path,
    options: &Options,
    counters: Arc<Counters>,
) -> Result<Summary, ImportError> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|source| ImportError::Read {
        path: shown.clone(),
        source,
    })?;
    let rejects = RejectLog::create(options.rejects.as_deref())?;

    // Room for one batch per writer waiting, so that writers never wait for
    // the reader while it is ahead.
    let (tx, rx) = mpsc::channel(options.concurrency);
    let reader = {
        let counters = counters.clone();
        let batch_size = options.batch_size;
        tokio::task::spawn_blocking(move || {
            read_batches(file, &shown, batch_size, &tx, rejects, &counters)
        })
    };
    let written = write_batches(store, rx, options, &counters).await;
    // The writer is done or gave up (dropping the receiver, which stops the
    // reader at its next batch): either way the reader ends soon.
    let read = reader.await.map_err(ImportError::Task)?;
    let first_failed = written?;
    let rejects = read?;
    Ok(Summary {
        first_rejects: rejects.first,
        first_failed,
    })
}

/// The rejected lines: counted, the first few kept, all of them written to
/// the rejects file if there is one.
struct RejectLog {
    first: Vec<Reject>,
    file: Option<(String, BufWriter<File>)>,
}

impl RejectLog {
    /// Creates the rejects file up front: a path that cannot be written
    /// should stop the import before it writes anything.
    fn create(path: Option<&Path>) -> Result<Self, ImportError> {
        let file = path
            .map(|path| {
                let shown = path.display().to_string();
                match File::create(path) {
                    Ok(f) => Ok((shown, BufWriter::new(f))),
                    Err(source) => Err(ImportError::Rejects {
                        path: shown,
                        source,
                    }),
                }
            })
            .transpose()?;
        Ok(Self {
            first: Vec::new(),
            file,
        })
    }

    fn add(&mut self, reject: Reject) -> Result<(), ImportError> {
        if let Some((path, out)) = &mut self.file {
            serde_json::to_writer(&mut *out, &reject)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
                .map_err(|source| ImportError::Rejects {
                    path: path.clone(),
                    source,
                })?;
        }
        if self.first.len() < SHOWN {
            self.first.push(reject);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ImportError> {
        if let Some((path, out)) = &mut self.file {
            out.flush().map_err(|source| ImportError::Rejects {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// The reader (a blocking thread): lines are numbered from 1 and blank
/// lines skipped, as `people_core::jsonl::read_jsonl` does.
fn read_batches(
    file: File,
    path: &str,
    batch_size: usize,
    tx: &mpsc::Sender<Batch>,
    mut rejects: RejectLog,
    counters: &Counters,
) -> Result<RejectLog, ImportError> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut batch = Batch::new(1, batch_size);
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| ImportError::Read {
                path: path.to_owned(),
                source,
            })?;
        if n == 0 {
            break;
        }
        number += 1;
        batch.bytes += n as u64;
        if tx.is_closed() {
            // The writer stopped (it reports why): reading on, which could
            // mean rejecting every line to the end, would be wasted.
            break;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.trim_ascii().is_empty() {
            continue;
        }
        Counters::add(&counters.lines, 1);
        match parse_person(text) {
            Ok(person) => {
                if batch.people.is_empty() {
                    batch.first_line = number;
                }
                batch.people.push(person);
            }
            Err(reason) => {
                Counters::add(&counters.rejected, 1);
                rejects.add(Reject {
                    line: number,
                    reason,
                })?;
            }
        }
        if batch.people.len() == batch_size {
            let full = std::mem::replace(&mut batch, Batch::new(number + 1, batch_size));
            if tx.blocking_send(full).is_err() {
                // The writer stopped; it reports why.
                break;
            }
        }
    }
    if batch.people.is_empty() {
        // Blank or rejected lines after the last batch: done already.
        Counters::add(&counters.bytes, batch.bytes);
    } else {
        // Fails only if the writer stopped, which it reports.
        let _ = tx.blocking_send(batch);
    }
    rejects.finish()?;
    Ok(rejects)
}

/// The writer: at most `concurrency` batches in flight. Returns the first
/// `SHOWN` ids that could not be written.
///
/// A batch waits while an earlier batch holding one of its ids is in
/// flight, so that the later line of an id is written last and wins, as it
/// does when the local server loads the same file.
async fn write_batches(
    store: Arc<dyn PeopleStore>,
    mut rx: mpsc::Receiver<Batch>,
    options: &Options,
    counters: &Arc<Counters>,
) -> Result<Vec<String>, ImportError> {
    let mut running: JoinSet<(Batch, Result<WriteReport, StoreError>)> = JoinSet::new();
    let mut busy: HashSet<String> = HashSet::new();
    let mut first_failed = Vec::new();
    while let Some(batch) = rx.recv().await {
        while running.len() >= options.concurrency
            || batch.people.iter().any(|p| busy.contains(&p.id))
        {
            // Never empty here: a busy id belongs to a running batch.
            let Some(done) = running.join_next().await else {
                break;
            };
            settle(done, &mut busy, &mut first_failed)?;
        }
        busy.extend(batch.people.iter().map(|p| p.id.clone()));
        let store = store.clone();
        let counters = counters.clone();
        let retry = options.retry;
        running.spawn(async move {
            let result = write_with_retry(&*store, &batch, retry).await;
            if let Ok(report) = &result {
                Counters::add(&counters.bytes, batch.bytes);
                Counters::add(&counters.written, report.written as u64);
                Counters::add(&counters.unchanged, report.unchanged as u64);
                Counters::add(&counters.failed, report.failed.len() as u64);
            }
            (batch, result)
        });
    }
    while let Some(done) = running.join_next().await {
        settle(done, &mut busy, &mut first_failed)?;
    }
    Ok(first_failed)
}

/// Takes in a finished batch; a permanent store error stops the import
/// (returning drops the `JoinSet`, which aborts the batches still running).
fn settle(
    done: Result<(Batch, Result<WriteReport, StoreError>), tokio::task::JoinError>,
    busy: &mut HashSet<String>,
    first_failed: &mut Vec<String>,
) -> Result<(), ImportError> {
    let (batch, result) = done.map_err(ImportError::Task)?;
    for p in &batch.people {
        busy.remove(&p.id);
    }
    let report = result.map_err(|source| ImportError::Store {
        line: batch.first_line,
        source,
    })?;
    let room = SHOWN.saturating_sub(first_failed.len());
    first_failed.extend(report.failed.into_iter().take(room));
    Ok(())
}

/// `put_batch`, retried on `Unavailable`; when the retries run out, every
/// id of the batch counts as failed (some may have been written: failed
/// means not known to be written). `Permanent` is returned at once.
async fn write_with_retry(
    store: &dyn PeopleStore,
    batch: &Batch,
    retry: Retry,
) -> Result<WriteReport, StoreError> {
    let mut attempt = 1;
    loop {
        match store.put_batch(&batch.people).await {
            Ok(report) => return Ok(report),
            Err(StoreError::Unavailable(cause)) => {
                let cause = chain(&*cause);
                if attempt >= retry.attempts {
                    tracing::warn!(
                        line = batch.first_line,
                        attempts = attempt,
                        error = %cause,
                        "store still unavailable; counting the batch as failed"
                    );
                    return Ok(WriteReport {
                        failed: batch.people.iter().map(|p| p.id.clone()).collect(),
                        ..WriteReport::default()
                    });
                }
                tracing::warn!(
                    line = batch.first_line,
                    attempt,
                    error = %cause,
                    "store unavailable; retrying the batch"
                );
                tokio::time::sleep(retry.delay(attempt)).await;
                attempt += 1;
            }
            Err(permanent) => return Err(permanent),
        }
    }
}

/// An error and its sources, `: `-separated.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;
    use people_app::memory::MemoryPeopleStore;
    use people_app::ports::{Changes, ScanPage, Version};

    /// The memory store, failing the first `unavailable` calls of
    /// `put_batch` with `Unavailable`, or every call with `Permanent`.
    struct Flaky {
        inner: MemoryPeopleStore,
        unavailable: AtomicU32,
        permanent: bool,
        calls: AtomicU32,
    }

    impl Flaky {
        fn new(unavailable: u32, permanent: bool) -> Arc<Self> {
            Arc::new(Self {
                inner: MemoryPeopleStore::new(),
                unavailable: AtomicU32::new(unavailable),
                permanent,
                calls: AtomicU32::new(0),
            })
        }
    }

    #[async_trait]
    impl PeopleStore for Flaky {
        async fn get(&self, id: &str) -> Result<Option<Person>, StoreError> {
            self.inner.get(id).await
        }

        async fn put_batch(&self, people: &[Person]) -> Result<WriteReport, StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.permanent {
                return Err(StoreError::Permanent("no such table".into()));
            }
            let left = self.unavailable.load(Ordering::SeqCst);
            if left > 0 {
                self.unavailable.store(left - 1, Ordering::SeqCst);
                return Err(StoreError::Unavailable("connection reset".into()));
            }
            // Out of order on purpose: a later batch may finish first.
            tokio::time::sleep(Duration::from_millis(people.len() as u64 % 7)).await;
            self.inner.put_batch(people).await
        }

        async fn delete_batch(&self, ids: &[String]) -> Result<WriteReport, StoreError> {
            self.inner.delete_batch(ids).await
        }

        async fn scan(
            &self,
            s: u32,
            n: u32,
            start: Option<String>,
        ) -> Result<ScanPage, StoreError> {
            self.inner.scan(s, n, start).await
        }

        async fn latest_version(&self) -> Result<Version, StoreError> {
            self.inner.latest_version().await
        }

        async fn changes_since(&self, since: Version, limit: usize) -> Result<Changes, StoreError> {
            self.inner.changes_since(since, limit).await
        }
    }

    fn line(id: &str, first: &str) -> String {
        format!(
            r#"{{"id":"{id}","first_name":"{first}","last_name":"Lee","nationality":"Irish","hobbies":["Chess"]}}"#
        )
    }

    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, text: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "admin-import-{}-{name}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::write(&path, text).unwrap();
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn options(batch_size: usize, rejects: Option<PathBuf>) -> Options {
        Options {
            batch_size,
            concurrency: 3,
            retry: Retry {
                attempts: 3,
                first_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(4),
            },
            rejects,
        }
    }

    async fn run(
        store: Arc<dyn PeopleStore>,
        text: &str,
        options: &Options,
    ) -> (Result<Summary, ImportError>, Arc<Counters>) {
        let file = TempFile::new("people", text);
        let counters = Arc::new(Counters::new(text.len() as u64));
        let result = import(store, &file.0, options, counters.clone()).await;
        (result, counters)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_lines_are_rejected_by_number_and_the_rest_written() {
        // GIVEN 100 people, a blank line, a line that is not JSON and one
        // with an empty first name
        let mut text = String::new();
        for i in 0..100 {
            text.push_str(&line(&format!("p{i}"), "Ann"));
            text.push('\n');
            if i == 5 {
                text.push_str("  \n");
            }
        }
        text.insert_str(0, "not json\n");
        text.push_str(&line("bad", ""));
        let rejects = TempFile::new("rejects", "");
        let store = Flaky::new(0, false);

        // WHEN it is imported in batches of 7
        let (result, counters) =
            run(store.clone(), &text, &options(7, Some(rejects.0.clone()))).await;

        // THEN lines 1 and 103 are rejected, with the local server's reasons
        let summary = result.unwrap();
        assert_eq!(Counters::get(&counters.lines), 102);
        assert_eq!(Counters::get(&counters.written), 100);
        assert_eq!(Counters::get(&counters.rejected), 2);
        assert_eq!(Counters::get(&counters.bytes), text.len() as u64);
        let lines: Vec<u64> = summary.first_rejects.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 103]);
        assert!(summary.first_rejects[0].reason.contains("column"));
        assert_eq!(
            summary.first_rejects[1].reason,
            "first_name: must not be empty"
        );
        let written = std::fs::read_to_string(&rejects.0).unwrap();
        let parsed: Vec<serde_json::Value> = written
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1]["line"], 103);
        assert_eq!(store.inner.len(), 100);
        assert!(store.get("p99").await.unwrap().is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_last_line_of_an_id_wins_across_concurrent_batches() {
        let mut text = String::new();
        for round in ["Ann", "Bea", "Cy"] {
            for i in 0..50 {
                text.push_str(&line(&format!("p{i}"), round));
                text.push('\n');
            }
        }
        let store = Flaky::new(0, false);
        let (result, _) = run(store.clone(), &text, &options(4, None)).await;
        result.unwrap();
        for i in 0..50 {
            let p = store.get(&format!("p{i}")).await.unwrap().unwrap();
            assert_eq!(p.first_name, "Cy");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unavailable_store_is_retried_then_its_batch_counted_failed() {
        let text: String = (0..10)
            .map(|i| line(&format!("p{i}"), "Ann") + "\n")
            .collect();

        // Two failures: the third attempt writes.
        let store = Flaky::new(2, false);
        let (result, counters) = run(store.clone(), &text, &options(10, None)).await;
        assert!(result.unwrap().first_failed.is_empty());
        assert_eq!(Counters::get(&counters.written), 10);
        assert_eq!(store.calls.load(Ordering::SeqCst), 3);

        // Three failures use up the three attempts.
        let store = Flaky::new(3, false);
        let (result, counters) = run(store.clone(), &text, &options(10, None)).await;
        let summary = result.unwrap();
        assert_eq!(Counters::get(&counters.failed), 10);
        assert_eq!(Counters::get(&counters.written), 0);
        assert_eq!(summary.first_failed.len(), SHOWN);
        assert_eq!(store.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_permanent_error_stops_the_import() {
        let text: String = (0..1000)
            .map(|i| line(&format!("p{i}"), "Ann") + "\n")
            .collect();
        let store = Flaky::new(0, true);
        let (result, _) = run(store.clone(), &text, &options(10, None)).await;
        let err = result.err().unwrap();
        assert!(matches!(err, ImportError::Store { .. }), "{err:?}");
        // Stopped early, not after trying all 100 batches.
        assert!(store.calls.load(Ordering::SeqCst) < 20);
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let retry = Retry::default();
        for (n, full_ms) in [(1, 200), (2, 400), (4, 1600), (6, 5000), (40, 5000)] {
            let full = Duration::from_millis(full_ms);
            for _ in 0..20 {
                let d = retry.delay(n);
                assert!(d >= full / 2 && d <= full, "retry {n}: {d:?}");
            }
        }
    }
}
