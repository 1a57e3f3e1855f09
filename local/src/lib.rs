//! The whole system in one process: the HTTP API and the WebSocket API on
//! axum, running the same handler code as the Lambda functions, with
//! in-memory backends.

pub mod event_source;
pub mod front;
pub mod invoke;
pub mod schedule;
pub mod snapshot;
pub mod websocket;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use people_app::jobs::{Enqueuer, ProcessError, Worker, process};
use people_app::memory::hub::ConnectionHub;
use people_app::ws::{Pusher, WsApi};
use people_aws::wiring::{Jobs, People};
use people_http::router::Gate;
use people_http::routes::Function;
use people_http::{ApiError, Handlers, PeopleWriter, QueryApi};
use tokio::net::TcpListener;

/// Largest request body the local server reads: the API's, as API
/// Gateway's payload limit would cut it off too.
pub const MAX_BODY_BYTES: usize = people_http::MAX_BODY_BYTES;

/// Everything the local server serves.
pub struct App {
    pub query: Arc<QueryApi>,
    pub enqueue: Arc<Enqueuer>,
    /// `PUT` / `DELETE /people/{id}`, refreshing the index after each.
    pub people: Arc<PeopleWriter>,
    pub ws: WsApi,
    /// The live WebSocket connections.
    pub hub: Arc<ConnectionHub>,
    /// The Prometheus recorder's view, served at `/metrics` (none: 404).
    pub metrics: Option<PrometheusHandle>,
    /// Front mode: the HTTP and WebSocket APIs go to the functions behind
    /// a Lambda invoke API instead of the handlers above.
    pub front: Option<front::Front>,
    /// Serve the Management API emulation (`/@connections/{id}`)?
    pub management_api: bool,
    /// `--jwt-issuer`: tokens are demanded as a stack with `JwtIssuer`
    /// demands them (see [`App::with_jwt`]); none, every caller is anonymous.
    pub jwt: Option<Arc<authorizer::Verifier>>,
}

impl App {
    /// The APIs over `people` and `jobs`; `pusher` reaches the sockets of
    /// `hub`, in process or through the Management API that this server
    /// serves (`people_aws::wiring::open_pusher`).
    pub fn new(people: &People, jobs: &Jobs, pusher: Pusher, hub: Arc<ConnectionHub>) -> Self {
        // The local server has no authorizer: every caller is anonymous,
        // and may write (turned off with `with_anonymous_writes(false)`).
        let enqueuer = || Enqueuer {
            requests: Arc::clone(&jobs.requests),
            queue: Arc::clone(&jobs.queue),
            anonymous_writes: true,
        };
        App {
            query: Arc::new(QueryApi {
                index: Arc::clone(&people.index),
                requests: Arc::clone(&jobs.requests),
            }),
            enqueue: Arc::new(enqueuer()),
            people: Arc::new(PeopleWriter {
                store: Arc::clone(&people.store),
                index: Some(Arc::clone(&people.index)),
                anonymous_writes: true,
            }),
            ws: WsApi {
                pusher,
                enqueuer: enqueuer(),
            },
            hub,
            metrics: None,
            management_api: true,
            front: None,
            jwt: None,
        }
    }

    /// Tokens demanded as by a stack deployed with `JwtIssuer`: every API
    /// route but the page, its files and `/openapi.json` needs
    /// `Authorization: Bearer <jwt>` (401 `{"message":"Unauthorized"}`
    /// without a valid one, as API Gateway's JWT authorizer answers), and
    /// `/ws` needs `?token=<jwt>` (401 without, 403 with a bad one, as the
    /// `$connect` authorizer makes API Gateway answer). `verifier` is the
    /// WebSocket authorizer's (`functions/authorizer`): the same checks of
    /// issuer, audience, signature and times. The caller is then the
    /// token's `sub` with its scopes, and the handlers check the scopes
    /// (403), where API Gateway would first refuse a token with none of
    /// the route's scopes with its own 403 `{"message":"Forbidden"}`.
    /// Anonymous writes are off: no caller is anonymous.
    pub fn with_jwt(mut self, verifier: authorizer::Verifier) -> Self {
        self.jwt = Some(Arc::new(verifier));
        self.with_anonymous_writes(false)
    }

    /// Front mode: the APIs go to the functions of `front`.
    pub fn with_front(mut self, front: front::Front) -> Self {
        self.front = Some(front);
        self
    }

