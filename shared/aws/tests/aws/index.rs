//! The live index following the change feed of the DynamoDB store: on both
//! stores, with throttling on the wire, a writer with a skewed clock, and a
//! reader older than a tombstone.

use crate::people::{dynamo_store, fresh_table};
use crate::support::*;
use people_testkit::moto;
use people_testkit::scenarios::people::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use people_app::memory::MemoryPeopleStore;
use people_app::ports::{PeopleStore, StoreError};
use people_aws::dynamodb::DynamoPeopleStore;
use people_core::domain::{Change, Person};

// ------------------------------------ the index following the change feed

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
