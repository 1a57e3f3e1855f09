//! The people storage port, scenario by scenario. Each scenario is written
//! once against `&dyn PeopleStore` and runs on the in-memory store and on
//! the DynamoDB adapter against a moto server (a fresh table per test), so
//! the double and the real adapter cannot drift apart. The tests after the
//! scenarios are DynamoDB's own: the shape of the requests on the wire,
//! retries of unprocessed items, and error mapping.
//!
//! Nothing here depends on `WriteReport::unchanged`: DynamoDB does not
//! compare before writing, so only `written + unchanged` is common ground.

use people_testkit::moto;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
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
use people_core::domain::{Change, Person};

/// Small, so that the scan scenario really pages on DynamoDB.
const SCAN_PAGE: u32 = 100;

fn person(id: &str, first: &str, last: &str, hobbies: &[&str]) -> Person {
    Person {
        id: id.into(),
        first_name: first.into(),
        last_name: last.into(),
        nationality: "Irish".into(),
        hobbies: hobbies.iter().map(|h| h.to_string()).collect(),
    }
}

fn numbered(prefix: &str, n: usize) -> Vec<Person> {
    (0..n)
        .map(|i| {
            person(
                &format!("{prefix}{i:05}"),
                &format!("First{i}"),
                &format!("Last{}", i % 97),
                &["Chess", "Go", "Reading"][..i % 4],
            )
        })
        .collect()
}

/// The people of a page of changes, which must hold no deletes.
fn puts(changes: &people_app::ports::Changes) -> Vec<Person> {
    changes
        .changes
        .iter()
        .map(|c| match c {
            Change::Put(p) => p.clone(),
            Change::Delete(id) => panic!("unexpected delete of {id}"),
        })
        .collect()
}

fn ids(people: &[Person]) -> Vec<&str> {
    people.iter().map(|p| p.id.as_str()).collect()
}

