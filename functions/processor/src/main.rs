//! SQS processor Lambda: runs report and import jobs.

use lambda_runtime::Error;
use metrics_cloudwatch_embedded::lambda::handler::run;
use people_app::config::{JobsConfig, PeopleConfig};
use people_app::index::Refresh;
use people_app::jobs::Worker;
use people_aws::sdk::Aws;
use people_aws::wiring::{open_people, open_pusher, open_redelivery, open_requests};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let metrics = people_http::lambda::init_metrics("processor")?;
    // One SDK configuration and one DynamoDB client for the people,
    // request and connection stores.
    let aws = Aws::from_env();
    let people = open_people(&aws, &PeopleConfig::from_env()?, None, Refresh::Inline).await?;
    let jobs_config = JobsConfig::from_env()?;
    let worker = Worker {
        people,
        requests: open_requests(&aws, &jobs_config).await?,
        max_receives: jobs_config.max_receives,
        pusher: open_pusher(&aws, &jobs_config, None).await?,
    };
    // Unstarted messages of a batch go back to the queue at once.
    let redelivery = open_redelivery(&aws, &jobs_config).await;
    run(metrics, |event| {
        processor::handler_with(&worker, redelivery.as_deref(), event)
    })
    .await
}
