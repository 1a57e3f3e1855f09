//! Submitting a request: validate, record it as `queued`, send the message.

use std::sync::Arc;

use chrono::Utc;
use serde_json::Value;

use super::model::{
    FilterSpec, Job, JobError, JobMessage, MAX_BODY_BYTES, MAX_IMPORT_PEOPLE,
    MAX_QUEUE_MESSAGE_BYTES, RequestRecord,
};
use crate::ports::{Created, JobQueue, Outcome, QueueError, RequestStore, StoreError};

/// What submitting needs.
pub struct Enqueuer {
    pub requests: Arc<dyn RequestStore>,
    pub queue: Arc<dyn JobQueue>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("the request body is over {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("the request store is unavailable")]
    Store(#[from] StoreError),
    /// The record was written but the message could not be sent; the
    /// record was marked failed (or, if even that failed, says so in logs).
    #[error("the queue is unavailable")]
    Queue(#[from] QueueError),
}

fn invalid(field: &str, message: impl Into<String>) -> SubmitError {
    SubmitError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Parses and checks a request body: `{"kind": "report", "filter": {...}}`
/// or `{"kind": "import", "people": [...]}`.
pub fn parse_job(body: &[u8]) -> Result<Job, SubmitError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(SubmitError::TooLarge);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid("body", format!("the body is not JSON: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(invalid("body", "the body must be a JSON object"));
    };
    let kind = object.remove("kind");
    let job = match kind.as_ref().and_then(Value::as_str) {
        Some("report") => {
            let filter = match object.remove("filter") {
                None | Some(Value::Null) => FilterSpec::default(),
                Some(f) => serde_json::from_value::<FilterSpec>(f)
                    .map_err(|e| invalid("filter", format!("filter: {e}")))?,
            };
            check_filter(&filter)?;
            Job::Report { filter }
        }
        Some("import") => {
            let people = match object.remove("people") {
                Some(Value::Array(people)) => people,
                Some(_) => return Err(invalid("people", "people must be an array")),
                None => return Err(invalid("people", "an import needs people")),
            };
            if people.is_empty() {
                return Err(invalid("people", "people is empty"));
            }
            if people.len() > MAX_IMPORT_PEOPLE {
                return Err(invalid(
                    "people",
                    format!(
                        "at most {MAX_IMPORT_PEOPLE} people per request; split the import into several requests"
                    ),
                ));
            }
            Job::Import { people }
        }
        Some(other) => {
            return Err(invalid(
                "kind",
                format!(
                    "kind {:?} is not one of: report, import",
                    crate::text::clip_chars(other, 64)
                ),
            ));
        }
        None => return Err(invalid("kind", "kind is required: report or import")),
    };
    if let Some(extra) = object.keys().next() {
        // Quoted briefly: a 100 KB field name must not make the reply
        // too large to send.
        let extra = crate::text::clip_chars(extra, 64);
        return Err(invalid(&extra, format!("unknown field {extra:?}")));
    }
    Ok(job)
}

/// The same limits as the query parameters of `GET /people`.
pub(crate) fn check_filter(filter: &FilterSpec) -> Result<(), SubmitError> {
    use crate::api::params::{MAX_SEARCH_CHARS, MAX_SEARCH_WORDS, MAX_VALUE_CHARS, MAX_VALUES};
    if filter.search.chars().count() > MAX_SEARCH_CHARS {
        return Err(invalid(
            "filter.search",
            format!("search is longer than {MAX_SEARCH_CHARS} characters"),
        ));
    }
    if crate::text::words(&filter.search).len() > MAX_SEARCH_WORDS {
        return Err(invalid(
            "filter.search",
            format!("search has more than {MAX_SEARCH_WORDS} words"),
        ));
    }
    for (field, values) in [
        ("filter.nationality", &filter.nationality),
        ("filter.hobbies", &filter.hobbies),
    ] {
        // Counted as GET /people counts them: after splitting on commas,
        // empty pieces dropped, each distinct value once.
        let mut distinct: Vec<&str> = Vec::new();
        for v in values
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|v| !v.is_empty())
        {
            let new = !distinct.contains(&v);
            if v.chars().count() > MAX_VALUE_CHARS || (new && distinct.len() == MAX_VALUES) {
                return Err(invalid(
                    field,
                    format!("at most {MAX_VALUES} values of at most {MAX_VALUE_CHARS} characters"),
                ));
            }
            if new {
                distinct.push(v);
            }
        }
    }
    Ok(())
}

/// Validates `body`, records the request as `queued` and queues it. With
/// an `idempotency_key` used before, returns that request and queues nothing.
pub async fn submit(
    deps: &Enqueuer,
    body: &[u8],
    idempotency_key: Option<&str>,
    correlation_id: &str,
) -> Result<RequestRecord, SubmitError> {
    submit_then(deps, body, idempotency_key, correlation_id, |_| async {
        Ok(())
    })
    .await
}

/// As [`submit`], and `before_send` runs with the new record after it is
/// recorded and before its message is sent, so before any worker can start
/// it (the WebSocket `process` subscribes its connection there). When
/// `before_send` fails, nothing is sent and the record is marked failed.
#[tracing::instrument(skip(deps, body, before_send), fields(request_id))]
pub async fn submit_then<F, Fut>(
    deps: &Enqueuer,
    body: &[u8],
    idempotency_key: Option<&str>,
    correlation_id: &str,
    before_send: F,
) -> Result<RequestRecord, SubmitError>
where
    F: FnOnce(RequestRecord) -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    let job = parse_job(body)?;
    let id = uuid::Uuid::new_v4().to_string();
    let message = JobMessage {
        request_id: id.clone(),
        correlation_id: correlation_id.to_owned(),
        job,
    };
    // Checked before anything is recorded: a message the queue would refuse
    // is the client's to make smaller, not a failed request.
    let size = crate::adapters::sqs::queued_size(&message);
    if size > MAX_QUEUE_MESSAGE_BYTES {
        return Err(invalid(
            "body",
            format!(
                "queued, this request would be {size} bytes, over the queue's {MAX_QUEUE_MESSAGE_BYTES}; send fewer people or shorter values"
            ),
        ));
    }
    let record = RequestRecord::queued(id, message.job.kind(), Utc::now());
    let record = match deps.requests.create(&record, idempotency_key).await? {
        Created::New(record) => record,
        Created::Existing(earlier) => return Ok(earlier),
    };
    tracing::Span::current().record("request_id", record.id.as_str());
    if let Err(e) = before_send(record.clone()).await {
        never_queued(deps, &record).await;
        return Err(e.into());
    }
    if let Err(e) = deps.queue.send(&message).await {
        never_queued(deps, &record).await;
        return Err(e.into());
    }
    tracing::info!(request_id = %record.id, kind = ?record.kind, "request queued");
    Ok(record)
}

/// Nothing will ever process `record`: say so in it rather than leave it
/// `queued` forever.
async fn never_queued(deps: &Enqueuer, record: &RequestRecord) {
    let failed = Outcome::Failed(JobError {
        code: "enqueue_failed".into(),
        message: "the request could not be queued; submit it again".into(),
    });
    if let Err(store) = deps.requests.finish(&record.id, failed, Utc::now()).await {
        tracing::error!(request_id = %record.id, error = ?store, "the request was not queued and its record could not be marked failed; it stays queued until its TTL");
    }
}
