//! The service's metrics, named in one place. They go through the `metrics`
//! facade: the Lambdas install CloudWatch's Embedded Metric Format (one JSON
//! document per invocation in the log, `metrics_cloudwatch_embedded`), the
//! local server a Prometheus recorder served at `/metrics`. Without a
//! recorder (tests) they cost nothing.

use std::time::Instant;

pub use people_core::telemetry::{INDEX_MS, INDEX_PEOPLE, ms_since};

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, histogram};

/// Latency of an HTTP API request; labels `route`, `status` (`2xx`, ...).
pub const HTTP_REQUEST_MS: &str = "http_request_duration_ms";
/// WebSocket events handled; label `route` (`$connect`, `subscribe`, ...).
pub const WS_EVENTS: &str = "ws_events_total";
/// Bad WebSocket frames answered with an error; label `code`.
pub const WS_BAD_FRAMES: &str = "ws_bad_frames_total";
/// Time a request waited in the queue: from submission to a worker
/// starting it; label `kind`.
pub const JOB_QUEUE_AGE_MS: &str = "job_queue_age_ms";
/// Time a worker spent on a request; labels `kind`, `outcome`.
pub const JOB_DURATION_MS: &str = "job_duration_ms";
/// Deliveries handled by workers; label `outcome` (`completed`, `failed`,
/// `duplicate`, `retry`, `undelivered`, `malformed`, `unknown_request`).
pub const JOBS: &str = "jobs_total";
/// Pushes to WebSocket connections; label `outcome` (`delivered`, `gone`,
/// `unavailable`, `failed`).
pub const PUSHES: &str = "ws_pushes_total";
/// Connections removed because a push found them gone (410).
pub const GONE_CONNECTIONS: &str = "ws_gone_connections_total";
/// How a start-up found its index image; label `outcome` (`loaded`, `none`:
/// no image yet, `bad`: unreadable or corrupt, `stale`: older than a
/// tombstone lives, `unavailable`: the bucket could not be read). Every
/// outcome but `loaded` means the index was built from a Scan.
pub const INDEX_IMAGE_LOADS: &str = "index_image_loads_total";
/// Index images written; label `outcome` (`written`, `failed`).
pub const INDEX_IMAGE_WRITES: &str = "index_image_writes_total";
/// Live WebSocket connections of the local server.
pub const WS_CONNECTIONS: &str = "ws_connections";
/// Requests the sweeper found stuck in `processing` and marked failed.
pub const SWEPT: &str = "requests_swept_total";
/// Lambda cold starts (emitted by the EMF collector on the first invocation).
pub const COLD_START: &str = "cold_start";

/// Describes every metric to the installed recorder (units for EMF, help
/// text for Prometheus). Call once after installing a recorder.
pub fn describe() {
    describe_histogram!(
        HTTP_REQUEST_MS,
        Unit::Milliseconds,
        "HTTP API request latency"
    );
    describe_counter!(WS_EVENTS, Unit::Count, "WebSocket events handled");
    describe_counter!(WS_BAD_FRAMES, Unit::Count, "WebSocket frames refused");
    describe_histogram!(
        JOB_QUEUE_AGE_MS,
        Unit::Milliseconds,
        "time from submission to a worker starting the request"
    );
    describe_histogram!(
        JOB_DURATION_MS,
        Unit::Milliseconds,
        "time a worker spent on a request"
    );
    describe_counter!(
        JOBS,
        Unit::Count,
        "deliveries handled by workers, by outcome"
    );
    describe_counter!(
        PUSHES,
        Unit::Count,
        "pushes to WebSocket connections, by outcome"
    );
    describe_counter!(
        GONE_CONNECTIONS,
        Unit::Count,
        "connections removed because they were gone"
    );
    describe_histogram!(
        INDEX_MS,
        Unit::Milliseconds,
        "search index build or refresh time"
    );
    describe_gauge!(INDEX_PEOPLE, Unit::Count, "people in the search index");
    describe_counter!(
        INDEX_IMAGE_LOADS,
        Unit::Count,
        "index image loads at start-up, by outcome (all but loaded fell back to a Scan)"
    );
    describe_counter!(
        INDEX_IMAGE_WRITES,
        Unit::Count,
        "index images written, by outcome"
    );
    describe_counter!(
        SWEPT,
        Unit::Count,
        "requests stuck in processing that the sweeper marked failed"
    );
    describe_gauge!(
        WS_CONNECTIONS,
        Unit::Count,
        "live WebSocket connections (local server)"
    );
}

/// Records one HTTP request.
pub fn http_request(route: &'static str, status: u16, start: Instant) {
    let class = match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    histogram!(HTTP_REQUEST_MS, "route" => route, "status" => class).record(ms_since(start));
}

/// Counts one processed delivery.
pub fn job(outcome: &'static str) {
    counter!(JOBS, "outcome" => outcome).increment(1);
}

/// Counts the requests one sweep marked failed (0 included, so the metric
/// exists and an alarm on it sees data).
pub fn swept(failed: usize) {
    counter!(SWEPT).increment(failed as u64);
}
