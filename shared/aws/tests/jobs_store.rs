//! The request store and job queue ports on AWS's wire protocols.
//!
//! Each request store scenario is written once against `&dyn RequestStore`
//! and runs on `MemoryRequestStore` and on `DynamoRequestStore` against a
//! moto server (a fresh table per test), so the double and the real adapter
//! cannot drift apart. The tests after the scenarios are DynamoDB's own
//! (item layout, TTL, races) and SQS's (queue setup, message shape, error
//! mapping, redrive to the dead-letter queue).

use people_testkit::moto;

use std::collections::HashMap;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use aws_smithy_types::body::SdkBody;
use chrono::{DateTime, TimeDelta, Utc};
use people_app::access::Caller;
use people_app::jobs::wire::VISIBILITY_TIMEOUT;
use people_app::jobs::{
    FilterSpec, Job, JobError, JobKind, JobMessage, RequestRecord, RequestStatus,
};
use people_app::memory::MemoryRequestStore;
use people_app::ports::{
    Created, JobQueue, Outcome, QueueError, RequestStore, Started, StoreError,
};
use people_aws::dynamodb_requests::{
    DynamoRequestStore, FINISHED_TTL, MAX_RESULT_JSON_BYTES, UNFINISHED_TTL, create_requests_table,
};
use people_aws::sqs::{SqsQueue, create_queues};
use serde_json::json;

fn new_request(kind: JobKind) -> RequestRecord {
    RequestRecord::queued(uuid::Uuid::new_v4().to_string(), kind, Utc::now())
}

fn later(seconds: i64) -> DateTime<Utc> {
    Utc::now() + TimeDelta::seconds(seconds)
}

fn failure(code: &str) -> Outcome {
    Outcome::Failed(JobError {
        code: code.into(),
        message: format!("{code}: it went wrong"),
    })
}

async fn created(store: &dyn RequestStore, record: &RequestRecord, key: Option<&str>) {
    assert_eq!(
        store.create(record, key).await.unwrap(),
        Created::New(record.clone())
    );
}

// ---------------------------------------------------------------- scenarios

async fn scenario_keys_are_scoped_to_their_owner(store: &dyn RequestStore) {
    // GIVEN a request of user A created with a key
    let mine = new_request(JobKind::Report).owned(Some("user-a"), Some("f-a".into()));
    created(store, &mine, Some("shared-key")).await;

    // WHEN user B, and an anonymous caller, use the same key text
    let theirs = new_request(JobKind::Report).owned(Some("user-b"), Some("f-b".into()));
    let anonymous = new_request(JobKind::Report).owned(None, Some("f-c".into()));

    // THEN each gets a request of its own
    created(store, &theirs, Some("shared-key")).await;
    created(store, &anonymous, Some("shared-key")).await;
    // ... and A's key still names A's request, owner and fingerprint kept
    let again = new_request(JobKind::Report).owned(Some("user-a"), Some("other".into()));
    let found = store.create(&again, Some("shared-key")).await.unwrap();
    assert_eq!(found, Created::Existing(mine.clone()));
    let Created::Existing(found) = found else {
        unreachable!()
    };
    assert_eq!(found.owner.as_deref(), Some("user-a"));
    assert_eq!(found.fingerprint.as_deref(), Some("f-a"));
}

