//! The WebSocket routes: `$connect`, `$disconnect`, and every frame
//! (`subscribe`, `process`, `$default`), each one [`WsEvent`] whatever
//! carried it (the API Gateway translation is people-http's `ws` module,
//! for the WebSocket Lambda and the local server alike). Replies go through
//! the notifier, like pushes, so a client always gets `accepted` /
//! `subscribed` before the result that follows it.

use chrono::Utc;

use super::{
    ClientFrame, Delivery, FrameError, MAX_FOLLOWERS_PER_REQUEST, MAX_SUBSCRIPTIONS_PER_CONNECTION,
    Pusher, ServerMessage, parse_frame,
};
use crate::access::Caller;
use crate::jobs::{Enqueuer, SubmitError, submit_then};
use crate::ports::StoreError;

/// What the WebSocket routes need.
pub struct WsApi {
    pub pusher: Pusher,
    /// Submits `process` frames, and reads requests for `subscribe`.
    pub enqueuer: Enqueuer,
}

/// One event of the WebSocket API, as the handler reads it: what API
/// Gateway's event says (`requestContext.routeKey`, `connectionId`,
/// `requestId`, the `$connect` authorizer's context, the frame), without
/// API Gateway's types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WsEvent {
    /// The route: `$connect`, `$disconnect`, a frame's route (`subscribe`,
    /// `process`), or `$default` (also for an event that names none).
    pub route: String,
    /// The connection the event is about; empty when the event names none
    /// (answered 400).
    pub connection_id: String,
    /// The event's id, the correlation id of what it does; none, a new one.
    pub correlation_id: Option<String>,
    /// The frame, for the frame routes.
    pub body: Option<String>,
    /// Whether the frame is binary (base64), which is refused.
    pub is_base64: bool,
    /// Who opened the connection: the caller the `$connect` authorizer let
    /// through ([`Caller::from_ws_authorizer`]), anonymous without one.
    pub caller: Caller,
}

/// What the handler answers for one event: an HTTP status code, which API
/// Gateway acts on for `$connect` (anything but 200 refuses the
/// connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WsStatus(pub u16);

impl WsStatus {
    /// Handled (for a frame: its reply sent).
    pub const OK: WsStatus = WsStatus(200);
    /// An event without a connection id.
    pub const BAD_REQUEST: WsStatus = WsStatus(400);
    /// `$connect` whose connection could not be recorded.
    pub const INTERNAL_SERVER_ERROR: WsStatus = WsStatus(500);
}

/// Handles one event. `$connect` answers 500 when the connection cannot be
/// recorded (API Gateway then refuses the connection, and the client can
/// try again); an event without a connection id, 400; every other route
/// answers 200, its reply already sent.
#[tracing::instrument(skip_all, fields(route, connection_id, correlation_id))]
pub async fn handle(api: &WsApi, event: WsEvent) -> WsStatus {
    let route = event.route.as_str();
    let connection_id = event.connection_id.as_str();
    let correlation_id = event
        .correlation_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::Span::current();
    span.record("route", route);
    span.record("connection_id", connection_id);
    span.record("correlation_id", correlation_id.as_str());
    if connection_id.is_empty() {
        tracing::error!("event without a connection id");
        return WsStatus::BAD_REQUEST;
    }
    let label = match route {
        "$connect" => "$connect",
        "$disconnect" => "$disconnect",
        "subscribe" => "subscribe",
        "process" => "process",
        _ => "$default",
    };
    metrics::counter!(crate::telemetry::WS_EVENTS, "route" => label).increment(1);
    match route {
        "$connect" => match api
            .pusher
            .connections
            .connect(connection_id, Utc::now())
            .await
        {
            Ok(()) => WsStatus::OK,
            Err(e) => {
                tracing::error!(error = ?e, "could not record the connection; refusing it");
                WsStatus::INTERNAL_SERVER_ERROR
            }
        },
        "$disconnect" => {
            if let Err(e) = api.pusher.connections.disconnect(connection_id).await {
                tracing::warn!(error = ?e, "could not remove the connection; its TTL will");
            }
            WsStatus::OK
        }
        _ => {
            // The caller is who opened the connection: the `$connect`
            // authorizer's context, which API Gateway passes with every
            // frame.
            let frame = parse_frame(event.body.as_deref(), event.is_base64);
            on_frame(api, &event.caller, connection_id, frame, &correlation_id).await;
            WsStatus::OK
        }
    }
}

