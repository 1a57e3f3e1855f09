//! API Gateway's WebSocket side, emulated: real WebSocket connections at
//! `/ws` become the events a WebSocket Lambda receives (`$connect`, one
//! event per frame with the route chosen by its `action`, `$disconnect`),
//! handled by the same `people_http::ws::handle` as the WebSocket Lambda;
//! and the Management API at `/@connections/{id}` (POST, GET, DELETE; 410
//! for an unknown connection), so the production notifier can push through
//! it.

use std::net::SocketAddr;
use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{SinkExt, StreamExt};
use people_app::memory::hub::{ConnectionInfo, Outgoing};
use people_app::ports::{Notifier, NotifyError};
use people_app::ws::MAX_MESSAGE_BYTES;
use serde_json::{Value, json};

use crate::App;

/// The routes of the WebSocket API besides `$connect`, `$disconnect` and
/// `$default`, as in template.yaml.
pub const ROUTES: &[&str] = &["subscribe", "process"];

/// Messages the socket reads whole. Above API Gateway's 128 KiB, so that an
/// oversized message (of several frames) reaches the handler and gets an
/// `error` message; far above it, the socket is closed (1009) instead of
/// buffering it.
pub const MAX_TRANSPORT_BYTES: usize = 8 * MAX_MESSAGE_BYTES;

/// API Gateway's WebSocket frame limit (32 KB): a larger frame closes the
/// connection with 1009 ("message too big"), as there.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;

/// Each socket's read buffer, and the writes it gathers before a flush
/// (128 KiB each by default): most frames are small, and at 10,000
/// connections the defaults alone would hold 2.5 GB.
const SOCKET_BUFFER_BYTES: usize = 8 * 1024;

/// The stage name the local events carry.
const STAGE: &str = "local";

