//! The names of the search engine's own metrics, which the application's
//! telemetry describes along with the rest.

use std::time::Instant;

/// Time to build or refresh the search index; label `what` (`build`,
/// `refresh`, `merge`).
pub const INDEX_MS: &str = "index_update_ms";
/// People in the search index.
pub const INDEX_PEOPLE: &str = "index_people";

/// Milliseconds since `start`, as a metric value.
pub fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}
