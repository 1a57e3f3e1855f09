//! What the tests of several crates share: a moto server on 127.0.0.1
//! (DynamoDB, SQS, S3 and the API Gateway Management API on one port),
//! started once per test process; and the checks of the fuzz targets,
//! which the targets and the corpus replay both call.

pub mod fuzz;
#[cfg(feature = "moto")]
pub mod moto;
