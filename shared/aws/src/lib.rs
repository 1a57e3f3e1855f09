//! People directory AWS adapters: DynamoDB (people, requests,
//! connections), SQS (the job queue), S3 (index images) and the API
//! Gateway Management API (pushes), and the start-up that picks memory or
//! AWS adapters from the environment (`wiring`).
//!
//! One feature per service (`dynamodb`, `sqs`, `s3`, `apigw`), so that a
//! binary links the SDKs of the adapters it opens and no other; `template`
//! reads template.yaml (the local server and admin).

#[cfg(feature = "apigw")]
pub mod apigw;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "dynamodb")]
mod dynamodb_common;
#[cfg(feature = "dynamodb")]
pub mod dynamodb_connections;
#[cfg(feature = "dynamodb")]
pub mod dynamodb_requests;
#[cfg(feature = "s3")]
pub mod image_writer;
#[cfg(feature = "dynamodb")]
mod retry;
#[cfg(feature = "s3")]
pub mod s3;
pub mod sdk;
#[cfg(any(
    feature = "dynamodb",
    feature = "sqs",
    feature = "s3",
    feature = "apigw"
))]
mod sdk_error;
#[cfg(feature = "sqs")]
pub mod sqs;
#[cfg(feature = "template")]
pub mod template;
pub mod wiring;
