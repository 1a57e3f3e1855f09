//! Process requests: what a client submits, what is queued, what is kept.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use people_core::domain::{HobbiesMatch, PeopleFilter};

/// People in one import request: the request travels in one queue message
/// (SQS: 256 KiB), and 1,000 people of the longest allowed fields fit.
/// Larger imports are split by the client, or go through `admin import`.
pub const MAX_IMPORT_PEOPLE: usize = 1_000;
/// Ids in one delete request (a message of at most 1,000 ids of the
/// longest allowed length is well under the queue's limit).
pub const MAX_DELETE_IDS: usize = 1_000;
/// Largest request body accepted by `POST /requests`.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Largest queue message (SQS: 256 KiB). A body under `MAX_BODY_BYTES` can
/// still serialize larger (numbers are written back in full: `1e5` becomes
/// `100000.0`), so the message itself is checked too.
pub const MAX_QUEUE_MESSAGE_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Report,
    Import,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Queued,
    Processing,
    Completed,
    Failed,
}

impl RequestStatus {
    pub fn is_final(self) -> bool {
        matches!(self, RequestStatus::Completed | RequestStatus::Failed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

/// A request as kept by the request store and shown by `GET /requests/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RequestRecord {
    #[schema(format = Uuid)]
    pub id: String,
    pub kind: JobKind,
    pub status: RequestStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The job's result once completed (a report's counts, an import's
    /// accepted and rejected, a delete's count), else null.
    #[schema(required = true)]
    pub result: Option<Value>,
    #[schema(required = true)]
    pub error: Option<JobError>,
    /// Times a worker started it (more than 1 after a redelivery).
    pub attempts: u32,
    /// The `sub` of the caller who submitted it (none: anonymous). Only
    /// its owner sees it; not part of what the API shows.
    #[serde(skip)]
    pub owner: Option<String>,
    /// [`fingerprint`] of the submitted job: an idempotency key sent again
    /// with another body is refused by comparing it.
    #[serde(skip)]
    pub fingerprint: Option<String>,
}

impl RequestRecord {
    /// A request just submitted: `queued`, no attempts yet.
    pub fn queued(id: String, kind: JobKind, now: DateTime<Utc>) -> Self {
        Self {
            id,
            kind,
            status: RequestStatus::Queued,
            created_at: now,
            updated_at: now,
            result: None,
            error: None,
            attempts: 0,
            owner: None,
            fingerprint: None,
        }
    }

    /// The same request, belonging to `owner`, with the job's fingerprint.
    pub fn owned(mut self, owner: Option<&str>, fingerprint: Option<String>) -> Self {
        self.owner = owner.map(str::to_owned);
        self.fingerprint = fingerprint;
        self
    }
}

/// A hash of what a job asks for (SHA-256, hex): the same for the same
/// job however its JSON was spaced or its keys ordered (`serde_json`
/// without `preserve_order` writes object keys sorted; a test holds it).
pub fn fingerprint(job: &Job) -> String {
    use sha2::Digest;
    let canonical = serde_json::to_vec(job).expect("jobs serialize");
    hex(&sha2::Sha256::digest(canonical))
}

/// What an idempotency key may be (the `Idempotency-Key` header, the
/// `idempotency_key` of a WebSocket `process` frame).
pub const KEY_RULE: &str = "an idempotency key must be 1 to 128 visible ASCII characters";

pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 128 && key.bytes().all(|b| b.is_ascii_graphic())
}

/// An idempotency key as the stores keep it: scoped to its owner, so that
/// two callers never share one. The owner is hashed (bounded length, and
/// no separator inside a `sub` can make two owners collide).
pub fn scoped_key(owner: Option<&str>, key: &str) -> String {
    use sha2::Digest;
    match owner {
        None => format!("anonymous/{key}"),
        Some(sub) => {
            let digest = sha2::Sha256::digest(sub.as_bytes());
            format!("user:{}/{key}", hex(&digest[..16]))
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The filter of a report, as a client writes it (same semantics as the
/// query parameters of `GET /people`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    #[serde(default)]
    pub search: String,
    /// One value, or several (each may be comma-separated).
    #[serde(default, deserialize_with = "one_or_many")]
    #[schema(schema_with = one_or_many_schema)]
    pub nationality: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    #[schema(schema_with = one_or_many_schema)]
    pub hobbies: Vec<String>,
    #[serde(default)]
    pub hobbies_match: HobbiesMatch,
    /// Typo tolerance, as `typos=1` on `GET /people`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub typos: bool,
}

impl FilterSpec {
    pub fn to_filter(&self) -> PeopleFilter {
        let split = |values: &[String]| -> Vec<String> {
            let mut out: Vec<String> = Vec::new();
            for v in values.iter().flat_map(|v| v.split(',')) {
                if !v.is_empty() && !out.iter().any(|o| o == v) {
                    out.push(v.to_owned());
                }
            }
            out
        };
        PeopleFilter::new(
            &self.search,
            split(&self.nationality),
            split(&self.hobbies),
            self.hobbies_match,
        )
        .with_typos(self.typos)
    }
}

/// What `one_or_many` reads: a string or an array of strings.
fn one_or_many_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
    let string = || ObjectBuilder::new().schema_type(Type::String);
    Schema::OneOf(
        OneOfBuilder::new()
            .item(string())
            .item(ArrayBuilder::new().items(string()))
            .build(),
    )
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// What is queued: everything a worker needs, so it reads nothing but the
/// people index and writes nothing but people and the request's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMessage {
    pub request_id: String,
    pub correlation_id: String,
    /// What the ids of imported people without one derive from: the
    /// caller's scoped idempotency key and the job's fingerprint when the
    /// request had a key (so a resubmission with the same key and body
    /// reproduces them, even as a new request after the first expired or
    /// could not be queued), else the request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_seed: Option<String>,
    #[serde(flatten)]
    pub job: Job,
}

/// The body of `POST /requests` (`enqueue::parse_job` reads it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    Report {
        /// Left out or null: everybody.
        #[serde(default)]
        filter: FilterSpec,
    },
    /// People as submitted; each is validated by the worker and reported
    /// by its index, so one bad person does not reject the rest.
    Import {
        #[schema(value_type = Vec<people_core::domain::PersonInput>, min_items = 1, max_items = 1000)]
        people: Vec<Value>,
    },
    /// People to delete by id; an id nobody has is not an error (the
    /// delete holds either way).
    Delete {
        #[schema(min_items = 1, max_items = 1000)]
        ids: Vec<String>,
    },
}

impl Job {
    pub fn kind(&self) -> JobKind {
        match self {
            Job::Report { .. } => JobKind::Report,
            Job::Import { .. } => JobKind::Import,
            Job::Delete { .. } => JobKind::Delete,
        }
    }
}
