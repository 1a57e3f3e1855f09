//! The whole system in one process: the HTTP API on axum, running the same
//! handler code as the Lambda functions, with in-memory backends.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use shared::api::{self, ApiError, QueryApi};
use shared::jobs::{Enqueuer, ProcessError, Worker, process};
use shared::wiring::{Jobs, People};
use tokio::net::TcpListener;

/// Largest request body the local server reads, as API Gateway's payload
/// limit would cut it off too.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// Everything the local server serves.
pub struct App {
    pub query: QueryApi,
    pub enqueue: Enqueuer,
}

impl App {
    /// The HTTP API over `people` and `jobs`.
    pub fn new(people: &People, jobs: &Jobs) -> Self {
        App {
            query: QueryApi {
                index: Arc::clone(&people.index),
                requests: Arc::clone(&jobs.requests),
            },
            enqueue: Enqueuer {
                requests: Arc::clone(&jobs.requests),
                queue: Arc::clone(&jobs.queue),
            },
        }
    }
}

pub fn router(app: Arc<App>) -> Router {
    Router::new().fallback(http_api).with_state(app)
}

/// Starts the worker pool on the in-process queue, running the same
/// processor code as the SQS Lambda. Failed deliveries come back after
/// `redeliver_after`, like an SQS visibility timeout.
pub fn start_workers(
    people: &People,
    jobs: &Jobs,
    workers: usize,
    redeliver_after: std::time::Duration,
) {
    let Some(queue) = &jobs.memory_queue else {
        return;
    };
    let worker = Arc::new(Worker {
        people: people.clone(),
        requests: Arc::clone(&jobs.requests),
        max_receives: jobs.max_receives,
    });
    queue.run_workers(
        workers,
        jobs.max_receives,
        redeliver_after,
        move |body, receives| {
            let worker = Arc::clone(&worker);
            async move {
                match process(&worker, &body, receives, None).await {
                    Ok(_) => Ok(()),
                    Err(e @ ProcessError::Malformed(_))
                    | Err(e @ ProcessError::UnknownRequest(_)) => {
                        tracing::error!(error = %e, "message cannot be processed");
                        Err(e.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
        },
    );
}

async fn http_api(State(app): State<Arc<App>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::invalid("body", format!("request body over {MAX_BODY_BYTES} bytes"))
                .into_response()
                .map(Body::from);
        }
    };
    let req = Request::from_parts(parts, bytes);
    let response = if req.uri().path() == "/requests" {
        api::handle_submit(&app.enqueue, req).await
    } else {
        api::handle(&app.query, req).await
    };
    response.map(Body::from)
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
