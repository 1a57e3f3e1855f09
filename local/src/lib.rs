//! The whole system in one process: the HTTP API on axum, running the same
//! handler code as the Lambda functions, with in-memory backends.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use shared::api::{self, ApiError, QueryApi};
use tokio::net::TcpListener;

/// Largest request body the local server reads, as API Gateway's payload
/// limit would cut it off too.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

pub fn router(api: Arc<QueryApi>) -> Router {
    Router::new().fallback(http_api).with_state(api)
}

async fn http_api(State(api): State<Arc<QueryApi>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::invalid("body", format!("request body over {MAX_BODY_BYTES} bytes"))
                .into_response()
                .map(Body::from);
        }
    };
    api::handle(&api, Request::from_parts(parts, bytes))
        .await
        .map(Body::from)
}

/// Serves `app` on `listener` until `shutdown` completes, then finishes the
/// requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resident memory of this process in bytes (Linux), for the start-up summary.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
