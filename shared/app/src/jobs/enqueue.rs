//! Submitting a request: validate, record it as `queued`, send the message.

use std::sync::Arc;

use chrono::Utc;
use serde_json::Value;

use super::model::{
    FilterSpec, Job, JobError, JobMessage, MAX_BODY_BYTES, MAX_DELETE_IDS, MAX_IMPORT_PEOPLE,
    MAX_QUEUE_MESSAGE_BYTES, RequestRecord, fingerprint, scoped_key,
};
use crate::access::{Caller, Denied};
use crate::ports::{Created, JobQueue, QueueError, RequestStore, StoreError};
use people_core::text::clip_quoted;

/// What submitting needs.
pub struct Enqueuer {
    pub requests: Arc<dyn RequestStore>,
    pub queue: Arc<dyn JobQueue>,
    /// Callers without a token may import (`ALLOW_ANONYMOUS_WRITES`; the
    /// local server's default, off on a stack unless asked for).
    pub anonymous_writes: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("the request body is over {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// The caller may not submit this kind of job.
    #[error("{0}")]
    Forbidden(#[from] Denied),
    /// The idempotency key was used before, by this caller, with another
    /// request body (the IETF Idempotency-Key draft's 422).
    #[error(
        "this Idempotency-Key was used with another request body (request {earlier}); use a new key for a new request"
    )]
    KeyReused { earlier: String },
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
/// `{"kind": "import", "people": [...]}` or `{"kind": "delete", "ids": [...]}`.
pub fn parse_job(body: &[u8]) -> Result<Job, SubmitError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(SubmitError::TooLarge);
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(
            "body",
            format!("the body is not JSON: {}", clip_quoted(&e.to_string(), 64)),
        )
    })?;
    let Value::Object(mut object) = value else {
        return Err(invalid("body", "the body must be a JSON object"));
    };
    let kind = object.remove("kind");
    let job = match kind.as_ref().and_then(Value::as_str) {
        Some("report") => {
            let filter = match object.remove("filter") {
                None | Some(Value::Null) => FilterSpec::default(),
                Some(f) => serde_json::from_value::<FilterSpec>(f).map_err(|e| {
                    invalid(
                        "filter",
                        format!("filter: {}", clip_quoted(&e.to_string(), 64)),
                    )
                })?,
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
        Some("delete") => {
            let ids = match object.remove("ids") {
                Some(Value::Array(ids)) => ids,
                Some(_) => return Err(invalid("ids", "ids must be an array of strings")),
                None => return Err(invalid("ids", "a delete needs ids")),
            };
            if ids.is_empty() {
                return Err(invalid("ids", "ids is empty"));
            }
            if ids.len() > MAX_DELETE_IDS {
                return Err(invalid(
                    "ids",
                    format!(
                        "at most {MAX_DELETE_IDS} ids per request; split the delete into several requests"
                    ),
                ));
            }
            let mut out = Vec::with_capacity(ids.len());
            for (i, id) in ids.into_iter().enumerate() {
                let Value::String(id) = id else {
                    return Err(invalid("ids", format!("ids[{i}] is not a string")));
                };
                if id.trim().is_empty() || id.chars().count() > people_core::domain::MAX_ID_CHARS {
                    return Err(invalid(
                        "ids",
                        format!(
                            "ids[{i}]: an id is 1 to {} characters, not blank",
                            people_core::domain::MAX_ID_CHARS
                        ),
                    ));
                }
                out.push(id);
            }
            Job::Delete { ids: out }
        }
        Some(other) => {
            return Err(invalid(
                "kind",
                format!(
                    "kind {:?} is not one of: report, import, delete",
                    people_core::text::clip_chars(other, 64)
                ),
            ));
        }
        None => {
            return Err(invalid(
                "kind",
                "kind is required: report, import or delete",
            ));
        }
    };
    if let Some(extra) = object.keys().next() {
        // Quoted briefly: a 100 KB field name must not make the reply
        // too large to send.
        let extra = people_core::text::clip_chars(extra, 64);
        return Err(invalid(&extra, format!("unknown field {extra:?}")));
    }
    Ok(job)
}

/// The same limits as the query parameters of `GET /people`.
pub(crate) fn check_filter(filter: &FilterSpec) -> Result<(), SubmitError> {
    use people_core::domain::{MAX_SEARCH_CHARS, MAX_SEARCH_WORDS, MAX_VALUE_CHARS, MAX_VALUES};
    if filter.search.chars().count() > MAX_SEARCH_CHARS {
        return Err(invalid(
            "filter.search",
            format!("search is longer than {MAX_SEARCH_CHARS} characters"),
        ));
    }
    if people_core::text::words(&filter.search).len() > MAX_SEARCH_WORDS {
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

/// Validates `body`, checks that `caller` may submit it, records the
/// request as `queued`, owned by the caller, and queues it.
///
/// An `idempotency_key` is the caller's own: used before by the same
/// caller with the same job, it returns that request and queues nothing;
/// with another job, [`SubmitError::KeyReused`]. Another caller's key of
/// the same text is another key.
pub async fn submit(
    deps: &Enqueuer,
    body: &[u8],
    caller: &Caller,
    idempotency_key: Option<&str>,
    correlation_id: &str,
) -> Result<RequestRecord, SubmitError> {
    submit_then(
        deps,
        body,
        caller,
        idempotency_key,
        correlation_id,
        |_| async { Ok(()) },
    )
    .await
}

/// As [`submit`], and `before_send` runs with the new record after it is
/// recorded and before its message is sent, so before any worker can start
/// it (the WebSocket `process` subscribes its connection there). When
/// `before_send` fails, nothing is sent and the record is marked failed.
#[tracing::instrument(skip(deps, body, caller, before_send), fields(request_id))]
pub async fn submit_then<F, Fut>(
    deps: &Enqueuer,
    body: &[u8],
    caller: &Caller,
    idempotency_key: Option<&str>,
    correlation_id: &str,
    before_send: F,
) -> Result<RequestRecord, SubmitError>
where
    F: FnOnce(RequestRecord) -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    let job = parse_job(body)?;
    caller.may_submit(job.kind(), deps.anonymous_writes)?;
    let id = uuid::Uuid::new_v4().to_string();
    let fingerprint = fingerprint(&job);
    let id_seed =
        idempotency_key.map(|key| format!("{}/{fingerprint}", scoped_key(caller.owner(), key)));
    let message = JobMessage {
        request_id: id.clone(),
        correlation_id: correlation_id.to_owned(),
        id_seed,
        job,
    };
    // Checked before anything is recorded: a message the queue would refuse
    // is the client's to make smaller, not a failed request.
    let size = crate::jobs::wire::queued_size(&message);
    if size > MAX_QUEUE_MESSAGE_BYTES {
        return Err(invalid(
            "body",
            format!(
                "queued, this request would be {size} bytes, over the queue's {MAX_QUEUE_MESSAGE_BYTES}; send fewer people or shorter values"
            ),
        ));
    }
    let record = RequestRecord::queued(id, message.job.kind(), Utc::now())
        .owned(caller.owner(), Some(fingerprint));
    let record = match deps.requests.create(&record, idempotency_key).await? {
        Created::New(record) => record,
        Created::Existing(earlier) if earlier.fingerprint == record.fingerprint => {
            return Ok(earlier);
        }
        Created::Existing(earlier) => {
            return Err(SubmitError::KeyReused {
                earlier: earlier.id,
            });
        }
    };
    tracing::Span::current().record("request_id", record.id.as_str());
    if let Err(e) = before_send(record.clone()).await {
        never_queued(deps, &record, idempotency_key).await;
        return Err(e.into());
    }
    if let Err(e) = deps.queue.send(&message).await {
        // The send may have failed after the message went out (its answer
        // lost): only a request no worker has started is marked failed,
        // and its key freed so that the same key can submit it again.
        let failed = JobError {
            code: "enqueue_failed".into(),
            message: "the request could not be queued; submit it again".into(),
        };
        match deps
            .requests
            .abandon(&record, idempotency_key, failed, Utc::now())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(request_id = %record.id, error = ?e, "the queue send reported a failure, but a worker already started the request: it was queued");
                return Ok(record);
            }
            Err(store) => {
                tracing::error!(request_id = %record.id, error = ?store, "queue send failed and the record could not be marked failed; it stays queued until its TTL");
            }
        }
        return Err(e.into());
    }
    tracing::info!(request_id = %record.id, kind = ?record.kind, "request queued");
    Ok(record)
}

