//! Ports: one narrow trait per capability. Handlers ask only for the ports
//! they use; adapters (`crate::adapters`) implement them in memory and on AWS.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::jobs::{JobError, JobMessage, RequestRecord};
use people_core::domain::{Change, Person};

pub use people_core::search::Version;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Worth retrying: throttling, a timeout, a dropped connection.
    #[error("storage is unavailable for now")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Retrying will not help: a bad request, missing table, no permission.
    #[error("storage rejected the request")]
    Permanent(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// One page of a (segmented) scan of every person.
#[derive(Debug, Default)]
pub struct ScanPage {
    pub people: Vec<Person>,
    /// Where the next page of this segment starts; `None` at the end.
    pub next: Option<String>,
}

/// Changes after a version, oldest first: people written, and tombstones
/// of people deleted.
#[derive(Debug, Default)]
pub struct Changes {
    pub changes: Vec<Change>,
    /// The version of the newest change returned (or the one asked for, if none).
    pub up_to: Version,
    /// More changes follow `up_to`.
    pub more: bool,
}

/// What a batch write did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// People written (new or changed).
    pub written: usize,
    /// People that were already stored exactly so.
    pub unchanged: usize,
    /// Ids that could not be written even after retries (throttling that
    /// outlasted the retry budget); the caller decides what to tell whom.
    pub failed: Vec<String>,
}

/// The system of record for people, with a change feed so that readers can
/// keep an in-memory index current without scanning.
#[async_trait]
pub trait PeopleStore: Send + Sync {
    async fn get(&self, id: &str) -> Result<Option<Person>, StoreError>;

    /// Inserts or replaces people by id.
    async fn put_batch(&self, people: &[Person]) -> Result<WriteReport, StoreError>;

    /// Deletes people by id, leaving a tombstone in the change feed for
    /// each. `written` counts the ids given that are now deleted (whether
    /// or not they were there: a delete is idempotent), `failed` those that
    /// could not be written.
    async fn delete_batch(&self, ids: &[String]) -> Result<WriteReport, StoreError>;

    /// One page of segment `segment` of `segments`; together the segments
    /// return every person once.
    async fn scan(
        &self,
        segment: u32,
        segments: u32,
        start: Option<String>,
    ) -> Result<ScanPage, StoreError>;

    /// The newest version written so far (0 for an empty store).
    async fn latest_version(&self) -> Result<Version, StoreError>;

    /// Up to `limit` changes after `since`, oldest first: each person
    /// written or deleted since appears once, as their last change.
    async fn changes_since(&self, since: Version, limit: usize) -> Result<Changes, StoreError>;

    /// How far behind its watermark a feed reader must start again, because
    /// writes can become readable out of version order (0 where they cannot).
    fn feed_overlap(&self) -> Version {
        0
    }

    /// How long a tombstone stays in the feed at least (`None`: forever). A
    /// reader whose last feed read is older than this may have missed one,
    /// and must rebuild its index from a scan instead of catching up.
    fn tombstone_lifetime(&self) -> Option<std::time::Duration> {
        None
    }
}

/// What [`RequestStore::create`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    New(RequestRecord),
    /// The idempotency key was used before: that earlier request.
    Existing(RequestRecord),
}

/// What [`RequestStore::start`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Started {
    /// Now `processing` (again, after a redelivery: `attempts` counts them).
    Started(RequestRecord),
    /// Already `completed` or `failed`: a duplicate delivery, nothing to do.
    Finished(RequestRecord),
    Missing,
}

/// Request records. Every status change is conditional, so duplicate or
/// late deliveries can never overwrite a finished result.
///
/// Idempotency keys belong to the record's `owner`: the same key text of
/// two owners is two keys (`crate::jobs::scoped_key`).
#[async_trait]
pub trait RequestStore: Send + Sync {
    /// Records a new `queued` request. With an idempotency key that its
    /// owner used before, records nothing and returns the earlier request
    /// (whose `fingerprint` the caller compares).
    async fn create(
        &self,
        record: &RequestRecord,
        idempotency_key: Option<&str>,
    ) -> Result<Created, StoreError>;

