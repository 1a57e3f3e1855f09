//! People directory core: the domain types, text folding and the search
//! engine. No I/O: no async runtime, no AWS; the application crate
//! (`people-app`) puts it behind ports.

// The built-in data set: only in the binaries that start memory storage
// with generated people (feature `generated`), and in the tests.
#[cfg(any(test, feature = "generated"))]
pub mod datagen;
pub mod domain;
pub mod jsonl;
pub mod report;
pub mod search;
pub mod telemetry;
pub mod text;
