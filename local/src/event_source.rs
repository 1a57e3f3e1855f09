//! Lambda's SQS event source mapping, emulated: polls a queue (SQS, or an
//! emulator such as moto), hands each batch to a target as the `SqsEvent`
//! Lambda would send (up to the mapping's batch size, gathered for at most
//! its batching window), and deletes the messages the target did not name
//! in `batchItemFailures`. The others, and every message of a batch whose
//! invocation failed, are left alone: SQS shows them again after the
//! queue's visibility timeout and moves them to the dead-letter queue after
//! the redrive policy's `maxReceiveCount`, as it does for Lambda.
//!
//! The target is pluggable: the processor's handler in this process
//! ([`InProcess`], the local server with `QUEUE_TYPE=sqs`) or the
//! processor function behind a Lambda invoke API ([`ViaInvokeApi`],
//! `cargo lambda watch` or `sam local start-lambda`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use people_app::jobs::Worker;
use serde_json::{Map, Value, json};

use crate::invoke::Invoker;

/// SQS returns at most this many messages per ReceiveMessage.
const RECEIVE_MAX: usize = 10;
/// Long polling: the most SQS waits for a message.
pub const LONG_POLL: Duration = Duration::from_secs(20);

/// An SQS client for the event source: `sdk`'s, with timeouts that let a
/// long poll run its course. The SDK's usual attempt timeout (3 s,
/// `people_aws::sdk::sdk_timeouts`) would cut every idle poll short, and a
/// poll given up on by the client can still take a message at the server
/// and answer nobody: that message then stays invisible for the whole
/// visibility timeout (6 minutes for the jobs queue) before anyone sees it.
pub fn client(sdk: &aws_config::SdkConfig) -> Client {
    let timeouts = aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
        .connect_timeout(people_aws::sdk::SDK_CONNECT_TIMEOUT)
        .operation_attempt_timeout(LONG_POLL + Duration::from_secs(5))
        .operation_timeout(LONG_POLL + Duration::from_secs(10))
        .build();
    Client::from_conf(
        aws_sdk_sqs::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .build(),
    )
}
/// After a failed SQS call, the next one waits this long.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Where the batches go.
#[async_trait]
pub trait BatchTarget: Send + Sync {
    /// One invocation. `Err`: the invocation failed as a whole (no message
    /// is deleted).
    async fn invoke(&self, event: SqsEvent) -> Result<SqsBatchResponse, String>;
}

/// The processor's handler (`functions/processor`), in this process.
pub struct InProcess {
    pub worker: Arc<Worker>,
}

#[async_trait]
impl BatchTarget for InProcess {
    async fn invoke(&self, event: SqsEvent) -> Result<SqsBatchResponse, String> {
        let event = lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default());
        processor::handler(&self.worker, event)
            .await
            .map_err(|e| e.to_string())
    }
}

/// A function behind a Lambda invoke API.
pub struct ViaInvokeApi {
    pub invoker: Invoker,
    pub function: String,
}

#[async_trait]
impl BatchTarget for ViaInvokeApi {
    async fn invoke(&self, event: SqsEvent) -> Result<SqsBatchResponse, String> {
        let payload = serde_json::to_value(&event).map_err(|e| e.to_string())?;
        let answer = self
            .invoker
            .invoke(&self.function, &payload)
            .await
            .map_err(|e| e.to_string())?;
        // Lambda reads a null or empty answer as "no failures"; anything
        // else that is not a batch response fails the whole batch.
        if answer.is_null() {
            return Ok(SqsBatchResponse::default());
        }
        serde_json::from_value(answer.clone())
            .map_err(|e| format!("the answer {answer} is not a batch response: {e}"))
    }
}

/// The mapping: which queue, how batches are made, and where they go.
pub struct EventSource {
    pub sqs: Client,
    pub queue_url: String,
    /// The template's `BatchSize` (1 to 10,000).
    pub batch_size: usize,
    /// The template's `MaximumBatchingWindowInSeconds`.
    pub batching_window: Duration,
    /// Batches in flight at once (Lambda's concurrency for the mapping).
    pub concurrency: usize,
    pub target: Arc<dyn BatchTarget>,
}

/// What one batch came to, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub received: usize,
    pub deleted: usize,
    /// Left for SQS to show again (named in `batchItemFailures`, or the
    /// whole batch of a failed invocation).
    pub kept: usize,
}

