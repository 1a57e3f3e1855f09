//! Query API Lambda: `GET /people`, `GET /people/{id}`, `GET /filters`.

use lambda_http::Error;
use metrics_cloudwatch_embedded::lambda::service::run_http;
use people_app::config::{JobsConfig, PeopleConfig};
use people_aws::sdk::Aws;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let metrics = people_http::lambda::init_metrics("query-api")?;
    let aws = Aws::from_env();
    let api = query_api::init(&aws, &PeopleConfig::from_env()?, &JobsConfig::from_env()?).await?;
    run_http(metrics, query_api::service(api.into())).await
}
