//! In-memory adapters: the local server's backends and the tests' doubles.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::Person;
use crate::jobs::{JobError, JobMessage, RequestRecord, RequestStatus, scoped_key};
use crate::ports::{
    Changes, Created, JobQueue, Outcome, PeopleStore, QueueError, RequestStore, ScanPage, Started,
    StoreError, Version, WriteReport,
};
use crate::search::{PeopleTable, Upserted};

/// People kept in a compact table, with a version per write.
#[derive(Default)]
pub struct MemoryPeopleStore {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    table: PeopleTable,
    /// Version of each row.
    versions: Vec<Version>,
    /// (version, row) in version order; a row rewritten later also has an
    /// older entry, which `changes_since` skips.
    log: Vec<(Version, u32)>,
    latest: Version,
}

impl MemoryPeopleStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `table`, as if its rows had been written in order
    /// (bulk seeding of the local server).
    pub fn with_table(table: PeopleTable) -> Self {
        let n = table.len() as u64;
        Self {
            inner: RwLock::new(Inner {
                versions: (1..=n).collect(),
                log: (1..=n).map(|v| (v, (v - 1) as u32)).collect(),
                latest: n,
                table,
            }),
        }
    }

    pub fn len(&self) -> usize {
        self.read().table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl PeopleStore for MemoryPeopleStore {
    async fn get(&self, id: &str) -> Result<Option<Person>, StoreError> {
        Ok(self.read().table.get(id))
    }

    async fn put_batch(&self, people: &[Person]) -> Result<WriteReport, StoreError> {
        let mut inner = self.write();
        let mut report = WriteReport::default();
        for p in people {
            let row = match inner.table.upsert(p) {
                Upserted::Unchanged(_) => {
                    report.unchanged += 1;
                    continue;
                }
                Upserted::Inserted(row) => {
                    inner.versions.push(0);
                    row
                }
                Upserted::Replaced(row) => row,
            };
            inner.latest += 1;
            let version = inner.latest;
            inner.versions[row as usize] = version;
            inner.log.push((version, row));
            report.written += 1;
        }
        Ok(report)
    }

    async fn scan(
        &self,
        segment: u32,
        segments: u32,
        start: Option<String>,
    ) -> Result<ScanPage, StoreError> {
        const PAGE: usize = 10_000;
        if segments == 0 || segment >= segments {
            return Err(StoreError::Permanent(
                format!("segment {segment} of {segments} does not exist").into(),
            ));
        }
        let from: usize = match start {
            None => segment as usize,
            Some(s) => s.parse().map_err(|_| {
                StoreError::Permanent(format!("scan cursor {s:?} is not a row number").into())
            })?,
        };
        let inner = self.read();
        let rows: Vec<usize> = (from..inner.table.len())
            .step_by(segments as usize)
            .take(PAGE + 1)
            .collect();
        let next = rows.get(PAGE).map(|r| r.to_string());
        let people = rows
            .iter()
            .take(PAGE)
            .map(|&r| inner.table.person(r as u32))
            .collect();
        Ok(ScanPage { people, next })
    }

    async fn latest_version(&self) -> Result<Version, StoreError> {
        Ok(self.read().latest)
    }

    async fn changes_since(&self, since: Version, limit: usize) -> Result<Changes, StoreError> {
        let inner = self.read();
        let start = inner.log.partition_point(|&(v, _)| v <= since);
        let mut people = Vec::new();
        let mut up_to = since;
        let mut more = false;
        for &(version, row) in &inner.log[start..] {
            if inner.versions[row as usize] != version {
                continue; // superseded by a later write of the same person
            }
            if people.len() == limit {
                more = true;
                break;
            }
            people.push(inner.table.person(row));
            up_to = version;
        }
        if !more {
            up_to = up_to.max(inner.latest);
        }
        Ok(Changes {
            people,
            up_to,
            more,
        })
    }
}

/// Request records in a map, with the same conditional transitions as the
/// DynamoDB store. Like that store's TTL, finished requests go away after a
/// retention time (with `with_retention`; kept forever by default), so
/// that a long-running local server does not grow with every request.
#[derive(Default)]
pub struct MemoryRequestStore {
    inner: std::sync::Mutex<Requests>,
    retention: Option<chrono::Duration>,
}

#[derive(Default)]
struct Requests {
    records: std::collections::HashMap<String, RequestRecord>,
    keys: std::collections::HashMap<String, String>,
    /// Request id → its idempotency key, to forget the key with the request.
    key_of: std::collections::HashMap<String, String>,
    /// Finished requests, oldest first: (finished at, id).
    finished: std::collections::VecDeque<(DateTime<Utc>, String)>,
}

impl MemoryRequestStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Finished requests are dropped `retention` after they finished.
    pub fn with_retention(mut self, retention: std::time::Duration) -> Self {
        self.retention = chrono::Duration::from_std(retention).ok();
        self
    }

    /// Requests held, finished or not.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the requests that finished more than the retention ago, and
    /// the idempotency keys that named them.
    fn expire(&self, inner: &mut Requests, now: DateTime<Utc>) {
        let Some(retention) = self.retention else {
            return;
        };
        while let Some((finished_at, _)) = inner.finished.front() {
            if *finished_at + retention > now {
                break;
            }
            let (_, id) = inner.finished.pop_front().expect("checked");
            inner.records.remove(&id);
            if let Some(key) = inner.key_of.remove(&id) {
                inner.keys.remove(&key);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Requests> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl RequestStore for MemoryRequestStore {
    async fn create(
        &self,
        record: &RequestRecord,
        idempotency_key: Option<&str>,
    ) -> Result<Created, StoreError> {
        let mut inner = self.lock();
        self.expire(&mut inner, record.created_at);
        if let Some(key) = idempotency_key {
            let key = scoped_key(record.owner.as_deref(), key);
            if let Some(earlier) = inner.keys.get(&key).and_then(|id| inner.records.get(id)) {
                return Ok(Created::Existing(earlier.clone()));
            }
            inner.keys.insert(key.clone(), record.id.clone());
            inner.key_of.insert(record.id.clone(), key);
        }
        inner.records.insert(record.id.clone(), record.clone());
        Ok(Created::New(record.clone()))
    }

    async fn get(&self, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        Ok(self.lock().records.get(id).cloned())
    }

    async fn abandon(
        &self,
        record: &RequestRecord,
        _idempotency_key: Option<&str>,
        error: JobError,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let id = &record.id;
        match inner.records.get_mut(id) {
            Some(stored) if stored.status == RequestStatus::Queued => {
                Outcome::Failed(error).apply_to(stored, now);
            }
            _ => return Ok(false),
        }
        inner.finished.push_back((now, id.clone()));
        if let Some(key) = inner.key_of.remove(id) {
            inner.keys.remove(&key);
        }
        Ok(true)
    }

    async fn start(&self, id: &str, now: DateTime<Utc>) -> Result<Started, StoreError> {
        let mut inner = self.lock();
        let Some(record) = inner.records.get_mut(id) else {
            return Ok(Started::Missing);
        };
        if record.status.is_final() {
            return Ok(Started::Finished(record.clone()));
        }
        record.status = RequestStatus::Processing;
        record.attempts += 1;
        record.updated_at = now;
        Ok(Started::Started(record.clone()))
    }

    async fn finish(
        &self,
        id: &str,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(record) = inner.records.get_mut(id) else {
            return Ok(false);
        };
        if record.status.is_final() {
            return Ok(false);
        }
        outcome.apply_to(record, now);
        inner.finished.push_back((now, id.to_owned()));
        Ok(true)
    }
}

/// A queue in process: messages go to a channel that [`MemoryQueue::run_workers`]
/// drains with a pool of workers. Like SQS, delivery is at least once: a
/// message whose processing fails comes back after `redeliver_after`, and
/// after `max_receives` deliveries goes to the dead-letter list.
pub struct MemoryQueue {
    tx: tokio::sync::mpsc::UnboundedSender<Delivery>,
    rx: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Delivery>>>,
    dead: Arc<std::sync::Mutex<Vec<String>>>,
    /// Makes the next `n` sends fail (fault injection for tests).
    fail_sends: std::sync::atomic::AtomicUsize,
    /// How long a delivery may run before the message is delivered again
    /// (to another worker) while it goes on, as SQS's visibility timeout.
    visibility: std::time::Duration,
}

struct Delivery {
    body: String,
    receives: u32,
}

impl Default for MemoryQueue {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Self {
            tx,
            rx: std::sync::Mutex::new(Some(rx)),
            dead: Arc::default(),
            fail_sends: std::sync::atomic::AtomicUsize::new(0),
            visibility: crate::adapters::sqs::VISIBILITY_TIMEOUT,
        }
    }
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// A delivery still running after `visibility` is delivered again
    /// (default: the SQS queue's visibility timeout).
    pub fn with_visibility_timeout(mut self, visibility: std::time::Duration) -> Self {
        self.visibility = visibility;
        self
    }

    /// Sends the raw `body`, as a producer outside this code might.
    pub fn send_raw(&self, body: String) {
        // The receiver lives as long as the queue's workers; a send after
        // shutdown has nowhere to go, as with a deleted queue.
        let _ = self.tx.send(Delivery { body, receives: 0 });
    }

    /// Takes the next waiting message, if any, as a worker would (for tests
    /// and tools; not usable once `run_workers` has started).
    pub fn try_receive(&self) -> Option<String> {
        let mut rx = self.rx.lock().unwrap_or_else(|e| e.into_inner());
        rx.as_mut()?.try_recv().ok().map(|d| d.body)
    }

    /// The next `n` sends fail with `QueueError::Unavailable`.
    pub fn fail_next_sends(&self, n: usize) {
        self.fail_sends
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Bodies of messages that were given up on.
    pub fn dead_letters(&self) -> Vec<String> {
        self.dead.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Starts `workers` tasks that hand each message to `handle(body,
    /// receive_count)`. As with SQS, the message comes back after
    /// `redeliver_after` if the delivery fails (`Err`) or its worker dies
    /// (the handler panics), and after the visibility timeout if it is
    /// still running (which goes on). Call once.
    pub fn run_workers<F, Fut>(
        self: &Arc<Self>,
        workers: usize,
        max_receives: u32,
        redeliver_after: std::time::Duration,
        handle: F,
    ) where
        F: Fn(String, u32) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        let visibility = self.visibility;
        let rx = self
            .rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .expect("run_workers is called once");
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let handle = Arc::new(handle);
        for _ in 0..workers.max(1) {
            let (rx, handle, tx, dead) = (
                Arc::clone(&rx),
                Arc::clone(&handle),
                self.tx.clone(),
                Arc::clone(&self.dead),
            );
            tokio::spawn(async move {
                loop {
                    let Some(mut delivery) = rx.lock().await.recv().await else {
                        return;
                    };
                    delivery.receives += 1;
                    // Its own task: a panic is this delivery's death, not
                    // the worker loop's.
                    let running = tokio::spawn(handle(delivery.body.clone(), delivery.receives));
                    let outcome = match tokio::time::timeout(visibility, running).await {
                        Ok(Ok(done)) => done,
                        Ok(Err(died)) => Err(format!("the worker died: {died}")),
                        Err(_) => Err(format!(
                            "still running after the visibility timeout ({visibility:?})"
                        )),
                    };
                    if let Err(reason) = outcome {
                        if delivery.receives >= max_receives {
                            tracing::error!(%reason, receives = delivery.receives, "message moved to the dead-letter list");
                            dead.lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(delivery.body);
                        } else {
                            tracing::warn!(%reason, receives = delivery.receives, "message will be redelivered");
                            let tx = tx.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(redeliver_after).await;
                                let _ = tx.send(delivery);
                            });
                        }
                    }
                }
            });
        }
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn send(&self, message: &JobMessage) -> Result<(), QueueError> {
        let failing = self.fail_sends.load(std::sync::atomic::Ordering::SeqCst);
        if failing > 0 {
            self.fail_sends
                .store(failing - 1, std::sync::atomic::Ordering::SeqCst);
            return Err(QueueError::Unavailable("injected send failure".into()));
        }
        let body = serde_json::to_string(message).expect("messages serialize");
        self.send_raw(body);
        Ok(())
    }
}
