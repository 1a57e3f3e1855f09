//! The WebSocket handler and the processor's pushes on the in-memory
//! doubles: the race between completion and subscription, gone
//! connections, failing pushes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Pusher, WsApi, WsEvent, WsStatus, handle};
use crate::access::{Caller, split_scopes};
use crate::config::PeopleConfig;
use crate::index::Refresh;
use crate::jobs::{
    Enqueuer, FilterSpec, Job, JobKind, JobMessage, ProcessError, Processed, RequestRecord, Worker,
    process,
};
use crate::memory::connections::MemoryConnectionStore;
use crate::memory::faults::{
    Fault, Faults, FaultyConnectionStore, FaultyNotifier, FaultyRequestStore,
};
use crate::memory::{MemoryQueue, MemoryRequestStore};
use crate::people::open_memory as open_people;
use crate::ports::{ConnectionStore, Notifier, NotifyError, RequestStore, StoreError};

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
        assert_frame_schema(&message);
        self.sent
            .lock()
            .unwrap()
            .push((connection_id.to_owned(), message));
        Ok(())
    }
}

/// Validators per frame type, from docs/websocket.schema.json.
fn frame_schemas() -> &'static std::collections::HashMap<String, jsonschema::Validator> {
    static SCHEMAS: std::sync::OnceLock<std::collections::HashMap<String, jsonschema::Validator>> =
        std::sync::OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let doc: Value =
            serde_json::from_str(include_str!("../../../../docs/websocket.schema.json"))
                .expect("the schema file is JSON");
        doc["$defs"]
            .as_object()
            .expect("$defs")
            .keys()
            .map(|name| {
                let mut schema = doc.clone();
                schema["$ref"] = Value::String(format!("#/$defs/{name}"));
                let validator = jsonschema::validator_for(&schema)
                    .unwrap_or_else(|e| panic!("schema {name}: {e}"));
                (name.clone(), validator)
            })
            .collect()
    })
}

/// Every frame the server pushes in these tests matches the schema of its
/// `type` (docs/websocket.md).
fn assert_frame_schema(frame: &Value) {
    let kind = frame["type"].as_str().expect("a server frame has a type");
    let validator = frame_schemas()
        .get(kind)
        .unwrap_or_else(|| panic!("no schema for frame type {kind:?}"));
    let errors: Vec<String> = validator
        .iter_errors(frame)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{frame} does not match its schema: {errors:?}"
    );
}

#[test]
fn client_frames_the_handler_accepts_match_their_schemas_and_bad_ones_do_not() {
    let good = [
        json!({"action": "subscribe", "request_id": "r-1"}),
        json!({"action": "process", "request": {"kind": "report", "filter": {}}, "client_ref": "c1", "idempotency_key": "k1"}),
        json!({"action": "process", "request": {"kind": "delete", "ids": ["a"]}}),
    ];
    for frame in &good {
        let action = frame["action"].as_str().unwrap();
        assert!(frame_schemas()[action].is_valid(frame), "{frame}");
        assert!(
            super::frames::parse_frame(Some(&frame.to_string()), false).is_ok(),
            "{frame}"
        );
    }
    let bad = [
        json!({"action": "subscribe"}),
        json!({"action": "subscribe", "request_id": 7}),
        json!({"action": "process", "client_ref": "c1"}),
        json!({"action": "process", "request": {"kind": "report"}, "extra": 1}),
    ];
    for frame in &bad {
        let action = frame["action"].as_str().unwrap();
        assert!(!frame_schemas()[action].is_valid(frame), "{frame}");
        assert!(
            super::frames::parse_frame(Some(&frame.to_string()), false).is_err(),
            "{frame}"
        );
    }
    // The server's own frames, one of each type besides those the job
    // tests push.
    let error = super::frames::ServerMessage::Error {
        code: "invalid_json",
        message: "not JSON",
        field: None,
        client_ref: Some("c1"),
        request_id: None,
        correlation_id: None,
    };
    assert_frame_schema(&serde_json::to_value(&error).unwrap());
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
    /// Faults of the request store, the connection store and the notifier
    /// as the worker and the WebSocket routes see them (operations `get`,
    /// `start`, `finish`, ...; `subscribe`, `subscribers`, ...; `post`).
    faults: Faults,
}

async fn fixture() -> Fixture {
    fixture_on(Arc::new(MemoryQueue::new())).await
}

