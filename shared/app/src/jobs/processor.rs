//! The worker: one queued message in, one request finished. Written once
//! for the SQS Lambda and the local worker pool.
//!
//! At-least-once delivery is made safe here: a request is started with a
//! conditional write that refuses finished requests (so a duplicate does
//! nothing), imported people get ids derived from the request id and their
//! position (so a redelivered import writes the same people again, never
//! new ones), and a result is written only if the request is unfinished.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use serde_json::{Value, json};

use super::enqueue::check_filter;
use super::model::{Job, JobError, JobMessage, RequestStatus};
use super::report::report;
use crate::people::People;
use crate::ports::{Outcome, RequestStore, Started, StoreError};
use crate::telemetry;
use crate::ws::{Progress, Pusher};
use people_core::domain::Person;

/// Work is not started with less time than this left before the deadline;
/// the message goes back to the queue instead of being cut off mid-write.
pub const MIN_TIME_LEFT: Duration = Duration::from_secs(5);
/// People written per `put_batch` of an import (deadline checked between).
const IMPORT_CHUNK: usize = 100;

pub struct Worker {
    pub people: People,
    pub requests: Arc<dyn RequestStore>,
    /// Deliveries before the queue gives a message to the dead-letter queue
    /// (SQS `maxReceiveCount`): the last one marks its request failed
    /// rather than leave it `processing`.
    pub max_receives: u32,
    /// Tells the request's WebSocket subscribers what happens. Pushes are
    /// best effort: the request store keeps the outcome either way.
    pub pusher: Pusher,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    Completed,
    Failed,
    /// The request had already finished: a duplicate delivery.
    Duplicate,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Not a message of ours; goes to the dead-letter queue after its
    /// retries, where an operator can read it.
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("request {0} is not in the request store")]
    UnknownRequest(String),
    /// Worth another delivery: storage unavailable, too little time left.
    #[error("retry later: {reason}")]
    Retry {
        reason: String,
        #[source]
        source: Option<StoreError>,
    },
    /// The request is finished and kept, but its result could not be pushed
    /// to every subscriber for now: another delivery finds it finished and
    /// pushes again (so the message must not be deleted).
    #[error("request {0} is finished but its result is not yet pushed to every subscriber")]
    Undelivered(String),
}

impl From<StoreError> for ProcessError {
    fn from(e: StoreError) -> Self {
        ProcessError::Retry {
            reason: "storage failed".into(),
            source: Some(e),
        }
    }
}

#[derive(Serialize)]
struct Rejected {
    index: usize,
    reason: String,
}

/// Processes one message body, delivered for the `receive_count`-th time.
#[tracing::instrument(skip(worker, body, deadline), fields(request_id, correlation_id, kind))]
pub async fn process(
    worker: &Worker,
    body: &str,
    receive_count: u32,
    deadline: Option<Instant>,
) -> Result<Processed, ProcessError> {
    let start = Instant::now();
    let processed = deliver(worker, body, receive_count, deadline).await;
    let outcome = match &processed {
        Ok(Processed::Completed) => "completed",
        Ok(Processed::Failed) => "failed",
        Ok(Processed::Duplicate) => "duplicate",
        Err(ProcessError::Malformed(_)) => "malformed",
        Err(ProcessError::UnknownRequest(_)) => "unknown_request",
        Err(ProcessError::Retry { .. }) => "retry",
        Err(ProcessError::Undelivered(_)) => "undelivered",
    };
    telemetry::job(outcome);
    metrics::histogram!(telemetry::JOB_DURATION_MS, "outcome" => outcome)
        .record(telemetry::ms_since(start));
    processed
}

