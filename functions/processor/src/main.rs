//! SQS processor Lambda: runs report and import jobs.

use std::sync::Arc;

use lambda_runtime::Error;
use metrics_cloudwatch_embedded::lambda::handler::run;
use people_app::config::{JobsConfig, PeopleConfig};
use people_app::index::Refresh;
use people_app::jobs::Worker;
use people_aws::wiring::{open_jobs, open_people, open_pusher, open_redelivery};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let metrics = people_http::lambda::init_metrics("processor")?;
    let people = open_people(&PeopleConfig::from_env()?, None, Refresh::Inline).await?;
    let jobs_config = JobsConfig::from_env()?;
    let jobs = open_jobs(&jobs_config).await?;
    let worker = Worker {
        people,
        requests: Arc::clone(&jobs.requests),
        max_receives: jobs.max_receives,
        pusher: open_pusher(&jobs_config, None).await?,
    };
    // Unstarted messages of a batch go back to the queue at once.
    let redelivery = open_redelivery(&jobs_config).await;
    run(metrics, |event| {
        processor::handler_with(&worker, redelivery.as_deref(), event)
    })
    .await
}