    /// One WebSocket API event: to the function in front mode, else to the
    /// handler in process (through the same translation of API Gateway's
    /// events as the function's, `people_http::ws::handle`).
    pub async fn ws_event(
        &self,
        event: aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest,
    ) -> aws_lambda_events::apigw::ApiGatewayProxyResponse {
        match &self.front {
            Some(front) => front.websocket(event).await,
            None => people_http::ws::handle(&self.ws, event).await,
        }
    }

    /// Whether callers may import (all callers of the local server are
    /// anonymous: it has no authorizer). On unless turned off.
    pub fn with_anonymous_writes(mut self, allowed: bool) -> Self {
        self.enqueue = Arc::new(Enqueuer {
            requests: Arc::clone(&self.enqueue.requests),
            queue: Arc::clone(&self.enqueue.queue),
            anonymous_writes: allowed,
        });
        self.ws.enqueuer.anonymous_writes = allowed;
        self.people = Arc::new(PeopleWriter {
            store: Arc::clone(&self.people.store),
            index: self.people.index.clone(),
            anonymous_writes: allowed,
        });
        self
    }

    /// Without the Management API emulation: `/@connections/{id}` is 404.
    pub fn without_management_api(mut self) -> Self {
        self.management_api = false;
        self
    }

    /// Serves the metrics of `handle` at `/metrics`.
    pub fn with_metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }
}

/// Installs the process-wide Prometheus recorder (once per process).
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    people_app::telemetry::describe();
    // Histograms buffer every sample until upkeep drains them into their
    // summaries: without it, memory grows with every request.
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        })?;
    Ok(handle)
}

/// `GET /metrics`: every metric in Prometheus' text format.
async fn metrics(State(app): State<Arc<App>>) -> Response {
    match &app.metrics {
        Some(handle) => {
            handle.run_upkeep();
            Response::builder()
                .header("content-type", "text/plain; version=0.0.4")
                .body(Body::from(handle.render()))
                .expect("a valid response")
        }
        None => ApiError::NotFound("metrics are not enabled".into())
            .into_response()
            .map(Body::from),
    }
}

/// The local server: the HTTP API's router with every route of the table
/// (or, in front mode, API Gateway in front of the functions), and the
/// local-only routes: `/ws`, `/metrics`, `/@connections/{id}`.
pub fn router(app: Arc<App>) -> Router {
    let mut local = Router::new()
        .route("/ws", get(websocket::upgrade))
        .route("/metrics", get(metrics));
    if app.management_api {
        local = local.route(
            "/@connections/{id}",
            get(websocket::get)
                .post(websocket::post)
                .delete(websocket::delete),
        );
    }
    let local = local
        .with_state(Arc::clone(&app))
        .layer(from_fn(loopback_origins_only));
    let api = if app.front.is_some() {
        // The functions' own routers answer; API Gateway's body limit is
        // the API's here too.
        Router::new()
            .fallback(to_front)
            .layer(from_fn(people_http::router::body_limit))
            .layer(from_fn(loopback_origins_only))
            .with_state(Arc::clone(&app))
    } else {
        let handlers = Handlers {
            query: Some(Arc::clone(&app.query)),
            submit: Some(Arc::clone(&app.enqueue)),
            people: Some(Arc::clone(&app.people)),
        };
        let routes =
            people_http::router::routes(&[Function::QueryApi, Function::Enqueue], &handlers);
        // The origin check, then the token check, before the body is read
        // and the route runs, as API Gateway's authorizer runs before the
        // function: in the API's one layer, not two more of their own.
        let gate: Gate = Arc::new(move |req| {
            let app = Arc::clone(&app);
            Box::pin(async move {
                if let Some(refused) = origin_refused(&req) {
                    return Err(refused);
                }
                tokens(&app, req).await
            })
        });
        people_http::router::with_gate(routes, Some(gate))
    };
    local.merge(api)
}

/// Whether the local server on `bind` serves the Management API emulation:
/// on a loopback address, or when `asked` (anyone who reaches it can push
/// to and close every connection).
pub fn serves_management_api(bind: std::net::IpAddr, asked: bool) -> bool {
    bind.is_loopback() || asked
}

