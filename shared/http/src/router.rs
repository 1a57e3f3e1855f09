//! The HTTP API as one axum [`Router`], built from [`routes::ROUTES`]:
//! `lambda_http` serves a function's router on Lambda ([`crate::lambda`]),
//! `axum::serve` the local server's, which has every route.
//!
//! Around every route, one layer ([`with_layers`]), in this order: the
//! correlation id and the request's span, the request metric (labelled
//! from the route table by axum's `MatchedPath`), a caller's [`Gate`] if
//! it has one (the local server's origin and token checks), the body
//! limit (413). Then the route's handler refuses a body that is not JSON
//! (415); a path of no route is 404 and a method its path does not serve
//! 405 with `Allow`, all with the API's JSON error body.
//!
//! One layer, not one per concern: axum's `from_fn` clones the service it
//! wraps and boxes a future on every request, and under load six of them
//! cost the local server a quarter of its throughput (BENCHMARKS.md,
//! "Before and after the crate split").

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::State;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{MatchedPath, RawPathParams, Request};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter};
use bytes::Bytes;
use http::{Method, header};
use people_app::jobs::Enqueuer;
use tracing::Instrument;

use crate::routes::{self, Function, Op, ROUTES};
use crate::{ApiError, PeopleWriter, QueryApi};

/// Largest request body the API reads, as API Gateway's payload limit
/// would cut it off too; each route has its own smaller limit
/// (`POST /requests` 256 KiB, `PUT /people/{id}` 64 KiB).
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// What the handlers of the routes need: [`routes`] takes the parts of
/// the functions it serves, and no more.
#[derive(Default)]
pub struct Handlers {
    pub query: Option<Arc<QueryApi>>,
    pub submit: Option<Arc<Enqueuer>>,
    pub people: Option<Arc<PeopleWriter>>,
}

/// The query-api function's router: its routes of the table, layered.
pub fn query_api(api: Arc<QueryApi>) -> Router {
    with_layers(routes(
        &[Function::QueryApi],
        &Handlers {
            query: Some(api),
            ..Handlers::default()
        },
    ))
}

/// The enqueue function's router: its routes of the table, layered.
pub fn enqueue(submit: Arc<Enqueuer>, people: Arc<PeopleWriter>) -> Router {
    with_layers(routes(
        &[Function::Enqueue],
        &Handlers {
            submit: Some(submit),
            people: Some(people),
            ..Handlers::default()
        },
    ))
}

