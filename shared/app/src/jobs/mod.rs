//! Process requests ("jobs"): submitted over HTTP or WebSocket, queued,
//! processed by workers, and kept in the request store.

mod enqueue;
mod model;
mod processor;
pub use people_core::report;
mod sweeper;
pub mod wire;

pub use enqueue::{Enqueuer, SubmitError, parse_job, submit, submit_then};
pub use model::{
    FilterSpec, Job, JobError, JobKind, JobMessage, KEY_RULE, MAX_BODY_BYTES, MAX_DELETE_IDS,
    MAX_IMPORT_PEOPLE, MAX_QUEUE_MESSAGE_BYTES, RequestRecord, RequestStatus, fingerprint,
    scoped_key, valid_key,
};
pub use processor::{MIN_TIME_LEFT, ProcessError, Processed, Worker, process};
pub use sweeper::{SWEEP_LIMIT, Sweeper, Swept, sweep};

/// Where requests are kept and queued.
#[derive(Clone)]
pub struct Jobs {
    pub requests: std::sync::Arc<dyn crate::ports::RequestStore>,
    pub queue: std::sync::Arc<dyn crate::ports::JobQueue>,
    /// The in-process queue, for the local worker pool to drain.
    pub memory_queue: Option<std::sync::Arc<crate::memory::MemoryQueue>>,
    pub max_receives: u32,
    /// Callers without a token may import (`JobsConfig::anonymous_writes`).
    pub anonymous_writes: bool,
}
