//! People directory application: the ports (with their DTOs), the query
//! index that follows a people store, the submit / process / sweep
//! services of process requests, the WebSocket service, idempotency and
//! access rules, configuration, telemetry, and the in-memory adapters of
//! every port. No AWS SDK: the adapters of `people-aws` implement the
//! same ports.

pub mod access;
pub mod config;
pub mod index;
pub mod jobs;
pub mod memory;
pub mod people;
pub mod ports;
pub mod telemetry;
pub mod ws;
