//! The HTTP API, written once: API Gateway events (through lambda_http) and
//! the local server (through axum) both call [`handle`] with an
//! `http::Request` and send back the `http::Response` it returns.

mod cursor;
mod error;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod openapi;
pub mod params;
mod web;
pub mod write;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use percent_encoding::percent_decode_str;
use serde::Serialize;
use utoipa::ToSchema;

pub use cursor::Cursor;
pub use error::ApiError;
pub use params::{PeopleQuery, parse_query};
pub use write::{PeopleWriter, handle_write, is_person_write};

use people_app::access::Caller;
use people_app::index::LiveIndex;
use people_app::jobs::RequestStatus;
use people_app::jobs::{Enqueuer, SubmitError, submit};
use people_app::ports::RequestStore;
use people_core::domain::{Person, ValueCount};
use people_core::search::{ApproximateWord, Highlight, highlight};

/// What the query API needs.
pub struct QueryApi {
    pub index: Arc<LiveIndex>,
    /// Read here, written by the enqueue function and the workers.
    pub requests: Arc<dyn RequestStore>,
}

/// One page of the people matching a search, with the exact total.
#[derive(Serialize, ToSchema)]
pub(crate) struct PeoplePage {
    items: Vec<Item>,
    total: u64,
    /// The page these items are, or null when a cursor started them
    /// between page boundaries.
    #[schema(required = true)]
    page: Option<u64>,
    page_size: usize,
    /// The next page's cursor; null on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
    /// With `facets=`: each facet asked, with its values and counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    facets: Option<Facets>,
    /// With `typos=1`: the query words matched only approximately.
    #[serde(skip_serializing_if = "Option::is_none")]
    approximate: Option<Vec<ApproximateWord>>,
}

/// Facet counts, each with every filter but its own (disjunctive): the
/// top `facet_limit` values by count, then value, and the selected ones.
#[derive(Serialize, ToSchema, Default)]
pub(crate) struct Facets {
    #[serde(skip_serializing_if = "Option::is_none")]
    nationality: Option<Vec<ValueCount>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hobbies: Option<Vec<ValueCount>>,
}

/// A person of a page, with their match ranges when asked (`highlight=1`).
#[derive(Serialize, ToSchema)]
pub(crate) struct Item {
    #[serde(flatten)]
    person: Person,
    #[serde(skip_serializing_if = "Option::is_none")]
    highlight: Option<Highlight>,
}

/// The top nationalities and hobbies of the directory, by count desc,
/// then value.
#[derive(Serialize, ToSchema)]
pub(crate) struct FilterOptions {
    nationalities: Vec<ValueCount>,
    hobbies: Vec<ValueCount>,
}

/// A job accepted by `POST /requests`; follow it with `GET
/// /requests/{id}` or the WebSocket's `subscribe`.
#[derive(Serialize, ToSchema)]
pub(crate) struct Accepted<'a> {
    #[schema(format = Uuid)]
    id: &'a str,
    status: RequestStatus,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// Routes one request. Never fails: every error is a JSON error response.
#[tracing::instrument(skip_all, fields(method = %req.method(), path = %req.uri().path()))]
pub async fn handle(api: &QueryApi, req: Request<Bytes>) -> Response<Bytes> {
    let start = std::time::Instant::now();
    let response = match route(api, &req).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    people_app::telemetry::http_request(
        route_name(req.uri().path()),
        response.status().as_u16(),
        start,
    );
    response
}

/// The route a path belongs to, as a metric label (never the path itself:
/// ids would make every request its own series).
fn route_name(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] => "page",
        ["web", _] => "asset",
        ["openapi.json"] => "openapi",
        ["people"] => "people",
        ["people", _] => "person",
        ["filters"] => "filters",
        ["requests"] => "submit",
        ["requests", _] => "request",
        _ => "unknown",
    }
}

