//! In-memory adapters: the local server's backends and the tests' doubles.

pub mod connections;
pub mod faults;
pub mod hub;

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::jobs::{JobError, JobMessage, RequestRecord, RequestStatus, scoped_key};
use crate::ports::{
    Changes, Created, JobQueue, Outcome, PeopleStore, QueueError, RequestStore, ScanPage, Started,
    StoreError, Version, WriteReport,
};
use people_core::domain::{Change, Person};
use people_core::search::{PeopleTable, Upserted};

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
    /// older entry, which `changes_since` skips. A removed row's last entry
    /// is its tombstone (a removed row is never reused: a person added
    /// again gets a new row).
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
        let n = table.rows_len() as u64;
        Self {
            inner: RwLock::new(Inner {
                versions: (1..=n).collect(),
                log: (1..=n).map(|v| (v, (v - 1) as u32)).collect(),
                latest: n,
                table,
            }),
        }
    }

    /// People held (not deleted).
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

    async fn delete_batch(&self, ids: &[String]) -> Result<WriteReport, StoreError> {
        let mut inner = self.write();
        let mut report = WriteReport::default();
        for id in ids {
            match inner.table.remove(id) {
                Some(row) => {
                    inner.latest += 1;
                    let version = inner.latest;
                    inner.versions[row as usize] = version;
                    inner.log.push((version, row));
                    report.written += 1;
                }
                // Already absent: the delete holds, and no tombstone is
                // needed since no reader holds the person.
                None => report.unchanged += 1,
            }
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
        let rows: Vec<usize> = (from..inner.table.rows_len())
            .step_by(segments as usize)
            .take(PAGE + 1)
            .collect();
        let next = rows.get(PAGE).map(|r| r.to_string());
        let people = rows
            .iter()
            .take(PAGE)
            .filter(|&&r| !inner.table.is_removed(r as u32))
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
        let mut changes = Vec::new();
        let mut up_to = since;
        let mut more = false;
        for &(version, row) in &inner.log[start..] {
            if inner.versions[row as usize] != version {
                continue; // superseded by a later write of the same person
            }
            if changes.len() == limit {
                more = true;
                break;
            }
            changes.push(if inner.table.is_removed(row) {
                Change::Delete(inner.table.id(row).to_owned())
            } else {
                Change::Put(inner.table.person(row))
            });
            up_to = version;
        }
        if !more {
            up_to = up_to.max(inner.latest);
        }
        Ok(Changes {
            changes,
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

    async fn stale(
        &self,
        started_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        Ok(self
            .lock()
            .records
            .values()
            .filter(|r| r.status == RequestStatus::Processing && r.updated_at < started_before)
            .take(limit)
            .cloned()
            .collect())
    }
}

/// A queue in process: messages go to a channel that [`MemoryQueue::run_workers`]
/// drains with a pool of workers. Like SQS, delivery is at least once: a
/// message whose processing fails comes back after `redeliver_after`, and
/// after `max_receives` deliveries goes to the dead-letter list. Unlike
/// SQS it is bounded: a send to a queue holding `capacity` messages is
/// refused as unavailable (503 to the client), and [`MemoryQueue::drain`]
/// stops it for a graceful shutdown.
pub struct MemoryQueue {
    tx: tokio::sync::mpsc::UnboundedSender<Delivery>,
    rx: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Delivery>>>,
    dead: Arc<std::sync::Mutex<Vec<String>>>,
    /// Makes the next `n` sends fail (fault injection for tests).
    fail_sends: std::sync::atomic::AtomicUsize,
    /// How long a delivery may run before the message is delivered again
    /// (to another worker) while it goes on, as SQS's visibility timeout.
    visibility: std::time::Duration,
    /// Most messages waiting (sent or due for redelivery, not yet taken).
    capacity: usize,
    state: Arc<QueueState>,
    /// The receiver once the workers share it, so that a drain can empty it.
    workers_rx: std::sync::Mutex<
        Option<Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Delivery>>>>,
    >,
}

/// What the workers and a drain share.
#[derive(Default)]
struct QueueState {
    /// Messages in the channel or waiting to be redelivered.
    waiting: std::sync::atomic::AtomicUsize,
    /// No more sends (the server is stopping).
    closed: std::sync::atomic::AtomicBool,
    /// Workers start nothing more; what they take is set aside.
    stopping: std::sync::atomic::AtomicBool,
    /// Bodies of the deliveries running now, by delivery number.
    running: std::sync::Mutex<std::collections::HashMap<u64, String>>,
    next_delivery: std::sync::atomic::AtomicU64,
    /// Bodies taken after `stopping`, never started.
    set_aside: std::sync::Mutex<Vec<String>>,
}

/// Messages a memory queue holds by default before it refuses sends.
pub const MEMORY_QUEUE_CAPACITY: usize = 10_000;

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
            visibility: crate::jobs::wire::VISIBILITY_TIMEOUT,
            capacity: MEMORY_QUEUE_CAPACITY,
            state: Arc::default(),
            workers_rx: std::sync::Mutex::new(None),
        }
    }
}

/// What [`MemoryQueue::drain`] left undone.
#[derive(Debug, Default)]
pub struct Drained {
    /// Bodies of messages never started (or waiting for a redelivery).
    pub waiting: Vec<String>,
    /// Bodies of deliveries still running when the grace period ended.
    pub running: Vec<String>,
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