async fn scenario_abandon_fails_only_a_queued_request_and_frees_its_key(store: &dyn RequestStore) {
    let error = || JobError {
        code: "enqueue_failed".into(),
        message: "the request could not be queued; submit it again".into(),
    };
    // GIVEN a queued request with a key, whose message could not be sent
    let lost = new_request(JobKind::Import);
    created(store, &lost, Some("retry-me")).await;

    // WHEN it is abandoned
    assert!(
        store
            .abandon(&lost, Some("retry-me"), error(), later(1))
            .await
            .unwrap()
    );

    // THEN it is failed, and the same key creates a new request
    let stored = store.get(&lost.id).await.unwrap().unwrap();
    assert_eq!(stored.status, RequestStatus::Failed);
    assert_eq!(stored.error, Some(error()));
    let retry = new_request(JobKind::Import);
    created(store, &retry, Some("retry-me")).await;

    // GIVEN a request a worker already started (the send's answer was lost
    // but the message went out)
    let sent = new_request(JobKind::Import);
    created(store, &sent, Some("went-out")).await;
    assert!(matches!(
        store.start(&sent.id, later(1)).await.unwrap(),
        Started::Started(_)
    ));
    // WHEN it is abandoned THEN nothing changes: still processing, key kept
    assert!(
        !store
            .abandon(&sent, Some("went-out"), error(), later(2))
            .await
            .unwrap()
    );
    let stored = store.get(&sent.id).await.unwrap().unwrap();
    assert_eq!(stored.status, RequestStatus::Processing);
    let Created::Existing(earlier) = store
        .create(&new_request(JobKind::Import), Some("went-out"))
        .await
        .unwrap()
    else {
        panic!("the key of a started request is kept");
    };
    assert_eq!(earlier.id, sent.id);
    // ... and without a key, the same holds
    let unkeyed = new_request(JobKind::Report);
    created(store, &unkeyed, None).await;
    assert!(
        store
            .abandon(&unkeyed, None, error(), later(1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .abandon(&unkeyed, None, error(), later(2))
            .await
            .unwrap()
    );
}

async fn scenario_create_then_get(store: &dyn RequestStore) {
    // GIVEN a new request
    let record = new_request(JobKind::Report);

    // WHEN it is created without an idempotency key
    let result = store.create(&record, None).await.unwrap();

    // THEN it is new and reads back exactly (timestamps to the nanosecond)
    assert_eq!(result, Created::New(record.clone()));
    assert_eq!(store.get(&record.id).await.unwrap(), Some(record));
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(store.get(&unknown).await.unwrap(), None);
}

async fn scenario_idempotency_key_returns_the_earlier_request(store: &dyn RequestStore) {
    // GIVEN a request created with a key
    let first = new_request(JobKind::Report);
    created(store, &first, Some("key-1")).await;

    // WHEN another request, different in every way, is created with that key
    let mut second = new_request(JobKind::Import);
    second.attempts = 7;
    let again = store.create(&second, Some("key-1")).await.unwrap();

    // THEN the first one is returned, and nothing new was written
    assert_eq!(again, Created::Existing(first.clone()));
    assert_eq!(store.get(&second.id).await.unwrap(), None);
    assert_eq!(store.get(&first.id).await.unwrap(), Some(first.clone()));
    // ... and neither the key nor its item is readable as a request
    assert_eq!(store.get("key-1").await.unwrap(), None);
    assert_eq!(store.get("idem#key-1").await.unwrap(), None);
    assert_eq!(store.get("idem#anonymous/key-1").await.unwrap(), None);
    // ... while another key, or none, creates the second request
    created(store, &second, Some("key-2")).await;
    let third = new_request(JobKind::Import);
    created(store, &third, None).await;
    assert_eq!(
        store
            .create(&new_request(JobKind::Report), Some("key-2"))
            .await
            .unwrap(),
        Created::Existing(second)
    );
}

async fn scenario_concurrent_creates_with_one_key_create_one_request(store: &dyn RequestStore) {
    // GIVEN eight different requests submitted at once with the same key
    let records: Vec<RequestRecord> = (0..8).map(|_| new_request(JobKind::Report)).collect();

    // WHEN they are all created concurrently
    let results = futures::future::join_all(
        records
            .iter()
            .map(|r| store.create(r, Some("double-click"))),
    )
    .await;

    // THEN exactly one is new, the others return it, and only it exists
    let results: Vec<Created> = results.into_iter().map(Result::unwrap).collect();
    let new: Vec<&RequestRecord> = results
        .iter()
        .filter_map(|c| match c {
            Created::New(r) => Some(r),
            Created::Existing(_) => None,
        })
        .collect();
    assert_eq!(new.len(), 1, "{results:?}");
    let winner = new[0].clone();
    for result in &results {
        if let Created::Existing(earlier) = result {
            assert_eq!(earlier, &winner);
        }
    }
    for record in &records {
        let stored = store.get(&record.id).await.unwrap();
        assert_eq!(stored.is_some(), record.id == winner.id, "{}", record.id);
    }
}

async fn scenario_start_moves_to_processing_and_counts_attempts(store: &dyn RequestStore) {
    let record = new_request(JobKind::Import);
    created(store, &record, None).await;

    // WHEN it is started, then started again (a redelivery)
    let first_start = later(1);
    let Started::Started(first) = store.start(&record.id, first_start).await.unwrap() else {
        panic!("not started");
    };
    let second_start = later(2);
    let Started::Started(second) = store.start(&record.id, second_start).await.unwrap() else {
        panic!("not started again");
    };

    // THEN it is processing, one attempt per start, stamped by each start
    let expected = |attempts, updated_at| RequestRecord {
        status: RequestStatus::Processing,
        attempts,
        updated_at,
        ..record.clone()
    };
    assert_eq!(first, expected(1, first_start));
    assert_eq!(second, expected(2, second_start));
    assert_eq!(store.get(&record.id).await.unwrap(), Some(second));
}

async fn scenario_stale_finds_the_requests_processing_since_long_ago(store: &dyn RequestStore) {
    // GIVEN a queued request (with an idempotency key item beside it), one
    // started long ago, one started just now, one started long ago and
    // finished
    let queued = new_request(JobKind::Report);
    created(store, &queued, Some("stale-key")).await;
    let (old, new, done) = (
        new_request(JobKind::Import),
        new_request(JobKind::Report),
        new_request(JobKind::Report),
    );
    for (record, started) in [(&old, later(-600)), (&new, later(0)), (&done, later(-600))] {
        created(store, record, None).await;
        assert!(matches!(
            store.start(&record.id, started).await.unwrap(),
            Started::Started(_)
        ));
    }
    assert!(
        store
            .finish(&done.id, failure("x"), later(-590))
            .await
            .unwrap()
    );

    // WHEN asked for the ones started more than 5 minutes ago
    let stale = store.stale(later(-300), 100).await.unwrap();

    // THEN only the old one, as stored
    assert_eq!(
        stale.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [old.id.as_str()]
    );
    assert_eq!(stale[0].status, RequestStatus::Processing);
    assert_eq!(stale[0].attempts, 1);
    // and at most `limit` of them
    assert_eq!(store.stale(later(1), 1).await.unwrap().len(), 1);
    assert_eq!(store.stale(later(1), 100).await.unwrap().len(), 2);
}

async fn scenario_finish_completes_once(store: &dyn RequestStore) {
    // GIVEN a started request
    let record = new_request(JobKind::Report);
    created(store, &record, None).await;
    store.start(&record.id, later(1)).await.unwrap();

    // WHEN it is finished, and then finished again, both ways
    let finished_at = later(2);
    let first = store
        .finish(
            &record.id,
            Outcome::Completed(json!({"total": 1})),
            finished_at,
        )
        .await
        .unwrap();
    let again = store
        .finish(
            &record.id,
            Outcome::Completed(json!({"total": 2})),
            later(3),
        )
        .await
        .unwrap();
    let failed_late = store
        .finish(&record.id, failure("late"), later(4))
        .await
        .unwrap();

    // THEN only the first call finished it, and its result stays
    assert!(first);
    assert!(!again);
    assert!(!failed_late);
    let done = RequestRecord {
        status: RequestStatus::Completed,
        updated_at: finished_at,
        result: Some(json!({"total": 1})),
        attempts: 1,
        ..record.clone()
    };
    assert_eq!(store.get(&record.id).await.unwrap(), Some(done.clone()));
    // ... and a late delivery that starts it finds it finished, unchanged
    assert_eq!(
        store.start(&record.id, later(5)).await.unwrap(),
        Started::Finished(done.clone())
    );
    assert_eq!(store.get(&record.id).await.unwrap(), Some(done));
}

async fn scenario_a_failed_request_stays_failed(store: &dyn RequestStore) {
    // GIVEN a request that failed while still queued (its message was lost)
    let record = new_request(JobKind::Import);
    created(store, &record, None).await;
    let failed_at = later(1);
    assert!(
        store
            .finish(&record.id, failure("enqueue_failed"), failed_at)
            .await
            .unwrap()
    );

    // WHEN a worker completes it anyway, or starts it
    let completed = store
        .finish(
            &record.id,
            Outcome::Completed(json!({"accepted": 1})),
            later(2),
        )
        .await
        .unwrap();
    let started = store.start(&record.id, later(3)).await.unwrap();

    // THEN it stays failed, without a result
    let failed = RequestRecord {
        status: RequestStatus::Failed,
        updated_at: failed_at,
        error: Some(JobError {
            code: "enqueue_failed".into(),
            message: "enqueue_failed: it went wrong".into(),
        }),
        ..record.clone()
    };
    assert!(!completed);
    assert_eq!(started, Started::Finished(failed.clone()));
    assert_eq!(store.get(&record.id).await.unwrap(), Some(failed));
}

async fn scenario_start_or_finish_of_a_missing_request(store: &dyn RequestStore) {
    // GIVEN a keyed request, so that the store holds a key as well
    created(store, &new_request(JobKind::Report), Some("k")).await;
    let unknown = uuid::Uuid::new_v4().to_string();

    for id in [unknown.as_str(), "idem#k", "k"] {
        // WHEN a missing id is started or finished
        let started = store.start(id, later(1)).await.unwrap();
        let finished = store
            .finish(id, Outcome::Completed(json!(1)), later(2))
            .await
            .unwrap();

        // THEN it is missing, nothing is finished, and nothing was created
        assert_eq!(started, Started::Missing, "{id}");
        assert!(!finished, "{id}");
        assert_eq!(store.get(id).await.unwrap(), None, "{id}");
    }
}

async fn scenario_nested_results_round_trip_exactly(store: &dyn RequestStore) {
    let record = new_request(JobKind::Import);
    created(store, &record, None).await;
    store.start(&record.id, later(1)).await.unwrap();
    // Everything JSON can hold that an AttributeValue map would bend: empty
    // containers, nulls, mixed arrays, big and negative numbers, floats,
    // escapes, and keys that look like DynamoDB's own.
    let result = json!({
        "accepted": 998,
        "rejected": [
            {"index": 3, "reason": "first_name: empty"},
            {"index": 7, "reason": "hobbies: \"Chess\" is listed twice\n\ttab"},
        ],
        "nested": {"a": {"b": {"c": [1, [2, [3, []]], {}]}}},
        "null": null,
        "mixed": [true, false, null, 0, -1, "", {"S": "not a string value"}],
        "big": u64::MAX,
        "negative": i64::MIN,
        "float": 0.1,
        "tiny": 5e-324,
        "unicode": "Zoë Ó Néill 😀 \u{0} \u{FFFF}",
        "": "empty key",
    });

    assert!(
        store
            .finish(&record.id, Outcome::Completed(result.clone()), later(2))
            .await
            .unwrap()
    );

    let stored = store.get(&record.id).await.unwrap().unwrap();
    assert_eq!(stored.result, Some(result.clone()));
    assert_eq!(stored.result.unwrap().to_string(), result.to_string());
}

// ------------------------------------------- each scenario on both stores

static TABLES: AtomicUsize = AtomicUsize::new(0);

/// A client for the test binary's moto server (started on first use, which
/// blocks: hence `block_in_place`).
fn moto_client() -> Client {
    tokio::task::block_in_place(moto::client)
}

fn moto_sqs_client() -> aws_sdk_sqs::Client {
    tokio::task::block_in_place(moto::sqs_client)
}

fn unique(prefix: &str, name: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        name.replace('_', "-"),
        TABLES.fetch_add(1, Ordering::Relaxed)
    )
}

async fn fresh_table(client: &Client, name: &str) -> String {
    let table = unique("requests", name);
    create_requests_table(client, &table).await.unwrap();
    table
}

async fn dynamo_store(name: &str) -> DynamoRequestStore {
    let client = moto_client();
    let table = fresh_table(&client, name).await;
    DynamoRequestStore::new(client, table)
}

/// Each scenario twice: on the memory double (`$memory`, an expression)
/// and on DynamoDB (`$dynamo(name)`, a fresh table per test).
macro_rules! on_both_stores {
    ($memory:expr, $dynamo:ident; $($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                use super::*;
                let store = $memory;
                super::$scenario(&store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dynamodb() {
                let store = super::$dynamo(stringify!($scenario)).await;
                super::$scenario(&store).await;
            }
        }
    )*};
}

on_both_stores!(
    MemoryRequestStore::new(), dynamo_store;
    scenario_create_then_get,
    scenario_keys_are_scoped_to_their_owner,
    scenario_abandon_fails_only_a_queued_request_and_frees_its_key,
    scenario_idempotency_key_returns_the_earlier_request,
    scenario_concurrent_creates_with_one_key_create_one_request,
    scenario_start_moves_to_processing_and_counts_attempts,
    scenario_finish_completes_once,
    scenario_a_failed_request_stays_failed,
    scenario_start_or_finish_of_a_missing_request,
    scenario_nested_results_round_trip_exactly,
    scenario_stale_finds_the_requests_processing_since_long_ago,
);

// ------------------------------------------------------ DynamoDB only

async fn raw_item(client: &Client, table: &str, id: &str) -> HashMap<String, AttributeValue> {
    client
        .get_item()
        .table_name(table)
        .key("id", AttributeValue::S(id.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_else(|| panic!("no item {id}"))
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    match &item[name] {
        AttributeValue::N(n) => n.parse().unwrap(),
        other => panic!("{name} is {other:?}"),
    }
}

/// A port that nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_the_table_twice_is_fine_and_turns_on_ttl() {
    let client = moto_client();
    let table = fresh_table(&client, "twice").await;

    create_requests_table(&client, &table).await.unwrap();

    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_with_another_key_is_refused() {
    // GIVEN a table named so, keyed by `id` and a sort key
    let client = moto_client();
    let other = unique("sorted", "key");
    client
        .create_table()
        .table_name(&other)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("at")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::N)
                .build()
                .unwrap(),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .unwrap(),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("at")
                .key_type(aws_sdk_dynamodb::types::KeyType::Range)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let err = create_requests_table(&client, &other).await.unwrap_err();

    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_carry_ttl_and_the_key_item_names_its_request() {
    let client = moto_client();
    let table = fresh_table(&client, "layout").await;
    let store = DynamoRequestStore::new(client.clone(), &table);
    let record = new_request(JobKind::Report);

    // WHEN a keyed request is created
    created(&store, &record, Some("layout-key")).await;

    // THEN both items expire 30 days after creation, and the key names it
    let request = raw_item(&client, &table, &record.id).await;
    let key = raw_item(&client, &table, "idem#anonymous/layout-key").await;
    let unfinished = record.created_at.timestamp() + UNFINISHED_TTL.as_secs() as i64;
    assert_eq!(number(&request, "expires_at"), unfinished);
    assert_eq!(number(&key, "expires_at"), unfinished);
    assert_eq!(key["request_id"], AttributeValue::S(record.id.clone()));
    assert_eq!(request["status"], AttributeValue::S("queued".into()));
    assert_eq!(number(&request, "attempts"), 0);
    assert!(!request.contains_key("result_json"));

    // WHEN it finishes
    let finished_at = later(60);
    store
        .finish(
            &record.id,
            Outcome::Completed(json!({"total": 3})),
            finished_at,
        )
        .await
        .unwrap();

    // THEN it expires 7 days after finishing; the result is a JSON string
    let request = raw_item(&client, &table, &record.id).await;
    assert_eq!(
        number(&request, "expires_at"),
        finished_at.timestamp() + FINISHED_TTL.as_secs() as i64
    );
    assert_eq!(
        request["result_json"],
        AttributeValue::S(r#"{"total":3}"#.into())
    );
    assert_eq!(
        request["updated_at"],
        AttributeValue::S(finished_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_whose_request_expired_is_taken_over() {
    let client = moto_client();
    let table = fresh_table(&client, "takeover").await;
    let store = DynamoRequestStore::new(client.clone(), &table);
    // GIVEN a key item naming a request that TTL already deleted
    client
        .put_item()
        .table_name(&table)
        .item("id", AttributeValue::S("idem#anonymous/reused".into()))
        .item("request_id", AttributeValue::S("deleted-by-ttl".into()))
        .item("expires_at", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
    let record = new_request(JobKind::Import);

    // WHEN the key is used again
    let result = store.create(&record, Some("reused")).await.unwrap();

    // THEN a new request is created and the key names it
    assert_eq!(result, Created::New(record.clone()));
    let key = raw_item(&client, &table, "idem#anonymous/reused").await;
    assert_eq!(key["request_id"], AttributeValue::S(record.id.clone()));
    assert_eq!(
        store
            .create(&new_request(JobKind::Report), Some("reused"))
            .await
            .unwrap(),
        Created::Existing(record)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_the_same_record_twice_is_not_an_error_but_reusing_its_id_is() {
    // A retry whose first try got through (its answer was lost) must not
    // fail; another request with the same id is a bug, not a success.
    let store = dynamo_store("same_id").await;
    let record = new_request(JobKind::Report);
    created(&store, &record, None).await;

    created(&store, &record, None).await;
    let impostor = RequestRecord {
        kind: JobKind::Import,
        ..record.clone()
    };
    let err = store.create(&impostor, None).await.unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
    assert_eq!(store.get(&record.id).await.unwrap(), Some(record));
}

const LOST: (u16, &str) = (
    500,
    r#"{"__type":"InternalServerError","message":"answer lost"}"#,
);
const CONFLICT: (u16, &str) = (
    400,
    r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message":"Transaction cancelled [None, TransactionConflict]",
        "CancellationReasons":[{"Code":"None"},
            {"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"}]}"#,
);

/// Replaces the answers to the first `answers` calls of each of some
/// operations: the calls took effect, but the SDK sees `answer` instead.
#[derive(Debug, Clone)]
struct ReplaceAnswers {
    operations: &'static [&'static str],
    answers: usize,
    answer: (u16, &'static str),
    /// Operation of the request in flight ("DynamoDB_20120810.PutItem").
    target: Arc<Mutex<String>>,
    sent: Arc<Mutex<HashMap<String, usize>>>,
}

impl ReplaceAnswers {
    fn new(
        operations: &'static [&'static str],
        answers: usize,
        answer: (u16, &'static str),
    ) -> Self {
        Self {
            operations,
            answers,
            answer,
            target: Arc::default(),
            sent: Arc::default(),
        }
    }

    fn client(&self) -> Client {
        tokio::task::block_in_place(|| {
            Client::from_conf(moto::config().interceptor(self.clone()).build())
        })
    }

    fn sent(&self, operation: &str) -> usize {
        self.sent
            .lock()
            .unwrap()
            .get(operation)
            .copied()
            .unwrap_or(0)
    }
}

impl Intercept for ReplaceAnswers {
    fn name(&self) -> &'static str {
        "ReplaceAnswers"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target");
        let operation = target
            .unwrap_or_default()
            .rsplit('.')
            .next()
            .unwrap_or_default();
        *self
            .sent
            .lock()
            .unwrap()
            .entry(operation.to_owned())
            .or_default() += 1;
        *self.target.lock().unwrap() = operation.to_owned();
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = self.target.lock().unwrap().clone();
        if self.operations.contains(&operation.as_str()) && self.sent(&operation) <= self.answers {
            let response = context.response_mut();
            *response.status_mut() = self.answer.0.try_into()?;
            *response.body_mut() = SdkBody::from(self.answer.1);
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_is_new_when_the_sdk_sends_it_again() {
    // GIVEN a connection that loses the first answer to each kind of create
    let loser = ReplaceAnswers::new(&["PutItem", "TransactWriteItems"], 1, LOST);
    let client = loser.client();
    let table = fresh_table(&client, "lost_answer").await;
    let store = DynamoRequestStore::new(client, table);
    let (keyed, unkeyed) = (new_request(JobKind::Report), new_request(JobKind::Import));

    // WHEN requests are created, with and without a key
    let keyed_result = store.create(&keyed, Some("lost")).await.unwrap();
    let unkeyed_result = store.create(&unkeyed, None).await.unwrap();

    // THEN both are new, though each was sent twice: the retry found its own
    // write (DynamoDB would also dedupe the transaction by its client
    // request token; moto does not, so this takes the adapter's own path)
    assert_eq!(keyed_result, Created::New(keyed.clone()));
    assert_eq!(unkeyed_result, Created::New(unkeyed.clone()));
    assert_eq!(loser.sent("TransactWriteItems"), 2);
    assert_eq!(loser.sent("PutItem"), 2);
    assert_eq!(store.get(&keyed.id).await.unwrap(), Some(keyed));
    assert_eq!(store.get(&unkeyed.id).await.unwrap(), Some(unkeyed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_cancelled_by_a_conflict_is_tried_again_then_unavailable() {
    // GIVEN a transaction conflict on the first try (another create with
    // the same key, say); the SDK does not retry those
    let once = ReplaceAnswers::new(&["TransactWriteItems"], 1, CONFLICT);
    let client = once.client();
    let store = DynamoRequestStore::new(client.clone(), fresh_table(&client, "conflict").await);
    let record = new_request(JobKind::Report);

    // WHEN a keyed request is created
    let result = store.create(&record, Some("conflicted")).await.unwrap();

    // THEN the adapter tried again and got it (here its own first write)
    assert_eq!(result, Created::New(record));
    assert_eq!(once.sent("TransactWriteItems"), 2);

    // GIVEN conflicts that do not stop
    let always = ReplaceAnswers::new(&["TransactWriteItems"], usize::MAX, CONFLICT);
    let client = always.client();
    let store = DynamoRequestStore::new(client.clone(), fresh_table(&client, "conflicts").await);

    let err = store
        .create(&new_request(JobKind::Report), Some("conflicted"))
        .await
        .unwrap_err();

    // THEN after a few tries it is unavailable: worth retrying later
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert_eq!(always.sent("TransactWriteItems"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_too_large_for_an_item_is_refused_and_the_request_stays_open() {
    let store = dynamo_store("too_large").await;
    let record = new_request(JobKind::Import);
    created(&store, &record, None).await;
    store.start(&record.id, later(1)).await.unwrap();
    let huge = json!({ "rejected": "x".repeat(MAX_RESULT_JSON_BYTES) });

    let err = store
        .finish(&record.id, Outcome::Completed(huge), later(2))
        .await
        .unwrap_err();

    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");
    // ... so that the last delivery can still mark it failed
    assert!(
        store
            .finish(&record.id, failure("gave_up"), later(3))
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_errors_are_mapped_to_permanent_or_unavailable() {
    // A missing table: retrying will not help.
    let store = DynamoRequestStore::new(moto_client(), "no-such-table");
    let err = store
        .get(&uuid::Uuid::new_v4().to_string())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{err:?}");

    // Nobody answering: worth retrying.
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{}", closed_port()))
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    let store = DynamoRequestStore::new(Client::from_conf(config), "requests");
    let err = store
        .create(&new_request(JobKind::Report), Some("k"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

// ----------------------------------------------------------- SQS

fn message(request_id: &str) -> JobMessage {
    JobMessage {
        request_id: request_id.into(),
        correlation_id: format!("corr-{request_id}"),
        id_seed: None,
        job: Job::Report {
            filter: FilterSpec {
                search: "Zoë \"quoted\"".into(),
                nationality: vec!["Irish".into()],
                ..FilterSpec::default()
            },
        },
    }
}

async fn queue_attributes(
    client: &aws_sdk_sqs::Client,
    url: &str,
) -> HashMap<QueueAttributeName, String> {
    client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default()
}

/// Receives at most one message, making it visible again at once (so that
/// the next receive gets it again, as after a failed processing).
async fn receive_one(
    client: &aws_sdk_sqs::Client,
    url: &str,
) -> Option<aws_sdk_sqs::types::Message> {
    let mut messages = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(1)
        .visibility_timeout(0)
        // A message made visible again "now" is visible from the next
        // millisecond: wait for it rather than race it.
        .wait_time_seconds(1)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert!(messages.len() <= 1);
    messages.pop()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_the_queues_twice_is_fine_and_sets_the_redrive() {
    let client = moto_sqs_client();
    let name = unique("jobs", "twice");

    let (url, dlq_url) = create_queues(&client, &name).await.unwrap();
    let again = create_queues(&client, &name).await.unwrap();

    assert_eq!(again, (url.clone(), dlq_url.clone()));
    assert!(dlq_url.ends_with(&format!("/{name}-dlq")), "{dlq_url}");
    let main = queue_attributes(&client, &url).await;
    let dlq = queue_attributes(&client, &dlq_url).await;
    assert_eq!(
        main[&QueueAttributeName::VisibilityTimeout],
        VISIBILITY_TIMEOUT.as_secs().to_string()
    );
    let redrive: serde_json::Value =
        serde_json::from_str(&main[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(
        redrive["deadLetterTargetArn"].as_str(),
        Some(dlq[&QueueAttributeName::QueueArn].as_str())
    );
    // SQS writes the count as a number; some emulators keep a string.
    let count = &redrive["maxReceiveCount"];
    assert!(count == &json!(3) || count == &json!("3"), "{redrive}");
    assert_eq!(
        dlq[&QueueAttributeName::MessageRetentionPeriod],
        (14 * 24 * 3600).to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_the_queues_fixes_a_queue_made_otherwise() {
    // GIVEN a queue of that name made by hand, with a short visibility
    let client = moto_sqs_client();
    let name = unique("jobs", "by-hand");
    client
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .send()
        .await
        .unwrap();

    let (url, _) = create_queues(&client, &name).await.unwrap();

    let main = queue_attributes(&client, &url).await;
    assert_eq!(main[&QueueAttributeName::VisibilityTimeout], "360");
    assert!(main.contains_key(&QueueAttributeName::RedrivePolicy));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_message_is_received_with_its_json_body_and_attributes() {
    let client = moto_sqs_client();
    let (url, _) = create_queues(&client, &unique("jobs", "send"))
        .await
        .unwrap();
    let queue = SqsQueue::new(client.clone(), &url);
    let sent = message("r-1");

    queue.send(&sent).await.unwrap();

    let received = receive_one(&client, &url).await.expect("a message");
    let body = received.body().unwrap();
    assert_eq!(body, serde_json::to_string(&sent).unwrap());
    assert_eq!(serde_json::from_str::<JobMessage>(body).unwrap(), sent);
    let attributes = received.message_attributes().unwrap();
    for (name, value) in [("correlation_id", "corr-r-1"), ("request_id", "r-1")] {
        let attribute = &attributes[name];
        assert_eq!(attribute.data_type(), "String", "{name}");
        assert_eq!(attribute.string_value(), Some(value), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_message_is_visible_again_at_once() {
    use people_app::ports::Redelivery;
    let client = moto_sqs_client();
    let (url, _) = create_queues(&client, &unique("jobs", "release"))
        .await
        .unwrap();
    let queue = SqsQueue::new(client.clone(), &url);
    queue.send(&message("r-rel")).await.unwrap();
    // Received with the queue's visibility timeout (6 minutes).
    let received = client
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), 1);
    let again = || async {
        client
            .receive_message()
            .queue_url(&url)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
    };
    assert!(again().await.is_empty(), "hidden until released");

    queue
        .release(&[received[0].receipt_handle().unwrap().to_owned()])
        .await
        .unwrap();

    let back = again().await;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].message_id(), received[0].message_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_errors_are_mapped_to_permanent_or_unavailable() {
    // A queue that does not exist: retrying will not help.
    let client = moto_sqs_client();
    let missing = format!("{}/123456789012/no-such-queue", moto::endpoint());
    let err = SqsQueue::new(client, missing)
        .send(&message("r-2"))
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::Permanent(_)), "{err:?}");

    // Nobody answering: worth retrying.
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{}", closed_port()))
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
        .build();
    let err = SqsQueue::new(
        aws_sdk_sqs::Client::from_conf(config),
        "http://127.0.0.1/1/q",
    )
    .send(&message("r-3"))
    .await
    .unwrap_err();
    assert!(matches!(err, QueueError::Unavailable(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_received_three_times_moves_to_the_dead_letter_queue() {
    // GIVEN a job message on the queue
    let client = moto_sqs_client();
    let (url, dlq_url) = create_queues(&client, &unique("jobs", "redrive"))
        .await
        .unwrap();
    let sent = message("r-4");
    SqsQueue::new(client.clone(), &url)
        .send(&sent)
        .await
        .unwrap();

    // WHEN it is received three times and never deleted (processing failed)
    for receive in 1..=3 {
        let got = receive_one(&client, &url)
            .await
            .unwrap_or_else(|| panic!("receive {receive} got nothing"));
        let count = got
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .cloned();
        assert_eq!(count, Some(receive.to_string()));
    }

    // THEN the next receive does not get it: it is in the dead-letter queue
    assert!(receive_one(&client, &url).await.is_none());
    let dead = receive_one(&client, &dlq_url)
        .await
        .expect("the message in the dead-letter queue");
    assert_eq!(
        dead.body(),
        Some(serde_json::to_string(&sent).unwrap().as_str())
    );
    let attributes = dead.message_attributes().unwrap();
    assert_eq!(attributes["request_id"].string_value(), Some("r-4"));
}

/// A memory double and SQS agree on where a message ends up; the memory
/// queue is only a double if its dead-letter rule is SQS's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_queue_dead_letters_after_as_many_receives() {
    let queue = Arc::new(people_app::memory::MemoryQueue::new());
    let receives = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&receives);
    queue.run_workers(
        1,
        people_app::jobs::wire::MAX_RECEIVE_COUNT,
        std::time::Duration::from_millis(1),
        move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>("failed".to_owned()) }
        },
    );
    let sent = message("r-5");
    queue.send(&sent).await.unwrap();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while queue.dead_letters().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    assert_eq!(
        queue.dead_letters(),
        vec![serde_json::to_string(&sent).unwrap()]
    );
    assert_eq!(receives.load(Ordering::SeqCst), 3);
}

// ------------------- the whole job flow on DynamoDB and SQS (moto)

/// GIVEN the enqueue and processor code on the DynamoDB request store and a
/// real SQS queue WHEN a report is submitted, received and processed, and
/// then received again THEN it completes once and the duplicate changes
/// nothing; a submission whose send fails leaves a failed record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_queue_process_on_dynamodb_and_sqs() {
    use people_app::config::PeopleConfig;
    use people_app::index::Refresh;
    use people_app::jobs::{Enqueuer, Processed, SubmitError, Worker, process, submit};
    use people_aws::wiring::open_people;

    let requests: Arc<dyn RequestStore> = Arc::new(dynamo_store("flow").await);
    let sqs = moto_sqs_client();
    let (url, _dlq) = create_queues(&sqs, &unique("jobs", "flow")).await.unwrap();
    let enqueuer = Enqueuer {
        requests: Arc::clone(&requests),
        queue: Arc::new(SqsQueue::new(sqs.clone(), url.clone())),
        anonymous_writes: true,
    };
    let body = br#"{"kind":"report","filter":{"search":"jo"}}"#;
    let record = submit(
        &enqueuer,
        body,
        &Caller::Anonymous,
        Some("flow-key"),
        "corr-flow",
    )
    .await
    .unwrap();
    assert_eq!(record.status, RequestStatus::Queued);

    let received = sqs
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let message = &received.messages()[0];
    let config = PeopleConfig {
        seed_people: 2_000,
        ..PeopleConfig::from_lookup(|_| None).unwrap()
    };
    let worker = Worker {
        people: open_people(
            &people_aws::sdk::Aws::from_env(),
            &config,
            None,
            Refresh::Inline,
        )
        .await
        .unwrap(),
        requests: Arc::clone(&requests),
        max_receives: 3,
        pusher: people_aws::wiring::open_pusher(
            &people_aws::sdk::Aws::from_env(),
            &people_app::config::JobsConfig::from_lookup(|_| None).unwrap(),
            None,
        )
        .await
        .unwrap(),
    };
    let body = message.body().unwrap();
    assert_eq!(
        process(&worker, body, 1, None).await.unwrap(),
        Processed::Completed
    );
    let done = requests.get(&record.id).await.unwrap().unwrap();
    assert_eq!(done.status, RequestStatus::Completed);
    assert!(done.result.as_ref().unwrap()["total"].as_u64().unwrap() > 0);
    // A redelivery of the same message.
    assert_eq!(
        process(&worker, body, 2, None).await.unwrap(),
        Processed::Duplicate
    );
    assert_eq!(requests.get(&record.id).await.unwrap().unwrap(), done);

    // The queue is gone: the client is told, the record says failed, and
    // its key is freed, so that the same key submits the request again.
    let broken = Enqueuer {
        requests: Arc::clone(&requests),
        queue: Arc::new(SqsQueue::new(sqs.clone(), format!("{url}-missing"))),
        anonymous_writes: true,
    };
    let err = submit(
        &broken,
        br#"{"kind":"report"}"#,
        &Caller::Anonymous,
        Some("broken-key"),
        "corr-2",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SubmitError::Queue(_)), "{err:?}");
    let again = submit(
        &enqueuer,
        br#"{"kind":"report"}"#,
        &Caller::Anonymous,
        Some("broken-key"),
        "corr-3",
    )
    .await
    .unwrap();
    assert_eq!(again.status, RequestStatus::Queued);
    let received = sqs
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let message: JobMessage = serde_json::from_str(received.messages()[0].body().unwrap()).unwrap();
    assert_eq!(message.request_id, again.id);
}

// ------------------------------------------------ the connection store
//
// The same scenarios on `MemoryConnectionStore` and on
// `DynamoConnectionStore` against moto.

use people_app::memory::connections::MemoryConnectionStore;
use people_app::ports::{CONNECTION_TTL, ConnectionStore};
use people_aws::dynamodb_connections::{DynamoConnectionStore, create_connections_table};

async fn connections_scenario_subscribe_then_disconnect(store: &dyn ConnectionStore) {
    let now = Utc::now();
    for c in ["c1", "c2", "c3"] {
        store.connect(c, now).await.unwrap();
    }
    store.subscribe("c1", "r1", now).await.unwrap();
    store.subscribe("c2", "r1", now).await.unwrap();
    store.subscribe("c2", "r2", now).await.unwrap();
    // Subscribing twice is one subscription.
    store.subscribe("c2", "r2", now).await.unwrap();
    assert_eq!(store.subscribers("r1", now).await.unwrap(), ["c1", "c2"]);
    assert_eq!(store.subscribers("r2", now).await.unwrap(), ["c2"]);
    assert!(store.subscribers("r3", now).await.unwrap().is_empty());

    store.disconnect("c2").await.unwrap();
    assert_eq!(store.subscribers("r1", now).await.unwrap(), ["c1"]);
    assert!(store.subscribers("r2", now).await.unwrap().is_empty());
    // Disconnecting twice, or a connection never seen, is fine.
    store.disconnect("c2").await.unwrap();
    store.disconnect("never").await.unwrap();

    store.unsubscribe("c1", "r1").await.unwrap();
    assert!(store.subscribers("r1", now).await.unwrap().is_empty());
}

async fn connections_scenario_expired_subscriptions_are_not_followers(store: &dyn ConnectionStore) {
    let then = Utc::now() - TimeDelta::hours(3);
    store.connect("old", then).await.unwrap();
    store.subscribe("old", "r", then).await.unwrap();
    let ttl = TimeDelta::from_std(CONNECTION_TTL).unwrap();
    assert_eq!(
        store
            .subscribers("r", then + ttl - TimeDelta::seconds(1))
            .await
            .unwrap(),
        ["old"]
    );
    // Past the TTL, before any sweeper removed the item.
    assert!(store.subscribers("r", Utc::now()).await.unwrap().is_empty());
}

async fn connections_scenario_a_connection_with_many_subscriptions_leaves_none(
    store: &dyn ConnectionStore,
) {
    let now = Utc::now();
    store.connect("busy", now).await.unwrap();
    store.connect("other", now).await.unwrap();
    // More than one BatchWriteItem (25) of deletes.
    for i in 0..40 {
        store
            .subscribe("busy", &format!("r{i}"), now)
            .await
            .unwrap();
    }
    store.subscribe("other", "r7", now).await.unwrap();
    store.disconnect("busy").await.unwrap();
    for i in 0..40 {
        let followers = store.subscribers(&format!("r{i}"), now).await.unwrap();
        if i == 7 {
            assert_eq!(followers, ["other"]);
        } else {
            assert!(followers.is_empty(), "r{i}: {followers:?}");
        }
    }
}

async fn connections_scenario_subscriptions_of_a_connection_are_counted(
    store: &dyn ConnectionStore,
) {
    let now = Utc::now();
    store.connect("counted", now).await.unwrap();
    for r in ["r1", "r2", "r3", "r2"] {
        store.subscribe("counted", r, now).await.unwrap();
    }
    assert_eq!(store.subscriptions("counted", now).await.unwrap(), 3);
    store.unsubscribe("counted", "r1").await.unwrap();
    assert_eq!(store.subscriptions("counted", now).await.unwrap(), 2);
    assert_eq!(store.subscriptions("nobody", now).await.unwrap(), 0);
    let after_ttl = now + TimeDelta::from_std(people_app::ports::CONNECTION_TTL).unwrap();
    assert_eq!(store.subscriptions("counted", after_ttl).await.unwrap(), 0);
}

async fn dynamo_connections(name: &str) -> DynamoConnectionStore {
    let client = moto_client();
    let table = unique("connections", name);
    create_connections_table(&client, &table).await.unwrap();
    DynamoConnectionStore::new(client, table)
}

on_both_stores!(
    MemoryConnectionStore::new(), dynamo_connections;
    connections_scenario_subscribe_then_disconnect,
    connections_scenario_expired_subscriptions_are_not_followers,
    connections_scenario_a_connection_with_many_subscriptions_leaves_none,
    connections_scenario_subscriptions_of_a_connection_are_counted,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connections_table_is_made_once_with_ttl_and_items_expire() {
    let client = moto_client();
    let table = unique("connections", "setup");
    create_connections_table(&client, &table).await.unwrap();
    create_connections_table(&client, &table).await.unwrap();
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));

    let store = DynamoConnectionStore::new(client.clone(), &table);
    let now = Utc::now();
    store.connect("c", now).await.unwrap();
    store.subscribe("c", "r", now).await.unwrap();
    let items = client
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    assert_eq!(
        items.len(),
        3,
        "connection, subscription, follower: {items:?}"
    );
    let expected = (now + TimeDelta::from_std(CONNECTION_TTL).unwrap()).timestamp();
    for item in &items {
        assert_eq!(number(item, "expires_at"), expected, "{item:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_api_notifier_posts_on_the_wire() {
    use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
    use people_app::ports::Notifier;
    use people_aws::apigw::ManagementApiNotifier;
    let endpoint = tokio::task::block_in_place(moto::endpoint);
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .build();
    let client = aws_sdk_apigatewaymanagement::Client::from_conf(config);
    let notifier = ManagementApiNotifier::new(client.clone());
    notifier
        .post(
            "conn-1",
            br#"{"type":"process-status","id":"r","status":"processing"}"#,
        )
        .await
        .unwrap();
    // moto accepts any connection id and does not show what it was sent,
    // and its GetConnection answers epoch numbers where API Gateway answers
    // ISO timestamps; the local server's tests (local/tests/websocket.rs)
    // cover delivery, 410 and 413 through this same adapter.
    client
        .delete_connection()
        .connection_id("conn-1")
        .send()
        .await
        .unwrap();
}

/// The local server's request store forgets finished requests after its
/// retention, as DynamoDB's TTL does; unfinished ones stay.
#[tokio::test]
async fn the_memory_request_store_expires_finished_requests() {
    let store = MemoryRequestStore::new().with_retention(std::time::Duration::from_secs(60));
    let t0 = Utc::now();
    let done = RequestRecord::queued("done".into(), JobKind::Report, t0);
    let open = RequestRecord::queued("open".into(), JobKind::Report, t0);
    store.create(&done, Some("key-1")).await.unwrap();
    store.create(&open, None).await.unwrap();
    assert!(
        store
            .finish("done", Outcome::Completed(json!({"total": 1})), t0)
            .await
            .unwrap()
    );
    // Within the retention: kept.
    let soon = RequestRecord::queued("soon".into(), JobKind::Report, t0 + TimeDelta::seconds(59));
    store.create(&soon, None).await.unwrap();
    assert!(store.get("done").await.unwrap().is_some());
    // Past it: gone, with its idempotency key; the unfinished one stays.
    let later = RequestRecord::queued("later".into(), JobKind::Report, t0 + TimeDelta::seconds(61));
    store.create(&later, None).await.unwrap();
    assert!(store.get("done").await.unwrap().is_none());
    assert!(store.get("open").await.unwrap().is_some());
    assert_eq!(store.len(), 3);
    let again = RequestRecord::queued("again".into(), JobKind::Report, t0 + TimeDelta::seconds(62));
    assert!(matches!(
        store.create(&again, Some("key-1")).await.unwrap(),
        Created::New(_)
    ));
}