/// The caller of `req`: what the Lambda function or the local server put
/// in its extensions (`Caller::from_http_authorizer`); none, anonymous.
pub fn caller(req: &Request<Bytes>) -> Caller {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or_default()
}

fn may_read(req: &Request<Bytes>) -> Result<(), ApiError> {
    caller(req)
        .may_read()
        .map_err(|e| ApiError::Forbidden(e.to_string()))
}

async fn route(api: &QueryApi, req: &Request<Bytes>) -> Result<Response<Bytes>, ApiError> {
    let path = req.uri().path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let query = req.uri().query();
    match segments.as_slice() {
        // The page and the API's description are public: they hold no data.
        [""] => {
            only_get(req)?;
            Ok(web::page(req.headers()))
        }
        ["web", file] => {
            only_get(req)?;
            web::file(file, req.headers()).ok_or_else(|| {
                ApiError::NotFound(format!(
                    "no file {:?}",
                    people_core::text::clip_chars(file, 64)
                ))
            })
        }
        ["openapi.json"] => {
            only_get(req)?;
            Ok(openapi::serve())
        }
        ["people"] => {
            only_get(req)?;
            may_read(req)?;
            people(api, query).await
        }
        ["people", id] if !id.is_empty() => {
            only_get(req)?;
            may_read(req)?;
            person(api, id).await
        }
        ["filters"] => {
            only_get(req)?;
            may_read(req)?;
            filters(api, query).await
        }
        ["requests", id] if !id.is_empty() => {
            // Either scope: a writer follows its imports.
            only_get(req)?;
            request(api, req, id).await
        }
        ["requests"] => Err(ApiError::MethodNotAllowed {
            method: req.method().to_string(),
            allow: "POST",
        }),
        _ => Err(ApiError::NotFound(format!(
            "no route for {}",
            people_core::text::clip_chars(path, 64)
        ))),
    }
}

/// `POST /requests`: the enqueue function's one route.
#[tracing::instrument(skip_all, fields(correlation_id))]
pub async fn handle_submit(deps: &Enqueuer, req: Request<Bytes>) -> Response<Bytes> {
    let start = std::time::Instant::now();
    let response = submit_route(deps, req).await;
    people_app::telemetry::http_request("submit", response.status().as_u16(), start);
    response
}