impl EventSource {
    /// Starts `concurrency` pollers; they run until the handles are aborted
    /// (a batch cut off then is not deleted, so SQS delivers it again).
    pub async fn spawn(self) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
        let arn = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| format!("GetQueueAttributes on {}: {e:?}", self.queue_url))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| format!("queue {} has no QueueArn", self.queue_url))?;
        let region = arn.split(':').nth(3).unwrap_or("us-east-1").to_owned();
        let poller = Arc::new(Poller {
            source: self,
            arn,
            region,
        });
        let concurrency = poller.source.concurrency.max(1);
        tracing::info!(
            queue = %poller.source.queue_url,
            batch_size = poller.source.batch_size,
            window_ms = poller.source.batching_window.as_millis() as u64,
            concurrency,
            "SQS event source polling"
        );
        Ok((0..concurrency)
            .map(|_| {
                let poller = Arc::clone(&poller);
                tokio::spawn(async move {
                    loop {
                        match poller.one_batch(LONG_POLL).await {
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "SQS event source: polling failed");
                                tokio::time::sleep(RETRY_AFTER).await;
                            }
                        }
                    }
                })
            })
            .collect())
    }
}

struct Poller {
    source: EventSource,
    arn: String,
    region: String,
}

impl Poller {
    /// Waits up to `first_wait` for a message, gathers a batch, invokes
    /// the target, deletes what succeeded.
    async fn one_batch(&self, first_wait: Duration) -> Result<BatchOutcome, String> {
        let size = self.source.batch_size.max(1);
        let mut messages = self.receive(size.min(RECEIVE_MAX), first_wait).await?;
        if messages.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let window_ends = Instant::now() + self.source.batching_window;
        while messages.len() < size {
            let left = window_ends.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let more = self
                .receive((size - messages.len()).min(RECEIVE_MAX), left)
                .await?;
            messages.extend(more);
        }
        let received = messages.len();
        let event = self.event(&messages)?;
        let kept: HashSet<String> = match self.source.target.invoke(event).await {
            Ok(response) => response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, received, "SQS event source: the invocation failed; the batch stays on the queue");
                messages
                    .iter()
                    .filter_map(|m| m.message_id.clone())
                    .collect()
            }
        };
        let done: Vec<&Message> = messages
            .iter()
            .filter(|m| !m.message_id.as_ref().is_some_and(|id| kept.contains(id)))
            .collect();
        let deleted = self.delete(&done).await?;
        let outcome = BatchOutcome {
            received,
            deleted,
            kept: received - done.len(),
        };
        tracing::info!(?outcome, "SQS event source: batch done");
        Ok(outcome)
    }

    /// One ReceiveMessage; `wait` is rounded up to whole seconds (at most
    /// 20), as SQS takes it.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Message>, String> {
        let wait_secs = wait.as_secs_f64().ceil().min(LONG_POLL.as_secs_f64()) as i32;
        let out = self
            .source
            .sqs
            .receive_message()
            .queue_url(&self.source.queue_url)
            .max_number_of_messages(max as i32)
            .wait_time_seconds(wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| format!("ReceiveMessage on {}: {e:?}", self.source.queue_url))?;
        Ok(out.messages.unwrap_or_default())
    }

    async fn delete(&self, messages: &[&Message]) -> Result<usize, String> {
        let mut deleted = 0;
        for chunk in messages.chunks(RECEIVE_MAX) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                        .build()
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .source
                .sqs
                .delete_message_batch()
                .queue_url(&self.source.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| format!("DeleteMessageBatch on {}: {e:?}", self.source.queue_url))?;
            for failed in out.failed() {
                tracing::warn!(
                    id = failed.id(),
                    code = failed.code(),
                    "a message could not be deleted; SQS will deliver it again"
                );
            }
            deleted += out.successful().len();
        }
        Ok(deleted)
    }

    fn event(&self, messages: &[Message]) -> Result<SqsEvent, String> {
        sqs_event(messages, &self.arn, &self.region)
    }
}

/// The event Lambda sends for `messages` of the queue `queue_arn` (the
/// shape of events/sqs-*.json).
pub fn sqs_event(messages: &[Message], queue_arn: &str, region: &str) -> Result<SqsEvent, String> {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: Map<String, Value> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone())))
                        .collect()
                })
                .unwrap_or_default();
            let message_attributes: Map<String, Value> = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                json!({
                                    "stringValue": v.string_value(),
                                    "binaryValue": v.binary_value().map(|b| {
                                        use base64::Engine;
                                        base64::engine::general_purpose::STANDARD.encode(b.as_ref())
                                    }),
                                    "stringListValues": [],
                                    "binaryListValues": [],
                                    "dataType": v.data_type(),
                                }),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body(),
                "md5OfMessageAttributes": m.md5_of_message_attributes(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records }))
        .map_err(|e| format!("the SQS event does not have Lambda's shape: {e}"))
}