/// Whether `headers` carry no `Origin` (curl, the SDKs, servers) or a
/// loopback one (`http://localhost:3000`, `http://127.0.0.1:8080`,
/// `http://[::1]`). A page of any other site, which a browser lets post to
/// 127.0.0.1, is refused.
pub fn loopback_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(uri) = origin
        .to_str()
        .ok()
        .and_then(|o| o.parse::<axum::http::Uri>().ok())
    else {
        return false;
    };
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let host = uri.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    scheme_ok
        && (host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()))
}

/// WebSocket upgrades and every request that is not a read come only from
/// loopback Origins or none: 403 otherwise. The local server has no
/// authorizer, so this is what keeps a web page from writing through a
/// developer's browser.
async fn loopback_origins_only(req: Request, next: Next) -> Response {
    match origin_refused(&req) {
        Some(refused) => refused,
        None => next.run(req).await,
    }
}

/// The 403 of [`loopback_origins_only`], when `req` is refused.
fn origin_refused(req: &Request) -> Option<Response> {
    let reads = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if (reads && req.uri().path() != "/ws") || loopback_origin(req.headers()) {
        return None;
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .unwrap_or("?");
    let origin: String = origin.chars().take(64).collect();
    let refused = ApiError::Forbidden(format!(
        "origin {origin:?} is refused: the local server accepts writes and WebSocket connections only from loopback origins"
    ));
    Some(refused.into_response().map(Body::from))
}

/// Starts the worker pool on the in-process queue, running the same
/// processor code as the SQS Lambda. Failed deliveries come back after
/// `redeliver_after`, like an SQS visibility timeout.
pub fn start_workers(
    people: &People,
    jobs: &Jobs,
    pusher: &Pusher,
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
        pusher: pusher.clone(),
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

/// Runs the sweeper every `every`, as the scheduled sweeper Lambda runs on
/// AWS: a request whose last delivery died stays `processing` until it
/// ends it (`people_app::jobs::sweep`).
pub fn start_sweeper(
    jobs: &Jobs,
    pusher: &Pusher,
    every: std::time::Duration,
    stuck_after: std::time::Duration,
) {
    let sweeper = people_app::jobs::Sweeper {
        requests: Arc::clone(&jobs.requests),
        pusher: pusher.clone(),
        stuck_after,
    };
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = people_app::jobs::sweep(&sweeper, chrono::Utc::now()).await {
                tracing::warn!(error = ?e, "sweep failed; the next one will try again");
            }
        }
    });
}

/// What a graceful stop left undone.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Requests failed (`shutdown`) because they were never started.
    pub never_started: usize,
    /// Requests failed because they were still running after the grace.
    pub cut_off: usize,
    /// WebSocket connections closed (1001).
    pub closed: usize,
}

/// The end of a graceful stop, once the HTTP server took its last request:
/// the in-process queue takes no more messages; its workers go on for up
/// to `grace` while anything waits or runs; every request still waiting or
/// running then is marked failed (`shutdown`, with the reason) and that is
/// pushed to its subscribers; last, every WebSocket is closed with 1001
/// ("going away"). With an SQS queue there is nothing to drain here: the
/// messages stay in the queue.
pub async fn stop(
    jobs: &Jobs,
    pusher: &Pusher,
    hub: &ConnectionHub,
    grace: std::time::Duration,
) -> Stopped {
    let mut stopped = Stopped::default();
    if let Some(queue) = &jobs.memory_queue {
        let drained = queue.drain(grace).await;
        for (bodies, count, reason) in [
            (
                &drained.waiting,
                &mut stopped.never_started,
                "the server stopped before this request was started; submit it again",
            ),
            (
                &drained.running,
                &mut stopped.cut_off,
                "the server stopped while this request was running; submit it again",
            ),
        ] {
            for body in bodies {
                if fail_for_shutdown(jobs, pusher, body, reason).await {
                    *count += 1;
                }
            }
        }
    }
    stopped.closed = hub.close_all(1001, "the server is stopping");
    // Let the sockets write their close frames.
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    while !hub.is_empty() && tokio::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    stopped
}

