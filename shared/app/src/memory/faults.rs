//! Fault injection through the ports: wrappers that pass every call to the
//! adapter they wrap, except the calls they were told to fail. Used by the
//! fault tests (`shared/http/tests/http/faults.rs`) to play throttling, outages, slow
//! calls and a worker that dies in the middle of a job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::jobs::{JobError, RequestRecord};
use crate::ports::{
    Changes, ConnectionStore, Created, Notifier, NotifyError, Outcome, PeopleStore, RequestStore,
    ScanPage, Started, StoreError, Version, WriteReport,
};
use people_core::domain::Person;

/// What an armed call does instead of (or before) its real work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `StoreError::Unavailable`, as throttling or a timeout is classified.
    Unavailable,
    /// `StoreError::Permanent`, as a missing table or a denied call is.
    Permanent,
    /// The process dies here: the task panics, nothing after it runs.
    Die,
    /// The call is this slow, then runs.
    Delay(Duration),
    /// The call is applied but its answer is lost, so the SDK's retry makes
    /// it again, and the caller gets the retry's answer (a conditional
    /// write then finds its own earlier write).
    Retried,
}

/// Faults armed per operation name (`"put_batch"`, `"finish"`, ...): each
/// armed fault fires once, in the order armed, skipping `after` calls first.
#[derive(Default, Clone)]
pub struct Faults {
    armed: Arc<Mutex<HashMap<&'static str, Vec<Armed>>>>,
    fired: Arc<Mutex<Vec<(&'static str, Fault)>>>,
}

#[derive(Debug, Clone, Copy)]
struct Armed {
    fault: Fault,
    after: usize,
}

impl Faults {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `times` calls of `operation` fail with `fault`.
    pub fn fail(&self, operation: &'static str, fault: Fault, times: usize) {
        self.fail_after(operation, 0, fault, times);
    }

    /// After `after` more successful calls of `operation`, the next
    /// `times` calls fail with `fault`.
    pub fn fail_after(&self, operation: &'static str, after: usize, fault: Fault, times: usize) {
        let mut armed = self.armed.lock().unwrap_or_else(|e| e.into_inner());
        let queue = armed.entry(operation).or_default();
        for i in 0..times {
            queue.push(Armed {
                fault,
                after: if i == 0 { after } else { 0 },
            });
        }
    }

    /// The faults that fired, in order.
    pub fn fired(&self) -> Vec<(&'static str, Fault)> {
        self.fired.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Passes the call `run` through the fault armed for `operation`.
    async fn call<T, F, Fut>(&self, operation: &'static str, run: F) -> Result<T, StoreError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        if self.check(operation).await? {
            // The first answer is lost on the way back.
            let _ = run().await;
        }
        run().await
    }

    /// `Ok(true)`: the call is to be made twice (`Fault::Retried`).
    async fn check(&self, operation: &'static str) -> Result<bool, StoreError> {
        let fault = {
            let mut armed = self.armed.lock().unwrap_or_else(|e| e.into_inner());
            match armed.get_mut(operation).and_then(|q| q.first_mut()) {
                None => return Ok(false),
                Some(next) if next.after > 0 => {
                    next.after -= 1;
                    return Ok(false);
                }
                Some(_) => armed.get_mut(operation).expect("checked").remove(0).fault,
            }
        };
        self.fired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((operation, fault));
        match fault {
            Fault::Unavailable => Err(StoreError::Unavailable(
                format!("injected: {operation} throttled").into(),
            )),
            Fault::Permanent => Err(StoreError::Permanent(
                format!("injected: {operation} refused").into(),
            )),
            Fault::Die => panic!("injected: the worker dies during {operation}"),
            Fault::Delay(d) => {
                tokio::time::sleep(d).await;
                Ok(false)
            }
            Fault::Retried => Ok(true),
        }
    }
}

/// A notifier that fails on command: every operation is `"post"`;
/// `Unavailable` is a throttled or timed-out push, `Permanent` a refused one.
pub struct FaultyNotifier {
    pub inner: Arc<dyn Notifier>,
    pub faults: Faults,
}

#[async_trait]
impl Notifier for FaultyNotifier {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), NotifyError> {
        match self.faults.check("post").await {
            Ok(twice) => {
                if twice {
                    let _ = self.inner.post(connection_id, data).await;
                }
                self.inner.post(connection_id, data).await
            }
            Err(StoreError::Unavailable(e)) => Err(NotifyError::Unavailable(e)),
            Err(StoreError::Permanent(e)) => Err(NotifyError::Permanent(e)),
        }
    }
}

