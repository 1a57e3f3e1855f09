//! The query API Lambda: API Gateway HTTP API (payload v2) events in, the
//! shared HTTP handler, responses out.

use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use people_app::access::Caller;
use people_app::config::{JobsConfig, PeopleConfig};
use people_app::index::Refresh;
use people_aws::wiring::{Aws, open_people, open_requests};
use people_http::{self as api, QueryApi};

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

/// One API Gateway request.
pub async fn handler(api: &QueryApi, event: Request) -> Result<Response<Body>, Error> {
    // Route on the path the client used: API Gateway's raw path, without the
    // stage prefix lambda_http adds for named stages.
    let raw_path = event.raw_http_path().to_owned();
    let caller = http_caller(&event);
    let (mut parts, body) = event.into_parts();
    parts.extensions.insert(caller);
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("{raw_path}?{q}"),
        None => raw_path,
    };
    if let Ok(uri) = path_and_query.parse() {
        parts.uri = uri;
    }
    let request = http::Request::from_parts(parts, Bytes::copy_from_slice(body.as_ref()));
    let (parts, body) = api::handle(api, request).await.into_parts();
    let body = match String::from_utf8(body.to_vec()) {
        Ok(text) => Body::Text(text),
        Err(e) => Body::Binary(e.into_bytes()),
    };
    Ok(Response::from_parts(parts, body))
}

/// The caller API Gateway's JWT authorizer let through (anonymous on a
/// stack without one).
fn http_caller(event: &Request) -> Caller {
    match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => {
            Caller::from_http_authorizer(context.authorizer.as_ref())
        }
        _ => Caller::Anonymous,
    }
}
