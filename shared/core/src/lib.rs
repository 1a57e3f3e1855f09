//! People directory core: the domain types, text folding and the search
//! engine. No I/O: no async runtime, no AWS; the application crate
//! (`people-app`) puts it behind ports.

pub mod domain;
pub mod jsonl;
pub mod report;
pub mod search;
pub mod telemetry;
pub mod text;
