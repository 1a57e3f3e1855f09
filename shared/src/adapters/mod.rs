//! Implementations of the ports.

pub mod dynamodb;
pub mod memory;
