//! The WebSocket Lambda on the events in `events/ws-*.json`, as API
//! Gateway sends them, with in-memory stores and the in-process notifier
//! standing in for the Management API.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use chrono::Utc;
use lambda_runtime::{Context, LambdaEvent};
use people_app::jobs::{Enqueuer, JobKind, RequestRecord};
use people_app::memory::connections::MemoryConnectionStore;
use people_app::memory::hub::{ConnectionHub, ConnectionInfo, Outgoing};
use people_app::memory::{MemoryQueue, MemoryRequestStore};
use people_app::ports::{ConnectionStore, RequestStore};
use people_app::ws::{Pusher, WsApi};
use serde_json::{Value, json};
use tokio::sync::mpsc::Receiver;

const CONNECT: &str = include_str!("../../../events/ws-connect.json");
const DISCONNECT: &str = include_str!("../../../events/ws-disconnect.json");
const SUBSCRIBE: &str = include_str!("../../../events/ws-subscribe.json");
const PROCESS: &str = include_str!("../../../events/ws-process.json");
const BAD_FRAME: &str = include_str!("../../../events/ws-bad-frame.json");

/// The connection id all the fixtures share.
const CONNECTION: &str = "L0SM9cOFvHcCIhw=";
/// The request `ws-subscribe.json` asks for.
const SUBSCRIBED_REQUEST: &str = "3f1c2a7e-9b1d-4c55-8a2e-5d7f0e6b9c41";

struct Fixture {
    api: WsApi,
    connections: Arc<MemoryConnectionStore>,
    requests: Arc<MemoryRequestStore>,
    queue: Arc<MemoryQueue>,
    /// What the connection of the fixtures receives.
    inbox: Receiver<Outgoing>,
}

fn fixture() -> Fixture {
    let hub = Arc::new(ConnectionHub::new());
    let now = Utc::now();
    let inbox = hub.register(
        CONNECTION,
        ConnectionInfo {
            connected_at: now,
            last_active_at: now,
            source_ip: "203.0.113.10".into(),
            user_agent: None,
        },
    );
    let connections = Arc::new(MemoryConnectionStore::new());
    let requests = Arc::new(MemoryRequestStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let api = WsApi {
        pusher: Pusher {
            connections: connections.clone(),
            notifier: hub,
        },
        enqueuer: Enqueuer {
            requests: requests.clone(),
            queue: queue.clone(),
            anonymous_writes: true,
        },
    };
    Fixture {
        api,
        connections,
        requests,
        queue,
        inbox,
    }
}

async fn invoke(f: &Fixture, fixture: &str) -> i64 {
    let event: ApiGatewayWebsocketProxyRequest =
        serde_json::from_str(fixture).expect("fixture is a WebSocket proxy event");
    let response = websocket::handler(&f.api, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    response.status_code
}

fn received(f: &mut Fixture) -> Vec<Value> {
    let mut messages = Vec::new();
    while let Ok(Outgoing::Text(text)) = f.inbox.try_recv() {
        messages.push(serde_json::from_str(&text).unwrap());
    }
    messages
}

#[tokio::test]
async fn connect_subscribe_disconnect() {
    let mut f = fixture();
    assert_eq!(invoke(&f, CONNECT).await, 200);
    assert_eq!(f.connections.connections(), 1);

    let record = RequestRecord::queued(SUBSCRIBED_REQUEST.into(), JobKind::Report, Utc::now());
    f.requests.create(&record, None).await.unwrap();
    assert_eq!(invoke(&f, SUBSCRIBE).await, 200);
    assert_eq!(
        received(&mut f),
        [json!({"type": "subscribed", "request_id": SUBSCRIBED_REQUEST, "status": "queued"})]
    );
    let subscribers = f
        .connections
        .subscribers(SUBSCRIBED_REQUEST, Utc::now())
        .await
        .unwrap();
    assert_eq!(subscribers, [CONNECTION]);

    assert_eq!(invoke(&f, DISCONNECT).await, 200);
    assert_eq!(f.connections.connections(), 0);
    assert_eq!(f.connections.subscriptions(), 0);
}

#[tokio::test]
async fn process_queues_the_request_and_answers_accepted() {
    let mut f = fixture();
    assert_eq!(invoke(&f, PROCESS).await, 200);
    let messages = received(&mut f);
    assert_eq!(messages.len(), 1, "{messages:?}");
    let accepted = &messages[0];
    assert_eq!(accepted["type"], "accepted");
    assert_eq!(accepted["client_ref"], "report-1");
    assert_eq!(accepted["status"], "queued");
    let id = accepted["id"].as_str().unwrap();
    let queued: Value = serde_json::from_str(&f.queue.try_receive().unwrap()).unwrap();
    assert_eq!(queued["request_id"], id);
    assert_eq!(queued["kind"], "report");
    assert_eq!(
        f.connections.subscribers(id, Utc::now()).await.unwrap(),
        [CONNECTION]
    );
}

#[tokio::test]
async fn a_bad_frame_gets_an_error_message() {
    let mut f = fixture();
    assert_eq!(invoke(&f, BAD_FRAME).await, 200);
    let messages = received(&mut f);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["type"], "error");
    assert_eq!(messages[0]["code"], "invalid_json");
}