/// Every person, by reading all pages of every segment; also the number of
/// pages it took.
async fn scan_all(store: &dyn PeopleStore, segments: u32) -> (Vec<Person>, usize) {
    let mut people = Vec::new();
    let mut pages = 0;
    for segment in 0..segments {
        let mut start = None;
        loop {
            let page = store.scan(segment, segments, start).await.unwrap();
            pages += 1;
            people.extend(page.people);
            match page.next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
    }
    (people, pages)
}

fn assert_all_written(report: &people_app::ports::WriteReport, given: usize) {
    assert!(report.failed.is_empty(), "failed: {:?}", report.failed);
    assert_eq!(report.written + report.unchanged, given, "{report:?}");
}

// ---------------------------------------------------------------- scenarios

async fn scenario_put_then_get(store: &dyn PeopleStore) {
    // GIVEN two people, one without hobbies, one with hobbies out of order
    let ann = person("p1", "Ann", "Lee", &[]);
    let zoe = person(
        "p2",
        "Zoë",
        "Ó Néill",
        &["Wine Tasting", "Chess", "Archery"],
    );

    // WHEN they are put
    let report = store.put_batch(&[ann.clone(), zoe.clone()]).await.unwrap();

    // THEN each reads back exactly, and an unknown id is absent
    assert_all_written(&report, 2);
    assert_eq!(store.get("p1").await.unwrap(), Some(ann));
    assert_eq!(store.get("p2").await.unwrap(), Some(zoe));
    assert_eq!(store.get("p3").await.unwrap(), None);
}

async fn scenario_upsert_replaces_by_id(store: &dyn PeopleStore) {
    let before = person("p1", "Ann", "Lee", &["Chess"]);
    let after = person("p1", "Anna", "Lee-Smith", &["Go", "Reading"]);
    store.put_batch(&[before]).await.unwrap();

    let report = store.put_batch(std::slice::from_ref(&after)).await.unwrap();

    assert_all_written(&report, 1);
    assert_eq!(store.get("p1").await.unwrap(), Some(after.clone()));
    let (everyone, _) = scan_all(store, 1).await;
    assert_eq!(everyone, vec![after]);
}

async fn scenario_duplicate_ids_in_one_batch_last_wins(store: &dyn PeopleStore) {
    // GIVEN 60 people over 20 ids: every id three times, spread over what
    // DynamoDB sends as three chunks
    let batch: Vec<Person> = (0..60)
        .map(|i| person(&format!("d{:02}", i % 20), &format!("Take{i}"), "Dup", &[]))
        .collect();

    let report = store.put_batch(&batch).await.unwrap();

    assert_all_written(&report, 60);
    for id in 0..20 {
        let got = store.get(&format!("d{id:02}")).await.unwrap().unwrap();
        assert_eq!(got.first_name, format!("Take{}", id + 40), "last one wins");
    }
    let (everyone, _) = scan_all(store, 2).await;
    assert_eq!(everyone.len(), 20);
}

/// Returns the number of pages the scan took.
async fn scenario_segmented_scan_returns_everyone_once(store: &dyn PeopleStore) -> usize {
    let written = numbered("s", 2_500);
    for batch in written.chunks(500) {
        assert_all_written(&store.put_batch(batch).await.unwrap(), batch.len());
    }

    let (scanned, pages) = scan_all(store, 3).await;

    let mut seen = HashMap::new();
    for p in &scanned {
        assert!(
            seen.insert(p.id.clone(), p.clone()).is_none(),
            "{} twice",
            p.id
        );
    }
    assert_eq!(scanned.len(), written.len());
    for p in &written {
        assert_eq!(seen.get(&p.id), Some(p));
    }
    assert!(matches!(
        store.scan(3, 3, None).await,
        Err(StoreError::Permanent(_))
    ));
    pages
}

async fn scenario_changes_since(store: &dyn PeopleStore) {
    // GIVEN a version taken before anything was written
    let v0 = store.latest_version().await.unwrap();
    let a = person("a", "Ann", "A", &[]);
    let b = person("b", "Bob", "B", &["Go"]);
    let c = person("c", "Cat", "C", &[]);
    store.put_batch(&[a.clone(), b.clone()]).await.unwrap();
    store.put_batch(std::slice::from_ref(&c)).await.unwrap();

    // THEN everything since then, oldest first
    let all = store.changes_since(v0, 100).await.unwrap();
    assert_eq!(ids(&puts(&all)), ["a", "b", "c"]);
    assert!(!all.more);
    assert!(store.latest_version().await.unwrap() >= all.up_to);

    // WHEN `a` is written again and `d` is new
    let v1 = all.up_to;
    let a2 = person("a", "Ann", "A-Again", &["Chess"]);
    let d = person("d", "Dan", "D", &[]);
    store.put_batch(std::slice::from_ref(&a2)).await.unwrap();
    store.put_batch(std::slice::from_ref(&d)).await.unwrap();

    // THEN only later writes come after v1
    let later = store.changes_since(v1, 100).await.unwrap();
    assert_eq!(puts(&later), [a2.clone(), d.clone()]);
    // and from the start, `a` appears once, where it was last written
    let all = store.changes_since(v0, 100).await.unwrap();
    assert_eq!(puts(&all), [b.clone(), c.clone(), a2.clone(), d.clone()]);
    assert!(!all.more);
    // and nothing follows the end
    let end = store.changes_since(all.up_to, 100).await.unwrap();
    assert!(puts(&end).is_empty() && !end.more, "{end:?}");

    // THEN `limit` pages through the same changes, `more` telling the rest
    let first = store.changes_since(v0, 2).await.unwrap();
    assert_eq!(puts(&first), [b, c]);
    assert!(first.more);
    let second = store.changes_since(first.up_to, 2).await.unwrap();
    assert_eq!(puts(&second), [a2, d]);
    assert!(!second.more);
    let third = store.changes_since(second.up_to, 2).await.unwrap();
    assert!(puts(&third).is_empty() && !third.more, "{third:?}");
}

/// A delete removes the person from reads and leaves a tombstone in the
/// feed, at the delete's place; a person written again after a delete is
/// back.
async fn scenario_delete_leaves_a_tombstone(store: &dyn PeopleStore) {
    // GIVEN three people
    let v0 = store.latest_version().await.unwrap();
    let a = person("a", "Ann", "A", &[]);
    let b = person("b", "Bob", "B", &["Go"]);
    let c = person("c", "Cat", "C", &[]);
    store
        .put_batch(&[a.clone(), b.clone(), c.clone()])
        .await
        .unwrap();
    let v1 = store.latest_version().await.unwrap();

    // WHEN `a` and an id nobody has are deleted
    let report = store
        .delete_batch(&["a".into(), "nobody".into()])
        .await
        .unwrap();

    // THEN both are deleted (a delete is idempotent) and none failed
    assert_eq!(report.written + report.unchanged, 2, "{report:?}");
    assert!(report.failed.is_empty());
    // and `a` is gone from reads and scans
    assert_eq!(store.get("a").await.unwrap(), None);
    assert_eq!(store.get("nobody").await.unwrap(), None);
    let (mut scanned, _) = scan_all(store, 2).await;
    scanned.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(scanned, [b.clone(), c.clone()]);
    // and the feed carries the tombstone after the writes before it
    let since_v1 = store.changes_since(v1, 100).await.unwrap();
    assert!(
        since_v1.changes.contains(&Change::Delete("a".into())),
        "{since_v1:?}"
    );
    assert!(
        since_v1
            .changes
            .iter()
            .all(|c| matches!(c, Change::Delete(_)))
    );
    let all = store.changes_since(v0, 100).await.unwrap();
    let a_at = all.changes.iter().position(|c| c.id() == "a").unwrap();
    assert_eq!(all.changes[a_at], Change::Delete("a".into()));
    assert!(all.changes[..a_at].contains(&Change::Put(b.clone())));

    // WHEN `a` is written again
    let a2 = person("a", "Ann", "Again", &[]);
    store.put_batch(std::slice::from_ref(&a2)).await.unwrap();

    // THEN `a` is back, and the feed's last word on `a` is the write
    assert_eq!(store.get("a").await.unwrap(), Some(a2.clone()));
    let all = store.changes_since(v0, 100).await.unwrap();
    let last_a = all.changes.iter().rev().find(|c| c.id() == "a").unwrap();
    assert_eq!(last_a, &Change::Put(a2));
}

async fn scenario_big_batch_is_fully_written(store: &dyn PeopleStore) {
    let v0 = store.latest_version().await.unwrap();
    let people = numbered("big", 1_000);

    let report = store.put_batch(&people).await.unwrap();

    assert_all_written(&report, 1_000);
    let (mut scanned, _) = scan_all(store, 4).await;
    scanned.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(scanned, people);
    let changes = store.changes_since(v0, 5_000).await.unwrap();
    let put = puts(&changes);
    let changed: HashSet<&str> = ids(&put).into_iter().collect();
    assert_eq!(puts(&changes).len(), 1_000);
    assert_eq!(changed, ids(&people).into_iter().collect());
    // and paging through them in small steps gives the same, in order
    let mut paged = Vec::new();
    let mut since = v0;
    loop {
        let page = store.changes_since(since, 37).await.unwrap();
        assert!(puts(&page).len() <= 37);
        paged.extend(puts(&page));
        since = page.up_to;
        if !page.more {
            break;
        }
    }
    assert_eq!(paged, puts(&changes));
}

// ------------------------------------------- each scenario on both stores

static TABLES: AtomicUsize = AtomicUsize::new(0);

/// A client for the test binary's moto server (started on first use, which
/// blocks: hence `block_in_place`).
fn moto_client() -> Client {
    tokio::task::block_in_place(moto::client)
}

async fn fresh_table(client: &Client, name: &str) -> String {
    let table = format!(
        "people-{}-{}",
        name.replace('_', "-"),
        TABLES.fetch_add(1, Ordering::Relaxed)
    );
    create_people_table(client, &table).await.unwrap();
    table
}

async fn dynamo_store(name: &str) -> DynamoPeopleStore {
    let client = moto_client();
    let table = fresh_table(&client, name).await;
    DynamoPeopleStore::new(client, table).with_scan_page_limit(SCAN_PAGE)
}

macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                let store = people_app::memory::MemoryPeopleStore::new();
                super::$scenario(&store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dynamodb() {
                let store = super::dynamo_store(stringify!($scenario)).await;
                super::$scenario(&store).await;
            }
        }
    )*};
}