async fn on_frame(
    api: &WsApi,
    caller: &Caller,
    connection_id: &str,
    frame: Result<ClientFrame, FrameError>,
    correlation_id: &str,
) {
    let pusher = &api.pusher;
    let outcome = match frame {
        Err(e) => {
            tracing::info!(code = e.code, message = %e.message, "bad frame");
            Err(e)
        }
        Ok(ClientFrame::Subscribe { request_id }) => {
            subscribe(api, caller, connection_id, &request_id)
                .await
                .map_err(|e| e.into_frame_error(None, Some(&request_id), correlation_id))
        }
        Ok(ClientFrame::Process {
            request,
            client_ref,
            idempotency_key,
        }) => process(
            api,
            caller,
            connection_id,
            &request,
            client_ref.as_deref(),
            idempotency_key.as_deref(),
            correlation_id,
        )
        .await
        .map_err(|e| e.into_frame_error(client_ref.as_deref(), None, correlation_id)),
    };
    if let Err(e) = outcome {
        metrics::counter!(crate::telemetry::WS_BAD_FRAMES, "code" => e.code).increment(1);
        pusher
            .send(connection_id, &ServerMessage::frame_error(&e))
            .await;
    }
}

/// `process`: submits the request as `POST /requests` would (the same
/// scopes, the same meaning of an idempotency key), subscribes the
/// connection to it and answers `accepted`, both before its message is
/// sent: so no worker can start it before the connection follows it, and
/// every status and the result reach the connection through the worker's
/// pushes (which are retried by redelivery when they fail), after
/// `accepted`. A connection at its cap of subscriptions submits nothing.
async fn process(
    api: &WsApi,
    caller: &Caller,
    connection_id: &str,
    request: &serde_json::Value,
    client_ref: Option<&str>,
    idempotency_key: Option<&str>,
    correlation_id: &str,
) -> Result<(), Failure> {
    connection_cap(api, connection_id).await?;
    let body = serde_json::to_vec(request).expect("JSON values serialize");
    let pusher = &api.pusher;
    let subscribed = std::sync::atomic::AtomicBool::new(false);
    let flag = &subscribed;
    let record = submit_then(
        &api.enqueuer,
        &body,
        caller,
        idempotency_key,
        correlation_id,
        |record| async move {
            pusher
                .connections
                .subscribe(connection_id, &record.id, Utc::now())
                .await?;
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
            let accepted = ServerMessage::Accepted {
                id: &record.id,
                status: record.status,
                client_ref,
            };
            retrying(|| pusher.send(connection_id, &accepted)).await;
            Ok(())
        },
    )
    .await
    .map_err(Failure::Submit)?;
    tracing::info!(request_id = %record.id, "accepted over the WebSocket");
    if !subscribed.load(std::sync::atomic::Ordering::Relaxed) {
        // The idempotency key named an earlier request: nothing was sent,
        // so answer for it and follow it now (its result at once if it is
        // finished).
        let accepted = ServerMessage::Accepted {
            id: &record.id,
            status: record.status,
            client_ref,
        };
        retrying(|| pusher.send(connection_id, &accepted)).await;
        return follow(api, connection_id, &record.id, false).await;
    }
    Ok(())
}

/// `subscribe`: only to one's own request (another caller's is "not
/// found", as over HTTP), and within the caps: a connection follows at
/// most [`MAX_SUBSCRIPTIONS_PER_CONNECTION`] requests, a request is
/// followed by at most [`MAX_FOLLOWERS_PER_REQUEST`] connections.
async fn subscribe(
    api: &WsApi,
    caller: &Caller,
    connection_id: &str,
    request_id: &str,
) -> Result<(), Failure> {
    let requests = &api.enqueuer.requests;
    match requests.get(request_id).await.map_err(Failure::Store)? {
        Some(record) if caller.owns(record.owner.as_deref()) => {}
        _ => return Err(Failure::NotFound),
    }
    let followers = api
        .pusher
        .connections
        .subscribers(request_id, Utc::now())
        .await
        .map_err(Failure::Store)?;
    if !followers.iter().any(|c| c == connection_id) {
        if followers.len() >= MAX_FOLLOWERS_PER_REQUEST {
            return Err(Failure::Limit(FrameError::new(
                "too_many_followers",
                format!(
                    "this request is followed by {MAX_FOLLOWERS_PER_REQUEST} connections, the most there may be"
                ),
            )));
        }
        connection_cap(api, connection_id).await?;
    }
    follow(api, connection_id, request_id, true).await
}

