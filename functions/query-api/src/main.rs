//! Query API Lambda: `GET /people`, `GET /people/{id}`, `GET /filters`.

use lambda_http::{Error, run, service_fn};
use shared::config::{JobsConfig, PeopleConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let api = query_api::init(&PeopleConfig::from_env()?, &JobsConfig::from_env()?).await?;
    run(service_fn(|event| query_api::handler(&api, event))).await
}
