//! The SQS processor Lambda: each message of a batch is processed on its
//! own, and the ones that failed are reported back (`ReportBatchItemFailures`)
//! so SQS redelivers only those, and dead-letters them after
//! `maxReceiveCount` deliveries. No message is ever counted as done
//! without its request being finished.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent};
use people_app::jobs::{MIN_TIME_LEFT, Worker, process};
use people_app::ports::Redelivery;
use tracing::Instrument;

/// The handler without a way to hand messages back (tests, emulators):
/// unstarted messages come back after the visibility timeout.
pub async fn handler(
    worker: &Worker,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    handler_with(worker, None, event).await
}

/// Processes the batch. Once too little time is left to start another
/// message, the rest are not started: they are reported as failures and,
/// with `redelivery`, made visible again at once (rather than after the
/// visibility timeout, 6 minutes).
pub async fn handler_with(
    worker: &Worker,
    redelivery: Option<&dyn Redelivery>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let deadline = deadline(event.context.deadline);
    let mut response = SqsBatchResponse::default();
    let mut unstarted = Vec::new();
    for message in &event.payload.records {
        let message_id = message.message_id.clone().unwrap_or_default();
        let no_time =
            deadline.is_some_and(|d| d.saturating_duration_since(Instant::now()) < MIN_TIME_LEFT);
        // On its last delivery a message is processed all the same: the
        // processor then fails its request rather than leave it unfinished.
        let failed = if no_time && receives(message) < worker.max_receives {
            unstarted.extend(message.receipt_handle.clone());
            true
        } else {
            let span = tracing::info_span!("message", %message_id);
            match one(worker, message, deadline).instrument(span).await {
                Ok(()) => false,
                Err(reason) => {
                    tracing::error!(%message_id, %reason, "message failed; SQS will redeliver it");
                    true
                }
            }
        };
        if failed {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
    }
    if !unstarted.is_empty() {
        tracing::warn!(
            messages = unstarted.len(),
            "too little time left to start them; handed back to the queue"
        );
        if let Some(redelivery) = redelivery
            && let Err(e) = redelivery.release(&unstarted).await
        {
            tracing::warn!(error = ?e, "could not hand the unstarted messages back; they come back after the visibility timeout");
        }
    }
    Ok(response)
}

async fn one(
    worker: &Worker,
    message: &SqsMessage,
    deadline: Option<Instant>,
) -> Result<(), String> {
    let Some(body) = &message.body else {
        return Err("message has no body".into());
    };
    process(worker, body, receives(message), deadline)
        .await
        .map(|processed| tracing::info!(?processed, "message done"))
        .map_err(|e| e.to_string())
}

/// The delivery count SQS gives the message (1 for the first).
fn receives(message: &SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// The invocation deadline (milliseconds since the epoch) as an `Instant`;
/// `None` where the runtime gave none (0) or one already past on arrival
/// (an emulator's placeholder, such as `cargo lambda watch`'s: Lambda's own
/// deadline is always ahead), so the work is not refused for want of time.
fn deadline(deadline_ms: u64) -> Option<Instant> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    if deadline_ms <= now_ms {
        if deadline_ms != 0 {
            tracing::warn!(
                deadline_ms,
                now_ms,
                "invocation deadline already past; ignoring it"
            );
        }
        return None;
    }
    Some(Instant::now() + Duration::from_millis(deadline_ms - now_ms))
}
