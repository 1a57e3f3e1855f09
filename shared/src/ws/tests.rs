//! The WebSocket handler and the processor's pushes on the in-memory
//! doubles: the race between completion and subscription, gone
//! connections, failing pushes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Pusher, WsApi, handle};
use crate::adapters::memory::{MemoryQueue, MemoryRequestStore};
use crate::adapters::memory_connections::MemoryConnectionStore;
use crate::config::PeopleConfig;
use crate::jobs::{
    Enqueuer, FilterSpec, Job, JobKind, JobMessage, Processed, RequestRecord, Worker, process,
};
use crate::ports::{ConnectionStore, Notifier, NotifyError, RequestStore, StoreError};
use crate::search::Refresh;
use crate::wiring::open_people;

/// Records every message pushed; connections listed in `gone` answer 410,
/// and with `failing` set every push fails as unavailable.
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<(String, Value)>>,
    gone: Mutex<Vec<String>>,
    failing: std::sync::atomic::AtomicBool,
}

impl Recorder {
    fn to(&self, connection_id: &str) -> Vec<Value> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| c == connection_id)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

#[async_trait]
impl Notifier for Recorder {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), NotifyError> {
        tokio::task::yield_now().await;
        if self.gone.lock().unwrap().iter().any(|g| g == connection_id) {
            return Err(NotifyError::Gone);
        }
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(NotifyError::Unavailable("injected".into()));
        }
        let message = serde_json::from_slice(data).expect("pushes are JSON");
        self.sent
            .lock()
            .unwrap()
            .push((connection_id.to_owned(), message));
        Ok(())
    }
}

/// The memory connection store, yielding to the scheduler a random number
/// of times around each call, so that concurrent callers interleave in
/// every order.
struct Shuffled(MemoryConnectionStore);

async fn shuffle() {
    for _ in 0..rand::random_range(0..4) {
        tokio::task::yield_now().await;
    }
}

#[async_trait]
impl ConnectionStore for Shuffled {
    async fn connect(&self, c: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.0.connect(c, now).await
    }
    async fn disconnect(&self, c: &str) -> Result<(), StoreError> {
        self.0.disconnect(c).await
    }
    async fn subscribe(&self, c: &str, r: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        shuffle().await;
        let done = self.0.subscribe(c, r, now).await;
        shuffle().await;
        done
    }
    async fn unsubscribe(&self, c: &str, r: &str) -> Result<(), StoreError> {
        self.0.unsubscribe(c, r).await
    }
    async fn subscriptions(&self, c: &str, now: DateTime<Utc>) -> Result<usize, StoreError> {
        ConnectionStore::subscriptions(&self.0, c, now).await
    }
    async fn subscribers(&self, r: &str, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        shuffle().await;
        let found = self.0.subscribers(r, now).await;
        shuffle().await;
        found
    }
}

struct Fixture {
    worker: Arc<Worker>,
    api: Arc<WsApi>,
    requests: Arc<MemoryRequestStore>,
    recorder: Arc<Recorder>,
    connections: Arc<Shuffled>,
}

async fn fixture() -> Fixture {
    let config = PeopleConfig {
        seed_people: 500,
        ..PeopleConfig::from_lookup(|_| None).unwrap()
    };
    let people = open_people(&config, None, Refresh::Inline).await.unwrap();
    let requests = Arc::new(MemoryRequestStore::new());
    let recorder = Arc::new(Recorder::default());
    let connections = Arc::new(Shuffled(MemoryConnectionStore::new()));
    let pusher = Pusher {
        connections: connections.clone(),
        notifier: recorder.clone(),
    };
    let worker = Arc::new(Worker {
        people,
        requests: requests.clone(),
        max_receives: 3,
        pusher: pusher.clone(),
    });
    let api = Arc::new(WsApi {
        pusher,
        enqueuer: Enqueuer {
            requests: requests.clone(),
            queue: Arc::new(MemoryQueue::new()),
            anonymous_writes: true,
        },
    });
    Fixture {
        worker,
        api,
        requests,
        recorder,
        connections,
    }
}

