//! SQS processor Lambda: runs report and import jobs.

use std::sync::Arc;

use lambda_runtime::{Error, run, service_fn};
use shared::config::{JobsConfig, PeopleConfig};
use shared::jobs::Worker;
use shared::search::Refresh;
use shared::wiring::{open_jobs, open_people, open_pusher};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let people = open_people(&PeopleConfig::from_env()?, None, Refresh::Inline).await?;
    let jobs_config = JobsConfig::from_env()?;
    let jobs = open_jobs(&jobs_config).await?;
    let worker = Worker {
        people,
        requests: Arc::clone(&jobs.requests),
        max_receives: jobs.max_receives,
        pusher: open_pusher(&jobs_config, None).await?,
    };
    run(service_fn(|event| processor::handler(&worker, event))).await
}
