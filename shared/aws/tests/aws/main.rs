//! The AWS adapters on AWS's wire protocols, against one moto server on
//! 127.0.0.1 (started on first use, shared by every module): the stores'
//! scenarios on the memory doubles and on DynamoDB, then each adapter's own
//! tests, module by module.

mod connections;
mod flow;
mod images;
mod index;
mod notifier;
mod people;
mod queue;
mod requests;
mod support;
