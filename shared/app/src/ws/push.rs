//! Pushing to connections: one message to one connection, or to every
//! subscriber of a request. A push never fails the work that made it: a
//! gone connection is forgotten, any other failure is logged, and the
//! request store keeps the result for `GET /requests/{id}`. A push that
//! failed for now is reported as such ([`PushReport::worth_retrying`]), so
//! the worker can have its message delivered again to push once more.

use std::sync::Arc;

use chrono::Utc;
use futures::StreamExt;

use super::{FANOUT_TIME_LIMIT, MAX_MESSAGE_BYTES, Progress, ServerMessage};
use crate::jobs::{RequestRecord, RequestStatus};
use crate::ports::{ConnectionStore, Notifier, NotifyError};
use crate::telemetry::{GONE_CONNECTIONS, PUSHES};

/// Pushes to the subscribers of one request that run at once.
const PUSH_CONCURRENCY: usize = 32;

#[derive(Clone)]
pub struct Pusher {
    pub connections: Arc<dyn ConnectionStore>,
    pub notifier: Arc<dyn Notifier>,
}

/// What became of one push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// The connection is gone and was removed from the store.
    Gone,
    /// Not delivered for now (throttled, timed out, the subscribers could
    /// not be read): worth trying again.
    Unavailable,
    /// Refused for good (logged): trying again would not help.
    Failed,
}

/// What a push to all subscribers of a request did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PushReport {
    pub delivered: usize,
    pub gone: usize,
    /// Pushes that may pass on another try (a subscriber read that failed
    /// counts as one): the caller should try again later.
    pub unavailable: usize,
    pub failed: usize,
}

impl PushReport {
    /// Some subscriber may not have the message yet, and another try may
    /// reach it.
    pub fn worth_retrying(&self) -> bool {
        self.unavailable > 0
    }
}

impl Pusher {
    /// Sends `message` to one connection.
    pub async fn send(&self, connection_id: &str, message: &ServerMessage<'_>) -> Delivery {
        self.deliver(connection_id, &message.to_bytes(), None).await
    }

    /// Sends the final message of a finished request to one connection,
    /// or, if it is too large for one message, a notice where to fetch it.
    pub async fn send_result(&self, connection_id: &str, record: &RequestRecord) -> Delivery {
        let (full, notice) = result_messages(record);
        self.deliver(connection_id, &full, Some(&notice)).await
    }

    /// Tells every subscriber of `request_id` that it is now `status`.
    pub async fn status_to_subscribers(
        &self,
        request_id: &str,
        status: RequestStatus,
    ) -> PushReport {
        let message = ServerMessage::ProcessStatus {
            id: request_id,
            status,
            progress: None,
        }
        .to_bytes();
        self.to_subscribers(request_id, &message, None).await
    }

    /// Tells every subscriber of a `processing` request how far it is.
    pub async fn progress_to_subscribers(
        &self,
        request_id: &str,
        progress: Progress,
    ) -> PushReport {
        let message = ServerMessage::ProcessStatus {
            id: request_id,
            status: RequestStatus::Processing,
            progress: Some(progress),
        }
        .to_bytes();
        self.to_subscribers(request_id, &message, None).await
    }

    /// Sends a finished request's result to every subscriber, and removes
    /// the subscriptions of the connections that got it.
    pub async fn result_to_subscribers(&self, record: &RequestRecord) -> PushReport {
        let (full, notice) = result_messages(record);
        self.to_subscribers(&record.id, &full, Some(&notice)).await
    }

