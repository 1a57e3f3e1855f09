//! Direct writes of one person: `PUT /people/{id}` and `DELETE /people/{id}`.
//! They go through the write path (the enqueue function on AWS, which may
//! write people; the query function stays read-only), into the people
//! store, and reach every index through its change feed. Bulk deletes are a
//! `delete` job (`POST /requests`).

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use serde_json::Value;

use super::{ApiError, correlation_id, json_response};
use people_app::index::LiveIndex;
use people_app::ports::{PeopleStore, StoreError};
use people_core::domain::Person;

/// Largest body of `PUT /people/{id}`: one person of the longest allowed
/// fields is well under it.
pub const MAX_PERSON_BYTES: usize = 64 * 1024;

/// What the person routes need.
pub struct PeopleWriter {
    pub store: Arc<dyn PeopleStore>,
    /// An index in this process (the local server) that follows `store`:
    /// refreshed after each write, so the write is searchable when the
    /// response is sent. On Lambda, none: the query function's index
    /// follows the change feed.
    pub index: Option<Arc<LiveIndex>>,
    /// May a caller without a token write (`ALLOW_ANONYMOUS_WRITES`)?
    pub anonymous_writes: bool,
}

pub use people_core::domain::PersonInput;

/// `PUT` / `DELETE /people/{id}`, `id` decoded from the path (the router
/// has checked the method and the path). Never fails: every error is a
/// JSON error response.
pub(crate) async fn handle_write(
    writer: &PeopleWriter,
    req: Request<Bytes>,
    id: &str,
) -> Response<Bytes> {
    let correlation_id = correlation_id(&req);
    match write_route(writer, &req, id).await {
        Ok(response) => response,
        Err(WriteError::Api(e)) => e.into_response(),
        Err(WriteError::Store(e)) => {
            tracing::error!(%correlation_id, error = ?e, "writing a person failed");
            ApiError::Unavailable { correlation_id }.into_response()
        }
    }
}

pub(crate) enum WriteError {
    Api(ApiError),
    Store(StoreError),
}

impl From<ApiError> for WriteError {
    fn from(e: ApiError) -> Self {
        WriteError::Api(e)
    }
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        WriteError::Store(e)
    }
}

async fn write_route(
    writer: &PeopleWriter,
    req: &Request<Bytes>,
    id: &str,
) -> Result<Response<Bytes>, WriteError> {
    super::caller(req)
        .may_write(writer.anonymous_writes)
        .map_err(|e| ApiError::Forbidden(e.to_string()))?;
    if req.method() == Method::DELETE {
        delete(writer, id).await
    } else {
        put(writer, id, req.body()).await
    }
}

/// The body is a person, validated like an import line; its `id` may be
/// left out, and must be the path's if given. 201 with the person when new,
/// 200 when it replaced someone.
#[utoipa::path(
    put,
    path = "/people/{id}",
    operation_id = "putPerson",
    summary = "Write one person",
    description = "Needs people:write (or anonymous writes, where on). Searchable once the index follows the change feed (at once on the local server).",
    params(("id" = String, Path, description = "the person's id (percent-encoded)")),
    request_body = PersonInput,
    responses(
        (status = 200, description = "replaced someone", body = Person),
        (status = 201, description = "created", body = Person),
        (status = 400, description = "not a valid person; `parameter` names the field", body = super::error::ErrorBody),
        (status = 403, description = "the caller may not write", body = super::error::ErrorBody),
        (status = 413, description = "a body over 64 KiB", body = super::error::ErrorBody),
        (status = 415, description = "a body that is not application/json", body = super::error::ErrorBody),
        (status = 503, description = "the people store is unavailable", body = super::error::ErrorBody),
    )
)]
pub(crate) async fn put(
    writer: &PeopleWriter,
    id: &str,
    body: &[u8],
) -> Result<Response<Bytes>, WriteError> {
    if body.len() > MAX_PERSON_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "a person's body is at most {MAX_PERSON_BYTES} bytes"
        ))
        .into());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            "body",
            format!(
                "the body is not JSON: {}",
                people_core::text::clip_quoted(&e.to_string(), 64)
            ),
        )
    })?;
    let Value::Object(mut object) = value else {
        return Err(ApiError::invalid("body", "the body must be a JSON object").into());
    };
    match object.get("id") {
        None => {
            object.insert("id".into(), Value::String(id.to_owned()));
        }
        Some(Value::String(given)) if given == id => {}
        Some(_) => {
            return Err(ApiError::invalid("id", "the body's id differs from the path's").into());
        }
    }
    let input: PersonInput = serde_json::from_value(Value::Object(object)).map_err(|e| {
        ApiError::invalid(
            "body",
            format!(
                "not a person: {}",
                people_core::text::clip_quoted(&e.to_string(), 64)
            ),
        )
    })?;
    let person = Person {
        id: input.id.unwrap_or_else(|| id.to_owned()),
        first_name: input.first_name,
        last_name: input.last_name,
        nationality: input.nationality,
        hobbies: input.hobbies,
    };
    if let Err(reason) = person.validate() {
        let field = reason.split(':').next().unwrap_or("body").to_owned();
        return Err(ApiError::InvalidParameter {
            parameter: field,
            message: reason,
        }
        .into());
    }
    let existed = writer.store.get(id).await?.is_some();
    let report = writer
        .store
        .put_batch(std::slice::from_ref(&person))
        .await?;
    if !report.failed.is_empty() {
        return Err(StoreError::Unavailable("the write was not processed".into()).into());
    }
    refresh(writer).await;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json_response(status, &person))
}

/// 204 when the person was there (and now is not), 404 when not.
#[utoipa::path(
    delete,
    path = "/people/{id}",
    operation_id = "deletePerson",
    summary = "Delete one person",
    description = "Needs people:write (or anonymous writes, where on). The change feed carries it as a tombstone.",
    params(("id" = String, Path, description = "the person's id (percent-encoded)")),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, description = "the caller may not write", body = super::error::ErrorBody),
        (status = 404, description = "nobody has this id", body = super::error::ErrorBody),
        (status = 503, description = "the people store is unavailable", body = super::error::ErrorBody),
    )
)]
pub(crate) async fn delete(writer: &PeopleWriter, id: &str) -> Result<Response<Bytes>, WriteError> {
    if writer.store.get(id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no person has id {id:?}")).into());
    }
    let report = writer.store.delete_batch(&[id.to_owned()]).await?;
    if !report.failed.is_empty() {
        return Err(StoreError::Unavailable("the delete was not processed".into()).into());
    }
    refresh(writer).await;
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Bytes::new())
        .expect("static response parts are valid"))
}

/// The write is stored either way; a failed refresh only delays when this
/// process's index shows it (its next refresh retries).
async fn refresh(writer: &PeopleWriter) {
    if let Some(index) = &writer.index
        && let Err(e) = index.refresh().await
    {
        tracing::warn!(error = %e, "index refresh after a write failed; the next one catches up");
    }
}
