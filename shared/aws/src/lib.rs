//! People directory AWS adapters: DynamoDB (people, requests,
//! connections), SQS (the job queue), S3 (index images) and the API
//! Gateway Management API (pushes), and the start-up that picks memory or
//! AWS adapters from the environment (`wiring`).

pub mod apigw;
pub mod dynamodb;
mod dynamodb_common;
pub mod dynamodb_connections;
pub mod dynamodb_requests;
pub mod image_writer;
mod retry;
pub mod s3;
pub mod sdk;
mod sdk_error;
pub mod sqs;
#[cfg(feature = "template")]
pub mod template;
pub mod wiring;
