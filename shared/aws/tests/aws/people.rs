//! The people store: each scenario of `people_testkit::scenarios::people`
//! on the in-memory store and on the DynamoDB adapter (a fresh table per
//! test), then DynamoDB's own tests: the shape of the requests on the wire,
//! retries of unprocessed items, and error mapping.
//!
//! Nothing here depends on `WriteReport::unchanged`: DynamoDB does not
//! compare before writing, so only `written + unchanged` is common ground.

use crate::support::*;
use people_testkit::moto;
use people_testkit::scenarios::people::*;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, WriteRequest,
};
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use people_app::memory::MemoryPeopleStore;
use people_app::ports::{PeopleStore, StoreError};
use people_aws::dynamodb::{BatchRetry, DynamoPeopleStore, create_people_table};
use people_core::domain::Person;

/// Small, so that the scan scenario really pages on DynamoDB.
pub(crate) const SCAN_PAGE: u32 = 100;

// ------------------------------------------- each scenario on both stores

pub(crate) async fn fresh_table(client: &Client, name: &str) -> String {
    let table = unique("people", name);
    create_people_table(client, &table).await.unwrap();
    table
}

pub(crate) async fn dynamo_store(name: &str) -> DynamoPeopleStore {
    let client = moto_client();
    let table = fresh_table(&client, name).await;
    DynamoPeopleStore::new(client, table).with_scan_page_limit(SCAN_PAGE)
}

on_both_stores!(
    MemoryPeopleStore::new(), dynamo_store;
    scenario_put_then_get,
    scenario_upsert_replaces_by_id,
    scenario_duplicate_ids_in_one_batch_last_wins,
    scenario_changes_since,
    scenario_delete_leaves_a_tombstone,
    scenario_big_batch_is_fully_written,
);

