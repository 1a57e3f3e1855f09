//! A job message as a queue carries it: the body and attributes an SQS
//! message has, the limits SQS counts them against, and how often and for
//! how long a message is delivered. The enqueue service checks a message
//! against them before it is sent; the SQS adapter sends it so.

use std::time::Duration;

use super::JobMessage;
use crate::ports::QueueError;

/// Deliveries of a message before SQS moves it to the dead-letter queue.
/// The processor marks its request failed on the last one (`Worker::max_receives`
/// must be the same number).
pub const MAX_RECEIVE_COUNT: u32 = 3;
/// How long a received message stays hidden from other consumers: six times
/// the processor's 60 s timeout, as AWS advises for Lambda event sources, so
/// that a message is not redelivered while a batch is still being worked on
/// or retried by the poller.
pub const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(6 * 60);
/// How long the dead-letter queue keeps a message: the most SQS allows.
/// A message keeps its first enqueue time when it moves there, so this
/// must be longer than the main queue's retention (4 days, the default).
pub const DLQ_RETENTION: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// Message attributes set on every job message.
pub const CORRELATION_ID_ATTRIBUTE: &str = "correlation_id";
pub const REQUEST_ID_ATTRIBUTE: &str = "request_id";

/// The size SQS counts for `message` against its 256 KiB limit: the body as
/// sent (after the escapes of `message_body`), and each message attribute's
/// name, data type and value.
pub fn queued_size(message: &JobMessage) -> usize {
    let body = message_body(message).map_or(usize::MAX, |b| b.len());
    let attributes: usize = [
        (CORRELATION_ID_ATTRIBUTE, &message.correlation_id),
        (REQUEST_ID_ATTRIBUTE, &message.request_id),
    ]
    .iter()
    .filter(|(_, value)| !value.is_empty())
    .map(|(name, value)| name.len() + "String".len() + value.len())
    .sum();
    body.saturating_add(attributes)
}

/// The JSON of `message`, as SQS accepts it. SQS refuses a body with
/// characters outside XML's: serde_json already escapes the control
/// characters, but not U+FFFE and U+FFFF, which can only occur inside JSON
/// strings and so can be written as `\u` escapes there instead.
pub fn message_body(message: &JobMessage) -> Result<String, QueueError> {
    let body = serde_json::to_string(message).map_err(|e| QueueError::Permanent(Box::new(e)))?;
    if body.contains(['\u{FFFE}', '\u{FFFF}']) {
        return Ok(body
            .replace('\u{FFFE}', "\\ufffe")
            .replace('\u{FFFF}', "\\uffff"));
    }
    Ok(body)
}