/// The fixture, with `process` frames queued on `queue`.
async fn fixture_on(queue: Arc<MemoryQueue>) -> Fixture {
    let config = PeopleConfig {
        seed_people: 500,
        ..PeopleConfig::from_lookup(|_| None).unwrap()
    };
    let people = open_people(&config, None, Refresh::Inline).await.unwrap();
    let requests = Arc::new(MemoryRequestStore::new());
    let recorder = Arc::new(Recorder::default());
    let connections = Arc::new(Shuffled(MemoryConnectionStore::new()));
    let faults = Faults::new();
    let pusher = Pusher {
        connections: Arc::new(FaultyConnectionStore {
            inner: connections.clone(),
            faults: faults.clone(),
        }),
        notifier: Arc::new(FaultyNotifier {
            inner: recorder.clone(),
            faults: faults.clone(),
        }),
    };
    let faulty_requests: Arc<dyn RequestStore> = Arc::new(FaultyRequestStore {
        inner: requests.clone(),
        faults: faults.clone(),
    });
    let worker = Arc::new(Worker {
        people,
        requests: faulty_requests.clone(),
        max_receives: 3,
        pusher: pusher.clone(),
    });
    let api = Arc::new(WsApi {
        pusher,
        enqueuer: Enqueuer {
            requests: faulty_requests,
            queue: queue.clone(),
            anonymous_writes: true,
        },
    });
    Fixture {
        worker,
        api,
        requests,
        recorder,
        connections,
        faults,
    }
}