fn event(route: &str, connection_id: &str, body: Option<Value>) -> ApiGatewayWebsocketProxyRequest {
    serde_json::from_value(json!({
        "requestContext": {
            "routeKey": route,
            "eventType": if route == "$connect" { "CONNECT" } else if route == "$disconnect" { "DISCONNECT" } else { "MESSAGE" },
            "connectionId": connection_id,
            "requestId": "req-ctx",
            "connectedAt": 0,
            "requestTimeEpoch": 0,
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false,
    }))
    .unwrap()
}

/// `connection` subscribes to `request_id`, as the `subscribe` route does.
async fn subscribe(f: &Fixture, connection: &str, request_id: &str) {
    let frame = json!({"action": "subscribe", "request_id": request_id});
    handle(&f.api, event("subscribe", connection, Some(frame))).await;
}

/// A queued report request and the message a worker would receive.
async fn queued(f: &Fixture, id: &str) -> String {
    let record = RequestRecord::queued(id.to_owned(), JobKind::Report, Utc::now());
    f.requests.create(&record, None).await.unwrap();
    serde_json::to_string(&JobMessage {
        request_id: id.to_owned(),
        correlation_id: "c".into(),
        id_seed: None,
        job: Job::Report {
            filter: FilterSpec::default(),
        },
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_racing_subscription_never_loses_the_result() {
    let f = fixture().await;
    let mut pushed_by_worker = 0;
    let mut pushed_on_subscribe = 0;
    for i in 0..300 {
        let id = format!("req-{i}");
        let connection = format!("conn-{i}");
        let body = queued(&f, &id).await;
        handle(&f.api, event("$connect", &connection, None)).await;
        let worker = Arc::clone(&f.worker);
        let api = Arc::clone(&f.api);
        let frame = json!({"action": "subscribe", "request_id": id});
        // Most rounds race for real; every tenth round one side is held
        // back a little, so that both orders surely occur whatever the
        // scheduler favours on a loaded machine.
        let (hold_process, hold_subscribe) = match i % 10 {
            0 => (Duration::from_millis(20), Duration::ZERO),
            5 => (Duration::ZERO, Duration::from_millis(20)),
            _ => (Duration::ZERO, Duration::ZERO),
        };
        let processing = tokio::spawn(async move {
            tokio::time::sleep(hold_process).await;
            process(&worker, &body, 1, None).await
        });
        let subscribing = tokio::spawn({
            let connection = connection.clone();
            async move {
                tokio::time::sleep(hold_subscribe).await;
                handle(&api, event("subscribe", &connection, Some(frame))).await
            }
        });
        let (processed, response) = tokio::join!(processing, subscribing);
        assert_eq!(processed.unwrap().unwrap(), Processed::Completed);
        assert_eq!(response.unwrap().status_code, 200);

        let messages = f.recorder.to(&connection);
        let subscribed = messages.iter().find(|m| m["type"] == "subscribed");
        let results = messages
            .iter()
            .filter(|m| m["type"] == "process-result" && m["id"] == id)
            .count();
        assert!(results >= 1, "request {id}: no result in {messages:?}");
        if subscribed.is_some_and(|s| s["status"] == "completed") {
            pushed_on_subscribe += 1;
        } else {
            pushed_by_worker += 1;
        }
    }
    // Both orders happened, so both paths were tested.
    assert!(
        pushed_by_worker > 0 && pushed_on_subscribe > 0,
        "{pushed_by_worker} / {pushed_on_subscribe}"
    );
}

#[tokio::test]
async fn a_gone_subscriber_is_removed_and_the_job_still_completes() {
    let f = fixture().await;
    let body = queued(&f, "r1").await;
    for c in ["alive", "dead"] {
        handle(&f.api, event("$connect", c, None)).await;
        subscribe(&f, c, "r1").await;
    }
    f.recorder.gone.lock().unwrap().push("dead".into());
    assert_eq!(
        process(&f.worker, &body, 1, None).await.unwrap(),
        Processed::Completed
    );
    assert!(
        f.recorder
            .to("alive")
            .iter()
            .any(|m| m["type"] == "process-result")
    );
    // The gone connection left the store; the live one stays connected,
    // its subscription done with once it got the result.
    assert_eq!(f.connections.0.connections(), 1);
    assert!(
        f.connections
            .0
            .subscribers("r1", Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(f.connections.0.subscriptions(), 0);
}

#[tokio::test]
async fn failing_pushes_never_fail_the_job_and_the_result_is_kept() {
    let f = fixture().await;
    let body = queued(&f, "r2").await;
    handle(&f.api, event("$connect", "c", None)).await;
    subscribe(&f, "c", "r2").await;
    f.recorder
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        process(&f.worker, &body, 1, None).await.unwrap(),
        Processed::Completed
    );
    let stored = f.requests.get("r2").await.unwrap().unwrap();
    assert!(stored.result.is_some());
    // Once pushes work again, subscribing again delivers it.
    f.recorder
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    subscribe(&f, "c", "r2").await;
    let results: Vec<Value> = f
        .recorder
        .to("c")
        .into_iter()
        .filter(|m| m["type"] == "process-result")
        .collect();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["result"], stored.result.unwrap());
}

#[tokio::test]
async fn a_duplicate_delivery_pushes_the_result_again() {
    let f = fixture().await;
    let body = queued(&f, "r3").await;
    subscribe(&f, "c", "r3").await;
    // The first delivery finishes the request but its push fails (as if
    // the worker had died before pushing): the subscription stays.
    f.recorder
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        process(&f.worker, &body, 1, None).await.unwrap(),
        Processed::Completed
    );
    f.recorder
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let results = |f: &Fixture| {
        f.recorder
            .to("c")
            .into_iter()
            .filter(|m| m["type"] == "process-result")
            .count()
    };
    assert_eq!(results(&f), 0);
    // The redelivery finds it finished and pushes the result.
    assert_eq!(
        process(&f.worker, &body, 2, None).await.unwrap(),
        Processed::Duplicate
    );
    assert_eq!(results(&f), 1);
    // Delivered, the subscription is gone: a third delivery pushes nothing.
    assert_eq!(f.connections.0.subscriptions(), 0);
    process(&f.worker, &body, 3, None).await.unwrap();
    assert_eq!(results(&f), 1);
}

#[tokio::test]
async fn connect_and_disconnect_keep_the_store_in_step() {
    let f = fixture().await;
    queued(&f, "r4").await;
    assert_eq!(
        handle(&f.api, event("$connect", "c", None))
            .await
            .status_code,
        200
    );
    subscribe(&f, "c", "r4").await;
    assert_eq!(f.connections.0.subscriptions(), 1);
    assert_eq!(
        handle(&f.api, event("$disconnect", "c", None))
            .await
            .status_code,
        200
    );
    assert_eq!(f.connections.0.connections(), 0);
    assert_eq!(f.connections.0.subscriptions(), 0);
}

#[tokio::test]
async fn process_frames_are_checked_like_post_requests() {
    let f = fixture().await;
    let frame = json!({"action": "process", "client_ref": "x", "request": {"kind": "import", "people": []}});
    handle(&f.api, event("process", "c", Some(frame))).await;
    let reply = f.recorder.to("c").pop().unwrap();
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["code"], "invalid_request");
    assert_eq!(reply["field"], "request.people");
    assert_eq!(reply["client_ref"], "x");
}

/// An event of a connection opened with a token of `sub` and `scope`, as
/// API Gateway passes the `$connect` authorizer's context.
fn event_as(
    route: &str,
    connection_id: &str,
    body: Value,
    sub: &str,
    scope: &str,
) -> ApiGatewayWebsocketProxyRequest {
    let mut event = event(route, connection_id, Some(body));
    event.request_context.authorizer.fields =
        serde_json::from_value(json!({"principalId": sub, "sub": sub, "scope": scope})).unwrap();
    event
}

fn import_frame() -> Value {
    json!({"action": "process", "request": {"kind": "import", "people": [
        {"first_name": "Ada", "last_name": "Lovelace", "nationality": "British", "hobbies": []}
    ]}})
}

#[tokio::test]
async fn a_process_of_an_import_needs_the_write_scope() {
    let f = fixture().await;
    // GIVEN a connection whose token may read only
    handle(
        &f.api,
        event_as("process", "reader", import_frame(), "u1", "people:read"),
    )
    .await;
    // THEN its import is refused, and nothing is recorded
    let reply = f.recorder.to("reader").pop().unwrap();
    assert_eq!(reply["code"], "forbidden", "{reply}");
    assert!(f.requests.is_empty());
    // ... while its report is accepted
    let report = json!({"action": "process", "request": {"kind": "report"}});
    handle(
        &f.api,
        event_as("process", "reader", report, "u1", "people:read"),
    )
    .await;
    assert_eq!(f.recorder.to("reader").last().unwrap()["type"], "accepted");
    // AND a token with people:write imports
    handle(
        &f.api,
        event_as("process", "writer", import_frame(), "u2", "people:write"),
    )
    .await;
    assert_eq!(f.recorder.to("writer")[0]["type"], "accepted");
}

#[tokio::test]
async fn anonymous_imports_over_the_websocket_follow_the_setting() {
    let mut f = fixture().await;
    Arc::get_mut(&mut f.api).unwrap().enqueuer.anonymous_writes = false;
    handle(&f.api, event("process", "anon", Some(import_frame()))).await;
    assert_eq!(f.recorder.to("anon").pop().unwrap()["code"], "forbidden");
    assert!(f.requests.is_empty());
}

#[tokio::test]
async fn another_callers_request_cannot_be_subscribed_to() {
    let f = fixture().await;
    // GIVEN a request of user u1
    handle(
        &f.api,
        event_as("process", "c-u1", import_frame(), "u1", "people:write"),
    )
    .await;
    let id = f.recorder.to("c-u1")[0]["id"].as_str().unwrap().to_owned();
    // WHEN user u2, or an anonymous connection, subscribes to it
    let frame = json!({"action": "subscribe", "request_id": id});
    handle(
        &f.api,
        event_as(
            "subscribe",
            "c-u2",
            frame.clone(),
            "u2",
            "people:read people:write",
        ),
    )
    .await;
    handle(&f.api, event("subscribe", "c-anon", Some(frame.clone()))).await;
    // THEN it is "not found", as an unknown id, and they follow nothing
    for c in ["c-u2", "c-anon"] {
        let reply = f.recorder.to(c).pop().unwrap();
        assert_eq!(
            (reply["type"].as_str(), reply["code"].as_str()),
            (Some("error"), Some("not_found")),
            "{reply}"
        );
        assert_eq!(
            ConnectionStore::subscriptions(&f.connections.0, c, Utc::now())
                .await
                .unwrap(),
            0
        );
    }
    // ... while u1 on another connection subscribes
    handle(
        &f.api,
        event_as("subscribe", "c-u1-b", frame, "u1", "people:read"),
    )
    .await;
    assert_eq!(f.recorder.to("c-u1-b")[0]["type"], "subscribed");
}

#[tokio::test]
async fn subscriptions_per_connection_and_followers_per_request_are_capped() {
    use super::{MAX_FOLLOWERS_PER_REQUEST, MAX_SUBSCRIPTIONS_PER_CONNECTION};
    let f = fixture().await;
    // GIVEN a connection that follows as many requests as it may
    for i in 0..=MAX_SUBSCRIPTIONS_PER_CONNECTION {
        queued(&f, &format!("capped-{i}")).await;
    }
    for i in 0..MAX_SUBSCRIPTIONS_PER_CONNECTION {
        subscribe(&f, "busy", &format!("capped-{i}")).await;
    }
    assert!(
        f.recorder
            .to("busy")
            .iter()
            .all(|m| m["type"] == "subscribed")
    );
    // WHEN it subscribes to one more, or processes one more
    subscribe(
        &f,
        "busy",
        &format!("capped-{MAX_SUBSCRIPTIONS_PER_CONNECTION}"),
    )
    .await;
    let reply = f.recorder.to("busy").pop().unwrap();
    assert_eq!(reply["code"], "too_many_subscriptions", "{reply}");
    let report = json!({"action": "process", "request": {"kind": "report"}});
    handle(&f.api, event("process", "busy", Some(report))).await;
    assert_eq!(
        f.recorder.to("busy").pop().unwrap()["code"],
        "too_many_subscriptions"
    );
    assert_eq!(
        f.requests.len(),
        MAX_SUBSCRIPTIONS_PER_CONNECTION + 1,
        "nothing submitted"
    );
    // ... while subscribing again to one it follows is fine
    subscribe(&f, "busy", "capped-0").await;
    assert_eq!(f.recorder.to("busy").pop().unwrap()["type"], "subscribed");

    // GIVEN a request with as many followers as it may have
    queued(&f, "popular").await;
    for i in 0..MAX_FOLLOWERS_PER_REQUEST {
        subscribe(&f, &format!("fan-{i}"), "popular").await;
    }
    // WHEN one more connection subscribes THEN it is refused
    subscribe(&f, "one-too-many", "popular").await;
    let reply = f.recorder.to("one-too-many").pop().unwrap();
    assert_eq!(reply["code"], "too_many_followers", "{reply}");
    assert_eq!(
        f.connections
            .subscribers("popular", Utc::now())
            .await
            .unwrap()
            .len(),
        MAX_FOLLOWERS_PER_REQUEST
    );
}

#[tokio::test]
async fn a_process_frame_key_means_what_the_idempotency_key_header_means() {
    let f = fixture().await;
    let frame = |search: &str| {
        json!({"action": "process", "idempotency_key": "ws-key-1",
               "request": {"kind": "report", "filter": {"search": search}}})
    };
    // The same key and body: the same request.
    handle(
        &f.api,
        event_as("process", "c1", frame("jo"), "u1", "people:read"),
    )
    .await;
    handle(
        &f.api,
        event_as("process", "c1", frame("jo"), "u1", "people:read"),
    )
    .await;
    let accepted: Vec<Value> = f
        .recorder
        .to("c1")
        .into_iter()
        .filter(|m| m["type"] == "accepted")
        .collect();
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[0]["id"], accepted[1]["id"]);
    // Another body under the key: refused, as 422 over HTTP.
    handle(
        &f.api,
        event_as("process", "c1", frame("ann"), "u1", "people:read"),
    )
    .await;
    let reply = f.recorder.to("c1").pop().unwrap();
    assert_eq!(reply["code"], "idempotency_key_reused", "{reply}");
    // Another caller's same key is its own.
    handle(
        &f.api,
        event_as("process", "c2", frame("ann"), "u2", "people:read"),
    )
    .await;
    let theirs = f.recorder.to("c2")[0].clone();
    assert_eq!(theirs["type"], "accepted");
    assert_ne!(theirs["id"], accepted[0]["id"]);
    assert_eq!(f.requests.len(), 2);
}

/// A notifier whose posts to `stuck` never answer.
struct Stuck(Recorder);

#[async_trait]
impl Notifier for Stuck {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), NotifyError> {
        if connection_id == "stuck" {
            std::future::pending::<()>().await;
        }
        self.0.post(connection_id, data).await
    }
}

#[tokio::test]
async fn the_fan_out_of_a_result_is_bounded_in_time() {
    let connections = Arc::new(MemoryConnectionStore::new());
    let notifier = Arc::new(Stuck(Recorder::default()));
    let pusher = Pusher {
        connections: connections.clone(),
        notifier: notifier.clone(),
    };
    let mut record = RequestRecord::queued("slow".into(), JobKind::Report, Utc::now());
    record.status = crate::jobs::RequestStatus::Completed;
    for c in ["a", "stuck", "b"] {
        connections.subscribe(c, "slow", Utc::now()).await.unwrap();
    }
    // A connection that never answers does not hold the push forever: it
    // ends after FANOUT_TIME_LIMIT, the others delivered, the stuck one
    // counted failed.
    let report = tokio::time::timeout(
        super::FANOUT_TIME_LIMIT * 4,
        pusher.result_to_subscribers(&record),
    )
    .await
    .expect("the fan-out ends by itself");
    assert_eq!((report.delivered, report.failed), (2, 1), "{report:?}");
    assert_eq!(notifier.0.to("a").len(), 1);
    assert_eq!(notifier.0.to("b").len(), 1);
}
