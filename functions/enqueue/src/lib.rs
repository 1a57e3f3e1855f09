//! The enqueue Lambda, the write path of the HTTP API: `POST /requests`,
//! and `PUT` / `DELETE /people/{id}` (the query function stays read-only).

use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use people_app::access::Caller;
use people_app::jobs::Enqueuer;
use people_http::{self as api, PeopleWriter};

/// What the function's routes need.
pub struct Writes {
    pub enqueue: Enqueuer,
    pub people: PeopleWriter,
}

/// One API Gateway request to `POST /requests`.
pub async fn handler(deps: &Enqueuer, event: Request) -> Result<Response<Body>, Error> {
    let caller = caller(&event);
    let (mut parts, body) = event.into_parts();
    parts.extensions.insert(caller);
    let request = http::Request::from_parts(parts, Bytes::copy_from_slice(body.as_ref()));
    Ok(to_lambda(api::handle_submit(deps, request).await))
}

/// One API Gateway request to any route of the function.
pub async fn write_handler(deps: &Writes, event: Request) -> Result<Response<Body>, Error> {
    let caller = caller(&event);
    let (mut parts, body) = event.into_parts();
    parts.extensions.insert(caller);
    let request = http::Request::from_parts(parts, Bytes::copy_from_slice(body.as_ref()));
    let response = if api::is_person_write(request.method(), request.uri().path()) {
        api::handle_write(&deps.people, request).await
    } else {
        api::handle_submit(&deps.enqueue, request).await
    };
    Ok(to_lambda(response))
}

fn to_lambda(response: http::Response<Bytes>) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let body = match String::from_utf8(body.to_vec()) {
        Ok(text) => Body::Text(text),
        Err(e) => Body::Binary(e.into_bytes()),
    };
    Response::from_parts(parts, body)
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