async fn deliver(
    worker: &Worker,
    body: &str,
    receive_count: u32,
    deadline: Option<Instant>,
) -> Result<Processed, ProcessError> {
    let message: JobMessage = match serde_json::from_str(body) {
        Ok(message) => message,
        Err(e) => return Err(unreadable(worker, body, receive_count, e).await),
    };
    let span = tracing::Span::current();
    span.record("request_id", message.request_id.as_str());
    span.record("correlation_id", message.correlation_id.as_str());
    span.record("kind", tracing::field::debug(message.job.kind()));
    let result = run(worker, &message, deadline).await;
    let permanent = matches!(
        &result,
        Err(ProcessError::Retry {
            source: Some(StoreError::Permanent(_)),
            ..
        })
    );
    match result {
        Err(ProcessError::Retry { reason, source })
            if permanent || receive_count >= worker.max_receives =>
        {
            // A permanent storage error (a missing table, a denied call)
            // will not pass on another delivery; after the last delivery
            // nothing will come. Either way, finish the request as failed,
            // so that no request stays `processing` and its client learns.
            let (code, text) = if permanent {
                tracing::error!(%reason, error = ?source, receive_count, "permanent storage error; failing the request");
                (
                    "storage_error",
                    format!(
                        "the request could not be processed (correlation id {})",
                        message.correlation_id
                    ),
                )
            } else {
                tracing::error!(%reason, error = ?source, receive_count, "giving up on the request");
                (
                    "gave_up",
                    format!("processing failed {receive_count} times; submit the request again"),
                )
            };
            let outcome = Outcome::Failed(JobError {
                code: code.into(),
                message: text,
            });
            let id = &message.request_id;
            let finished_here = worker.requests.finish(id, outcome, Utc::now()).await?;
            // No delivery follows this one: push whatever time is left,
            // and keep the message's outcome (the failure is stored).
            if let Err(e) = push_finished(worker, id, None).await {
                tracing::warn!(error = %e, "the failure could not be pushed to every subscriber");
            }
            Ok(if finished_here {
                Processed::Failed
            } else {
                Processed::Duplicate
            })
        }
        other => other,
    }
}

/// A message this processor cannot read. It stays a `Malformed` error, so
/// that SQS redelivers it and, after the last receive, moves it to the
/// dead-letter queue where an operator can read it. But a message that
/// still names a request (a job of a kind this processor does not know,
/// sent by a newer enqueue function during a deploy, say) would leave that
/// request `queued` for ever: on the last receive the request is failed
/// (`unreadable_job`) and that is pushed to its subscribers, so that its
/// client learns and can submit it again.
async fn unreadable(
    worker: &Worker,
    body: &str,
    receive_count: u32,
    error: serde_json::Error,
) -> ProcessError {
    let malformed = ProcessError::Malformed(error.to_string());
    if receive_count < worker.max_receives {
        return malformed;
    }
    let Some(id) = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("request_id")?.as_str().map(str::to_owned))
    else {
        return malformed;
    };
    tracing::Span::current().record("request_id", id.as_str());
    let outcome = Outcome::Failed(JobError {
        code: "unreadable_job".into(),
        message: format!("the job message could not be read ({error}); submit the request again"),
    });
    match worker.requests.finish(&id, outcome, Utc::now()).await {
        Ok(true) => {
            tracing::error!(request_id = %id, %error, receive_count, "unreadable job message on its last receive; request failed, message left for the dead-letter queue");
            if let Err(e) = push_finished(worker, &id, None).await {
                tracing::warn!(error = %e, "the failure could not be pushed to every subscriber");
            }
        }
        // Unknown, or finished already: nothing to end.
        Ok(false) => {}
        Err(e) => {
            tracing::error!(request_id = %id, error = %e, "could not fail the request of an unreadable job message");
        }
    }
    malformed
}

/// Reads the finished request `id` and pushes its result to its
/// subscribers; `Undelivered` if some of them could not be reached for now.
async fn push_finished(
    worker: &Worker,
    id: &str,
    deadline: Option<Instant>,
) -> Result<(), ProcessError> {
    match worker.requests.get(id).await? {
        Some(record) if record.status.is_final() => push_result(worker, &record, deadline).await,
        Some(_) | None => Err(ProcessError::Retry {
            reason: "the request is not finished after its finish".into(),
            source: None,
        }),
    }
}

