//! The enqueue Lambda: `POST /requests` from the API Gateway HTTP API.

use bytes::Bytes;
use lambda_http::{Body, Error, Request, Response};
use shared::api;
use shared::jobs::Enqueuer;

/// One API Gateway request.
pub async fn handler(deps: &Enqueuer, event: Request) -> Result<Response<Body>, Error> {
    let (parts, body) = event.into_parts();
    let request = http::Request::from_parts(parts, Bytes::copy_from_slice(body.as_ref()));
    let (parts, body) = api::handle_submit(deps, request).await.into_parts();
    let body = match String::from_utf8(body.to_vec()) {
        Ok(text) => Body::Text(text),
        Err(e) => Body::Binary(e.into_bytes()),
    };
    Ok(Response::from_parts(parts, body))
}