    /// Sends are refused once `capacity` messages wait.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Messages waiting (sent or due for redelivery, not yet taken).
    pub fn waiting(&self) -> usize {
        self.state.waiting.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Sends the raw `body`, as a producer outside this code might.
    pub fn send_raw(&self, body: String) {
        // The receiver lives as long as the queue's workers; a send after
        // shutdown has nowhere to go, as with a deleted queue.
        self.state
            .waiting
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = self.tx.send(Delivery { body, receives: 0 });
    }

    /// Takes the next waiting message, if any, as a worker would (for tests
    /// and tools; not usable once `run_workers` has started).
    pub fn try_receive(&self) -> Option<String> {
        let mut rx = self.rx.lock().unwrap_or_else(|e| e.into_inner());
        let body = rx.as_mut()?.try_recv().ok().map(|d| d.body)?;
        self.state
            .waiting
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        Some(body)
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

    /// Stops the queue for a shutdown: refuses new sends at once, lets the
    /// workers go on for up to `grace` while anything is waiting or
    /// running, then has them start nothing more, and returns what was
    /// left: never started, and still running (which goes on; its outcome
    /// is its own). Needs the workers (`run_workers`) to take what waits.
    pub async fn drain(&self, grace: std::time::Duration) -> Drained {
        use std::sync::atomic::Ordering::SeqCst;
        let state = &self.state;
        state.closed.store(true, SeqCst);
        let until = tokio::time::Instant::now() + grace;
        let idle = || {
            state.waiting.load(SeqCst) == 0
                && state
                    .running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_empty()
        };
        while !idle() && tokio::time::Instant::now() < until {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        state.stopping.store(true, SeqCst);
        // What waits is now set aside as the workers take it (a redelivery
        // due later is set aside when it is due): wait for the last.
        let until = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while state.waiting.load(SeqCst) > 0 && tokio::time::Instant::now() < until {
            self.set_aside_waiting();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Drained {
            waiting: std::mem::take(
                &mut *state.set_aside.lock().unwrap_or_else(|e| e.into_inner()),
            ),
            running: state
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned()
                .collect(),
        }
    }

    /// Takes what is in the channel now (when no worker holds it) and sets
    /// it aside.
    fn set_aside_waiting(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        let take = |rx: &mut tokio::sync::mpsc::UnboundedReceiver<Delivery>| {
            while let Ok(delivery) = rx.try_recv() {
                self.state
                    .set_aside
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(delivery.body);
                self.state.waiting.fetch_sub(1, SeqCst);
            }
        };
        if let Some(rx) = self.rx.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            take(rx);
        }
        let shared = self
            .workers_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(shared) = shared
            && let Ok(mut rx) = shared.try_lock()
        {
            take(&mut rx);
        }
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
        use std::sync::atomic::Ordering::SeqCst;
        let visibility = self.visibility;
        let rx = self
            .rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .expect("run_workers is called once");
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        *self.workers_rx.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&rx));
        let handle = Arc::new(handle);
        for _ in 0..workers.max(1) {
            let (rx, handle, tx, dead, state) = (
                Arc::clone(&rx),
                Arc::clone(&handle),
                self.tx.clone(),
                Arc::clone(&self.dead),
                Arc::clone(&self.state),
            );
            tokio::spawn(async move {
                loop {
                    let Some(mut delivery) = rx.lock().await.recv().await else {
                        return;
                    };
                    if state.stopping.load(SeqCst) {
                        state
                            .set_aside
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(delivery.body);
                        state.waiting.fetch_sub(1, SeqCst);
                        continue;
                    }
                    let number = state.next_delivery.fetch_add(1, SeqCst);
                    state
                        .running
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(number, delivery.body.clone());
                    state.waiting.fetch_sub(1, SeqCst);
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
                            let state = Arc::clone(&state);
                            state.waiting.fetch_add(1, SeqCst);
                            tokio::spawn(async move {
                                tokio::time::sleep(redeliver_after).await;
                                if state.stopping.load(SeqCst) {
                                    state
                                        .set_aside
                                        .lock()
                                        .unwrap_or_else(|e| e.into_inner())
                                        .push(delivery.body);
                                    state.waiting.fetch_sub(1, SeqCst);
                                } else if tx.send(delivery).is_err() {
                                    state.waiting.fetch_sub(1, SeqCst);
                                }
                            });
                        }
                    }
                    state
                        .running
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&number);
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
        if self.state.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(QueueError::Unavailable(
                "the queue is closed: the server is stopping".into(),
            ));
        }
        if self.waiting() >= self.capacity {
            return Err(QueueError::Unavailable(
                format!("the queue is full ({} messages wait)", self.capacity).into(),
            ));
        }
        let body = serde_json::to_string(message).expect("messages serialize");
        self.send_raw(body);
        Ok(())
    }
}

/// Pushes of memory storage: to the sockets of `hub` (the local
/// server's), or nowhere (a function under `cargo lambda watch`, where no
/// connection can subscribe).
pub fn pusher(hub: Option<Arc<hub::ConnectionHub>>) -> crate::ws::Pusher {
    crate::ws::Pusher {
        connections: Arc::new(connections::MemoryConnectionStore::new()),
        notifier: match hub {
            Some(hub) => hub,
            None => Arc::new(hub::ConnectionHub::new()),
        },
    }
}
