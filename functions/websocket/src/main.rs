//! WebSocket Lambda: connections, subscriptions, and `process` frames.

use lambda_runtime::Error;
use metrics_cloudwatch_embedded::lambda::handler::run;
use people_app::config::JobsConfig;
use people_app::jobs::Enqueuer;
use people_app::ws::WsApi;
use people_aws::sdk::Aws;
use people_aws::wiring::{open_jobs, open_pusher};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let metrics = people_http::lambda::init_metrics("websocket")?;
    let aws = Aws::from_env();
    let config = JobsConfig::from_env()?;
    let jobs = open_jobs(&aws, &config).await?;
    let api = WsApi {
        pusher: open_pusher(&aws, &config, None).await?,
        enqueuer: Enqueuer {
            requests: jobs.requests,
            queue: jobs.queue,
            anonymous_writes: jobs.anonymous_writes,
        },
    };
    run(metrics, |event| websocket::handler(&api, event)).await
}
