//! The enqueue Lambda's router on the API Gateway events of `events/`, as
//! lambda_http delivers them and the runtime answers them.

use std::sync::Arc;

use lambda_http::{Body, Request};
use people_app::jobs::{Enqueuer, JobMessage, RequestStatus};
use people_app::memory::{MemoryQueue, MemoryRequestStore};
use people_app::ports::RequestStore;
use serde_json::Value;

const REPORT: &str = include_str!("../../../events/enqueue-report.json");
const BAD_KIND: &str = include_str!("../../../events/enqueue-bad-kind.json");

fn deps() -> (Enqueuer, Arc<MemoryRequestStore>, Arc<MemoryQueue>) {
    let requests = Arc::new(MemoryRequestStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let deps = Enqueuer {
        requests: requests.clone(),
        queue: queue.clone(),
        anonymous_writes: true,
    };
    (deps, requests, queue)
}

fn event(json: &str) -> Request {
    lambda_http::request::from_str(json).expect("fixture is an API Gateway v2 event")
}

/// The function's service over `deps`, with a people store of its own.
fn service(deps: &Enqueuer) -> people_http::lambda::HttpService {
    enqueue::service(enqueue::Writes {
        enqueue: Enqueuer {
            requests: deps.requests.clone(),
            queue: deps.queue.clone(),
            anonymous_writes: deps.anonymous_writes,
        },
        people: people_http::PeopleWriter {
            store: Arc::new(people_app::memory::MemoryPeopleStore::new()),
            index: None,
            anonymous_writes: deps.anonymous_writes,
        },
    })
}

async fn call(deps: &Enqueuer, json: &str) -> (u16, Value) {
    let response = people_http::lambda::invoke(&service(deps), event(json)).await;
    let body = match response.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("expected text, got {other:?}"),
    };
    (response.status().as_u16(), body)
}

#[tokio::test]
async fn a_report_is_recorded_queued_and_sent_once_per_key() {
    let (deps, requests, queue) = deps();
    let (status, body) = call(&deps, REPORT).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "queued");
    let id = body["id"].as_str().unwrap();
    let record = requests.get(id).await.unwrap().unwrap();
    assert_eq!(record.status, RequestStatus::Queued);
    let message: JobMessage = serde_json::from_str(&queue.try_receive().unwrap()).unwrap();
    assert_eq!(message.request_id, id);
    // No x-correlation-id: API Gateway's request id names the job.
    assert_eq!(message.correlation_id, "Hk3aZgWqDoEEMdQ=");
    // The fixture carries an Idempotency-Key: the same request, no new message.
    let (status, again) = call(&deps, REPORT).await;
    assert_eq!((status, again["id"].as_str()), (202, Some(id)));
    assert!(queue.try_receive().is_none());
}

#[tokio::test]
async fn the_callers_correlation_id_goes_before_api_gateways_request_id() {
    let (deps, _, queue) = deps();
    let mut event: Value = serde_json::from_str(REPORT).unwrap();
    event["headers"]["x-correlation-id"] = "client-chosen-1".into();
    let (status, body) = call(&deps, &event.to_string()).await;
    assert_eq!(status, 202, "{body}");
    let message: JobMessage = serde_json::from_str(&queue.try_receive().unwrap()).unwrap();
    assert_eq!(message.correlation_id, "client-chosen-1");
}

#[tokio::test]
async fn a_bad_kind_is_a_400_and_nothing_is_queued() {
    let (deps, _, queue) = deps();
    let (status, body) = call(&deps, BAD_KIND).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["parameter"], "kind");
    assert!(queue.try_receive().is_none());
}

#[tokio::test]
async fn a_failed_send_is_reported_and_leaves_no_queued_record() {
    let (deps, requests, queue) = deps();
    queue.fail_next_sends(1);
    let (status, body) = call(&deps, REPORT).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["correlation_id"].is_string());
    assert!(
        !body.to_string().contains("injected"),
        "no internal text: {body}"
    );
    assert!(queue.try_receive().is_none());
    // The request was marked failed and its key freed: the same key
    // submits it again, as a new request that is queued.
    let (status, again) = call(&deps, REPORT).await;
    assert_eq!(status, 202, "{again}");
    let id = again["id"].as_str().unwrap();
    let record = requests.get(id).await.unwrap().unwrap();
    assert_eq!(record.status, RequestStatus::Queued);
    let message: JobMessage = serde_json::from_str(&queue.try_receive().unwrap()).unwrap();
    assert_eq!(message.request_id, id);
    assert_eq!(requests.len(), 2, "the failed one is kept, as failed");
}

const IMPORT_JWT: &str = include_str!("../../../events/enqueue-import-jwt.json");

