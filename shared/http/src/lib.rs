//! The HTTP API, written once: one axum router ([`router`]) built from one
//! route table ([`routes::ROUTES`]), which `lambda_http` serves on Lambda
//! ([`lambda`]) and `axum::serve` locally; the handlers below are plain
//! async functions over the ports. [`ws`] is the WebSocket API's side of
//! API Gateway: its events to `people_app::ws::handle` and back.

mod cursor;
mod error;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod openapi;
pub mod params;
pub mod router;
pub mod routes;
mod web;
pub mod write;
pub mod ws;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, header};
use serde::Serialize;
use utoipa::ToSchema;

pub use cursor::Cursor;
pub use error::ApiError;
pub use params::{PeopleQuery, parse_query};
pub use router::{CorrelationId, Handlers, MAX_BODY_BYTES};
pub use write::PeopleWriter;

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

/// The caller of `req`: what the Lambda function or the local server put
/// in its extensions (on Lambda `lambda::caller_from_authorizer`, the caller
/// API Gateway's JWT authorizer let through); none, anonymous.
pub fn caller(req: &Request<Bytes>) -> Caller {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or_default()
}

pub(crate) fn may_read(req: &Request<Bytes>) -> Result<(), ApiError> {
    caller(req)
        .may_read()
        .map_err(|e| ApiError::Forbidden(e.to_string()))
}

/// `POST /requests` (the router has checked the method and the path).
/// Never fails: every error is a JSON error response.
pub async fn handle_submit(deps: &Enqueuer, req: Request<Bytes>) -> Response<Bytes> {
    submit_route(deps, req).await
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

/// The request's correlation id: the one the router's layer gave it, else
/// (a request that did not come through the router) one from its headers.
pub fn correlation_id(req: &Request<Bytes>) -> String {
    match req.extensions().get::<CorrelationId>() {
        Some(CorrelationId(id)) => id.clone(),
        None => correlation_id_of(req.headers(), req.extensions()),
    }
}

/// The caller's `x-correlation-id`, else API Gateway's request id (the
/// event's `requestContext.requestId`, in the extensions as
/// [`GatewayRequestId`], or an `x-amzn-requestid` / `apigw-requestid`
/// header), else a new one.
pub(crate) fn correlation_id_of(headers: &HeaderMap, extensions: &http::Extensions) -> String {
    let valid =
        |v: &str| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic());
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| valid(v))
            .map(str::to_owned)
    };
    header("x-correlation-id")
        .or_else(|| {
            extensions
                .get::<GatewayRequestId>()
                .map(|id| id.0.as_str())
                .filter(|v| valid(v))
                .map(str::to_owned)
        })
        .or_else(|| header("x-amzn-requestid"))
        .or_else(|| header("apigw-requestid"))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// API Gateway's id of the request (`requestContext.requestId`), which
/// the Lambda glue puts in the request's extensions.
#[derive(Clone, Debug)]
pub struct GatewayRequestId(pub String);

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
pub(crate) async fn people(
    api: &QueryApi,
    query: Option<&str>,
) -> Result<Response<Bytes>, ApiError> {
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
pub(crate) async fn person(api: &QueryApi, id: &str) -> Result<Response<Bytes>, ApiError> {
    let snapshot = api.index.current().await;
    match snapshot.get(id) {
        Some(person) => Ok(json_response(StatusCode::OK, &person)),
        None => Err(ApiError::NotFound(format!(
            "no person has id {:?}",
            people_core::text::clip_chars(id, 64)
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
pub(crate) async fn filters(
    api: &QueryApi,
    query: Option<&str>,
) -> Result<Response<Bytes>, ApiError> {
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
pub(crate) async fn request(
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

pub(crate) fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response<Bytes> {
    let bytes = serde_json::to_vec(body).expect("API bodies serialize");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(bytes))
        .expect("static response parts are valid")
}
