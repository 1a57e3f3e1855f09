//! Sweeper Lambda: fails and pushes the requests stuck in `processing`.

use lambda_runtime::Error;
use metrics_cloudwatch_embedded::lambda::handler::run;
use people_app::config::JobsConfig;
use people_app::jobs::Sweeper;
use people_app::jobs::wire::VISIBILITY_TIMEOUT;
use people_aws::sdk::Aws;
use people_aws::wiring::{open_pusher, open_requests};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let metrics = people_http::lambda::init_metrics("sweeper")?;
    let aws = Aws::from_env();
    let config = JobsConfig::from_env()?;
    let sweeper = Sweeper {
        requests: open_requests(&aws, &config).await?,
        pusher: open_pusher(&aws, &config, None).await?,
        stuck_after: Sweeper::stuck_after(config.max_receives, VISIBILITY_TIMEOUT),
    };
    run(metrics, |event| sweeper::handler(&sweeper, event)).await
}
