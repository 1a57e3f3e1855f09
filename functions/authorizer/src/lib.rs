//! Lambda REQUEST authorizer of the WebSocket API's `$connect` route.
//!
//! API Gateway's built-in JWT authorizer exists for HTTP APIs only, so the
//! WebSocket API checks the same tokens here: the token comes from the
//! `token` query-string parameter (a browser cannot set headers on a
//! WebSocket) or an `Authorization: Bearer` header, is verified against the
//! issuer's JWKS (`JWT_ISSUER`, `JWT_AUDIENCE`), and the answer is an IAM
//! policy: Allow on the route with the token's `sub` and its scopes
//! (`scope`, space separated, as `people_app::access::Caller::from_ws_authorizer`
//! reads them) in the context, or Deny. The handler never fails: whatever goes wrong is a Deny, and the
//! reason is only logged.

mod config;
mod jwks;
mod verify;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::{Value, json};
use tracing::{info, instrument, warn};

pub use config::{Config, ConfigError};
pub use verify::{Denied, Verified, Verifier};

pub type Request = ApiGatewayCustomAuthorizerRequestTypeRequest;
pub type Response = ApiGatewayCustomAuthorizerResponse<Value>;

/// The principal of a Deny (API Gateway wants one in every answer).
const ANONYMOUS: &str = "anonymous";

/// The Lambda handler: always an answer, never an error (an error would be
/// a 500 to the client, and its text could reach a log it should not).
#[instrument(skip_all, fields(request_id = %event.context.request_id))]
pub async fn handler(verifier: &Verifier, event: LambdaEvent<Request>) -> Result<Response, Error> {
    Ok(authorize(verifier, &event.payload).await)
}

/// The policy for one `$connect`.
pub async fn authorize(verifier: &Verifier, request: &Request) -> Response {
    let method_arn = request.method_arn.as_deref().filter(|arn| !arn.is_empty());
    // API Gateway's id of this $connect request, to find it in its logs.
    let api_request = request.request_context.request_id.as_deref().unwrap_or("");
    let outcome = match token(request) {
        Some(token) => verifier.verify(token).await,
        None => Err(Denied::NoToken),
    };
    match (outcome, method_arn) {
        (Ok(token), Some(arn)) => {
            info!(sub = %token.sub, scopes = ?token.scopes, api_request, "allowed");
            allow(arn, &token)
        }
        (Ok(_), None) => {
            // Nothing to scope an Allow to: never allow "*".
            warn!(api_request, "denied: the event has no methodArn");
            deny(None)
        }
        (Err(reason), arn) => {
            info!(reason = reason.code(), detail = %reason, api_request, "denied");
            deny(arn)
        }
    }
}

/// The `token` query-string parameter, else the `Authorization: Bearer`
/// header. An empty value counts as none.
fn token(request: &Request) -> Option<&str> {
    if let Some(token) = request
        .query_string_parameters
        .first("token")
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Some(token);
    }
    let header = request.headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// API Gateway passes this context with every event of the connection;
/// its values must be strings, numbers or booleans, hence the scopes as
/// one space separated string.
fn allow(method_arn: &str, token: &Verified) -> Response {
    response(
        &token.sub,
        IamPolicyEffect::Allow,
        method_arn,
        json!({ "sub": token.sub, "scope": token.scopes.join(" ") }),
    )
}

/// A Deny for the route, or for everything when the event names no route.
fn deny(method_arn: Option<&str>) -> Response {
    response(
        ANONYMOUS,
        IamPolicyEffect::Deny,
        method_arn.unwrap_or("*"),
        json!({}),
    )
}

fn response(principal: &str, effect: IamPolicyEffect, resource: &str, context: Value) -> Response {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".to_owned()];
    statement.effect = effect;
    statement.resource = vec![resource.to_owned()];
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".to_owned());
    policy.statement = vec![statement];
    let mut response = Response::default();
    response.principal_id = Some(principal.to_owned());
    response.policy_document = policy;
    response.context = context;
    response
}
