//! Enqueue Lambda: validates a process request, records it, queues it; and
//! writes or deletes one person (`PUT` / `DELETE /people/{id}`).

use lambda_http::Error;
use metrics_cloudwatch_embedded::lambda::service::run_http;
use people_app::config::{JobsConfig, PeopleConfig};
use people_app::jobs::Enqueuer;
use people_aws::sdk::Aws;
use people_aws::wiring::{open_jobs, open_people_store};
use people_http::PeopleWriter;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let metrics = people_http::lambda::init_metrics("enqueue")?;
    let aws = Aws::from_env();
    let jobs = open_jobs(&aws, &JobsConfig::from_env()?).await?;
    let anonymous_writes = jobs.anonymous_writes;
    let deps = enqueue::Writes {
        enqueue: Enqueuer {
            requests: jobs.requests,
            queue: jobs.queue,
            anonymous_writes,
        },
        // No index here: the query function's follows the change feed.
        people: PeopleWriter {
            store: open_people_store(&aws, &PeopleConfig::from_env()?).await,
            index: None,
            anonymous_writes,
        },
    };
    run_http(metrics, enqueue::service(deps)).await
}
