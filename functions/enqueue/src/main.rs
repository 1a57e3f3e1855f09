//! Enqueue Lambda: validates a process request, records it, queues it.

use lambda_http::{Error, run, service_fn};
use shared::config::JobsConfig;
use shared::jobs::Enqueuer;
use shared::wiring::open_jobs;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let jobs = open_jobs(&JobsConfig::from_env()?).await?;
    let deps = Enqueuer {
        requests: jobs.requests,
        queue: jobs.queue,
    };
    run(service_fn(|event| enqueue::handler(&deps, event))).await
}