/// Pushes a finished request's result; `Undelivered` when a subscriber
/// could not be reached for now, or when too little time is left to push
/// at all (a fan-out cut off by the timeout would look delivered to no one).
async fn push_result(
    worker: &Worker,
    record: &crate::jobs::RequestRecord,
    deadline: Option<Instant>,
) -> Result<(), ProcessError> {
    if time_left(deadline).is_err() {
        tracing::warn!("too little time left to push the result; the next delivery will");
        return Err(ProcessError::Undelivered(record.id.clone()));
    }
    if worker
        .pusher
        .result_to_subscribers(record)
        .await
        .worth_retrying()
    {
        return Err(ProcessError::Undelivered(record.id.clone()));
    }
    Ok(())
}

async fn run(
    worker: &Worker,
    message: &JobMessage,
    deadline: Option<Instant>,
) -> Result<Processed, ProcessError> {
    let id = &message.request_id;
    time_left(deadline)?;
    let started = match worker.requests.start(id, Utc::now()).await? {
        Started::Missing => return Err(ProcessError::UnknownRequest(id.clone())),
        Started::Finished(record) => {
            // Perhaps the delivery that finished it stopped before pushing:
            // push again (subscribers may get the result twice, never not).
            tracing::info!("already finished; duplicate delivery, result pushed again");
            push_result(worker, &record, deadline).await?;
            return Ok(Processed::Duplicate);
        }
        Started::Started(record) => {
            let waited = (Utc::now() - record.created_at).num_milliseconds().max(0);
            metrics::histogram!(telemetry::JOB_QUEUE_AGE_MS, "kind" => kind_label(record.kind))
                .record(waited as f64);
            tracing::info!(
                attempt = record.attempts,
                queue_age_ms = waited,
                "processing"
            );
            worker
                .pusher
                .status_to_subscribers(id, RequestStatus::Processing)
                .await;
            record
        }
    };
    let outcome = match &message.job {
        Job::Report { filter } => match check_filter(filter) {
            Err(e) => Outcome::Failed(JobError {
                code: "invalid_request".into(),
                message: e.to_string(),
            }),
            Ok(()) => {
                let filter = filter.to_filter();
                let snapshot = worker.people.index.current().await;
                let report = tokio::task::spawn_blocking(move || report(&snapshot, &filter))
                    .await
                    .map_err(|e| ProcessError::Retry {
                        reason: format!("report computation failed: {e}"),
                        source: None,
                    })?;
                Outcome::Completed(serde_json::to_value(report).expect("reports serialize"))
            }
        },
        Job::Import { people } => {
            let seed = message.id_seed.as_deref().unwrap_or(id);
            Outcome::Completed(import(worker, id, seed, people, deadline).await?)
        }
        Job::Delete { ids } => Outcome::Completed(delete(worker, ids, deadline).await?),
    };
    let processed = match &outcome {
        Outcome::Completed(_) => Processed::Completed,
        Outcome::Failed(_) => Processed::Failed,
    };
    let now = Utc::now();
    if !worker.requests.finish(id, outcome.clone(), now).await? {
        // Another delivery finished it meanwhile, or this one did and its
        // answer was lost (the retried write then finds it finished). Either
        // way, push what is stored: the finisher may have pushed nothing.
        tracing::info!("already finished (by another delivery, or by this one's lost answer)");
        push_finished(worker, id, deadline).await?;
        return Ok(Processed::Duplicate);
    }
    tracing::info!(?processed, "request finished");
    // The record as `finish` left it, pushed without reading it again.
    let mut finished = started;
    outcome.apply_to(&mut finished, now);
    push_result(worker, &finished, deadline).await?;
    Ok(processed)
}

