//! The enqueue Lambda: `POST /requests` from the API Gateway HTTP API.

use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use shared::access::Caller;
use shared::api;
use shared::jobs::Enqueuer;

/// One API Gateway request.
pub async fn handler(deps: &Enqueuer, event: Request) -> Result<Response<Body>, Error> {
    let caller = caller(&event);
    let (mut parts, body) = event.into_parts();
    parts.extensions.insert(caller);
    let request = http::Request::from_parts(parts, Bytes::copy_from_slice(body.as_ref()));
    let (parts, body) = api::handle_submit(deps, request).await.into_parts();
    let body = match String::from_utf8(body.to_vec()) {
        Ok(text) => Body::Text(text),
        Err(e) => Body::Binary(e.into_bytes()),
    };
    Ok(Response::from_parts(parts, body))
}

/// The caller API Gateway's JWT authorizer let through (anonymous on a
/// stack without one).
pub fn caller(event: &Request) -> Caller {
    match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => {
            Caller::from_http_authorizer(context.authorizer.as_ref())
        }
        _ => Caller::Anonymous,
    }
}
