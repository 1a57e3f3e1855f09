//! The HTTP functions on Lambda (feature `lambda`): the one glue between
//! API Gateway's events, as `lambda_http` delivers them, and a function's
//! router; and the start-up of a function's telemetry.

use aws_lambda_events::apigw::ApiGatewayRequestAuthorizer;
use axum::Router;
use axum::body::Body;
use lambda_http::request::RequestContext;
use lambda_http::{IntoResponse, RequestExt};
use metrics_cloudwatch_embedded::Collector;
use people_app::access::{Caller, split_scopes};
use tower::ServiceExt;
use tower::util::MapRequest;

/// A function's router as `lambda_http` serves it: `lambda_http::run(service)`,
/// or `metrics_cloudwatch_embedded::lambda::service::run_http(metrics, service)`
/// to flush the metrics after each invocation.
pub type HttpService = MapRequest<Router, fn(lambda_http::Request) -> axum::extract::Request>;

/// `router` behind [`from_api_gateway`].
pub fn service(router: Router) -> HttpService {
    tower::ServiceBuilder::new()
        .map_request(from_api_gateway as fn(lambda_http::Request) -> axum::extract::Request)
        .service(router)
}

/// One event through `service`, answered as the runtime answers API
/// Gateway (the same conversion of the response): for tests.
pub async fn invoke(
    service: &HttpService,
    event: lambda_http::Request,
) -> lambda_http::Response<lambda_http::Body> {
    let Ok(response) = service.clone().oneshot(event).await;
    response.into_response().await
}

/// An API Gateway request as the router takes it: the path the route
/// matched, without the stage ([`route_path`]), the query string as sent,
/// and in the extensions the caller that API Gateway's JWT authorizer let
/// through (anonymous on a stack without one) and API Gateway's request id
/// (the correlation id of a request without its own).
fn from_api_gateway(event: lambda_http::Request) -> axum::extract::Request {
    let (caller, request_id) = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => (
            caller_from_authorizer(context.authorizer.as_ref()),
            context.request_id.clone(),
        ),
        _ => (Caller::Anonymous, None),
    };
    let path = route_path(&event);
    let (mut parts, body) = event.into_parts();
    parts.extensions.insert(caller);
    if let Some(id) = request_id {
        parts.extensions.insert(crate::GatewayRequestId(id));
    }
    let path_and_query = match parts.uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    match path_and_query.parse() {
        Ok(uri) => parts.uri = uri,
        Err(e) => {
            tracing::warn!(error = %e, "a request path that is not a URI; routing on lambda_http's")
        }
    }
    axum::extract::Request::from_parts(parts, Body::from(body.to_vec()))
}

/// The caller API Gateway's HTTP JWT authorizer let through (payload 2.0
/// `requestContext.authorizer.jwt`): its `sub` claim and its scopes. No
/// JWT authorizer: anonymous.
pub fn caller_from_authorizer(authorizer: Option<&ApiGatewayRequestAuthorizer>) -> Caller {
    let Some(jwt) = authorizer.and_then(|a| a.jwt.as_ref()) else {
        return Caller::Anonymous;
    };
    let scopes = match &jwt.scopes {
        Some(scopes) => scopes.clone(),
        None => split_scopes(jwt.claims.get("scope").map(String::as_str)),
    };
    Caller::user(jwt.claims.get("sub").map(String::as_str), scopes)
}

/// The path the client asked for, as the route table writes it. On a named
/// stage API Gateway's `rawPath` starts with `/{stage}` (and lambda_http
/// would add it where it does not); the routes have none. The `$default`
/// stage has no prefix.
fn route_path(event: &lambda_http::Request) -> String {
    let raw = event.raw_http_path();
    let raw = if raw.is_empty() {
        event.uri().path()
    } else {
        raw
    };
    let stage = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.as_deref(),
        Some(RequestContext::ApiGatewayV1(context)) => context.stage.as_deref(),
        _ => None,
    };
    without_stage(raw, stage).to_owned()
}

fn without_stage<'a>(path: &'a str, stage: Option<&str>) -> &'a str {
    let Some(stage) = stage.filter(|s| !s.is_empty() && *s != "$default") else {
        return path;
    };
    match path.strip_prefix('/').and_then(|p| p.strip_prefix(stage)) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// CloudWatch namespace of every metric of the service.
pub const NAMESPACE: &str = "PeopleDirectory";

/// Installs the Embedded Metric Format recorder: every metric of
/// [`people_app::telemetry`] is written as one JSON document per invocation to
/// the function's log, where CloudWatch turns it into metrics with the
/// dimension `function`; the first invocation also counts a cold start,
/// and each document carries the invocation's request id. Run the handler
/// with `metrics_cloudwatch_embedded::lambda::handler::run` (or `run_http`)
/// so that the document is flushed after each invocation.
pub fn init_metrics(function: &'static str) -> Result<&'static Collector, String> {
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(NAMESPACE)
        .with_dimension("function", function)
        .lambda_cold_start_metric(people_app::telemetry::COLD_START)
        .with_lambda_request_id("request_id")
        .init()
        .map_err(|e| format!("installing the metrics recorder failed: {e}"))?;
    people_app::telemetry::describe();
    Ok(collector)
}
#[cfg(test)]
mod tests {
    #[test]
    fn a_named_stage_is_not_part_of_the_route() {
        use super::without_stage;
        assert_eq!(without_stage("/people", Some("$default")), "/people");
        assert_eq!(without_stage("/people", None), "/people");
        assert_eq!(without_stage("/prod/people/p1", Some("prod")), "/people/p1");
        assert_eq!(without_stage("/prod", Some("prod")), "/");
        // Not the stage's prefix: as it is.
        assert_eq!(without_stage("/people", Some("prod")), "/people");
        assert_eq!(
            without_stage("/production/x", Some("prod")),
            "/production/x"
        );
    }

    #[test]
    fn the_http_authorizer_claims_give_sub_and_scopes() {
        use super::caller_from_authorizer;
        use people_app::access::{Caller, READ_SCOPE, WRITE_SCOPE};
        let event: aws_lambda_events::apigw::ApiGatewayV2httpRequest =
            serde_json::from_str(include_str!("../../../events/enqueue-import-jwt.json")).unwrap();
        let caller = caller_from_authorizer(event.request_context.authorizer.as_ref());
        assert_eq!(
            caller,
            Caller::User {
                sub: "7d1c2f5e-writer".into(),
                scopes: vec![READ_SCOPE.into(), WRITE_SCOPE.into()]
            }
        );
        assert_eq!(caller_from_authorizer(None), Caller::Anonymous);
    }

    /// template.yaml's PeopleTableSizeAlarm watches the metric this code
    /// emits, in the namespace the Lambdas write to.
    #[test]
    fn the_table_size_alarm_watches_the_index_size_metric() {
        let template = include_str!("../../../template.yaml");
        let alarm = template
            .split("  PeopleTableSizeAlarm:")
            .nth(1)
            .expect("template.yaml has PeopleTableSizeAlarm");
        let alarm = alarm.split("\n  # ").next().unwrap_or(alarm);
        assert!(
            alarm.contains(&format!(
                "MetricName: {}",
                people_app::telemetry::INDEX_PEOPLE
            )),
            "{alarm}"
        );
        assert!(alarm.contains("Value: query-api"), "{alarm}");
        assert!(
            alarm.contains(&format!("Namespace: {}", super::NAMESPACE)),
            "{alarm}"
        );
    }
}
