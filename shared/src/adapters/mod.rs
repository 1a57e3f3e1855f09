//! Implementations of the ports.

pub mod dynamodb;
pub mod dynamodb_requests;
pub mod memory;
pub mod sqs;