/// The routes of `functions` in the table, each bound to its handler,
/// with the 404 and 405 answers and the JSON body check; without the
/// outer layers, so that a caller can put its own between them and the
/// routes (the local server's token check), then call [`with_layers`].
///
/// Panics when `handlers` lacks what a route of `functions` needs: a
/// wiring mistake, found by the first request of any test.
pub fn routes(functions: &[Function], handlers: &Handlers) -> Router {
    let mut router = Router::new();
    let mut paths: Vec<&'static str> = Vec::new();
    for route in ROUTES.iter().filter(|r| functions.contains(&r.function)) {
        if !paths.contains(&route.path) {
            paths.push(route.path);
        }
    }
    for path in paths {
        let on_path: Vec<&routes::Route> = ROUTES
            .iter()
            .filter(|r| r.path == path && functions.contains(&r.function))
            .collect();
        let allow = on_path
            .iter()
            .map(|r| r.method.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut methods = MethodRouter::new();
        for route in &on_path {
            let call = endpoint(route.op, handlers).unwrap_or_else(|| {
                panic!(
                    "{} ({}) has no handler here",
                    route.route_key(),
                    route.function.binary()
                )
            });
            let filter = MethodFilter::try_from(route.method.clone())
                .expect("the table's methods are axum's");
            methods = methods.on(filter, bind(call, parameter(path)));
        }
        // axum answers HEAD with a GET route; the API never has.
        if !on_path.iter().any(|r| r.method == Method::HEAD) {
            let allow = allow.clone();
            methods = methods.on(MethodFilter::HEAD, move |req: Request| {
                method_not_allowed(req, allow.clone())
            });
        }
        let fallback = move |req: Request| method_not_allowed(req, allow.clone());
        router = router.route(path, methods.fallback(fallback));
    }
    router.fallback(no_route)
}

/// A check of the request before its body is read and its route runs, as
/// API Gateway's authorizer runs before the function: the request goes
/// on (with what the check put in its extensions, a caller), or the
/// check's answer is the response.
pub type Gate = Arc<
    dyn Fn(Request) -> Pin<Box<dyn Future<Output = Result<Request, Response>> + Send>>
        + Send
        + Sync,
>;

/// The layer every router of the API has, around `routes`.
pub fn with_layers(routes: Router) -> Router {
    with_gate(routes, None)
}

/// [`with_layers`], with `gate` between the request metric and the body
/// limit: what it refuses is logged and counted like any answer.
pub fn with_gate(routes: Router, gate: Option<Gate>) -> Router {
    routes.layer(from_fn_with_state(gate, api_layer))
}

/// A route's handler: the request with its body read, and the value of the
/// route's path parameter (`{id}`, `{file}`; empty for a route without).
type Call = Arc<
    dyn Fn(
            http::Request<Bytes>,
            String,
        ) -> Pin<Box<dyn Future<Output = Result<http::Response<Bytes>, ApiError>> + Send>>
        + Send
        + Sync,
>;

fn call<T, F, Fut>(deps: &Option<Arc<T>>, f: F) -> Option<Call>
where
    T: Send + Sync + 'static,
    F: Fn(Arc<T>, http::Request<Bytes>, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<http::Response<Bytes>, ApiError>> + Send + 'static,
{
    let deps = deps.clone()?;
    Some(Arc::new(move |req, param| {
        Box::pin(f(Arc::clone(&deps), req, param))
    }))
}

/// The handler of `op`, if `handlers` has what it needs.
fn endpoint(op: Op, h: &Handlers) -> Option<Call> {
    let public = |f: fn(&http::Request<Bytes>, &str) -> Result<http::Response<Bytes>, ApiError>| {
        call(&Some(Arc::new(())), move |_, req, param| {
            let answer = f(&req, &param);
            async move { answer }
        })
    };
    match op {
        Op::Page => public(|req, _| Ok(crate::web::page(req.headers()))),
        Op::Asset => public(|req, file| {
            crate::web::file(file, req.headers()).ok_or_else(|| {
                ApiError::NotFound(format!(
                    "no file {:?}",
                    people_core::text::clip_chars(file, 64)
                ))
            })
        }),
        Op::OpenApi => public(|_, _| Ok(crate::openapi::serve())),
        Op::SearchPeople => call(&h.query, |api, req, _| async move {
            crate::may_read(&req)?;
            crate::people(&api, req.uri().query()).await
        }),
        Op::GetPerson => call(&h.query, |api, req, id| async move {
            crate::may_read(&req)?;
            crate::person(&api, &id).await
        }),
        Op::Filters => call(&h.query, |api, req, _| async move {
            crate::may_read(&req)?;
            crate::filters(&api, req.uri().query()).await
        }),
        // Either scope: a writer follows its imports.
        Op::GetRequest => call(&h.query, |api, req, id| async move {
            crate::request(&api, &req, &id).await
        }),
        Op::Submit => call(&h.submit, |deps, req, _| async move {
            Ok(crate::handle_submit(&deps, req).await)
        }),
        Op::PutPerson | Op::DeletePerson => call(&h.people, |writer, req, id| async move {
            Ok(crate::write::handle_write(&writer, req, &id).await)
        }),
    }
}

/// The name of `path`'s parameter (`id` of `/people/{id}`).
fn parameter(path: &str) -> Option<&'static str> {
    let route = ROUTES.iter().find(|r| r.path == path)?;
    let start = route.path.find('{')?;
    let end = route.path[start..].find('}')?;
    Some(&route.path[start + 1..start + end])
}

/// `call` as an axum handler: the parameter decoded (400 when it is not
/// UTF-8), the body read, the answer or the error as a response.
fn bind(
    call: Call,
    name: Option<&'static str>,
) -> impl Fn(
    Result<RawPathParams, RawPathParamsRejection>,
    Request,
) -> Pin<Box<dyn Future<Output = Response> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    move |params, req| {
        let call = Arc::clone(&call);
        Box::pin(async move {
            let param = match params {
                Ok(params) => params
                    .iter()
                    .next()
                    .map(|(_, value)| value.to_owned())
                    .unwrap_or_default(),
                Err(RawPathParamsRejection::InvalidUtf8InPathParam(_)) => {
                    let name = name.unwrap_or("path");
                    return error(ApiError::invalid(
                        name,
                        format!("{name} is not valid UTF-8"),
                    ));
                }
                Err(_) => String::new(),
            };
            if let Some(refused) = not_json(&req) {
                return error(refused);
            }
            let (parts, body) = req.into_parts();
            // The body limit layer has read it whole: this takes what it holds.
            let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
                .await
                .unwrap_or_default();
            match call(http::Request::from_parts(parts, bytes), param).await {
                Ok(response) => response.map(Body::from),
                Err(e) => error(e),
            }
        })
    }
}

