//! The sweeper: ends the requests that no delivery will finish. A worker
//! that crashes or hits its hard timeout on the last delivery leaves its
//! request `processing`, and SQS then moves the message to the dead-letter
//! queue, where nothing processes it. The sweeper runs on a schedule,
//! finds `processing` requests that no delivery has started for longer
//! than every delivery could take, marks them `failed` (`timed_out`) and
//! pushes that to their subscribers.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::model::JobError;
use crate::ports::{Outcome, RequestStore, StoreError};
use crate::ws::Pusher;

/// Requests ended per run at most; the next run takes the rest.
pub const SWEEP_LIMIT: usize = 500;

pub struct Sweeper {
    pub requests: Arc<dyn RequestStore>,
    pub pusher: Pusher,
    /// A `processing` request last started longer ago than this has no
    /// delivery left: `max_receives` x the visibility timeout, since every
    /// delivery after the last start comes within one visibility timeout
    /// of the one before.
    pub stuck_after: Duration,
}

impl Sweeper {
    /// What `stuck_after` is for `max_receives` deliveries of at most
    /// `visibility` each.
    pub fn stuck_after(max_receives: u32, visibility: Duration) -> Duration {
        visibility * max_receives.max(1)
    }
}

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Requests this run marked failed.
    pub failed: usize,
    /// Requests found stuck that a late delivery finished meanwhile.
    pub finished_meanwhile: usize,
    /// Results whose push failed for now (the request is failed and kept;
    /// its subscribers can read it with `GET /requests/{id}`).
    pub undelivered: usize,
}

/// One run at `now`.
#[tracing::instrument(skip(sweeper))]
pub async fn sweep(sweeper: &Sweeper, now: DateTime<Utc>) -> Result<Swept, StoreError> {
    let stuck_after = chrono::Duration::from_std(sweeper.stuck_after)
        .map_err(|e| StoreError::Permanent(Box::new(e)))?;
    let stale = sweeper
        .requests
        .stale(now - stuck_after, SWEEP_LIMIT)
        .await?;
    let mut swept = Swept::default();
    for record in stale {
        let outcome = Outcome::Failed(JobError {
            code: "timed_out".into(),
            message: format!(
                "processing did not finish within {} s of its last start; submit the request again",
                sweeper.stuck_after.as_secs()
            ),
        });
        if !sweeper.requests.finish(&record.id, outcome, now).await? {
            swept.finished_meanwhile += 1;
            continue;
        }
        swept.failed += 1;
        tracing::warn!(request_id = %record.id, attempts = record.attempts, "stuck in processing; marked failed");
        let Some(failed) = sweeper.requests.get(&record.id).await? else {
            continue;
        };
        if sweeper
            .pusher
            .result_to_subscribers(&failed)
            .await
            .worth_retrying()
        {
            swept.undelivered += 1;
        }
    }
    crate::telemetry::swept(swept.failed);
    tracing::info!(
        failed = swept.failed,
        finished_meanwhile = swept.finished_meanwhile,
        undelivered = swept.undelivered,
        "sweep done"
    );
    Ok(swept)
}
