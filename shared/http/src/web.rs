//! The web page (`web/` in the repository), built into the binary so that
//! the local server and the query Lambda serve the same bytes with no
//! front-end build step and nothing fetched at run time.
//!
//! Caching: every response carries a strong `ETag` (a hash of its bytes)
//! and `Cache-Control: no-cache`, so a browser keeps its copy and
//! revalidates it with one small request (`304 Not Modified`) instead of
//! running an old script against a newer API after a deploy.

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};

pub(crate) struct Asset {
    pub(crate) content_type: &'static str,
    pub(crate) body: &'static str,
}

const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_str!("../../../web/index.html"),
};

/// `/web/{file}`: the page's module and style sheet.
fn asset(file: &str) -> Option<Asset> {
    match file {
        "app.js" => Some(Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("../../../web/app.js"),
        }),
        "style.css" => Some(Asset {
            content_type: "text/css; charset=utf-8",
            body: include_str!("../../../web/style.css"),
        }),
        _ => None,
    }
}

/// `GET /`.
#[utoipa::path(
    get,
    path = "/",
    operation_id = "page",
    summary = "The web page",
    description = "Public (no token). Revalidate with If-None-Match.",
    responses(
        (status = 200, description = "the page", content_type = "text/html", body = String),
        (status = 304, description = "not modified (If-None-Match)"),
    )
)]
pub(crate) fn page(headers: &HeaderMap) -> Response<Bytes> {
    respond(&INDEX, headers)
}

/// `GET /web/{file}`.
#[utoipa::path(
    get,
    path = "/web/{file}",
    operation_id = "pageAsset",
    summary = "A file of the web page: app.js, style.css",
    description = "Public (no token). Revalidate with If-None-Match.",
    params(("file" = String, Path, description = "app.js or style.css")),
    responses(
        (status = 200, description = "the file (JavaScript or CSS)", content_type = "text/javascript", body = String),
        (status = 304, description = "not modified (If-None-Match)"),
        (status = 404, description = "no such file", body = super::error::ErrorBody),
    )
)]
pub(crate) fn file(name: &str, headers: &HeaderMap) -> Option<Response<Bytes>> {
    asset(name).map(|a| respond(&a, headers))
}

fn respond(asset: &Asset, headers: &HeaderMap) -> Response<Bytes> {
    let etag = format!("\"{:08x}\"", crc32fast::hash(asset.body.as_bytes()));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    let response = if fresh {
        builder.status(StatusCode::NOT_MODIFIED).body(Bytes::new())
    } else {
        builder
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, asset.content_type)
            .body(Bytes::from_static(asset.body.as_bytes()))
    };
    response.expect("static response parts are valid")
}