/// Writes the valid people of an import. `id_seed` names the ids of the
/// people without one (see `JobMessage::id_seed`).
async fn import(
    worker: &Worker,
    request_id: &str,
    id_seed: &str,
    people: &[Value],
    deadline: Option<Instant>,
) -> Result<Value, ProcessError> {
    let mut accepted: Vec<Person> = Vec::new();
    let mut rejected: Vec<Rejected> = Vec::new();
    for (index, value) in people.iter().enumerate() {
        match person(id_seed, index, value) {
            Ok(p) if accepted.iter().any(|a| a.id == p.id) => rejected.push(Rejected {
                index,
                reason: format!("id {:?} appears earlier in this import", p.id),
            }),
            Ok(p) => accepted.push(p),
            Err(reason) => rejected.push(Rejected {
                index,
                reason: clip(reason),
            }),
        }
    }
    let mut done = 0;
    for chunk in accepted.chunks(IMPORT_CHUNK) {
        time_left(deadline)?;
        let report = worker.people.store.put_batch(chunk).await?;
        if !report.failed.is_empty() {
            return Err(ProcessError::Retry {
                reason: format!("{} people could not be written", report.failed.len()),
                source: None,
            });
        }
        done += chunk.len();
        if done < accepted.len() {
            let progress = Progress {
                done,
                total: accepted.len(),
            };
            worker
                .pusher
                .progress_to_subscribers(request_id, progress)
                .await;
        }
    }
    // Searchable right after: this instance's index catches up now; other
    // instances follow the change feed within their refresh interval. The
    // people are written: a refresh that fails now must not fail the
    // import (its client would submit it again), the feed brings them in.
    // A refresh cut off by the timeout would leave the request `processing`
    // until the next delivery, so it is not started without time for it.
    time_left(deadline)?;
    if let Err(e) = worker.people.index.refresh().await {
        tracing::warn!(error = ?e, "people written, but the index refresh failed; the next refresh brings them in");
    }
    Ok(json!({ "accepted": accepted.len(), "rejected": rejected }))
}

/// Deletes people by id, in chunks (deadline checked between); a
/// redelivery deletes the same ids again, which changes nothing. The
/// result counts the distinct ids deleted (an id nobody had included: the
/// DynamoDB store does not read before it writes a tombstone).
async fn delete(
    worker: &Worker,
    ids: &[String],
    deadline: Option<Instant>,
) -> Result<Value, ProcessError> {
    let mut distinct: Vec<String> = Vec::with_capacity(ids.len());
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if seen.insert(id.as_str()) {
            distinct.push(id.clone());
        }
    }
    for chunk in distinct.chunks(IMPORT_CHUNK) {
        time_left(deadline)?;
        let report = worker.people.store.delete_batch(chunk).await?;
        if !report.failed.is_empty() {
            return Err(ProcessError::Retry {
                reason: format!("{} ids could not be deleted", report.failed.len()),
                source: None,
            });
        }
    }
    // Gone from search right after, as with an import; a failed refresh
    // does not fail the delete (the feed brings it in).
    time_left(deadline)?;
    if let Err(e) = worker.people.index.refresh().await {
        tracing::warn!(error = ?e, "people deleted, but the index refresh failed; the next refresh brings it in");
    }
    Ok(json!({ "deleted": distinct.len() }))
}

/// A person of an import. Without an id, the id is derived from `id_seed`
/// and the position, so a redelivery (and a resubmission with the same
/// idempotency key) writes the same person again.
fn person(id_seed: &str, index: usize, value: &Value) -> Result<Person, String> {
    let mut value = value.clone();
    let Value::Object(object) = &mut value else {
        return Err("a person must be a JSON object".into());
    };
    // Refused like an unknown field of the request body, rather than
    // dropped without a word (a misspelt `hobies` would lose the hobbies).
    if let Some(extra) = object.keys().find(|k| !PERSON_FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "unknown field {:?}",
            people_core::text::clip_chars(extra, 64)
        ));
    }
    if !object.contains_key("id") {
        let name = format!("{id_seed}/{index}");
        let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes());
        object.insert("id".into(), Value::String(id.to_string()));
    }
    let person: Person = serde_json::from_value(value).map_err(|e| e.to_string())?;
    person.validate()?;
    Ok(person)
}

