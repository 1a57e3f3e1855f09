//! The SQS processor Lambda: each message of a batch is processed on its
//! own, and the ones that failed are reported back (`ReportBatchItemFailures`)
//! so SQS redelivers only those, and dead-letters them after
//! `maxReceiveCount` deliveries. No message is ever counted as done
//! without its request being finished.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Error, LambdaEvent};
use shared::jobs::{Worker, process};
use tracing::Instrument;

pub async fn handler(
    worker: &Worker,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let deadline = deadline(event.context.deadline);
    let mut response = SqsBatchResponse::default();
    for message in &event.payload.records {
        let message_id = message.message_id.clone().unwrap_or_default();
        let span = tracing::info_span!("message", %message_id);
        if let Err(reason) = one(worker, message, deadline).instrument(span).await {
            tracing::error!(%message_id, %reason, "message failed; SQS will redeliver it");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
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
    let receives = message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    process(worker, body, receives, deadline)
        .await
        .map(|processed| tracing::info!(?processed, "message done"))
        .map_err(|e| e.to_string())
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