/// Refuses a connection that follows as many requests as it may.
async fn connection_cap(api: &WsApi, connection_id: &str) -> Result<(), Failure> {
    let held = api
        .pusher
        .connections
        .subscriptions(connection_id, Utc::now())
        .await
        .map_err(Failure::Store)?;
    if held >= MAX_SUBSCRIPTIONS_PER_CONNECTION {
        return Err(Failure::Limit(FrameError::new(
            "too_many_subscriptions",
            format!(
                "this connection follows {MAX_SUBSCRIPTIONS_PER_CONNECTION} requests, the most it may; open another connection or wait for results"
            ),
        )));
    }
    Ok(())
}

/// Subscribes, then reads the request (this order is what makes a missed
/// result impossible; see the module docs), then pushes its result at
/// once if it already finished.
async fn follow(
    api: &WsApi,
    connection_id: &str,
    request_id: &str,
    confirm: bool,
) -> Result<(), Failure> {
    let pusher = &api.pusher;
    pusher
        .connections
        .subscribe(connection_id, request_id, Utc::now())
        .await
        .map_err(Failure::Store)?;
    let record = api
        .enqueuer
        .requests
        .get(request_id)
        .await
        .map_err(Failure::Store)?;
    let Some(record) = record else {
        if let Err(e) = pusher
            .connections
            .unsubscribe(connection_id, request_id)
            .await
        {
            tracing::warn!(error = ?e, "could not remove a subscription to an unknown request");
        }
        return Err(Failure::NotFound);
    };
    if confirm {
        pusher
            .send(
                connection_id,
                &ServerMessage::Subscribed {
                    request_id,
                    status: record.status,
                },
            )
            .await;
    }
    if record.status.is_final() {
        // No worker will push this one again: a push that failed for now
        // is tried again here, a few times, before the client is left to
        // subscribe again or read `GET /requests/{id}`.
        retrying(|| pusher.send_result(connection_id, &record)).await;
    }
    Ok(())
}

/// Sends with `send` until it is delivered, refused or gone, or the tries
/// are used up: for the messages that no worker will send again (`accepted`,
/// the result pushed on `subscribe`).
async fn retrying<F, Fut>(mut send: F) -> Delivery
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Delivery>,
{
    let mut delivery = Delivery::Unavailable;
    for wait in RETRY_PAUSES {
        delivery = send().await;
        if delivery != Delivery::Unavailable {
            break;
        }
        tokio::time::sleep(wait).await;
    }
    delivery
}

/// Pauses after each failed try of [`retrying`] (the last entry only ends
/// the loop).
const RETRY_PAUSES: [std::time::Duration; 4] = [
    std::time::Duration::from_millis(50),
    std::time::Duration::from_millis(200),
    std::time::Duration::from_millis(800),
    std::time::Duration::ZERO,
];

enum Failure {
    Submit(SubmitError),
    Store(StoreError),
    NotFound,
    /// A cap was reached: the error frame to send.
    Limit(FrameError),
}

impl Failure {
    fn into_frame_error(
        self,
        client_ref: Option<&str>,
        request_id: Option<&str>,
        correlation_id: &str,
    ) -> FrameError {
        let ours = |code: &'static str, e: &dyn std::fmt::Debug| {
            tracing::error!(error = ?e, "frame failed on our side");
            FrameError::new(
                code,
                format!(
                    "the service is unavailable; retry shortly (correlation id {correlation_id})"
                ),
            )
        };
        let mut e = match self {
            Failure::Submit(SubmitError::Invalid { field, message }) => FrameError {
                field: Some(format!("request.{field}")),
                ..FrameError::new("invalid_request", message)
            },
            Failure::Submit(e @ SubmitError::TooLarge) => FrameError {
                field: Some("request".into()),
                ..FrameError::new("too_large", e.to_string())
            },
            Failure::Submit(e @ SubmitError::Forbidden(_)) => {
                FrameError::new("forbidden", e.to_string())
            }
            Failure::Submit(e @ SubmitError::KeyReused { .. }) => FrameError {
                field: Some("idempotency_key".into()),
                ..FrameError::new("idempotency_key_reused", e.to_string())
            },
            Failure::Limit(e) => e,
            Failure::Submit(e) => ours("unavailable", &e),
            Failure::Store(e) => ours("unavailable", &e),
            Failure::NotFound => FrameError {
                field: Some("request_id".into()),
                ..FrameError::new(
                    "not_found",
                    format!("no request {:?}", request_id.unwrap_or_default()),
                )
            },
        };
        e.client_ref = client_ref.map(str::to_owned);
        e
    }
}