/// An event of `route` on an anonymous connection, with API Gateway's
/// request id `req-ctx`.
fn event(route: &str, connection_id: &str, body: Option<Value>) -> WsEvent {
    WsEvent {
        route: route.to_owned(),
        connection_id: connection_id.to_owned(),
        correlation_id: Some("req-ctx".into()),
        body: body.map(|b| b.to_string()),
        is_base64: false,
        caller: Caller::Anonymous,
    }
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
        assert_eq!(response.unwrap(), WsStatus::OK);

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
    // Finished and kept; the message is not done with (see below).
    assert!(matches!(
        process(&f.worker, &body, 1, None).await,
        Err(ProcessError::Undelivered(_))
    ));
    let stored = f.requests.get("r2").await.unwrap().unwrap();
    assert!(stored.status.is_final());
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

fn results(f: &Fixture, connection: &str) -> usize {
    f.recorder
        .to(connection)
        .into_iter()
        .filter(|m| m["type"] == "process-result")
        .count()
}

/// 1b: a push that fails for now after the request finished leaves the
/// message undone, and its redelivery pushes the result.
#[tokio::test]
async fn a_duplicate_delivery_pushes_the_result_again() {
    let f = fixture().await;
    let body = queued(&f, "r3").await;
    subscribe(&f, "c", "r3").await;
    // The first delivery finishes the request but its push fails: the
    // subscription stays, and the message is not done with.
    f.recorder
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(matches!(
        process(&f.worker, &body, 1, None).await,
        Err(ProcessError::Undelivered(_))
    ));
    f.recorder
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(results(&f, "c"), 0);
    // The redelivery finds it finished and pushes the result.
    assert_eq!(
        process(&f.worker, &body, 2, None).await.unwrap(),
        Processed::Duplicate
    );
    assert_eq!(results(&f, "c"), 1);
    // Delivered, the subscription is gone: a third delivery pushes nothing.
    assert_eq!(f.connections.0.subscriptions(), 0);
    process(&f.worker, &body, 3, None).await.unwrap();
    assert_eq!(results(&f, "c"), 1);
}

/// 1b: the subscribers cannot be read when the result is to be pushed.
#[tokio::test]
async fn an_unreadable_subscriber_list_is_read_again_on_redelivery() {
    let f = fixture().await;
    let body = queued(&f, "r5").await;
    subscribe(&f, "c", "r5").await;
    // The status push reads them; the result push's read fails.
    f.faults.fail_after("subscribers", 1, Fault::Unavailable, 1);
    assert!(matches!(
        process(&f.worker, &body, 1, None).await,
        Err(ProcessError::Undelivered(_))
    ));
    assert_eq!(results(&f, "c"), 0);
    assert_eq!(
        process(&f.worker, &body, 2, None).await.unwrap(),
        Processed::Duplicate
    );
    assert_eq!(results(&f, "c"), 1);
}

/// 1a: `finish` is applied, its answer lost, and the SDK's retry finds the
/// request finished: the worker still pushes the result.
#[tokio::test]
async fn a_finish_whose_answer_was_lost_still_pushes_the_result() {
    let f = fixture().await;
    let body = queued(&f, "r6").await;
    subscribe(&f, "c", "r6").await;
    f.faults.fail("finish", Fault::Retried, 1);
    assert_eq!(
        process(&f.worker, &body, 1, None).await.unwrap(),
        Processed::Duplicate
    );
    assert_eq!(f.faults.fired(), [("finish", Fault::Retried)]);
    assert_eq!(results(&f, "c"), 1);
}

/// On the last delivery a push that fails for now still leaves the message
/// undone (SQS then dead-letters it) and never turns the stored result
/// into a failure.
#[tokio::test]
async fn a_last_delivery_whose_push_fails_keeps_the_result() {
    let f = fixture().await;
    let body = queued(&f, "r7").await;
    subscribe(&f, "c", "r7").await;
    f.faults.fail_after("post", 1, Fault::Unavailable, 1);
    assert!(matches!(
        process(&f.worker, &body, 3, None).await,
        Err(ProcessError::Undelivered(_))
    ));
    let stored = f.requests.get("r7").await.unwrap().unwrap();
    assert_eq!(stored.status, crate::jobs::RequestStatus::Completed);
}

/// A subscribe to a finished request whose push fails for now is tried
/// again at once: nobody else will push it.
#[tokio::test]
async fn a_subscribe_to_a_finished_request_retries_its_push() {
    let f = fixture().await;
    let body = queued(&f, "r8").await;
    process(&f.worker, &body, 1, None).await.unwrap();
    // `subscribed` goes out; the result's first two posts fail.
    f.faults.fail_after("post", 1, Fault::Unavailable, 2);
    subscribe(&f, "c", "r8").await;
    assert_eq!(results(&f, "c"), 1);
}

/// `process` frames with a worker pool running: the connection follows the
/// request before its message is sent, so it gets `accepted`, then
/// `processing`, then the result, every time; and a result push that fails
/// for now is delivered by the redelivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_frames_get_every_status_in_order_even_when_a_push_fails() {
    let queue = Arc::new(MemoryQueue::new());
    let f = fixture_on(queue.clone()).await;
    let worker = Arc::clone(&f.worker);
    queue.run_workers(2, 3, Duration::from_millis(20), move |body, receives| {
        let worker = Arc::clone(&worker);
        async move {
            process(&worker, &body, receives, None)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    });
    const FRAMES: usize = 40;
    let frame = |i: usize| json!({"action": "process", "client_ref": i.to_string(), "request": {"kind": "report", "filter": {"nationality": "Icelandic"}}});
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let wait_for_result = async |connection: &str| {
        loop {
            let types: Vec<String> = f
                .recorder
                .to(connection)
                .iter()
                .map(|m| m["type"].as_str().unwrap().to_owned())
                .collect();
            if types.iter().any(|t| t == "process-result") {
                assert_eq!(
                    types[..3],
                    ["accepted", "process-status", "process-result"],
                    "connection {connection}: {types:?}"
                );
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "connection {connection} got no result: {types:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    // The first one alone: its posts are `accepted`, `processing`, then
    // the result, which fails for now.
    handle(&f.api, event("$connect", "p0", None)).await;
    f.faults.fail_after("post", 2, Fault::Unavailable, 1);
    handle(&f.api, event("process", "p0", Some(frame(0)))).await;
    wait_for_result("p0").await;
    assert_eq!(f.faults.fired(), [("post", Fault::Unavailable)]);
    // Then many at once, racing the workers.
    for i in 1..FRAMES {
        let connection = format!("p{i}");
        handle(&f.api, event("$connect", &connection, None)).await;
        handle(&f.api, event("process", &connection, Some(frame(i)))).await;
    }
    for i in 1..FRAMES {
        wait_for_result(&format!("p{i}")).await;
    }
    assert!(queue.dead_letters().is_empty());
}

#[tokio::test]
async fn connect_and_disconnect_keep_the_store_in_step() {
    let f = fixture().await;
    queued(&f, "r4").await;
    assert_eq!(
        handle(&f.api, event("$connect", "c", None)).await,
        WsStatus::OK
    );
    subscribe(&f, "c", "r4").await;
    assert_eq!(f.connections.0.subscriptions(), 1);
    assert_eq!(
        handle(&f.api, event("$disconnect", "c", None)).await,
        WsStatus::OK
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

/// The sweeper's failure of a stuck request reaches its subscribers.
#[tokio::test]
async fn a_request_ended_by_the_sweeper_is_pushed_to_its_subscribers() {
    let f = fixture().await;
    queued(&f, "r9").await;
    subscribe(&f, "c", "r9").await;
    let long_ago = Utc::now() - chrono::Duration::hours(1);
    f.requests.start("r9", long_ago).await.unwrap();
    let sweeper = crate::jobs::Sweeper {
        requests: f.requests.clone(),
        pusher: f.api.pusher.clone(),
        stuck_after: Duration::from_secs(18 * 60),
    };
    let swept = crate::jobs::sweep(&sweeper, Utc::now()).await.unwrap();
    assert_eq!((swept.failed, swept.undelivered), (1, 0));
    let result = f
        .recorder
        .to("c")
        .into_iter()
        .find(|m| m["type"] == "process-result")
        .expect("the failure is pushed");
    assert_eq!(result["status"], "failed");
    assert_eq!(result["error"]["code"], "timed_out");
}

/// An event of a connection opened with a token of `sub` and `scope`, the
/// caller the `$connect` authorizer let through.
fn event_as(route: &str, connection_id: &str, body: Value, sub: &str, scope: &str) -> WsEvent {
    WsEvent {
        caller: Caller::user(Some(sub), split_scopes(Some(scope))),
        ..event(route, connection_id, Some(body))
    }
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
    assert_eq!((report.delivered, report.unavailable), (2, 1), "{report:?}");
    assert_eq!(notifier.0.to("a").len(), 1);
    assert_eq!(notifier.0.to("b").len(), 1);
}
