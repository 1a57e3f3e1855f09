//! The local server's front mode (`local --functions http://127.0.0.1:9000`):
//! API Gateway in front of the real function binaries. Each HTTP request
//! becomes the HTTP API's payload v2 event and goes to the function that
//! template.yaml maps its route to; each WebSocket connect, frame and
//! disconnect becomes the WebSocket API's event (built by
//! `websocket::event`) and goes to the WebSocket API's function; both
//! through the Lambda invoke API (`cargo lambda watch`,
//! `sam local start-lambda`). The functions push to WebSocket clients
//! through this server's Management API (`WEBSOCKET_ENDPOINT`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use chrono::Utc;
use people_aws::template::{HttpRoute, Template, TemplateError};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};

use crate::invoke::{FunctionNames, Invoker};

/// The account id the local events carry (as the fixtures do).
const ACCOUNT_ID: &str = "123456789012";

/// The functions behind the local server, and which route goes where.
pub struct Front {
    pub invoker: Invoker,
    pub routes: Vec<(HttpRoute, String)>,
    /// The WebSocket API's function, as the invoke API names it.
    pub websocket: String,
    /// The WebSocket routes besides `$connect`, `$disconnect`, `$default`.
    pub ws_routes: Vec<String>,
}

impl Front {
    /// The routes and functions of `template`, named as `names` says.
    pub fn new(
        invoker: Invoker,
        template: &Template,
        names: FunctionNames,
    ) -> Result<Self, TemplateError> {
        let routes = template
            .http_routes()?
            .into_iter()
            .map(|r| {
                let name = names.of(&r.function).to_owned();
                (r, name)
            })
            .collect();
        let ws = template.websocket()?;
        Ok(Self {
            invoker,
            routes,
            websocket: names.of(&ws.function).to_owned(),
            ws_routes: ws
                .routes
                .into_iter()
                .filter(|r| !r.starts_with('$'))
                .collect(),
        })
    }

    /// One HTTP request, through the function its route goes to.
    pub async fn http(&self, parts: Parts, body: Bytes, peer: Option<SocketAddr>) -> Response {
        let path = parts.uri.path();
        let Some((route, function, params)) = self.routes.iter().find_map(|(route, function)| {
            route
                .matches(parts.method.as_str(), path)
                .map(|params| (route, function, params))
        }) else {
            return message(StatusCode::NOT_FOUND, "Not Found");
        };
        let event = http_event(&parts, &body, &route.route_key(), params, peer);
        match self.invoker.invoke(function, &event).await {
            Ok(answer) => http_response(answer),
            Err(e) => {
                tracing::error!(error = %e, route = %route.route_key(), "the function failed");
                message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }

    /// One WebSocket event, through the WebSocket API's function. A failed
    /// invocation is a 500, as API Gateway reports it.
    pub async fn websocket(
        &self,
        event: ApiGatewayWebsocketProxyRequest,
    ) -> ApiGatewayProxyResponse {
        let payload = serde_json::to_value(&event).expect("events serialize");
        let route = event.request_context.route_key.clone().unwrap_or_default();
        let answer = match self.invoker.invoke(&self.websocket, &payload).await {
            Ok(answer) => serde_json::from_value::<ApiGatewayProxyResponse>(answer)
                .map_err(|e| format!("not an API Gateway proxy response: {e}")),
            Err(e) => Err(e.to_string()),
        };
        answer.unwrap_or_else(|e| {
            tracing::error!(error = %e, %route, "the WebSocket function failed");
            let mut response = ApiGatewayProxyResponse::default();
            response.status_code = 500;
            response
        })
    }
}

/// `{"message": text}` with `status`, as API Gateway answers on its own.
fn message(status: StatusCode, text: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(json!({ "message": text }).to_string()))
        .expect("a valid response")
}

/// The HTTP API's payload v2 event for a request (the shape of
/// `events/query-*.json` and `events/enqueue-*.json`): headers lower-cased
/// and repeated ones joined by commas, cookies on their own, the query
/// string raw and decoded, the path parameters of `route_key`.
pub fn http_event(
    parts: &Parts,
    body: &[u8],
    route_key: &str,
    path_parameters: BTreeMap<String, String>,
    peer: Option<SocketAddr>,
) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let Ok(value) = value.to_str() else { continue };
        if name == "cookie" {
            cookies.extend(value.split(';').map(|c| c.trim().to_owned()));
            continue;
        }
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push(',');
                v.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        query
            .entry(decode(k))
            .and_modify(|old| {
                old.push(',');
                old.push_str(&decode(v));
            })
            .or_insert_with(|| decode(v));
    }
    let host = headers
        .get("host")
        .cloned()
        .unwrap_or_else(|| "127.0.0.1".into());
    let domain = host.split(':').next().unwrap_or("127.0.0.1").to_owned();
    let now = Utc::now();
    let source_ip = peer.map_or("127.0.0.1".to_owned(), |p| p.ip().to_string());
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "domainName": domain,
            "domainPrefix": domain.split('.').next().unwrap_or(""),
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent").cloned().unwrap_or_default(),
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": false,
    });
    let object = event.as_object_mut().expect("an object");
    if !cookies.is_empty() {
        object.insert("cookies".into(), json!(cookies));
    }
    if !query.is_empty() {
        object.insert("queryStringParameters".into(), json!(query));
    }
    if !path_parameters.is_empty() {
        object.insert("pathParameters".into(), json!(path_parameters));
    }
    if !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) => {
                object.insert("body".into(), Value::String(text.to_owned()));
            }
            Err(_) => {
                object.insert(
                    "body".into(),
                    Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
                );
                object.insert("isBase64Encoded".into(), Value::Bool(true));
            }
        }
    }
    event
}

/// A payload v2 answer as the HTTP response API Gateway would send.
fn http_response(answer: Value) -> Response {
    let Some(object) = answer.as_object() else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    // An answer without statusCode is the body of a 200 (payload v2).
    let Some(status) = object.get("statusCode").and_then(Value::as_u64) else {
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(answer.to_string()))
            .expect("a valid response");
    };
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    let headers = response.headers_mut().expect("a builder without errors");
    let empty = Map::new();
    for (name, value) in object
        .get("headers")
        .and_then(Value::as_object)
        .unwrap_or(&empty)
    {
        if let (Ok(name), Some(Ok(value))) = (
            HeaderName::try_from(name.as_str()),
            value.as_str().map(HeaderValue::from_str),
        ) {
            headers.append(name, value);
        }
    }
    for (name, values) in object
        .get("multiValueHeaders")
        .and_then(Value::as_object)
        .unwrap_or(&empty)
    {
        for value in values.as_array().into_iter().flatten() {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::try_from(name.as_str()),
                value.as_str().map(HeaderValue::from_str),
            ) && !headers.get_all(&name).iter().any(|v| v == value)
            {
                headers.append(name, value);
            }
        }
    }
    for cookie in object
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(Ok(value)) = cookie.as_str().map(HeaderValue::from_str) {
            headers.append("set-cookie", value);
        }
    }
    let text = object.get("body").and_then(Value::as_str).unwrap_or("");
    let body = if object.get("isBase64Encoded") == Some(&Value::Bool(true)) {
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(bytes) => Body::from(bytes),
            Err(_) => return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        }
    } else {
        Body::from(text.to_owned())
    };
    response.body(body).expect("a valid response")
}
