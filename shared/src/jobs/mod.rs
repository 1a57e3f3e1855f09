//! Process requests ("jobs"): submitted over HTTP or WebSocket, queued,
//! processed by workers, and kept in the request store.

mod enqueue;
mod model;
mod processor;
pub mod report;
mod sweeper;

pub use enqueue::{Enqueuer, SubmitError, parse_job, submit, submit_then};
pub use model::{
    FilterSpec, Job, JobError, JobKind, JobMessage, KEY_RULE, MAX_BODY_BYTES, MAX_DELETE_IDS,
    MAX_IMPORT_PEOPLE, MAX_QUEUE_MESSAGE_BYTES, RequestRecord, RequestStatus, fingerprint,
    scoped_key, valid_key,
};
pub use processor::{MIN_TIME_LEFT, ProcessError, Processed, Worker, process};
pub use sweeper::{SWEEP_LIMIT, Sweeper, Swept, sweep};