on_both_stores!(
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
        // "DynamoDB_20120810.BatchWriteItem"
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or_default().to_owned();
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

fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(" <- ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
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
/// `cargo test -p shared --release --test people_store -- --ignored --nocapture cold_index_build`
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

// ------------------------------------ the index following the change feed

/// GIVEN an index built from the store WHEN people are added and changed in
/// the store THEN one refresh brings exactly those changes into the index,
/// and a second refresh (re-reading the overlap window) changes nothing.
async fn scenario_index_follows_the_store(store: Arc<dyn PeopleStore>) {
    use people_app::index::{LiveIndex, build_from_store};
    use people_core::domain::PeopleFilter;
    use people_core::search::PageStart;

    let first = numbered("a", 300);
    store.put_batch(&first).await.unwrap();
    let (engine, version) = build_from_store(store.as_ref(), 3, &|_| {}).await.unwrap();
    assert_eq!(engine.snapshot().len(), 300);
    let index = Arc::new(LiveIndex::following(
        engine,
        Arc::clone(&store),
        version,
        Duration::ZERO,
        people_app::index::Refresh::Background,
    ));

    let mut later = numbered("b", 50);
    for p in first.iter().take(10) {
        let mut changed = p.clone();
        changed.last_name = "Zzyzx".into();
        later.push(changed);
    }
    store.put_batch(&later).await.unwrap();
    assert_eq!(index.refresh().await.unwrap(), 60);
    let snapshot = index.engine().snapshot();
    assert_eq!(snapshot.len(), 350);
    let zzyzx = PeopleFilter::new("zzy", vec![], vec![], Default::default());
    let page = snapshot.search(&zzyzx, &PageStart::Offset(0), 100);
    assert_eq!(page.total, 10);
    assert_eq!(index.refresh().await.unwrap(), 0, "re-reading is harmless");

    // WHEN people are deleted in the store
    let gone: Vec<String> = first
        .iter()
        .skip(100)
        .take(20)
        .map(|p| p.id.clone())
        .collect();
    store.delete_batch(&gone).await.unwrap();
    // THEN a refresh applies the tombstones
    assert_eq!(index.refresh().await.unwrap(), 20);
    let snapshot = index.engine().snapshot();
    assert_eq!(snapshot.len(), 330);
    assert_eq!(snapshot.get(&gone[0]), None);
    let everyone = PeopleFilter::default();
    let page = snapshot.search(&everyone, &PageStart::Offset(0), 1000);
    assert_eq!(page.total, 330);
    assert!(page.items.iter().all(|p| !gone.contains(&p.id)));
    assert_eq!(
        index.refresh().await.unwrap(),
        0,
        "re-reading tombstones is harmless"
    );

    // A request path: `current()` starts the refresh in the background.
    store.put_batch(&numbered("c", 5)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while index.current().await.len() < 335 {
        assert!(
            Instant::now() < deadline,
            "the background refresh never landed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

mod scenario_index_follows_the_store {
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory() {
        let store = Arc::new(people_app::memory::MemoryPeopleStore::new());
        super::scenario_index_follows_the_store(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dynamodb() {
        let store = Arc::new(super::dynamo_store("index_follows").await);
        super::scenario_index_follows_the_store(store).await;
    }
}

/// Plays a throttled DynamoDB on the wire: the next `remaining` responses
/// become HTTP 400 `ThrottlingException`, as DynamoDB sends it.
#[derive(Debug, Clone)]
struct Throttle {
    remaining: Arc<AtomicUsize>,
    attempts: Arc<AtomicUsize>,
}

impl Intercept for Throttle {
    fn name(&self) -> &'static str {
        "Throttle"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let throttle = self
            .remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if throttle {
            let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#;
            let response = http::Response::builder()
                .status(400)
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amzn-errortype", "ThrottlingException")
                .body(aws_smithy_types::body::SdkBody::from(body))?;
            *context.response_mut() = response.try_into()?;
        }
        Ok(())
    }
}

/// Throttling is retried by the SDK (standard mode: at most 3 attempts,
/// exponential backoff with jitter); past that it is `Unavailable`, which
/// callers retry later, never `Permanent`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_on_the_wire_is_retried_then_reported_as_unavailable() {
    let client = moto_client();
    let table = fresh_table(&client, "throttled").await;
    DynamoPeopleStore::new(client, &table)
        .put_batch(&numbered("t", 1))
        .await
        .unwrap();
    let throttle = Throttle {
        remaining: Arc::new(AtomicUsize::new(0)),
        attempts: Arc::new(AtomicUsize::new(0)),
    };
    let throttled = tokio::task::block_in_place(|| {
        Client::from_conf(moto::config().interceptor(throttle.clone()).build())
    });
    let store = DynamoPeopleStore::new(throttled, &table);

    // Two throttled answers: the third attempt gets through.
    throttle.remaining.store(2, Ordering::SeqCst);
    let started = Instant::now();
    let found = store.get("t00000").await.unwrap();
    assert_eq!(found.map(|p| p.id).as_deref(), Some("t00000"));
    assert_eq!(throttle.attempts.swap(0, Ordering::SeqCst), 3);
    assert!(started.elapsed() > Duration::ZERO);

    // Throttled longer than the SDK retries: a retryable error.
    throttle.remaining.store(10, Ordering::SeqCst);
    let err = store.get("t00000").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert_eq!(throttle.attempts.load(Ordering::SeqCst), 3);
}

/// A writer whose clock is minutes behind (an operator's laptop running
/// `admin import`) still writes people that a warm reader sees on its next
/// refresh: versions follow DynamoDB's clock (the `Date` of its answers),
/// not the writer's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_minutes_behind_is_seen_by_warm_readers() {
    use people_app::index::{LiveIndex, build_from_store};
    use people_core::domain::PeopleFilter;
    use people_core::search::PageStart;

    // GIVEN a warm reader that has read the feed up to now
    let client = moto_client();
    let table = fresh_table(&client, "skewed").await;
    let reader: Arc<dyn PeopleStore> = Arc::new(DynamoPeopleStore::new(client.clone(), &table));
    reader.put_batch(&numbered("r", 5)).await.unwrap();
    let (engine, version) = build_from_store(reader.as_ref(), 2, &|_| {}).await.unwrap();
    let index = Arc::new(LiveIndex::following(
        engine,
        Arc::clone(&reader),
        version,
        Duration::ZERO,
        people_app::index::Refresh::Background,
    ));
    reader.put_batch(&numbered("s", 3)).await.unwrap();
    assert_eq!(index.refresh().await.unwrap(), 3);

    // `Date` has whole seconds: a corrected clock is right to about half a
    // second, and a write that close to the reader's watermark is the feed
    // overlap's to bring in (docs/dynamodb.md), not the next refresh's.
    // This test is about minutes, so it writes past that residue.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // WHEN a writer whose clock is 10 minutes behind writes and deletes
    let writer = DynamoPeopleStore::new(client, &table).with_clock_behind(Duration::from_secs(600));
    let late = person("late-1", "Tardy", "Laggard", &[]);
    writer.put_batch(std::slice::from_ref(&late)).await.unwrap();
    writer.delete_batch(&["r00000".into()]).await.unwrap();
    let offset = writer
        .clock()
        .offset()
        .expect("the writer learned the server's clock");
    assert!(offset >= Duration::from_secs(590), "{offset:?}");

    // THEN the reader's next refresh sees both
    assert_eq!(index.refresh().await.unwrap(), 2);
    let snapshot = index.engine().snapshot();
    assert_eq!(snapshot.get("late-1"), Some(late));
    assert_eq!(snapshot.get("r00000"), None);
    let laggard = PeopleFilter::new("laggard", vec![], vec![], Default::default());
    assert_eq!(
        snapshot.search(&laggard, &PageStart::Offset(0), 10).total,
        1
    );
}

/// A memory store whose tombstones have expired: its feed drops them, and
/// it says tombstones live only a moment.
struct ExpiredTombstones(MemoryPeopleStore);

#[async_trait::async_trait]
impl PeopleStore for ExpiredTombstones {
    async fn get(&self, id: &str) -> Result<Option<Person>, StoreError> {
        self.0.get(id).await
    }
    async fn put_batch(
        &self,
        people: &[Person],
    ) -> Result<people_app::ports::WriteReport, StoreError> {
        self.0.put_batch(people).await
    }
    async fn delete_batch(
        &self,
        ids: &[String],
    ) -> Result<people_app::ports::WriteReport, StoreError> {
        self.0.delete_batch(ids).await
    }
    async fn scan(
        &self,
        segment: u32,
        segments: u32,
        start: Option<String>,
    ) -> Result<people_app::ports::ScanPage, StoreError> {
        self.0.scan(segment, segments, start).await
    }
    async fn latest_version(&self) -> Result<u64, StoreError> {
        self.0.latest_version().await
    }
    async fn changes_since(
        &self,
        since: u64,
        limit: usize,
    ) -> Result<people_app::ports::Changes, StoreError> {
        let mut changes = self.0.changes_since(since, limit).await?;
        changes.changes.retain(|c| matches!(c, Change::Put(_)));
        Ok(changes)
    }
    fn tombstone_lifetime(&self) -> Option<Duration> {
        Some(Duration::from_millis(1))
    }
}

/// A reader that has not read the feed for longer than a tombstone lives
/// rebuilds from a scan instead of catching up, so a delete whose
/// tombstone expired is not missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_older_than_a_tombstone_rebuilds_instead_of_missing_deletes() {
    use people_app::index::{LiveIndex, build_from_store};
    let store = Arc::new(ExpiredTombstones(MemoryPeopleStore::new()));
    store.put_batch(&numbered("x", 50)).await.unwrap();
    let (engine, version) = build_from_store(store.as_ref(), 2, &|_| {}).await.unwrap();
    let index = Arc::new(LiveIndex::following(
        engine,
        store.clone(),
        version,
        Duration::ZERO,
        people_app::index::Refresh::Background,
    ));
    store.delete_batch(&["x00007".into()]).await.unwrap();
    store.put_batch(&numbered("y", 2)).await.unwrap();
    index.refresh().await.unwrap();
    let snapshot = index.engine().snapshot();
    assert_eq!(snapshot.get("x00007"), None, "the delete is not missed");
    assert!(snapshot.get("y00001").is_some());
    assert_eq!(snapshot.len(), 51);
}

// --- Index images in S3 (moto) -------------------------------------------

static BUCKETS: AtomicUsize = AtomicUsize::new(0);

/// An S3 client for the moto server (path-style: no bucket host names on
/// 127.0.0.1), configured as `moto::config` is.
fn s3_client() -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let endpoint = tokio::task::block_in_place(moto::endpoint);
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn fresh_bucket(name: &str) -> (aws_sdk_s3::Client, String) {
    let client = s3_client();
    let bucket = format!(
        "images-{}-{}",
        name.replace('_', "-"),
        BUCKETS.fetch_add(1, Ordering::Relaxed)
    );
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    (client, bucket)
}

fn everyone(snapshot: &people_core::search::Snapshot) -> Vec<Person> {
    use people_core::search::PageStart;
    snapshot
        .search(&Default::default(), &PageStart::Offset(0), 100_000)
        .items
}

/// An image larger than one upload part goes up as a multipart upload and
/// comes back through many ranged GETs, equal to what was written; the
/// newest of several is the one with the greatest feed position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_goes_through_s3_in_parts_and_ranges() {
    use people_aws::s3::{MIN_PART, S3ImageStore};
    use people_core::search::{FeedPosition, SearchEngine};
    let (client, bucket) = fresh_bucket("parts").await;
    let images = S3ImageStore::new(client, &bucket).with_parts(64 * 1024, MIN_PART);
    assert_eq!(images.newest().await.unwrap(), None);

    // GIVEN about 7 MB of people (long ids), some deleted, some in the delta
    let mut people = numbered("x", 6_000);
    for p in &mut people {
        p.id = format!("{}-{}", p.id, "i".repeat(1_100));
    }
    let engine = SearchEngine::from_people(&people).with_merge_at(0);
    engine.delete(&[people[7].id.clone()]);
    engine.upsert(&[person("late", "Late", "Comer", &["Go"])]);
    let at = |version| FeedPosition {
        version,
        caught_up_ms: 1_700_000_000_000,
    };
    let (small, _) = images
        .save(SearchEngine::from_people(&people[..3]).snapshot(), at(5))
        .await
        .unwrap();
    // WHEN the big one is written with a later position
    let (stored, header) = images.save(engine.snapshot(), at(9)).await.unwrap();
    assert!(stored.size > MIN_PART as u64, "{} bytes", stored.size);
    assert!(small.size < 1_000_000);
    assert_eq!(header.people, 6_000);
    // THEN it is the newest, and reads back equal
    assert_eq!(images.newest().await.unwrap(), Some(stored.clone()));
    let image = images.load(&stored).await.unwrap();
    assert_eq!(image.header.position, at(9));
    let (loaded, _) = image.into_engine();
    assert_eq!(everyone(&loaded.snapshot()), everyone(&engine.snapshot()));
    // An object listed larger than it is (replaced meanwhile) is an error.
    let wrong = people_aws::s3::StoredImage {
        size: stored.size + 10,
        ..stored
    };
    assert!(images.load(&wrong).await.is_err());
}

/// The cold start of production, end to end on moto: no image yet, so the
/// writer's index comes from a Scan and it writes the first image; the
/// table changes; a function starting then reads the image and catches up
/// from the feed after its position before it returns, equal to the table
/// with no refresh asked for; a corrupt
/// newest image is refused and the index built from a Scan instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_reads_the_newest_image_then_the_feed() {
    use people_app::config::PeopleConfig;
    use people_app::index::Refresh;
    use people_aws::image_writer::{ImageWriter, Run, WritePolicy};
    use people_aws::s3::S3ImageStore;
    use people_aws::wiring::{Origin, open_people_on};

    let store: Arc<dyn PeopleStore> = Arc::new(dynamo_store("cold_image").await);
    let (client, bucket) = fresh_bucket("cold").await;
    let images = S3ImageStore::new(client.clone(), &bucket).with_parts(4 * 1024, 0);
    let config = PeopleConfig::from_lookup(|_| None).unwrap();
    let first = numbered("a", 400);
    store.put_batch(&first).await.unwrap();

    // GIVEN the writer, started with no image: it writes one at once
    let policy = WritePolicy {
        changes: 10,
        ..WritePolicy::default()
    };
    let writer = ImageWriter::open(Arc::clone(&store), images.clone(), &config, policy)
        .await
        .unwrap();
    let Run::Wrote { image, people, .. } = writer.run().await.unwrap() else {
        panic!("an index from a Scan writes its image");
    };
    assert_eq!(people, 400);
    // and then not again until the feed moved far enough
    assert!(matches!(
        writer.run().await.unwrap(),
        Run::NotDue { changes: 0, .. }
    ));

    // WHEN the table changes after the image
    let mut later = numbered("b", 30);
    let mut renamed = first[0].clone();
    renamed.last_name = "Zzyzx".into();
    later.push(renamed.clone());
    store.put_batch(&later).await.unwrap();
    let gone: Vec<String> = first[100..105].iter().map(|p| p.id.clone()).collect();
    store.delete_batch(&gone).await.unwrap();

    // THEN a cold start reads the image, and the feed brings the rest
    // before it answers anything
    let (people, origin) = open_people_on(
        Arc::clone(&store),
        Some(&images),
        None,
        &config,
        Refresh::Inline,
    )
    .await
    .unwrap();
    assert!(
        matches!(&origin, Origin::Image { key: Some(k), .. } if *k == image.key),
        "{origin:?}"
    );
    let snapshot = people.index.engine().snapshot();
    let (mut scanned, _) = scan_all(store.as_ref(), 2).await;
    scanned.sort_by(|a, b| a.id.cmp(&b.id));
    let mut indexed = everyone(&snapshot);
    indexed.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(indexed.len(), 425);
    assert_eq!(indexed, scanned);
    assert_eq!(snapshot.get(&renamed.id), Some(renamed));

    // AND the writer, having seen 36 changes (> 10), writes the next image
    let Run::Wrote {
        image: second,
        changes,
        ..
    } = writer.run().await.unwrap()
    else {
        panic!("36 changes are past the policy's 10");
    };
    assert_eq!(changes, 36);
    assert!(second.key > image.key);

    // WHEN the newest image is corrupt THEN a cold start Scans instead
    let mut bytes = client
        .get_object()
        .bucket(&bucket)
        .key(&second.key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    let corrupt = format!("index/{:020}-9999999999999.img", u64::MAX / 2);
    client
        .put_object()
        .bucket(&bucket)
        .key(&corrupt)
        .body(bytes.into())
        .send()
        .await
        .unwrap();
    let (people, origin) = open_people_on(
        Arc::clone(&store),
        Some(&images),
        None,
        &config,
        Refresh::Inline,
    )
    .await
    .unwrap();
    assert_eq!(origin, Origin::Scan);
    assert_eq!(people.index.engine().snapshot().len(), 425);
}