/// Nothing will ever process `record`: say so in it rather than leave it
/// `queued` forever.
async fn never_queued(deps: &Enqueuer, record: &RequestRecord, idempotency_key: Option<&str>) {
    let failed = JobError {
        code: "enqueue_failed".into(),
        message: "the request could not be queued; submit it again".into(),
    };
    if let Err(store) = deps
        .requests
        .abandon(record, idempotency_key, failed, Utc::now())
        .await
    {
        tracing::error!(request_id = %record.id, error = ?store, "the request was not queued and its record could not be marked failed; it stays queued until its TTL");
    }
}

#[cfg(test)]
mod tests {
    /// Every 400 of a job body quotes at most 64 characters of the input,
    /// however long the value serde refuses.
    #[test]
    fn job_body_errors_quote_at_most_64_characters() {
        let long = "y".repeat(100_000);
        for body in [
            format!(r#"{{"kind":"report","filter":{{"hobbies_match":"{long}"}}}}"#),
            format!(r#"{{"kind":"delete","ids":"{long}"}}"#),
            format!(r#"{{"kind":"report","filter":{{"{long}":1}}}}"#),
        ] {
            let e = crate::jobs::parse_job(body.as_bytes()).expect_err("refused");
            let text = e.to_string();
            assert!(text.len() < 400, "{} bytes: {}", text.len(), &text[..200]);
        }
    }
}
