//! The request store: each scenario of `people_testkit::scenarios::requests`
//! on `MemoryRequestStore` and on `DynamoRequestStore` (a fresh table per
//! test), then DynamoDB's own tests: item layout, TTL, races, error mapping.

use crate::support::*;
use people_testkit::moto;
use people_testkit::scenarios::requests::*;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::body::SdkBody;
use chrono::{TimeDelta, Utc};
use people_app::jobs::{JobKind, RequestRecord};
use people_app::memory::MemoryRequestStore;
use people_app::ports::{Created, Outcome, RequestStore, StoreError};
use people_aws::dynamodb_requests::{
    DynamoRequestStore, FINISHED_TTL, MAX_RESULT_JSON_BYTES, UNFINISHED_TTL, create_requests_table,
};
use serde_json::json;

// ------------------------------------------- each scenario on both stores

async fn fresh_table(client: &Client, name: &str) -> String {
    let table = unique("requests", name);
    create_requests_table(client, &table).await.unwrap();
    table
}

pub(crate) async fn dynamo_store(name: &str) -> DynamoRequestStore {
    let client = moto_client();
    let table = fresh_table(&client, name).await;
    DynamoRequestStore::new(client, table)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_the_table_twice_is_fine_and_turns_on_ttl() {
    let client = moto_client();
    let table = fresh_table(&client, "twice").await;

    create_requests_table(&client, &table).await.unwrap();

    assert_ttl_on_expires_at(&client, &table).await;
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
        let operation = dynamodb_operation(context.request());
        *self
            .sent
            .lock()
            .unwrap()
            .entry(operation.clone())
            .or_default() += 1;
        *self.target.lock().unwrap() = operation;
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
