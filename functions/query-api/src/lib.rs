//! The query API Lambda: API Gateway HTTP API (payload v2) events in,
//! the shared router's GET routes, responses out.

use std::sync::Arc;

use lambda_http::Error;
use people_app::config::{JobsConfig, PeopleConfig};
use people_app::index::Refresh;
use people_aws::wiring::{Aws, open_people, open_requests};
use people_http::QueryApi;
use people_http::lambda::HttpService;

/// Builds the query API once per cold start: the people store chosen by
/// the environment, and the index built from it.
pub async fn init(aws: &Aws, config: &PeopleConfig, jobs: &JobsConfig) -> Result<QueryApi, Error> {
    // Inline: on Lambda, background work is frozen between invocations.
    let people = open_people(aws, config, None, Refresh::Inline).await?;
    Ok(QueryApi {
        index: people.index,
        requests: open_requests(aws, jobs).await?,
    })
}

/// The function's routes of the route table, as lambda_http serves them.
pub fn service(api: Arc<QueryApi>) -> HttpService {
    people_http::lambda::service(people_http::router::query_api(api))
}
