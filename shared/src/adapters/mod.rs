//! Implementations of the ports.

pub mod apigw;
pub mod dynamodb;
pub mod dynamodb_connections;
pub mod dynamodb_requests;
pub mod faults;
pub mod hub;
pub mod memory;
pub mod memory_connections;
pub mod s3;
pub mod sqs;
