//! The query API Lambda: API Gateway HTTP API (payload v2) events in, the
//! shared HTTP handler, responses out.

use std::sync::Arc;

use bytes::Bytes;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use shared::api::{self, QueryApi};
use shared::config::{PeopleConfig, StorageType};
use shared::search::SearchEngine;

/// Builds the query API from the environment, once per cold start.
pub async fn init(config: &PeopleConfig) -> Result<QueryApi, Error> {
    let engine = match config.storage {
        StorageType::Memory => {
            let people: Vec<_> =
                shared::datagen::generate(config.seed_people, config.seed).collect();
            SearchEngine::from_people(&people)
        }
        StorageType::DynamoDb => {
            return Err("STORAGE_TYPE=dynamodb: the DynamoDB people store is not part of this build yet; use memory".into());
        }
    };
    Ok(QueryApi {
        engine: Arc::new(engine),
    })
}

/// One API Gateway request.
pub async fn handler(api: &QueryApi, event: Request) -> Result<Response<Body>, Error> {
    // Route on the path the client used: API Gateway's raw path, without the
    // stage prefix lambda_http adds for named stages.
    let raw_path = event.raw_http_path().to_owned();
    let (mut parts, body) = event.into_parts();
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("{raw_path}?{q}"),
        None => raw_path,
    };
    if let Ok(uri) = path_and_query.parse() {
        parts.uri = uri;
    }
    let request = http::Request::from_parts(parts, Bytes::copy_from_slice(body.as_ref()));
    let (parts, body) = api::handle(api, request).await.into_parts();
    let body = match String::from_utf8(body.to_vec()) {
        Ok(text) => Body::Text(text),
        Err(e) => Body::Binary(e.into_bytes()),
    };
    Ok(Response::from_parts(parts, body))
}