mod scenario_segmented_scan_returns_everyone_once {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory() {
        let store = super::MemoryPeopleStore::new();
        super::scenario_segmented_scan_returns_everyone_once(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dynamodb() {
        let store = super::dynamo_store("segmented_scan").await;
        let pages = super::scenario_segmented_scan_returns_everyone_once(&store).await;
        // ~833 people a segment at 100 a page: the cursor was really used.
        assert!(pages >= 3 * 9, "only {pages} pages");
    }
}

// ------------------------------------------------------ DynamoDB only

/// Records, from the bytes about to go on the wire, the ids in every
/// BatchWriteItem request, and how many requests of each operation went.
#[derive(Debug, Default, Clone)]
struct WireRecorder {
    batch_writes: Arc<Mutex<Vec<Vec<String>>>>,
    operations: Arc<Mutex<HashMap<String, usize>>>,
}

impl WireRecorder {
    fn count(&self, operation: &str) -> usize {
        let operations = self.operations.lock().unwrap();
        operations.get(operation).copied().unwrap_or(0)
    }
}

impl Intercept for WireRecorder {
    fn name(&self) -> &'static str {
        "WireRecorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let operation = dynamodb_operation(request);
        *self
            .operations
            .lock()
            .unwrap()
            .entry(operation.clone())
            .or_default() += 1;
        if operation == "BatchWriteItem" {
            let body = request
                .body()
                .bytes()
                .ok_or("BatchWriteItem body is a stream")?;
            let body: serde_json::Value = serde_json::from_slice(body)?;
            let tables = body["RequestItems"]
                .as_object()
                .ok_or("no RequestItems object")?;
            let mut ids = Vec::new();
            for requests in tables.values() {
                for request in requests.as_array().ok_or("RequestItems not a list")? {
                    let id = request["PutRequest"]["Item"]["id"]["S"]
                        .as_str()
                        .ok_or("a put without a string id")?;
                    ids.push(id.to_owned());
                }
            }
            self.batch_writes.lock().unwrap().push(ids);
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_write_requests_carry_at_most_25_distinct_items() {
    // GIVEN a client that records every BatchWriteItem body it sends (moto
    // itself accepts more than 25 items, so only the wire can tell)
    let recorder = WireRecorder::default();
    let client = tokio::task::block_in_place(|| {
        Client::from_conf(moto::config().interceptor(recorder.clone()).build())
    });
    let table = fresh_table(&client, "request_shape").await;
    let store = DynamoPeopleStore::new(client, table);
    // 1,000 people, then 10 of them again: ids repeat within the batch
    let mut people = numbered("w", 1_000);
    people.extend(numbered("w", 10));

    // WHEN they are put in one call
    let report = store.put_batch(&people).await.unwrap();

    // THEN every request held at most 25 items, no id twice in a request,
    // and together they held each of the 1,000 ids once
    assert_all_written(&report, 1_010);
    let requests = recorder.batch_writes.lock().unwrap().clone();
    let mut all = HashSet::new();
    for ids in &requests {
        assert!(!ids.is_empty() && ids.len() <= 25, "{} items", ids.len());
        let distinct: HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "an id twice in one request");
        for id in ids {
            assert!(all.insert(id.clone()), "{id} sent twice");
        }
    }
    assert_eq!(all.len(), 1_000);
    assert_eq!(requests.len(), 40, "1,000 items in full chunks of 25");
}

/// Items that the fault injector hands back as unprocessed, kept per
/// operation in the SDK's config bag from the request to its response.
#[derive(Debug)]
struct HandBack(Vec<WriteRequest>);

impl Storable for HandBack {
    type Storer = StoreReplace<Self>;
}

/// Plays DynamoDB under pressure: answers BatchWriteItem with some items
/// handed back in `UnprocessedItems`.
#[derive(Debug, Clone)]
struct UnprocessedInjector {
    table: String,
    /// Handed back every time.
    always: Arc<HashSet<String>>,
    /// Handed back this many more times.
    times: Arc<Mutex<HashMap<String, usize>>>,
    /// The `version` each id carried, attempt by attempt.
    versions: Arc<Mutex<HashMap<String, Vec<u64>>>>,
}

impl Intercept for UnprocessedInjector {
    fn name(&self) -> &'static str {
        "UnprocessedInjector"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(input) = context.input().downcast_ref::<BatchWriteItemInput>() else {
            return Ok(());
        };
        let mut hand_back = Vec::new();
        let requests = input.request_items().and_then(|t| t.get(&self.table));
        for request in requests.into_iter().flatten() {
            let item = &request.put_request.as_ref().ok_or("not a put")?.item;
            let (Some(AttributeValue::S(id)), Some(AttributeValue::N(version))) =
                (item.get("id"), item.get("version"))
            else {
                return Err("an item without id or version".into());
            };
            self.versions
                .lock()
                .unwrap()
                .entry(id.clone())
                .or_default()
                .push(version.parse()?);
            let mut times = self.times.lock().unwrap();
            let again = times.get_mut(id).filter(|n| **n > 0).map(|n| *n -= 1);
            if self.always.contains(id) || again.is_some() {
                hand_back.push(request.clone());
            }
        }
        cfg.interceptor_state().store_put(HandBack(hand_back));
        Ok(())
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(HandBack(items)) = cfg.load::<HandBack>() else {
            return Ok(());
        };
        if let Some(Ok(output)) = context.output_or_error_mut()
            && let Some(output) = output.downcast_mut::<BatchWriteItemOutput>()
            && !items.is_empty()
        {
            output.unprocessed_items = Some(HashMap::from([(self.table.clone(), items.clone())]));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unprocessed_items_are_retried_then_reported_as_failed() {
    // GIVEN DynamoDB handing back "w00003" twice and "w00007" every time
    let client = moto_client();
    let table = fresh_table(&client, "unprocessed").await;
    let injector = UnprocessedInjector {
        table: table.clone(),
        always: Arc::new(HashSet::from(["w00007".to_owned()])),
        times: Arc::new(Mutex::new(HashMap::from([("w00003".to_owned(), 2)]))),
        versions: Arc::default(),
    };
    let client = tokio::task::block_in_place(|| {
        Client::from_conf(moto::config().interceptor(injector.clone()).build())
    });
    let retry = BatchRetry {
        max_attempts: 5,
        first_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(8),
    };
    let store = DynamoPeopleStore::new(client, table).with_batch_retry(retry);
    let people = numbered("w", 30);

    // WHEN 30 people are put
    let started = Instant::now();
    let report = store.put_batch(&people).await.unwrap();

    // THEN the one never accepted is reported failed after 5 attempts, the
    // other retried one got through on its third, each retry re-stamped
    assert_eq!(report.failed, ["w00007"]);
    assert_eq!(report.written, 29);
    let versions = injector.versions.lock().unwrap().clone();
    assert_eq!(versions["w00007"].len(), 5, "{versions:?}");
    assert_eq!(versions["w00003"].len(), 3, "{versions:?}");
    assert_eq!(versions["w00004"].len(), 1, "{versions:?}");
    for id in ["w00007", "w00003"] {
        assert!(
            versions[id].windows(2).all(|w| w[0] < w[1]),
            "{id} not re-stamped: {:?}",
            versions[id]
        );
    }
    // four backoffs of at least 1, 2, 4, 4 ms (half of each, jittered)
    assert!(started.elapsed() >= Duration::from_millis(11));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_a_permanent_error_that_keeps_its_cause() {
    let store = DynamoPeopleStore::new(moto_client(), "no-such-table");
    let person = person("p1", "Ann", "Lee", &[]);

    let errors = [
        store.get("p1").await.map(drop),
        store.put_batch(&[person]).await.map(drop),
        store.scan(0, 2, None).await.map(drop),
        store.changes_since(0, 10).await.map(drop),
    ];

    for result in errors {
        let err = result.unwrap_err();
        let text = chain(&err);
        assert!(matches!(err, StoreError::Permanent(_)), "{text}");
        assert!(text.contains("no-such-table"), "{text}");
        assert!(text.contains("ResourceNotFoundException"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_unavailable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    let store = DynamoPeopleStore::new(Client::from_conf(config), "people");

    let err = store.get("p1").await.unwrap_err();

    assert!(matches!(err, StoreError::Unavailable(_)), "{}", chain(&err));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_the_table_twice_is_fine_but_a_table_without_the_feed_is_not() {
    let client = moto_client();
    let table = fresh_table(&client, "twice").await;
    create_people_table(&client, &table).await.unwrap();

    let plain = format!("{table}-plain");
    client
        .create_table()
        .table_name(&plain)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let err = create_people_table(&client, &plain).await.unwrap_err();
    assert!(matches!(err, StoreError::Permanent(_)), "{}", chain(&err));
}

/// Not a test: a measurement. A cold index build (the query function's cold
/// start) over 100,000 people in moto, and the Scan requests it took.
/// `cargo test -p people-aws --release --test aws -- --ignored --nocapture cold_index_build`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, minutes long; run by hand"]
async fn cold_index_build_of_100k_people() {
    let count: usize = std::env::var("PEOPLE")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let recorder = WireRecorder::default();
    let client = tokio::task::block_in_place(|| {
        Client::from_conf(moto::config().interceptor(recorder.clone()).build())
    });
    let table = fresh_table(&client, "cold_build").await;
    let store = DynamoPeopleStore::new(client, table);
    let people: Vec<Person> = people_core::jsonl::generated_people(count, 42).collect();

    let started = Instant::now();
    for batch in people.chunks(10_000) {
        assert_all_written(&store.put_batch(batch).await.unwrap(), batch.len());
    }
    let write = started.elapsed();
    let writes = recorder.count("BatchWriteItem");

    let started = Instant::now();
    let (engine, version) = people_app::index::build_from_store(&store, 4, &|_| {})
        .await
        .unwrap();
    let build = started.elapsed();

    assert_eq!(engine.snapshot().len(), count);
    // The same build from memory: what indexing alone costs.
    let memory = MemoryPeopleStore::new();
    memory.put_batch(&people).await.unwrap();
    let started = Instant::now();
    let (from_memory, _) = people_app::index::build_from_store(&memory, 4, &|_| {})
        .await
        .unwrap();
    let indexing = started.elapsed();
    assert_eq!(from_memory.snapshot().len(), count);
    println!(
        "{count} people: put_batch {write:.1?} ({writes} BatchWriteItem requests); \
         cold build_from_store(4 segments) {build:.1?}, {} Scan requests, version {version}; \
         the same build from the memory store {indexing:.1?}",
        recorder.count("Scan"),
    );
}
