//! Enqueue Lambda: validates a process request, records it, queues it.

use lambda_http::Error;
use metrics_cloudwatch_embedded::lambda::handler::run_http;
use shared::config::JobsConfig;
use shared::jobs::Enqueuer;
use shared::wiring::open_jobs;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let metrics = shared::lambda::init_metrics("enqueue")?;
    let jobs = open_jobs(&JobsConfig::from_env()?).await?;
    let deps = Enqueuer {
        requests: jobs.requests,
        queue: jobs.queue,
        anonymous_writes: jobs.anonymous_writes,
    };
    run_http(metrics, |event| enqueue::handler(&deps, event)).await
}