fn error(e: ApiError) -> Response {
    e.into_response().map(Body::from)
}

async fn method_not_allowed(req: Request, allow: String) -> Response {
    error(ApiError::MethodNotAllowed {
        method: req.method().to_string(),
        allow,
    })
}

async fn no_route(req: Request) -> Response {
    error(ApiError::NotFound(format!(
        "no route for {}",
        people_core::text::clip_chars(req.uri().path(), 64)
    )))
}

/// The correlation id of a request, in its extensions: the caller's
/// `x-correlation-id`, else API Gateway's request id (its
/// `requestContext.requestId` on Lambda), else a new one. It
/// goes with the job to the worker and the push, and names the request's
/// span in the logs.
#[derive(Clone, Debug)]
pub struct CorrelationId(pub String);

/// Correlation id and span, metric, gate, body limit: the one layer of
/// [`with_gate`].
async fn api_layer(State(gate): State<Option<Gate>>, mut req: Request, next: Next) -> Response {
    let start = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let label = routes::label(req.method(), route);
    let id = crate::correlation_id_of(req.headers(), req.extensions());
    let span = tracing::info_span!(
        "http",
        method = %req.method(),
        route = route.unwrap_or("-"),
        correlation_id = %id,
    );
    req.extensions_mut().insert(CorrelationId(id));
    async move {
        let response = match gate {
            Some(gate) => match gate(req).await {
                Ok(req) => read_then(req, next).await,
                Err(refused) => refused,
            },
            None => read_then(req, next).await,
        };
        // One `http_request_duration_ms` sample per answer, labelled with
        // the route of the table that axum matched.
        people_app::telemetry::http_request(label, response.status().as_u16(), start);
        response
    }
    .instrument(span)
    .await
}

/// The request with its body read whole, to `next`; 413 over the limit.
async fn read_then(req: Request, next: Next) -> Response {
    match read_whole(req).await {
        Ok(req) => next.run(req).await,
        Err(too_large) => too_large,
    }
}

/// `req` with its body read whole into memory, or 413 when the body is
/// over [`MAX_BODY_BYTES`] at any size: from the declared length before
/// it is read, or as it is read.
async fn read_whole(req: Request) -> Result<Request, Response> {
    let too_large = || {
        error(ApiError::PayloadTooLarge(format!(
            "request body over {MAX_BODY_BYTES} bytes"
        )))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Err(_) => Err(too_large()),
    }
}

/// [`read_whole`] as a layer of its own (the local server's front mode,
/// whose functions have their own layers behind it).
pub async fn body_limit(req: Request, next: Next) -> Response {
    read_then(req, next).await
}

