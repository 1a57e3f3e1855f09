//! SQS adapter of the job queue port.
//!
//! The queue setup and the reasons for it are in `docs/jobs-storage.md`. In
//! short: a standard queue whose messages are the JSON of a `JobMessage`,
//! with the request and correlation ids also as message attributes (so
//! that they can be read without parsing the body), and a dead-letter
//! queue that takes a message after `MAX_RECEIVE_COUNT` deliveries.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, MessageAttributeValue, QueueAttributeName,
};

use crate::sdk_error::{CallError, classify};
use people_app::jobs::JobMessage;
use people_app::jobs::wire::{
    CORRELATION_ID_ATTRIBUTE, DLQ_RETENTION, MAX_RECEIVE_COUNT, REQUEST_ID_ATTRIBUTE,
    VISIBILITY_TIMEOUT, message_body,
};
use people_app::ports::{JobQueue, QueueError, Redelivery};

/// Sends job messages to one SQS queue.
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl JobQueue for SqsQueue {
    #[tracing::instrument(
        skip(self, message),
        fields(
            queue = %self.queue_url,
            request_id = %message.request_id,
            correlation_id = %message.correlation_id,
            message_id,
        )
    )]
    async fn send(&self, message: &JobMessage) -> Result<(), QueueError> {
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message_body(message)?);
        for (name, value) in [
            (CORRELATION_ID_ATTRIBUTE, &message.correlation_id),
            (REQUEST_ID_ATTRIBUTE, &message.request_id),
        ] {
            // SQS refuses an attribute with an empty value; the body has
            // every field anyway.
            if !value.is_empty() {
                send = send.message_attributes(name, string_attribute(value)?);
            }
        }
        let sent = send
            .send()
            .await
            .map_err(|e| queue_error("SendMessage", &self.queue_url, e))?;
        tracing::Span::current().record("message_id", sent.message_id().unwrap_or_default());
        Ok(())
    }
}

/// Entries of one `ChangeMessageVisibilityBatch` (SQS's limit).
const VISIBILITY_BATCH: usize = 10;

#[async_trait]
impl Redelivery for SqsQueue {
    #[tracing::instrument(skip(self, receipt_handles), fields(queue = %self.queue_url, messages = receipt_handles.len()))]
    async fn release(&self, receipt_handles: &[String]) -> Result<(), QueueError> {
        for chunk in receipt_handles.chunks(VISIBILITY_BATCH) {
            let mut batch = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.queue_url);
            for (i, handle) in chunk.iter().enumerate() {
                batch = batch.entries(
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .build()
                        .map_err(built_error)?,
                );
            }
            let out = batch
                .send()
                .await
                .map_err(|e| queue_error("ChangeMessageVisibilityBatch", &self.queue_url, e))?;
            for failed in out.failed() {
                // It comes back after the visibility timeout all the same.
                tracing::warn!(
                    entry = failed.id(),
                    code = failed.code(),
                    "a message could not be made visible again"
                );
            }
        }
        Ok(())
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(built_error)
}

fn built_error(e: BuildError) -> QueueError {
    QueueError::Permanent(Box::new(e))
}

/// How a job queue and its dead-letter queue are set up: template.yaml's
/// `JobsQueue` and `JobsDeadLetterQueue` (`admin create-queues` reads them
/// from there); [`QueueSettings::default`] is the same, as constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    pub visibility_timeout: Duration,
    pub max_receive_count: u32,
    pub dlq_retention: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            visibility_timeout: VISIBILITY_TIMEOUT,
            max_receive_count: MAX_RECEIVE_COUNT,
            dlq_retention: DLQ_RETENTION,
        }
    }
}