/// `POST /requests`.
#[utoipa::path(
    post,
    path = "/requests",
    operation_id = "submit",
    summary = "Submit a job: a report, an import or a delete",
    description = "Reports need people:read; imports and deletes people:write (or anonymous writes, where on). The same Idempotency-Key with the same body returns the same request; with another body, 422.",
    params(("Idempotency-Key" = Option<String>, Header, max_length = 128, description = "1 to 128 visible ASCII characters, scoped to the caller")),
    request_body = people_app::jobs::Job,
    responses(
        (status = 202, description = "queued", body = Accepted),
        (status = 400, description = "a bad body or header; `parameter` names it", body = error::ErrorBody),
        (status = 403, description = "the caller may not submit this kind", body = error::ErrorBody),
        (status = 413, description = "a body over 256 KiB", body = error::ErrorBody),
        (status = 415, description = "a body that is not application/json", body = error::ErrorBody),
        (status = 422, description = "an idempotency key reused with another body", body = error::ErrorBody),
        (status = 503, description = "the request store or queue is unavailable", body = error::ErrorBody),
    )
)]
async fn submit_route(deps: &Enqueuer, req: Request<Bytes>) -> Response<Bytes> {
    let correlation_id = correlation_id(&req);
    tracing::Span::current().record("correlation_id", correlation_id.as_str());
    let path = req.uri().path();
    if path != "/requests" {
        return ApiError::NotFound(format!(
            "no route for {}",
            people_core::text::clip_chars(path, 64)
        ))
        .into_response();
    }
    if req.method() != Method::POST {
        return ApiError::MethodNotAllowed {
            method: req.method().to_string(),
            allow: "POST",
        }
        .into_response();
    }
    let key = match idempotency_key(&req) {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    let caller = caller(&req);
    match submit(deps, req.body(), &caller, key.as_deref(), &correlation_id).await {
        Ok(record) => json_response(
            StatusCode::ACCEPTED,
            &Accepted {
                id: &record.id,
                status: record.status,
                created_at: record.created_at,
            },
        ),
        Err(SubmitError::Invalid { field, message }) => ApiError::InvalidParameter {
            parameter: field,
            message,
        }
        .into_response(),
        Err(e @ SubmitError::TooLarge) => ApiError::PayloadTooLarge(e.to_string()).into_response(),
        Err(e @ SubmitError::Forbidden(_)) => ApiError::Forbidden(e.to_string()).into_response(),
        Err(e @ SubmitError::KeyReused { .. }) => {
            ApiError::KeyReused(e.to_string()).into_response()
        }
        Err(e) => {
            tracing::error!(error = ?e, "submitting a request failed");
            ApiError::Unavailable { correlation_id }.into_response()
        }
    }
}

/// The `Idempotency-Key` header: at most 128 visible ASCII characters.
fn idempotency_key(req: &Request<Bytes>) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all("idempotency-key").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        // As a repeated query parameter: which one was meant is not ours
        // to guess.
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "Idempotency-Key is given more than once",
        ));
    }
    let text = value
        .to_str()
        .ok()
        .filter(|t| people_app::jobs::valid_key(t));
    match text {
        Some(text) => Ok(Some(text.to_owned())),
        None => Err(ApiError::invalid(
            "Idempotency-Key",
            people_app::jobs::KEY_RULE,
        )),
    }
}

/// The caller's `x-correlation-id`, else API Gateway's request id, else a new one.
pub fn correlation_id(req: &Request<Bytes>) -> String {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned)
    };
    header("x-correlation-id")
        .or_else(|| header("x-amzn-requestid"))
        .or_else(|| header("apigw-requestid"))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// `GET /people`.
#[utoipa::path(
    get,
    path = "/people",
    operation_id = "searchPeople",
    summary = "Search people",
    description = "Filters combine with AND; the order is folded last name, folded first name, id. Needs people:read.",
    params(params::PeopleParams),
    responses(
        (status = 200, description = "one page of matches", body = PeoplePage),
        (status = 400, description = "a bad parameter, named in `parameter`", body = error::ErrorBody),
        (status = 403, description = "the token lacks people:read", body = error::ErrorBody),
    )
)]
async fn people(api: &QueryApi, query: Option<&str>) -> Result<Response<Bytes>, ApiError> {
    let q = PeopleQuery::from_pairs(&parse_query(query)?)?;
    let snapshot = api.index.current().await;
    let page = snapshot.search(&q.filter, &q.start, q.page_size);
    let facets = (!q.facets.is_empty()).then(|| {
        let mut facets = Facets::default();
        for (facet, counts) in snapshot.facets(&q.filter, &q.facets, q.facet_limit) {
            match facet {
                people_core::search::Facet::Nationality => facets.nationality = Some(counts),
                people_core::search::Facet::Hobbies => facets.hobbies = Some(counts),
            }
        }
        facets
    });
    let approximate = q
        .filter
        .typos
        .then(|| snapshot.approximate_words(&q.filter));
    let items = page
        .items
        .into_iter()
        .map(|person| Item {
            highlight: q
                .highlight
                .then(|| highlight(&person, &q.filter.words, q.filter.typos)),
            person,
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &PeoplePage {
            next_cursor: page.next.as_ref().map(|k| Cursor::encode(k, &q.filter)),
            facets,
            approximate,
            items,
            total: page.total,
            page: (page.offset % q.page_size as u64 == 0)
                .then(|| page.offset / q.page_size as u64 + 1),
            page_size: q.page_size,
        },
    ))
}