/// `GET /ws`: `$connect` decides, as API Gateway's would, before the
/// upgrade; a refusal is an HTTP error and no connection.
pub async fn upgrade(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // `--jwt-issuer`: the `$connect` authorizer's checks, with API
    // Gateway's answers (401 without a token, 403 with a refused one).
    let mut authorizer = None;
    if let Some(verifier) = &app.jwt {
        let Some(token) =
            query_token(query.as_deref()).or_else(|| crate::bearer(&headers).map(str::to_owned))
        else {
            return StatusCode::UNAUTHORIZED.into_response();
        };
        match verifier.verify(&token).await {
            Ok(token) => {
                authorizer = Some(json!({
                    "principalId": token.sub,
                    "sub": token.sub,
                    "scope": token.scopes.join(" "),
                }));
            }
            Err(reason) => {
                tracing::info!(reason = reason.code(), "$connect refused");
                return StatusCode::FORBIDDEN.into_response();
            }
        }
    }
    let connection_id = uuid::Uuid::new_v4().simple().to_string();
    let now = Utc::now();
    let info = ConnectionInfo {
        connected_at: now,
        last_active_at: now,
        source_ip: peer.ip().to_string(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let event = event_as(
        &connection_id,
        &info,
        Route::Connect { headers: &headers },
        authorizer.as_ref(),
    );
    let response = app.ws_event(event).await;
    if response.status_code != 200 {
        let status = u16::try_from(response.status_code)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return status.into_response();
    }
    ws.max_message_size(MAX_TRANSPORT_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(SOCKET_BUFFER_BYTES)
        .write_buffer_size(SOCKET_BUFFER_BYTES)
        .on_upgrade(move |socket| connection(app, socket, connection_id, info, authorizer))
}

/// The `token` query-string parameter, percent-decoded (empty is none).
fn query_token(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        if key != "token" {
            return None;
        }
        let value = percent_encoding::percent_decode_str(&value.replace('+', " "))
            .decode_utf8()
            .ok()?
            .trim()
            .to_owned();
        (!value.is_empty()).then_some(value)
    })
}

async fn connection(
    app: Arc<App>,
    socket: WebSocket,
    connection_id: String,
    info: ConnectionInfo,
    authorizer: Option<Value>,
) {
    let (mut sink, mut frames) = socket.split();
    let mut outbox = app.hub.register(&connection_id, info.clone());
    metrics::gauge!(people_app::telemetry::WS_CONNECTIONS).increment(1.0);
    let mut writer = tokio::spawn(async move {
        while let Some(out) = outbox.recv().await {
            let message = match out {
                Outgoing::Text(text) => Message::Text(text.into()),
                Outgoing::Binary(data) => Message::Binary(data.into()),
                Outgoing::Close(code, reason) => {
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame {
                            code,
                            reason: reason.into(),
                        })))
                        .await;
                    return;
                }
            };
            if sink.send(message).await.is_err() {
                return;
            }
        }
    });
    let mut close = (
        1006,
        String::from("the connection ended without a close frame"),
    );
    loop {
        tokio::select! {
            frame = frames.next() => {
                let (body, is_base64) = match frame {
                    Some(Ok(Message::Text(text))) => (text.to_string(), false),
                    Some(Ok(Message::Binary(data))) => (base64_encode(&data), true),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(frame))) => {
                        if let Some(f) = frame {
                            close = (f.code, f.reason.to_string());
                        } else {
                            close = (1005, String::new());
                        }
                        break;
                    }
                    Some(Err(e)) => {
                        // A frame over the limit, a message past
                        // MAX_TRANSPORT_BYTES (or a broken stream): say so
                        // in a close frame, as API Gateway does (1009).
                        close = (1009, e.to_string());
                        app.hub.close_with(&connection_id, 1009, "too large: at most 32 KB a frame and 1 MiB a message");
                        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), &mut writer).await;
                        break;
                    }
                    None => break,
                };
                app.hub.touch(&connection_id, Utc::now());
                let event = event_as(&connection_id, &info, Route::Message { body: &body, is_base64 }, authorizer.as_ref());
                app.ws_event(event).await;
            }
            _ = &mut writer => {
                close = (1000, "closed by the server".into());
                break;
            }
        }
    }
    app.hub.unregister(&connection_id);
    metrics::gauge!(people_app::telemetry::WS_CONNECTIONS).decrement(1.0);
    writer.abort();
    let event = event_as(
        &connection_id,
        &info,
        Route::Disconnect {
            code: close.0,
            reason: &close.1,
        },
        authorizer.as_ref(),
    );
    app.ws_event(event).await;
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// What a WebSocket event is about.
pub enum Route<'a> {
    Connect { headers: &'a HeaderMap },
    Message { body: &'a str, is_base64: bool },
    Disconnect { code: u16, reason: &'a str },
}

/// The event API Gateway would send for `route` (the fields a WebSocket
/// Lambda reads; `events/ws-*.json` are fixtures of the same shape).
pub fn event(
    connection_id: &str,
    info: &ConnectionInfo,
    route: Route<'_>,
) -> ApiGatewayWebsocketProxyRequest {
    event_as(connection_id, info, route, None)
}

/// [`event`] of a connection that the `$connect` authorizer let through:
/// API Gateway passes the authorizer's context (`authorizer`) with every
/// event of that connection, `$connect` included.
pub fn event_as(
    connection_id: &str,
    info: &ConnectionInfo,
    route: Route<'_>,
    authorizer: Option<&Value>,
) -> ApiGatewayWebsocketProxyRequest {
    let now = Utc::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (route_key, event_type) = match &route {
        Route::Connect { .. } => ("$connect", "CONNECT"),
        Route::Message { body, .. } => (route_key(body), "MESSAGE"),
        Route::Disconnect { .. } => ("$disconnect", "DISCONNECT"),
    };
    let mut context = json!({
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
        "messageDirection": "IN",
        "stage": STAGE,
        "connectedAt": info.connected_at.timestamp_millis(),
        "requestTimeEpoch": now.timestamp_millis(),
        "identity": {"sourceIp": info.source_ip, "userAgent": info.user_agent},
        "requestId": request_id,
        "domainName": "127.0.0.1",
        "connectionId": connection_id,
        "apiId": "local",
    });
    if let Some(authorizer) = authorizer {
        context["authorizer"] = authorizer.clone();
    }
    let mut event = json!({ "requestContext": {}, "isBase64Encoded": false });
    match route {
        Route::Connect { headers } => {
            let headers: serde_json::Map<String, Value> = headers
                .iter()
                .filter_map(|(k, v)| Some((k.to_string(), Value::String(v.to_str().ok()?.into()))))
                .collect();
            event["headers"] = Value::Object(headers);
            // API Gateway sends both forms on $connect.
            let mut multi = serde_json::Map::new();
            for (k, v) in headers_multi(headers_of(&event)) {
                multi.insert(k, v);
            }
            event["multiValueHeaders"] = Value::Object(multi);
        }
        Route::Message { body, is_base64 } => {
            context["messageId"] = Value::String(uuid::Uuid::new_v4().simple().to_string());
            event["body"] = Value::String(body.to_owned());
            event["isBase64Encoded"] = Value::Bool(is_base64);
        }
        Route::Disconnect { code, reason } => {
            context["disconnectStatusCode"] = json!(code);
            context["disconnectReason"] = json!(reason);
            // API Gateway's $disconnect carries a few headers of its own.
            event["headers"] = json!({"Host": "127.0.0.1", "x-api-key": "", "x-restapi": ""});
            let multi: serde_json::Map<String, Value> =
                headers_multi(headers_of(&event)).into_iter().collect();
            event["multiValueHeaders"] = Value::Object(multi);
        }
    }
    event["requestContext"] = context;
    serde_json::from_value(event).expect("the emulated event has API Gateway's shape")
}

fn headers_of(event: &Value) -> Vec<(String, String)> {
    event["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// `multiValueHeaders`: each header's values as a list.
fn headers_multi(headers: Vec<(String, String)>) -> Vec<(String, Value)> {
    headers
        .into_iter()
        .map(|(k, v)| (k, Value::Array(vec![Value::String(v)])))
        .collect()
}

/// Route selection on `$request.body.action`, as the WebSocket API in
/// template.yaml declares it: a declared route, else `$default`.
fn route_key(body: &str) -> &'static str {
    let action = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("action")?.as_str().map(str::to_owned));
    match action {
        Some(a) => ROUTES
            .iter()
            .find(|r| **r == a)
            .copied()
            .unwrap_or("$default"),
        None => "$default",
    }
}

/// `POST /@connections/{id}`: the body goes to the client as one message.
pub async fn post(
    State(app): State<Arc<App>>,
    Path(connection_id): Path<String>,
    body: Bytes,
) -> Response {
    match app.hub.post(&connection_id, &body).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(NotifyError::Gone) => gone(),
        Err(NotifyError::TooLarge) => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            &format!("message over {MAX_MESSAGE_BYTES} bytes"),
        ),
        Err(e) => error(
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceededException",
            &e.to_string(),
        ),
    }
}

/// `GET /@connections/{id}`: when it connected, when it last sent, who.
pub async fn get(State(app): State<Arc<App>>, Path(connection_id): Path<String>) -> Response {
    let Some(info) = app.hub.info(&connection_id) else {
        return gone();
    };
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    axum::Json(json!({
        "connectedAt": time(info.connected_at),
        "lastActiveAt": time(info.last_active_at),
        "identity": {"sourceIp": info.source_ip, "userAgent": info.user_agent},
    }))
    .into_response()
}

/// `DELETE /@connections/{id}`: closes the connection.
pub async fn delete(State(app): State<Arc<App>>, Path(connection_id): Path<String>) -> Response {
    if app.hub.close(&connection_id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        gone()
    }
}

fn gone() -> Response {
    error(StatusCode::GONE, "GoneException", "the connection is gone")
}

/// An error as API Gateway's restJson1 protocol sends it: the type in a
/// header (what the AWS SDKs read) and in the body.
fn error(status: StatusCode, kind: &'static str, message: &str) -> Response {
    (
        status,
        [("x-amzn-errortype", kind)],
        axum::Json(json!({ "__type": kind, "message": message })),
    )
        .into_response()
}