/// Fails the request of a message body for the shutdown and pushes that;
/// whether this call finished it.
async fn fail_for_shutdown(jobs: &Jobs, pusher: &Pusher, body: &str, reason: &str) -> bool {
    let Ok(message) = serde_json::from_str::<people_app::jobs::JobMessage>(body) else {
        tracing::warn!("a message that is not ours was left in the queue at shutdown");
        return false;
    };
    let id = &message.request_id;
    let outcome = people_app::ports::Outcome::Failed(people_app::jobs::JobError {
        code: "shutdown".into(),
        message: reason.into(),
    });
    match jobs.requests.finish(id, outcome, chrono::Utc::now()).await {
        Ok(true) => {
            if let Ok(Some(record)) = jobs.requests.get(id).await {
                pusher.result_to_subscribers(&record).await;
            }
            true
        }
        Ok(false) => false,
        Err(e) => {
            tracing::warn!(request_id = %id, error = ?e, "could not fail a request at shutdown");
            false
        }
    }
}

/// With `QUEUE_TYPE=sqs`: Lambda's SQS event source mapping, emulated, on
/// the queue of `jobs_config`, with template.yaml's batch size and
/// batching window, delivering to the processor's handler in this process.
pub async fn start_event_source(
    people: &People,
    jobs: &Jobs,
    jobs_config: &people_app::config::JobsConfig,
    pusher: &Pusher,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let Some(queue_url) = &jobs_config.queue_url else {
        anyhow::bail!("QUEUE_URL is required for the SQS event source");
    };
    let target = Arc::new(event_source::InProcess {
        worker: Arc::new(Worker {
            people: people.clone(),
            requests: Arc::clone(&jobs.requests),
            max_receives: jobs.max_receives,
            pusher: pusher.clone(),
        }),
    });
    spawn_event_source(queue_url, jobs_config.workers, target).await
}

/// The SQS event source of template.yaml on `queue_url`, to `target`.
pub async fn spawn_event_source(
    queue_url: &str,
    concurrency: usize,
    target: Arc<dyn event_source::BatchTarget>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mapping = people_aws::template::Template::built_in().sqs_event_source()?;
    let sqs = event_source::client(&people_aws::sdk::aws_config().await);
    let source = event_source::EventSource {
        sqs,
        queue_url: queue_url.to_owned(),
        batch_size: mapping.batch_size,
        batching_window: mapping.batching_window,
        concurrency,
        target,
    };
    source.spawn().await.map_err(anyhow::Error::msg)
}

/// Front mode: one HTTP request, through the function its route goes to.
async fn to_front(State(app): State<Arc<App>>, req: Request) -> Response {
    let Some(front) = &app.front else {
        return ApiError::NotFound("no functions behind this server".into())
            .into_response()
            .map(Body::from);
    };
    let (parts, body) = req.into_parts();
    // Read whole by the body limit layer.
    let bytes = to_bytes(body, MAX_BODY_BYTES).await.unwrap_or_default();
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    front.http(parts, bytes, peer).await
}

/// `--jwt-issuer`: the caller of a request is its token's, checked as API
/// Gateway's JWT authorizer checks it (401 without a valid one); without
/// the flag, every caller is anonymous.
async fn tokens(app: &App, mut req: Request) -> Result<Request, Response> {
    let Some(verifier) = &app.jwt else {
        return Ok(req);
    };
    if !needs_token(req.uri().path()) {
        return Ok(req);
    }
    let Some(token) = bearer(req.headers()) else {
        return Err(unauthorized());
    };
    match verifier.verify(token).await {
        Ok(token) => {
            req.extensions_mut()
                .insert(people_app::access::Caller::User {
                    sub: token.sub,
                    scopes: token.scopes,
                });
            Ok(req)
        }
        Err(reason) => {
            tracing::info!(reason = reason.code(), "token refused");
            Err(unauthorized())
        }
    }
}

/// Whether a request for `path` needs a token under `--jwt-issuer`: all
/// but the public routes of template.yaml (the page, its files and the
/// OpenAPI document, `security: []` there).
pub fn needs_token(path: &str) -> bool {
    !(path == "/" || path == "/openapi.json" || path.starts_with("/web/"))
}

/// The token of an `Authorization: Bearer <jwt>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// API Gateway's answer to a request its JWT authorizer refuses.
fn unauthorized() -> Response {
    Response::builder()
        .status(axum::http::StatusCode::UNAUTHORIZED)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::WWW_AUTHENTICATE, "Bearer")
        .body(Body::from(r#"{"message":"Unauthorized"}"#))
        .expect("a valid response")
}

/// Serves `app` on `listener` until `shutdown` completes, then finishes the
/// requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Small messages go out at once: without TCP_NODELAY, a reply written
    // in two pieces waits for the peer's delayed ACK (40 ms on Linux).
    let listener = listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
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