/// The JWT fixture with another `sub`, other scopes, body or key.
fn as_caller(sub: &str, scopes: &[&str], body: Option<&str>, key: Option<&str>) -> String {
    let mut event: Value = serde_json::from_str(IMPORT_JWT).unwrap();
    let jwt = &mut event["requestContext"]["authorizer"]["jwt"];
    jwt["claims"]["sub"] = sub.into();
    jwt["claims"]["scope"] = scopes.join(" ").into();
    jwt["scopes"] = scopes.iter().map(|s| Value::from(*s)).collect();
    if let Some(body) = body {
        event["body"] = body.into();
    }
    if let Some(key) = key {
        event["headers"]["idempotency-key"] = key.into();
    }
    event.to_string()
}

#[tokio::test]
async fn an_import_needs_the_write_scope_and_a_report_the_read_scope() {
    let (deps, requests, queue) = deps();
    // A token with people:write imports; the request is its caller's.
    let (status, body) = call(&deps, IMPORT_JWT).await;
    assert_eq!(status, 202, "{body}");
    let record = requests
        .get(body["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.owner.as_deref(), Some("7d1c2f5e-writer"));
    assert!(queue.try_receive().is_some());
    // A token with people:read only: 403, nothing recorded or queued.
    let (status, body) = call(
        &deps,
        &as_caller("reader", &["people:read"], None, Some("r-1")),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("people:write")
    );
    assert!(queue.try_receive().is_none());
    assert_eq!(requests.len(), 1);
    // ... a report it may; a write-only token may not.
    let report = r#"{"kind": "report"}"#;
    let (status, _) = call(
        &deps,
        &as_caller("reader", &["people:read"], Some(report), Some("r-2")),
    )
    .await;
    assert_eq!(status, 202);
    let (status, _) = call(
        &deps,
        &as_caller("w", &["people:write"], Some(report), Some("r-3")),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn anonymous_imports_are_refused_unless_turned_on() {
    let (mut deps, requests, _) = deps();
    deps.anonymous_writes = false;
    let mut event: Value = serde_json::from_str(IMPORT_JWT).unwrap();
    event["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    let (status, body) = call(&deps, &event.to_string()).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("AllowAnonymousWrites")
    );
    assert!(requests.is_empty());
    // Reports stay open to anonymous callers.
    let (status, _) = call(&deps, REPORT).await;
    assert_eq!(status, 202);
    deps.anonymous_writes = true;
    let (status, _) = call(&deps, &event.to_string()).await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn a_key_is_the_callers_own_and_another_body_under_it_is_a_422() {
    let (deps, requests, _) = deps();
    let both = ["people:read", "people:write"];
    let (_, first) = call(&deps, &as_caller("alice", &both, None, Some("k-1"))).await;
    // The same key and body, spaced and ordered differently: the same request.
    let respaced = r#"{ "people": [{"hobbies": ["Chess"], "nationality": "British", "last_name": "Lovelace", "first_name": "Ada"}], "kind": "import" }"#;
    let (status, again) = call(
        &deps,
        &as_caller("alice", &both, Some(respaced), Some("k-1")),
    )
    .await;
    assert_eq!((status, &again["id"]), (202, &first["id"]), "{again}");
    // Another body under the key: 422, and nothing new.
    let other = r#"{"kind": "import", "people": [{"first_name": "Alan", "last_name": "Turing", "nationality": "British", "hobbies": []}]}"#;
    let (status, body) = call(&deps, &as_caller("alice", &both, Some(other), Some("k-1"))).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    assert_eq!(requests.len(), 1);
    // Another caller with the same key gets a request of its own.
    let (status, bobs) = call(&deps, &as_caller("bob", &both, None, Some("k-1"))).await;
    assert_eq!(status, 202);
    assert_ne!(bobs["id"], first["id"]);
    assert_eq!(requests.len(), 2);
}

const PUT_PERSON: &str = include_str!("../../../events/enqueue-put-person.json");
const PUT_INVALID: &str = include_str!("../../../events/enqueue-put-person-invalid.json");
const DELETE_PERSON: &str = include_str!("../../../events/enqueue-delete-person.json");

fn writes() -> (enqueue::Writes, Arc<people_app::memory::MemoryPeopleStore>) {
    let (enqueue, _, _) = deps();
    let store = Arc::new(people_app::memory::MemoryPeopleStore::new());
    let writes = enqueue::Writes {
        enqueue,
        people: people_http::PeopleWriter {
            store: store.clone(),
            index: None,
            anonymous_writes: true,
        },
    };
    (writes, store)
}

async fn call_writes(deps: &enqueue::Writes, json: &str) -> (u16, Option<Value>) {
    let service = enqueue::service(enqueue::Writes {
        enqueue: Enqueuer {
            requests: deps.enqueue.requests.clone(),
            queue: deps.enqueue.queue.clone(),
            anonymous_writes: deps.enqueue.anonymous_writes,
        },
        people: people_http::PeopleWriter {
            store: deps.people.store.clone(),
            index: deps.people.index.clone(),
            anonymous_writes: deps.people.anonymous_writes,
        },
    });
    let response = people_http::lambda::invoke(&service, event(json)).await;
    let body = match response.body() {
        Body::Text(t) if t.is_empty() => None,
        Body::Text(t) => Some(serde_json::from_str(t).unwrap()),
        Body::Empty => None,
        Body::Binary(b) if b.is_empty() => None,
        other => panic!("expected text, got {other:?}"),
    };
    (response.status().as_u16(), body)
}

/// PUT creates (201) then replaces (200); DELETE is 204 then 404; the
/// change feed carries the tombstone for the query function's index.
#[tokio::test]
async fn a_person_is_put_replaced_and_deleted_through_api_gateway_events() {
    use people_app::ports::PeopleStore;
    use people_core::domain::Change;
    let (deps, store) = writes();
    let v0 = store.latest_version().await.unwrap();

    let (status, body) = call_writes(&deps, PUT_PERSON).await;
    assert_eq!(status, 201, "{body:?}");
    let body = body.unwrap();
    assert_eq!(body["id"], "p-1001");
    assert_eq!(body["first_name"], "Zoë");
    assert_eq!(
        store.get("p-1001").await.unwrap().map(|p| p.hobbies),
        Some(vec!["Chess".to_owned(), "Hiking".to_owned()])
    );
    let (status, _) = call_writes(&deps, PUT_PERSON).await;
    assert_eq!(status, 200, "the same id again replaces");

    let (status, body) = call_writes(&deps, PUT_INVALID).await;
    assert_eq!(status, 400);
    assert_eq!(body.unwrap()["error"]["parameter"], "first_name");
    assert_eq!(
        store.get("p-1001").await.unwrap().map(|p| p.first_name),
        Some("Zoë".to_owned()),
        "a refused write changes nothing"
    );

    let (status, body) = call_writes(&deps, DELETE_PERSON).await;
    assert_eq!((status, body), (204, None));
    assert_eq!(store.get("p-1001").await.unwrap(), None);
    let changes = store.changes_since(v0, 10).await.unwrap();
    assert_eq!(changes.changes, [Change::Delete("p-1001".into())]);
    let (status, body) = call_writes(&deps, DELETE_PERSON).await;
    assert_eq!(status, 404);
    assert_eq!(body.unwrap()["error"]["code"], "not_found");

    // POST /requests still goes to the enqueue handler.
    let (status, body) = call_writes(&deps, REPORT).await;
    assert_eq!(status, 202, "{body:?}");
}

/// `event` as sent by a caller whose token is of `sub` with `scopes`.
fn with_token(json: &str, sub: &str, scopes: &[&str]) -> String {
    let mut event: Value = serde_json::from_str(json).unwrap();
    event["requestContext"]["authorizer"] = serde_json::json!({
        "jwt": {
            "claims": {"sub": sub, "scope": scopes.join(" ")},
            "scopes": scopes,
        }
    });
    event.to_string()
}

/// PUT and DELETE of a person need the write scope, as imports do; a
/// caller without a token writes only where anonymous writes are on.
#[tokio::test]
async fn writing_a_person_needs_the_write_scope() {
    use people_app::ports::PeopleStore;
    let (mut deps, store) = writes();
    for fixture in [PUT_PERSON, DELETE_PERSON] {
        // GIVEN a token that may only read WHEN it writes THEN 403
        let (status, body) = call_writes(&deps, &with_token(fixture, "u1", &["people:read"])).await;
        assert_eq!(status, 403, "{body:?}");
        assert_eq!(body.unwrap()["error"]["code"], "forbidden");
    }
    assert_eq!(store.get("p-1001").await.unwrap(), None, "nothing written");
    // A token with people:write writes.
    let (status, _) = call_writes(&deps, &with_token(PUT_PERSON, "u1", &["people:write"])).await;
    assert_eq!(status, 201);
    // Anonymous writes turned off: refused.
    deps.people.anonymous_writes = false;
    let (status, body) = call_writes(&deps, DELETE_PERSON).await;
    assert_eq!(status, 403, "{body:?}");
    assert!(store.get("p-1001").await.unwrap().is_some());
}

/// On a named stage, `rawPath` starts with the stage: the write routes
/// answer as on `$default`, as the query function's do.
#[tokio::test]
async fn a_named_stage_answers_as_the_default_one() {
    let (deps, store) = writes();
    let mut event: Value = serde_json::from_str(PUT_PERSON).unwrap();
    event["rawPath"] = "/prod/people/p-1001".into();
    event["requestContext"]["http"]["path"] = "/prod/people/p-1001".into();
    event["requestContext"]["stage"] = "prod".into();
    let (status, body) = call_writes(&deps, &event.to_string()).await;
    assert_eq!(status, 201, "{body:?}");
    use people_app::ports::PeopleStore;
    assert!(store.get("p-1001").await.unwrap().is_some());
    let mut event: Value = serde_json::from_str(REPORT).unwrap();
    event["rawPath"] = "/prod/requests".into();
    event["requestContext"]["stage"] = "prod".into();
    let (status, body) = call_writes(&deps, &event.to_string()).await;
    assert_eq!(status, 202, "{body:?}");
}