/// A connection store that fails on command.
pub struct FaultyConnectionStore {
    pub inner: Arc<dyn ConnectionStore>,
    pub faults: Faults,
}

#[async_trait]
impl ConnectionStore for FaultyConnectionStore {
    async fn connect(&self, connection_id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.faults
            .call("connect", || self.inner.connect(connection_id, now))
            .await
    }

    async fn disconnect(&self, connection_id: &str) -> Result<(), StoreError> {
        self.faults
            .call("disconnect", || self.inner.disconnect(connection_id))
            .await
    }

    async fn subscribe(
        &self,
        connection_id: &str,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.faults
            .call("subscribe", || {
                self.inner.subscribe(connection_id, request_id, now)
            })
            .await
    }

    async fn unsubscribe(&self, connection_id: &str, request_id: &str) -> Result<(), StoreError> {
        self.faults
            .call("unsubscribe", || {
                self.inner.unsubscribe(connection_id, request_id)
            })
            .await
    }

    async fn subscriptions(
        &self,
        connection_id: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.faults
            .call("subscriptions", || {
                self.inner.subscriptions(connection_id, now)
            })
            .await
    }

    async fn subscribers(
        &self,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        self.faults
            .call("subscribers", || self.inner.subscribers(request_id, now))
            .await
    }
}

/// A people store that fails on command.
pub struct FaultyPeopleStore {
    pub inner: Arc<dyn PeopleStore>,
    pub faults: Faults,
}

#[async_trait]
impl PeopleStore for FaultyPeopleStore {
    async fn get(&self, id: &str) -> Result<Option<Person>, StoreError> {
        self.faults.call("get", || self.inner.get(id)).await
    }

    async fn put_batch(&self, people: &[Person]) -> Result<WriteReport, StoreError> {
        self.faults
            .call("put_batch", || self.inner.put_batch(people))
            .await
    }

    async fn delete_batch(&self, ids: &[String]) -> Result<WriteReport, StoreError> {
        self.faults.check("delete_batch").await?;
        self.inner.delete_batch(ids).await
    }

    async fn scan(
        &self,
        segment: u32,
        segments: u32,
        start: Option<String>,
    ) -> Result<ScanPage, StoreError> {
        self.faults
            .call("scan", || self.inner.scan(segment, segments, start.clone()))
            .await
    }

    async fn latest_version(&self) -> Result<Version, StoreError> {
        self.faults
            .call("latest_version", || self.inner.latest_version())
            .await
    }

    async fn changes_since(&self, since: Version, limit: usize) -> Result<Changes, StoreError> {
        self.faults
            .call("changes_since", || self.inner.changes_since(since, limit))
            .await
    }

    fn feed_overlap(&self) -> Version {
        self.inner.feed_overlap()
    }

    fn tombstone_lifetime(&self) -> Option<std::time::Duration> {
        self.inner.tombstone_lifetime()
    }
}

/// A request store that fails on command.
pub struct FaultyRequestStore {
    pub inner: Arc<dyn RequestStore>,
    pub faults: Faults,
}

#[async_trait]
impl RequestStore for FaultyRequestStore {
    async fn create(
        &self,
        record: &RequestRecord,
        idempotency_key: Option<&str>,
    ) -> Result<Created, StoreError> {
        self.faults
            .call("create", || self.inner.create(record, idempotency_key))
            .await
    }

    async fn get(&self, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        self.faults.call("get", || self.inner.get(id)).await
    }

    async fn abandon(
        &self,
        record: &RequestRecord,
        idempotency_key: Option<&str>,
        error: JobError,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.faults.check("abandon").await?;
        self.inner
            .abandon(record, idempotency_key, error, now)
            .await
    }

    async fn start(&self, id: &str, now: DateTime<Utc>) -> Result<Started, StoreError> {
        self.faults
            .call("start", || self.inner.start(id, now))
            .await
    }

    async fn finish(
        &self,
        id: &str,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.faults
            .call("finish", || self.inner.finish(id, outcome.clone(), now))
            .await
    }

    async fn stale(
        &self,
        started_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        self.faults
            .call("stale", || self.inner.stale(started_before, limit))
            .await
    }
}
