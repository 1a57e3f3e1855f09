//! Store scenarios: each a function of a port's trait object that asserts
//! what every adapter of the port must do. The AWS adapters' test binary
//! runs each on the memory double and on the DynamoDB adapter against moto.
//! Nothing here links an AWS SDK.

pub mod connections;
pub mod people;
pub mod requests;