/// POST, PUT and DELETE bodies of the API are JSON: any other content
/// type is refused (415), as is a body without one.
fn not_json(req: &Request) -> Option<ApiError> {
    let writes = matches!(*req.method(), Method::POST | Method::PUT | Method::DELETE);
    // Read whole by the body limit: the size is exact.
    let empty = HttpBody::size_hint(req.body()).exact() == Some(0);
    if !writes || empty {
        return None;
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return None;
    }
    Some(ApiError::UnsupportedMediaType(format!(
        "the body must be application/json, not {:?}",
        content_type.chars().take(64).collect::<String>()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use people_app::index::LiveIndex;
    use people_app::memory::{MemoryPeopleStore, MemoryQueue, MemoryRequestStore};
    use people_core::search::SearchEngine;
    use tower::ServiceExt;

    fn handlers() -> Handlers {
        let person: people_core::domain::Person = serde_json::from_value(serde_json::json!({
            "id": "p1", "first_name": "Ada", "last_name": "Lovelace",
            "nationality": "British", "hobbies": ["Chess"]
        }))
        .unwrap();
        let requests = Arc::new(MemoryRequestStore::new());
        Handlers {
            query: Some(Arc::new(QueryApi {
                index: Arc::new(LiveIndex::fixed(SearchEngine::from_people([&person]))),
                requests: requests.clone(),
            })),
            submit: Some(Arc::new(Enqueuer {
                requests,
                queue: Arc::new(MemoryQueue::new()),
                anonymous_writes: true,
            })),
            people: Some(Arc::new(PeopleWriter {
                store: Arc::new(MemoryPeopleStore::new()),
                index: None,
                anonymous_writes: true,
            })),
        }
    }

    fn router_of(functions: &[Function]) -> Router {
        with_layers(routes(functions, &handlers()))
    }

    async fn send(router: &Router, method: Method, path: &str, body: &'static str) -> Response {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        router.clone().oneshot(request).await.unwrap()
    }

    async fn json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn concrete(path: &str) -> String {
        path.replace("{id}", "p1").replace("{file}", "app.js")
    }

    /// GIVEN each function's router WHEN every route of the table is
    /// asked THEN its own routes answer, and the others' do not (404, or
    /// 405 where it serves the path with another method).
    #[tokio::test]
    async fn a_functions_router_serves_its_rows_of_the_table_and_no_other() {
        for function in [Function::QueryApi, Function::Enqueue] {
            let router = router_of(&[function]);
            for route in ROUTES {
                let response =
                    send(&router, route.method.clone(), &concrete(route.path), "{}").await;
                let status = response.status().as_u16();
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .unwrap();
                let body = String::from_utf8_lossy(&bytes);
                let no_route = status == 404 && body.contains("no route for");
                if route.function == function {
                    assert!(
                        !no_route && status != 405,
                        "{}: {status} {body}",
                        route.route_key()
                    );
                } else {
                    assert!(
                        no_route || status == 405,
                        "{}: {status} {body}",
                        route.route_key()
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn unknown_routes_wrong_methods_and_head_are_json_errors() {
        let router = router_of(&[Function::QueryApi, Function::Enqueue]);
        let response = send(&router, Method::GET, "/nowhere", "").await;
        assert_eq!(response.status(), 404);
        assert_eq!(json(response).await["error"]["code"], "not_found");
        let response = send(&router, Method::POST, "/people", "").await;
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()[header::ALLOW], "GET");
        assert_eq!(json(response).await["error"]["code"], "method_not_allowed");
        let response = send(&router, Method::PATCH, "/people/p1", "").await;
        assert_eq!(response.headers()[header::ALLOW], "GET, PUT, DELETE");
        // As the API always answered: HEAD is no GET.
        let response = send(&router, Method::HEAD, "/people", "").await;
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()[header::ALLOW], "GET");
        // The enqueue function alone: its methods only.
        let response = send(
            &router_of(&[Function::Enqueue]),
            Method::GET,
            "/people/p1",
            "",
        )
        .await;
        assert_eq!(response.headers()[header::ALLOW], "PUT, DELETE");
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_413_and_other_types_415() {
        let router = router_of(&[Function::Enqueue]);
        let big: &'static str = Box::leak("x".repeat(MAX_BODY_BYTES + 1).into_boxed_str());
        let response = send(&router, Method::POST, "/requests", big).await;
        assert_eq!(response.status(), 413);
        assert_eq!(json(response).await["error"]["code"], "payload_too_large");
        let request = http::Request::post("/requests")
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from(r#"{"kind":"report"}"#))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 415);
        assert_eq!(
            json(response).await["error"]["code"],
            "unsupported_media_type"
        );
    }

    #[tokio::test]
    async fn a_path_parameter_is_decoded_and_must_be_utf8() {
        let router = router_of(&[Function::QueryApi]);
        let response = send(&router, Method::GET, "/people/%70%31", "").await;
        assert_eq!(response.status(), 200);
        assert_eq!(json(response).await["id"], "p1");
        let response = send(&router, Method::GET, "/people/%FF", "").await;
        assert_eq!(response.status(), 400);
        assert_eq!(json(response).await["error"]["parameter"], "id");
    }

    #[test]
    #[should_panic(expected = "has no handler")]
    fn a_function_without_its_handlers_is_refused_at_start() {
        let _ = routes(&[Function::Enqueue], &Handlers::default());
    }
}
