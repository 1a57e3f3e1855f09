//! The HTTP API, written once: API Gateway events (through lambda_http) and
//! the local server (through axum) both call [`handle`] with an
//! `http::Request` and send back the `http::Response` it returns.

mod cursor;
mod error;
pub mod params;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use percent_encoding::percent_decode_str;
use serde::Serialize;

pub use cursor::Cursor;
pub use error::ApiError;
pub use params::{PeopleQuery, parse_query};

use crate::domain::{Person, ValueCount};
use crate::search::LiveIndex;

/// What the query API needs.
pub struct QueryApi {
    pub index: Arc<LiveIndex>,
}

#[derive(Serialize)]
struct PeoplePage {
    items: Vec<Person>,
    total: u64,
    page: u64,
    page_size: usize,
    next_cursor: Option<String>,
}

#[derive(Serialize)]
struct FilterOptions {
    nationalities: Vec<ValueCount>,
    hobbies: Vec<ValueCount>,
}

/// Routes one request. Never fails: every error is a JSON error response.
#[tracing::instrument(skip_all, fields(method = %req.method(), path = %req.uri().path()))]
pub async fn handle(api: &QueryApi, req: Request<Bytes>) -> Response<Bytes> {
    match route(api, &req) {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

fn route(api: &QueryApi, req: &Request<Bytes>) -> Result<Response<Bytes>, ApiError> {
    let path = req.uri().path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let query = req.uri().query();
    match segments.as_slice() {
        ["people"] => {
            only_get(req)?;
            people(api, query)
        }
        ["people", id] if !id.is_empty() => {
            only_get(req)?;
            let id = percent_decode_str(id)
                .decode_utf8()
                .map_err(|_| ApiError::invalid("id", "id is not valid UTF-8"))?;
            let snapshot = api.index.current();
            match snapshot.get(&id) {
                Some(person) => Ok(json_response(StatusCode::OK, &person)),
                None => Err(ApiError::NotFound(format!("no person has id {:?}", &*id))),
            }
        }
        ["filters"] => {
            only_get(req)?;
            let limit = params::filter_limit(&parse_query(query)?)?;
            let (nationalities, hobbies) = api.index.current().filter_options(limit);
            Ok(json_response(
                StatusCode::OK,
                &FilterOptions {
                    nationalities,
                    hobbies,
                },
            ))
        }
        _ => Err(ApiError::NotFound(format!("no route for {path}"))),
    }
}

fn people(api: &QueryApi, query: Option<&str>) -> Result<Response<Bytes>, ApiError> {
    let q = PeopleQuery::from_pairs(&parse_query(query)?)?;
    let snapshot = api.index.current();
    let page = snapshot.search(&q.filter, &q.start, q.page_size);
    Ok(json_response(
        StatusCode::OK,
        &PeoplePage {
            next_cursor: page.next.as_ref().map(|k| Cursor::encode(k, &q.filter)),
            items: page.items,
            total: page.total,
            page: page.offset / q.page_size as u64 + 1,
            page_size: q.page_size,
        },
    ))
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
