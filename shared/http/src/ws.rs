//! The WebSocket API as API Gateway carries it: its events as the handler
//! reads them ([`from_api_gateway`]), the handler's answers as API Gateway
//! takes them ([`to_api_gateway`]), and the two around
//! `people_app::ws::handle` ([`handle`]): what the WebSocket Lambda and the
//! local server (which turns its sockets into the same events) both call.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use people_app::access::Caller;
use people_app::ws::{WsApi, WsEvent, WsStatus};

/// Handles one API Gateway WebSocket event with `people_app::ws::handle`.
pub async fn handle(
    api: &WsApi,
    event: ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    to_api_gateway(people_app::ws::handle(api, from_api_gateway(event)).await)
}

/// The event as the handler reads it: the route key (`$default` when the
/// event has none), the connection id (empty when it has none), API
/// Gateway's request id as the correlation id, the frame, and the caller
/// of the `$connect` authorizer's context, which API Gateway passes with
/// every event of the connection.
pub fn from_api_gateway(event: ApiGatewayWebsocketProxyRequest) -> WsEvent {
    let context = event.request_context;
    WsEvent {
        route: context.route_key.unwrap_or_else(|| "$default".into()),
        connection_id: context.connection_id.unwrap_or_default(),
        correlation_id: context.request_id,
        body: event.body,
        is_base64: event.is_base64_encoded,
        caller: Caller::from_ws_authorizer(&context.authorizer.fields),
    }
}

/// The handler's answer as API Gateway takes it: the status code, and an
/// empty body on anything but 200.
pub fn to_api_gateway(status: WsStatus) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status.0);
    if status != WsStatus::OK {
        response.body = Some(Body::Text(String::new()));
    }
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use people_app::access::{READ_SCOPE, WRITE_SCOPE};
    use people_app::jobs::Enqueuer;
    use people_app::memory::connections::MemoryConnectionStore;
    use people_app::memory::hub::ConnectionHub;
    use people_app::memory::{MemoryQueue, MemoryRequestStore};
    use people_app::ws::Pusher;
    use serde_json::{Value, json};

    use super::*;

    /// An event in API Gateway's shape, with `context` in its
    /// `requestContext` (besides the two times every event has).
    fn event(mut context: Value, body: Option<&str>) -> ApiGatewayWebsocketProxyRequest {
        context["connectedAt"] = json!(0);
        context["requestTimeEpoch"] = json!(0);
        serde_json::from_value(json!({
            "requestContext": context,
            "body": body,
            "isBase64Encoded": false,
        }))
        .unwrap()
    }

    fn api() -> (WsApi, Arc<MemoryConnectionStore>) {
        let connections = Arc::new(MemoryConnectionStore::new());
        let api = WsApi {
            pusher: Pusher {
                connections: connections.clone(),
                notifier: Arc::new(ConnectionHub::new()),
            },
            enqueuer: Enqueuer {
                requests: Arc::new(MemoryRequestStore::new()),
                queue: Arc::new(MemoryQueue::new()),
                anonymous_writes: true,
            },
        };
        (api, connections)
    }

    #[test]
    fn an_event_gives_its_route_connection_request_id_and_frame() {
        // GIVEN a frame of the `subscribe` route
        let frame = r#"{"action":"subscribe","request_id":"r1"}"#;
        let event = event(
            json!({"routeKey": "subscribe", "connectionId": "c1", "requestId": "req-1"}),
            Some(frame),
        );
        // WHEN it is translated
        let event = from_api_gateway(event);
        // THEN the handler reads the same route, connection, frame, and the
        // request id as its correlation id; no authorizer: anonymous
        assert_eq!(
            event,
            WsEvent {
                route: "subscribe".into(),
                connection_id: "c1".into(),
                correlation_id: Some("req-1".into()),
                body: Some(frame.into()),
                is_base64: false,
                caller: Caller::Anonymous,
            }
        );
    }

    #[test]
    fn an_event_without_a_route_key_is_default_and_without_ids_empty() {
        // GIVEN an event that names no route, connection or request
        let event = from_api_gateway(event(json!({}), None));
        // THEN it is a `$default` event of no connection, with no
        // correlation id (the handler makes one)
        assert_eq!(event.route, "$default");
        assert_eq!(event.connection_id, "");
        assert_eq!(event.correlation_id, None);
        assert_eq!(event.body, None);
    }

    #[test]
    fn the_connect_authorizer_context_gives_the_caller() {
        // GIVEN an event of a connection the `$connect` authorizer let
        // through, with its context
        let event = event(
            json!({
                "routeKey": "process",
                "connectionId": "c1",
                "authorizer": {"principalId": "u9", "sub": "u9", "scope": "people:read people:write"},
            }),
            Some("{}"),
        );
        // THEN the caller is the context's `sub` with its scopes
        assert_eq!(
            from_api_gateway(event).caller,
            Caller::User {
                sub: "u9".into(),
                scopes: vec![READ_SCOPE.into(), WRITE_SCOPE.into()]
            }
        );
    }

    #[test]
    fn a_binary_frame_is_marked_base64() {
        let mut event = event(
            json!({"routeKey": "$default", "connectionId": "c1"}),
            Some("AAE="),
        );
        event.is_base64_encoded = true;
        assert!(from_api_gateway(event).is_base64);
    }

    #[test]
    fn a_status_is_the_response_api_gateway_takes() {
        // 200: no body, as API Gateway's proxy response serializes it
        let ok = serde_json::to_value(to_api_gateway(WsStatus::OK)).unwrap();
        assert_eq!(
            ok,
            json!({"statusCode": 200, "headers": {}, "multiValueHeaders": {}, "isBase64Encoded": false})
        );
        // anything else: the code with an empty body
        for status in [WsStatus::BAD_REQUEST, WsStatus::INTERNAL_SERVER_ERROR] {
            let response = to_api_gateway(status);
            assert_eq!(response.status_code, i64::from(status.0));
            assert_eq!(response.body, Some(Body::Text(String::new())));
        }
    }

    #[tokio::test]
    async fn an_event_without_a_connection_id_is_a_400() {
        let (api, connections) = api();
        // GIVEN a `$connect` event without a connection id
        let response = handle(&api, event(json!({"routeKey": "$connect"}), None)).await;
        // THEN it is refused, and nothing is recorded
        assert_eq!(response.status_code, 400);
        assert_eq!(response.body, Some(Body::Text(String::new())));
        assert_eq!(connections.connections(), 0);
    }

    #[tokio::test]
    async fn connect_and_disconnect_through_api_gateway_events() {
        let (api, connections) = api();
        // WHEN a connection opens
        let response = handle(
            &api,
            event(json!({"routeKey": "$connect", "connectionId": "c1"}), None),
        )
        .await;
        // THEN it is recorded, and API Gateway gets a 200 without a body
        assert_eq!(response.status_code, 200);
        assert_eq!(response.body, None);
        assert_eq!(connections.connections(), 1);
        // AND when it closes, it is removed
        let response = handle(
            &api,
            event(
                json!({"routeKey": "$disconnect", "connectionId": "c1"}),
                None,
            ),
        )
        .await;
        assert_eq!(response.status_code, 200);
        assert_eq!(connections.connections(), 0);
    }
}