    async fn to_subscribers(
        &self,
        request_id: &str,
        data: &[u8],
        if_too_large: Option<&[u8]>,
    ) -> PushReport {
        let subscribers = match self.connections.subscribers(request_id, Utc::now()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(request_id, error = ?e, "could not read the subscribers; nothing pushed");
                return PushReport {
                    unavailable: 1,
                    ..PushReport::default()
                };
            }
        };
        // Only a final result comes with a fallback notice.
        let last = if_too_large.is_some();
        let total = subscribers.len();
        let mut deliveries = futures::stream::iter(subscribers)
            .map(|connection_id| async move {
                let delivery = self.deliver(&connection_id, data, if_too_large).await;
                if last && delivery == Delivery::Delivered {
                    // Nothing more will come for this request: the
                    // subscription has served its purpose.
                    if let Err(e) = self.connections.unsubscribe(&connection_id, request_id).await {
                        // Harmless for the client (a later delivery may push
                        // the result again), but a denied delete is a
                        // misconfiguration someone must see.
                        tracing::warn!(connection_id, error = ?e, "could not remove a finished subscription; its TTL will");
                    }
                }
                delivery
            })
            .buffer_unordered(PUSH_CONCURRENCY);
        // Bounded in time: a slow connection must not hold the worker (and
        // the next messages of its batch) for long.
        let deadline = tokio::time::Instant::now() + FANOUT_TIME_LIMIT;
        let mut report = PushReport::default();
        loop {
            match tokio::time::timeout_at(deadline, deliveries.next()).await {
                Ok(Some(Delivery::Delivered)) => report.delivered += 1,
                Ok(Some(Delivery::Gone)) => report.gone += 1,
                Ok(Some(Delivery::Unavailable)) => report.unavailable += 1,
                Ok(Some(Delivery::Failed)) => report.failed += 1,
                Ok(None) => break,
                Err(_) => {
                    // Not delivered for now, as a push that failed for now:
                    // the caller's redelivery tries them again.
                    let left =
                        total - report.delivered - report.gone - report.unavailable - report.failed;
                    report.unavailable += left;
                    metrics::counter!(PUSHES, "outcome" => "timed_out").increment(left as u64);
                    tracing::warn!(
                        request_id,
                        left,
                        "pushes still running after {FANOUT_TIME_LIMIT:?}; left for a redelivery"
                    );
                    break;
                }
            }
        }
        tracing::info!(
            request_id,
            delivered = report.delivered,
            gone = report.gone,
            unavailable = report.unavailable,
            failed = report.failed,
            "pushed"
        );
        report
    }

    /// Posts `data`; if the connection refuses it as too large, posts
    /// `if_too_large` instead. A gone connection is removed from the store.
    async fn deliver(
        &self,
        connection_id: &str,
        data: &[u8],
        if_too_large: Option<&[u8]>,
    ) -> Delivery {
        let mut data = data;
        let mut if_too_large = if_too_large;
        loop {
            match self.notifier.post(connection_id, data).await {
                Ok(()) => {
                    metrics::counter!(PUSHES, "outcome" => "delivered").increment(1);
                    return Delivery::Delivered;
                }
                Err(NotifyError::TooLarge) if if_too_large.is_some() => {
                    data = if_too_large.take().expect("checked");
                }
                Err(NotifyError::Gone) => {
                    metrics::counter!(PUSHES, "outcome" => "gone").increment(1);
                    metrics::counter!(GONE_CONNECTIONS).increment(1);
                    tracing::info!(connection_id, "connection gone; removing it");
                    if let Err(e) = self.connections.disconnect(connection_id).await {
                        // Its records expire with their TTL all the same.
                        tracing::warn!(connection_id, error = ?e, "could not remove a gone connection");
                    }
                    return Delivery::Gone;
                }
                Err(e @ NotifyError::Unavailable(_)) => {
                    metrics::counter!(PUSHES, "outcome" => "unavailable").increment(1);
                    tracing::warn!(connection_id, error = ?e, "push failed for now");
                    return Delivery::Unavailable;
                }
                Err(e) => {
                    metrics::counter!(PUSHES, "outcome" => "failed").increment(1);
                    tracing::warn!(connection_id, error = ?e, "push refused");
                    return Delivery::Failed;
                }
            }
        }
    }
}

/// The result message, and the notice that replaces it when it is over
/// the size of one message.
fn result_messages(record: &RequestRecord) -> (Vec<u8>, Vec<u8>) {
    let notice = ServerMessage::result_elsewhere(record).to_bytes();
    let full = ServerMessage::result(record).to_bytes();
    if full.len() > MAX_MESSAGE_BYTES {
        (notice.clone(), notice)
    } else {
        (full, notice)
    }
}
