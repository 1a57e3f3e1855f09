//! The one place where an AWS SDK error is judged: [`classify`] tells what a
//! failed call means, the same way for DynamoDB, SQS, S3 and the Management
//! API; each adapter then has one small function turning that into its
//! port's error (`StoreError`, `QueueError`, `NotifyError`). The SDK error
//! always stays the source, wrapped in a [`CallError`] that names the
//! service, the operation and what it acted on.
//!
//! Only the SDK's own runtime types are named here, so this module needs
//! none of the service crates.

use std::error::Error as StdError;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use people_app::ports::StoreError;

/// What a failed SDK call means to its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Worth retrying: throttled, the service failed on its side (5xx), a
    /// timeout, a connection that failed, an answer that could not be read.
    Transient,
    /// A conditional write whose condition did not hold.
    ConditionFailed,
    /// What the call names does not exist (a table, a queue, a key).
    NotFound,
    /// The WebSocket connection is gone (410).
    Gone,
    /// The payload is over the service's limit (413).
    TooLarge,
    /// The request itself is wrong (a validation error).
    Invalid,
    /// Refused for another reason retrying will not change: no permission,
    /// a request that could not be built, a caller's misconfiguration.
    Refused,
}

impl Fault {
    pub(crate) fn is_transient(self) -> bool {
        self == Fault::Transient
    }
}

/// Error codes that mean "not now": throttling of each service, and their
/// internal failures. (DynamoDB's `LimitExceededException` is too many
/// table operations at once; the Management API's is its rate limit.)
const TRANSIENT_CODES: &[&str] = &[
    // DynamoDB
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "LimitExceededException",
    "TransactionInProgressException",
    // SQS
    "RequestThrottled",
    "KMS.ThrottlingException",
    "InternalError",
    "InternalFailure",
    // S3
    "SlowDown",
    "RequestTimeout",
];

const NOT_FOUND_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
    "NoSuchBucket",
    "NoSuchKey",
    "NotFound",
    "NotFoundException",
];

const INVALID_CODES: &[&str] = &[
    "ValidationException",
    "SerializationException",
    "InvalidParameterValue",
    "InvalidParameterValues",
    "InvalidAttributeValue",
    "InvalidMessageContents",
    "BadRequestException",
];

/// What `err` means. Error codes first (DynamoDB throttles with a 400),
/// then the HTTP status; a call that got no answer is transient unless the
/// caller's own configuration made it fail.
pub(crate) fn classify<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Fault {
    match err {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => Fault::Transient,
        SdkError::DispatchFailure(failure) if failure.is_user() => Fault::Refused,
        SdkError::DispatchFailure(_) => Fault::Transient,
        SdkError::ServiceError(service) => {
            of_answer(service.raw().status().as_u16(), service.err().code())
        }
        // Construction failures, and whatever a later SDK adds.
        _ => Fault::Refused,
    }
}

fn of_answer(status: u16, code: Option<&str>) -> Fault {
    match code {
        Some(code) if TRANSIENT_CODES.contains(&code) => return Fault::Transient,
        Some("ConditionalCheckFailedException") => return Fault::ConditionFailed,
        Some("GoneException") => return Fault::Gone,
        Some("PayloadTooLargeException") => return Fault::TooLarge,
        Some(code) if NOT_FOUND_CODES.contains(&code) => return Fault::NotFound,
        Some(code) if INVALID_CODES.contains(&code) => return Fault::Invalid,
        _ => {}
    }
    match status {
        410 => Fault::Gone,
        413 => Fault::TooLarge,
        404 => Fault::NotFound,
        429 | 500..=599 => Fault::Transient,
        _ => Fault::Refused,
    }
}

/// Which call failed, on what; the SDK error is the source.
#[derive(Debug, thiserror::Error)]
#[error("{service} {operation} on {kind} {resource:?} failed")]
pub(crate) struct CallError {
    service: &'static str,
    operation: &'static str,
    kind: &'static str,
    resource: String,
    #[source]
    source: Box<dyn StdError + Send + Sync>,
}

impl CallError {
    pub(crate) fn new(
        service: &'static str,
        operation: &'static str,
        kind: &'static str,
        resource: &str,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self {
            service,
            operation,
            kind,
            resource: resource.to_owned(),
            source: source.into(),
        }
    }
}

/// A `StoreError` of `fault`, for the storage adapters (DynamoDB, S3):
/// transient ones are worth retrying, all others are permanent.
pub(crate) fn store_error(fault: Fault, err: CallError) -> StoreError {
    if fault.is_transient() {
        StoreError::Unavailable(Box::new(err))
    } else {
        StoreError::Permanent(Box::new(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_decide_before_statuses() {
        // DynamoDB throttles with a 400.
        assert_eq!(
            of_answer(400, Some("ThrottlingException")),
            Fault::Transient
        );
        assert_eq!(
            of_answer(400, Some("ProvisionedThroughputExceededException")),
            Fault::Transient
        );
        assert_eq!(of_answer(400, Some("RequestThrottled")), Fault::Transient);
        assert_eq!(of_answer(503, Some("SlowDown")), Fault::Transient);
        assert_eq!(
            of_answer(400, Some("ConditionalCheckFailedException")),
            Fault::ConditionFailed
        );
        assert_eq!(
            of_answer(400, Some("ResourceNotFoundException")),
            Fault::NotFound
        );
        assert_eq!(of_answer(400, Some("ValidationException")), Fault::Invalid);
        assert_eq!(of_answer(410, Some("GoneException")), Fault::Gone);
        assert_eq!(
            of_answer(400, Some("AccessDeniedException")),
            Fault::Refused
        );
    }

    #[test]
    fn without_a_known_code_the_status_decides() {
        assert_eq!(of_answer(410, None), Fault::Gone);
        assert_eq!(of_answer(413, None), Fault::TooLarge);
        assert_eq!(of_answer(429, None), Fault::Transient);
        assert_eq!(of_answer(500, Some("Whatever")), Fault::Transient);
        assert_eq!(of_answer(503, None), Fault::Transient);
        assert_eq!(of_answer(403, None), Fault::Refused);
    }
}