/// Creates the dead-letter queue `<name>-dlq` and the queue `name` that
/// gives it messages after `MAX_RECEIVE_COUNT` deliveries, with a
/// `VISIBILITY_TIMEOUT`; returns their URLs (queue, dead-letter queue).
/// For emulators and fresh accounts (deployments get them from the
/// template). Queues that exist already are fine: their attributes are set
/// to these.
pub async fn create_queues(client: &Client, name: &str) -> Result<(String, String), QueueError> {
    create_queues_with(client, name, &QueueSettings::default()).await
}

/// [`create_queues`] with `settings`.
#[tracing::instrument(skip(client))]
pub async fn create_queues_with(
    client: &Client,
    name: &str,
    settings: &QueueSettings,
) -> Result<(String, String), QueueError> {
    let dlq_url = ensure_queue(
        client,
        &format!("{name}-dlq"),
        HashMap::from([(
            QueueAttributeName::MessageRetentionPeriod,
            settings.dlq_retention.as_secs().to_string(),
        )]),
    )
    .await?;
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| queue_error("GetQueueAttributes", &dlq_url, e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| {
            QueueError::Permanent(format!("queue {dlq_url} has no QueueArn attribute").into())
        })?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": settings.max_receive_count,
    });
    let url = ensure_queue(
        client,
        name,
        HashMap::from([
            (
                QueueAttributeName::VisibilityTimeout,
                settings.visibility_timeout.as_secs().to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
        ]),
    )
    .await?;
    tracing::info!(%url, %dlq_url, "queues ready");
    Ok((url, dlq_url))
}

/// The URL of queue `name`, created with `attributes`, or given them if it
/// exists with others (CreateQueue is idempotent only for equal attributes).
async fn ensure_queue(
    client: &Client,
    name: &str,
    attributes: HashMap<QueueAttributeName, String>,
) -> Result<String, QueueError> {
    let created = client
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes.clone()))
        .send()
        .await;
    let url = match created {
        Ok(out) => return queue_url(name, out.queue_url),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_queue_name_exists()) =>
        {
            let out = client
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(|e| queue_error("GetQueueUrl", name, e))?;
            queue_url(name, out.queue_url)?
        }
        Err(e) => return Err(queue_error("CreateQueue", name, e)),
    };
    tracing::info!(%url, "queue exists with other attributes; setting them");
    client
        .set_queue_attributes()
        .queue_url(&url)
        .set_attributes(Some(attributes))
        .send()
        .await
        .map_err(|e| queue_error("SetQueueAttributes", &url, e))?;
    Ok(url)
}

fn queue_url(name: &str, url: Option<String>) -> Result<String, QueueError> {
    url.ok_or_else(|| QueueError::Permanent(format!("SQS gave no URL for queue {name}").into()))
}

/// An SQS call on `queue` that failed, as a `QueueError`: unavailable when
/// [`classify`] finds it transient (throttled, failed on SQS's side, no
/// answer); permanent otherwise (no such queue, a message SQS refuses, no
/// permission). The SDK error stays the source.
pub(crate) fn queue_error<E>(
    operation: &'static str,
    queue: &str,
    err: SdkError<E, HttpResponse>,
) -> QueueError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let transient = classify(&err).is_transient();
    let err = Box::new(CallError::new("SQS", operation, "queue", queue, err));
    if transient {
        QueueError::Unavailable(err)
    } else {
        QueueError::Permanent(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use people_app::jobs::{FilterSpec, Job};

    #[test]
    fn bodies_escape_what_sqs_refuses_and_still_decode_to_the_message() {
        let message = JobMessage {
            request_id: "r1".into(),
            correlation_id: "c1".into(),
            id_seed: None,
            job: Job::Report {
                filter: FilterSpec {
                    search: "a\u{FFFF}b\u{FFFE}\u{7}é😀".into(),
                    ..FilterSpec::default()
                },
            },
        };
        let body = message_body(&message).unwrap();
        assert!(!body.contains(['\u{FFFE}', '\u{FFFF}', '\u{7}']), "{body}");
        assert_eq!(serde_json::from_str::<JobMessage>(&body).unwrap(), message);
    }
}
