//! People directory core: domain types, the search engine, ports and adapters,
//! and the handlers that the Lambda functions and the local server share.

pub mod access;
pub mod adapters;
pub mod api;
pub mod config;
pub mod domain;
pub mod image_writer;
pub mod jobs;
pub mod jsonl;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod ports;
pub mod search;
pub mod telemetry;
#[cfg(feature = "template")]
pub mod template;
pub mod text;
pub mod wiring;
pub mod ws;
