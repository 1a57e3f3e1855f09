//! The sweeper Lambda, run by an EventBridge schedule: ends the requests
//! stuck in `processing` that no delivery will finish (see
//! `people_app::jobs::sweep`). A storage error fails the invocation, and the
//! next scheduled run tries again.

use chrono::Utc;
use lambda_runtime::{Error, LambdaEvent};
use people_app::jobs::{Sweeper, sweep};
use serde_json::{Value, json};

/// Handles one scheduled event (its content is not needed: "now" is when
/// it runs); answers what the run did.
pub async fn handler(sweeper: &Sweeper, _event: LambdaEvent<Value>) -> Result<Value, Error> {
    let swept = sweep(sweeper, Utc::now()).await?;
    Ok(json!({
        "failed": swept.failed,
        "finished_meanwhile": swept.finished_meanwhile,
        "undelivered": swept.undelivered,
    }))
}