/// The fields of a person in an import.
const PERSON_FIELDS: [&str; 5] = ["id", "first_name", "last_name", "nationality", "hobbies"];

fn kind_label(kind: super::model::JobKind) -> &'static str {
    match kind {
        super::model::JobKind::Report => "report",
        super::model::JobKind::Import => "import",
        super::model::JobKind::Delete => "delete",
    }
}

/// Reasons can quote the bad input; a result must stay small (a DynamoDB
/// item holds 400 KB), so a reason keeps its first 200 characters.
fn clip(reason: String) -> String {
    const MAX: usize = 200;
    match reason.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &reason[..cut]),
        None => reason,
    }
}

fn time_left(deadline: Option<Instant>) -> Result<(), ProcessError> {
    match deadline {
        Some(d) if d.saturating_duration_since(Instant::now()) < MIN_TIME_LEFT => {
            Err(ProcessError::Retry {
                reason: "too little time left before the deadline".into(),
                source: None,
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;
    use serde_json::json;

    use super::{ProcessError, Worker, process};
    use crate::config::PeopleConfig;
    use crate::index::Refresh;
    use crate::jobs::{JobKind, RequestRecord, RequestStatus};
    use crate::memory::MemoryRequestStore;
    use crate::people::open_memory as open_people;
    use crate::ports::RequestStore;

    /// A message naming a request but of a job kind this processor does not
    /// know: malformed on every receive (so SQS moves it to the dead-letter
    /// queue), and on the last one its request is failed, not left queued.
    #[tokio::test]
    async fn an_unreadable_job_fails_its_request_on_the_last_receive_only() {
        let config = PeopleConfig {
            seed_people: 10,
            ..PeopleConfig::from_lookup(|_| None).unwrap()
        };
        let requests = Arc::new(MemoryRequestStore::new());
        let worker = Worker {
            people: open_people(&config, None, Refresh::Inline).await.unwrap(),
            requests: requests.clone(),
            max_receives: 3,
            pusher: crate::memory::pusher(None),
        };
        let record = RequestRecord::queued("r-1".into(), JobKind::Report, Utc::now());
        requests.create(&record, None).await.unwrap();
        let body =
            json!({"request_id": "r-1", "correlation_id": "c", "kind": "explode"}).to_string();
        for receive in 1..=2 {
            let result = process(&worker, &body, receive, None).await;
            assert!(
                matches!(result, Err(ProcessError::Malformed(_))),
                "{result:?}"
            );
            let now = requests.get("r-1").await.unwrap().unwrap();
            assert_eq!(now.status, RequestStatus::Queued, "receive {receive}");
        }
        let result = process(&worker, &body, 3, None).await;
        assert!(
            matches!(result, Err(ProcessError::Malformed(_))),
            "{result:?}"
        );
        let failed = requests.get("r-1").await.unwrap().unwrap();
        assert_eq!(failed.status, RequestStatus::Failed);
        assert_eq!(failed.error.unwrap().code, "unreadable_job");

        // Neither a message naming no request nor one naming an unknown
        // request fails anything, and both stay malformed.
        for body in ["not json", r#"{"request_id": "nobody", "kind": "explode"}"#] {
            let result = process(&worker, body, 3, None).await;
            assert!(
                matches!(result, Err(ProcessError::Malformed(_))),
                "{result:?}"
            );
        }
    }

    #[test]
    fn an_imported_person_with_an_unknown_field_is_rejected_with_its_name() {
        let ok = json!({"first_name": "A", "last_name": "B", "nationality": "C", "hobbies": []});
        assert!(super::person("r", 0, &ok).is_ok());
        let mut misspelt = ok.clone();
        misspelt["hobies"] = json!(["Chess"]);
        assert_eq!(
            super::person("r", 0, &misspelt).unwrap_err(),
            r#"unknown field "hobies""#
        );
        let mut long = ok;
        long["x".repeat(100_000)] = json!(1);
        assert!(super::person("r", 0, &long).unwrap_err().len() < 100);
    }
}
