//! What the tests of several crates share: a moto server on 127.0.0.1
//! (DynamoDB, SQS, S3 and the API Gateway Management API on one port),
//! started once per test process; the store scenarios, each written once
//! against a port (`&dyn RequestStore`, `&dyn PeopleStore`,
//! `&dyn ConnectionStore`) and run on the memory double and on the AWS
//! adapter, so the two cannot drift apart; and the checks of the fuzz
//! targets, which the targets and the corpus replay both call; and the
//! kit's query set as the benchmarks read it.

pub mod bench;
pub mod fuzz;
#[cfg(feature = "moto")]
pub mod moto;
pub mod scenarios;
