//! Fault injection through the ports: wrappers that pass every call to the
//! adapter they wrap, except the calls they were told to fail. Used by the
//! fault tests (`shared/tests/faults.rs`) to play throttling, outages, slow
//! calls and a worker that dies in the middle of a job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::Person;
use crate::jobs::{JobError, RequestRecord};
use crate::ports::{
    Changes, Created, Outcome, PeopleStore, RequestStore, ScanPage, Started, StoreError, Version,
    WriteReport,
};

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

    async fn check(&self, operation: &'static str) -> Result<(), StoreError> {
        let fault = {
            let mut armed = self.armed.lock().unwrap_or_else(|e| e.into_inner());
            match armed.get_mut(operation).and_then(|q| q.first_mut()) {
                None => return Ok(()),
                Some(next) if next.after > 0 => {
                    next.after -= 1;
                    return Ok(());
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
                Ok(())
            }
        }
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
        self.faults.check("get").await?;
        self.inner.get(id).await
    }

    async fn put_batch(&self, people: &[Person]) -> Result<WriteReport, StoreError> {
        self.faults.check("put_batch").await?;
        self.inner.put_batch(people).await
    }

    async fn scan(
        &self,
        segment: u32,
        segments: u32,
        start: Option<String>,
    ) -> Result<ScanPage, StoreError> {
        self.faults.check("scan").await?;
        self.inner.scan(segment, segments, start).await
    }

    async fn latest_version(&self) -> Result<Version, StoreError> {
        self.faults.check("latest_version").await?;
        self.inner.latest_version().await
    }

    async fn changes_since(&self, since: Version, limit: usize) -> Result<Changes, StoreError> {
        self.faults.check("changes_since").await?;
        self.inner.changes_since(since, limit).await
    }

    fn feed_overlap(&self) -> Version {
        self.inner.feed_overlap()
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
        self.faults.check("create").await?;
        self.inner.create(record, idempotency_key).await
    }

    async fn get(&self, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        self.faults.check("get").await?;
        self.inner.get(id).await
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
        self.faults.check("start").await?;
        self.inner.start(id, now).await
    }

    async fn finish(
        &self,
        id: &str,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.faults.check("finish").await?;
        self.inner.finish(id, outcome, now).await
    }
}