    async fn get(&self, id: &str) -> Result<Option<RequestRecord>, StoreError>;

    /// `queued` → `failed` with `error`, and its idempotency key forgotten,
    /// for a request whose message could not be sent. Only from `queued`:
    /// a send whose answer was lost may have delivered the message, and a
    /// request a worker started is left to it. Returns whether it was
    /// marked failed.
    async fn abandon(
        &self,
        record: &RequestRecord,
        idempotency_key: Option<&str>,
        error: JobError,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// `queued` or `processing` → `processing`, one more attempt.
    async fn start(&self, id: &str, now: DateTime<Utc>) -> Result<Started, StoreError>;

    /// → `completed` or `failed`, unless the request already finished.
    /// Returns whether this call finished it.
    async fn finish(
        &self,
        id: &str,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The `processing` requests last started before `started_before`, at
    /// most `limit` of them (for the sweeper: a request no delivery has
    /// touched for that long has no delivery left).
    async fn stale(
        &self,
        started_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<RequestRecord>, StoreError>;
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed(serde_json::Value),
    Failed(JobError),
}

impl Outcome {
    /// `record` as [`RequestStore::finish`] leaves it.
    pub fn apply_to(self, record: &mut RequestRecord, now: DateTime<Utc>) {
        match self {
            Outcome::Completed(result) => {
                record.status = crate::jobs::RequestStatus::Completed;
                record.result = Some(result);
            }
            Outcome::Failed(error) => {
                record.status = crate::jobs::RequestStatus::Failed;
                record.error = Some(error);
            }
        }
        record.updated_at = now;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue is unavailable for now")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the queue rejected the message")]
    Permanent(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Where jobs wait for a worker. Delivery is at least once.
#[async_trait]
pub trait JobQueue: Send + Sync {
    async fn send(&self, message: &JobMessage) -> Result<(), QueueError>;
}

/// Received messages handed back to the queue at once (SQS:
/// `ChangeMessageVisibility` to 0), for messages a consumer will not start:
/// without it they come back only after the visibility timeout.
#[async_trait]
pub trait Redelivery: Send + Sync {
    /// Makes the messages of `receipt_handles` visible again now.
    async fn release(&self, receipt_handles: &[String]) -> Result<(), QueueError>;
}

/// WebSocket connections and the requests each one follows.
///
/// A subscription is written *before* the subscriber reads the request's
/// status, and a worker reads the subscribers *after* it finished the
/// request; with reads that see every earlier write, one of the two always
/// sees the other, so a result cannot be missed (see `crate::ws`).
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Records a new connection; it expires on its own after
    /// [`CONNECTION_TTL`] (API Gateway ends every connection after 2 hours).
    async fn connect(&self, connection_id: &str, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Forgets the connection and all its subscriptions.
    async fn disconnect(&self, connection_id: &str) -> Result<(), StoreError>;

    /// The connection receives what happens to the request from now on.
    async fn subscribe(
        &self,
        connection_id: &str,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    async fn unsubscribe(&self, connection_id: &str, request_id: &str) -> Result<(), StoreError>;

    /// How many live subscriptions the connection has.
    async fn subscriptions(
        &self,
        connection_id: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError>;

    /// The live connections subscribed to the request, read so that every
    /// subscription written before this call is seen.
    async fn subscribers(
        &self,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError>;
}

/// How long a connection record lives: a little over API Gateway's 2-hour
/// limit on a WebSocket connection, so a record whose `$disconnect` never
/// arrived still goes away.
pub const CONNECTION_TTL: std::time::Duration = std::time::Duration::from_secs(2 * 3600 + 15 * 60);

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The connection no longer exists (API Gateway answers 410).
    #[error("the connection is gone")]
    Gone,
    /// The message is over the size a connection accepts.
    #[error("the message is too large for the connection")]
    TooLarge,
    #[error("the push could not be delivered for now")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the push was refused")]
    Permanent(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Sends a message to one WebSocket connection (API Gateway's
/// `PostToConnection`, or a socket of the local server).
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), NotifyError>;
}