/// `GET /people/{id}`.
#[utoipa::path(
    get,
    path = "/people/{id}",
    operation_id = "getPerson",
    summary = "One person",
    description = "Needs people:read.",
    params(("id" = String, Path, description = "the person's id (percent-encoded)")),
    responses(
        (status = 200, description = "the person", body = Person),
        (status = 403, description = "the token lacks people:read", body = error::ErrorBody),
        (status = 404, description = "nobody has this id", body = error::ErrorBody),
    )
)]
async fn person(api: &QueryApi, id: &str) -> Result<Response<Bytes>, ApiError> {
    let id = percent_decode_str(id)
        .decode_utf8()
        .map_err(|_| ApiError::invalid("id", "id is not valid UTF-8"))?;
    let snapshot = api.index.current().await;
    match snapshot.get(&id) {
        Some(person) => Ok(json_response(StatusCode::OK, &person)),
        None => Err(ApiError::NotFound(format!(
            "no person has id {:?}",
            people_core::text::clip_chars(&id, 64)
        ))),
    }
}

/// `GET /filters`.
#[utoipa::path(
    get,
    path = "/filters",
    operation_id = "filters",
    summary = "Top nationalities and hobbies",
    description = "Needs people:read.",
    params(params::FiltersParams),
    responses(
        (status = 200, description = "the options", body = FilterOptions),
        (status = 400, description = "a bad limit", body = error::ErrorBody),
        (status = 403, description = "the token lacks people:read", body = error::ErrorBody),
    )
)]
async fn filters(api: &QueryApi, query: Option<&str>) -> Result<Response<Bytes>, ApiError> {
    let limit = params::filter_limit(&parse_query(query)?)?;
    let (nationalities, hobbies) = api.index.current().await.filter_options(limit);
    Ok(json_response(
        StatusCode::OK,
        &FilterOptions {
            nationalities,
            hobbies,
        },
    ))
}

/// `GET /requests/{id}`: only one's own requests; another caller's is as
/// if it did not exist.
#[utoipa::path(
    get,
    path = "/requests/{id}",
    operation_id = "getRequest",
    summary = "A job's status and result",
    description = "Either scope; a caller sees its own requests only.",
    params(("id" = String, Path, format = Uuid, description = "the id `POST /requests` answered")),
    responses(
        (status = 200, description = "the request", body = people_app::jobs::RequestRecord),
        (status = 404, description = "no such request of this caller", body = error::ErrorBody),
        (status = 503, description = "the request store is unavailable", body = error::ErrorBody),
    )
)]
async fn request(
    api: &QueryApi,
    req: &Request<Bytes>,
    id: &str,
) -> Result<Response<Bytes>, ApiError> {
    let correlation_id = correlation_id(req);
    // Request ids are UUIDs: anything else is no request, and is not
    // worth a read (a long id is a storage error on DynamoDB).
    let not_found = || {
        ApiError::NotFound(format!(
            "no request has id {:?}",
            people_core::text::clip_chars(id, 64)
        ))
    };
    if uuid::Uuid::try_parse(id).is_err() {
        return Err(not_found());
    }
    match api.requests.get(id).await {
        Ok(Some(record)) if caller(req).owns(record.owner.as_deref()) => {
            Ok(json_response(StatusCode::OK, &record))
        }
        Ok(_) => Err(not_found()),
        Err(e) => {
            tracing::error!(%correlation_id, error = ?e, "reading a request failed");
            Err(ApiError::Unavailable { correlation_id })
        }
    }
}

fn only_get(req: &Request<Bytes>) -> Result<(), ApiError> {
    if req.method() == Method::GET {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed {
            method: req.method().to_string(),
            allow: "GET",
        })
    }
}

pub(crate) fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response<Bytes> {
    let bytes = serde_json::to_vec(body).expect("API bodies serialize");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(bytes))
        .expect("static response parts are valid")
}
