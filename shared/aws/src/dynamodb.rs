//! DynamoDB adapter of the people storage port.
//!
//! The table design and the reasons for it are in `docs/dynamodb.md`. In
//! short: one item per person keyed by `id`, and a global secondary index
//! `by_version` (partition key `feed`, one of a few shard keys; sort key
//! `version`) that is the change feed the query function's index follows.

use std::collections::{HashMap, HashSet, VecDeque};
use std::error::Error as StdError;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::types::TableDescription;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, IndexStatus,
    KeySchemaElement, KeyType, Projection, ProjectionType, PutRequest, ScalarAttributeType,
    TableStatus, WriteRequest,
};
use futures::future::try_join_all;
use futures::stream::{self, StreamExt, TryStreamExt};
use rand::RngExt;

use crate::sdk_error::{CallError, classify};
use people_app::ports::{Changes, PeopleStore, ScanPage, StoreError, Version, WriteReport};
use people_core::domain::{Change, Person};

/// The change-feed index: partition key `feed`, sort key `version`.
pub const VERSION_INDEX: &str = "by_version";
/// Feed shards unless told otherwise: enough to spread a bulk import's
/// writes over several index partitions, few enough that a feed read (one
/// Query per shard) stays cheap.
pub const DEFAULT_FEED_SHARDS: u32 = 4;
/// Default re-read window of feed readers (see `with_feed_overlap`).
pub const DEFAULT_FEED_OVERLAP: Duration = Duration::from_secs(30);

const ID: &str = "id";
const FIRST_NAME: &str = "first_name";
const LAST_NAME: &str = "last_name";
const NATIONALITY: &str = "nationality";
const HOBBIES: &str = "hobbies";
const VERSION: &str = "version";
const FEED: &str = "feed";
/// Set (true) on a tombstone: the item of a deleted person, kept so that
/// the change feed carries the delete.
const DELETED: &str = "deleted";
/// Epoch seconds after which DynamoDB's TTL may remove a tombstone.
const EXPIRES_AT: &str = "expires_at";
/// How long a tombstone stays at least (DynamoDB's TTL removes expired
/// items within days after, never before). See docs/dynamodb.md.
pub const TOMBSTONE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// DynamoDB refuses a BatchWriteItem of more than 25 requests.
const BATCH_WRITE_MAX: usize = 25;
/// How long `create_people_table` waits for a new table to become usable.
const TABLE_READY_TIMEOUT: Duration = Duration::from_secs(300);

type Item = HashMap<String, AttributeValue>;

/// How unprocessed items of a BatchWriteItem are retried. The SDK already
/// retries a throttled *request*; DynamoDB can also accept a request and
/// hand some of its items back (`UnprocessedItems`), which is ours to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRetry {
    /// Calls per chunk, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry; doubled for each following one.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for BatchRetry {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            first_delay: Duration::from_millis(25),
            max_delay: Duration::from_secs(1),
        }
    }
}

impl BatchRetry {
    /// The sleep before retry `retry` (1-based): exponential, capped, with
    /// "equal jitter" (half fixed, half random) so that the chunks that were
    /// throttled together do not come back together, yet each one still
    /// backs off.
    pub(crate) fn delay(&self, retry: u32) -> Duration {
        let exp = self
            .first_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20));
        let capped = exp.min(self.max_delay);
        let half = capped / 2;
        let jitter_micros = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(rand::rng().random_range(0..=jitter_micros))
    }
}

/// People in a DynamoDB table (see the module docs).
pub struct DynamoPeopleStore {
    client: Client,
    table: String,
    feed_shards: u32,
    scan_page_limit: Option<i32>,
    write_concurrency: usize,
    retry: BatchRetry,
    /// How far behind its watermark a reader of the feed re-reads, in
    /// version units (microseconds).
    feed_overlap: Version,
    /// The last version this instance gave a write (or promised through
    /// `latest_version`): versions from one instance strictly increase.
    last_version: AtomicU64,
    /// This machine's clock, corrected to DynamoDB's (see [`ServerClock`]).
    clock: Arc<ServerClock>,
}

/// This machine's clock, corrected by the offset to DynamoDB's clock that
/// the responses' `Date` headers show.
///
/// Versions are times, and a reader moves its watermark with its own clock:
/// a writer whose clock is minutes behind (an operator's laptop running
/// `admin import`) would stamp versions that warm readers are already past,
/// and they would never see those people. So every response of the table's
/// client updates the offset to the server's clock, a writer learns it
/// before its first write, and versions are `local clock + offset`. `Date`
/// has whole seconds, so an offset under [`CLOCK_TOLERANCE`] is taken as
/// none; what remains is far inside the feed's overlap window.
#[derive(Debug, Default)]
pub struct ServerClock {
    /// Microseconds to add to the local clock.
    offset: AtomicI64,
    /// Whether a response has told the offset yet.
    known: AtomicBool,
    /// Only for tests: how far this "machine's" clock is behind the real one.
    behind: AtomicU64,
}

/// Offsets smaller than this are not corrected (`Date` has whole seconds).
pub const CLOCK_TOLERANCE: Duration = Duration::from_secs(2);

impl ServerClock {
    /// The local clock, as the tests may have skewed it.
    fn local_micros(&self) -> i64 {
        now_micros() as i64 - self.behind.load(Ordering::Relaxed) as i64
    }

    /// The corrected time in microseconds since the epoch.
    pub fn now_micros(&self) -> u64 {
        let now = self.local_micros() + self.offset.load(Ordering::Relaxed);
        u64::try_from(now).unwrap_or(0)
    }

    /// How far the local clock is behind the server's (negative: ahead),
    /// once a response told.
    pub fn offset(&self) -> Option<Duration> {
        self.known
            .load(Ordering::Acquire)
            .then(|| Duration::from_micros(self.offset.load(Ordering::Relaxed).unsigned_abs()))
    }

    /// Takes the server's time from a `Date` header.
    fn observe(&self, date: &str) {
        let Ok(server) = chrono::DateTime::parse_from_rfc2822(date) else {
            return;
        };
        // The header's second, taken at its middle.
        let server = server.timestamp() * 1_000_000 + 500_000;
        let offset = server - self.local_micros();
        let offset = if offset.unsigned_abs() < CLOCK_TOLERANCE.as_micros() as u64 {
            0
        } else {
            offset
        };
        let before = self.offset.swap(offset, Ordering::Relaxed);
        let first = !self.known.swap(true, Ordering::AcqRel);
        if offset != 0 && (first || (before - offset).abs() > 1_000_000) {
            tracing::warn!(
                offset_ms = offset / 1000,
                "this machine's clock differs from DynamoDB's; versions are corrected by the offset"
            );
        }
    }
}

impl aws_sdk_dynamodb::config::Intercept for ClockInterceptor {
    fn name(&self) -> &'static str {
        "ServerClock"
    }

    fn read_after_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            self.0.observe(date);
        }
        Ok(())
    }
}

#[derive(Debug)]
struct ClockInterceptor(Arc<ServerClock>);

impl DynamoPeopleStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let clock = Arc::new(ServerClock::default());
        let client = Client::from_conf(
            client
                .config()
                .to_builder()
                .interceptor(ClockInterceptor(Arc::clone(&clock)))
                .build(),
        );
        Self {
            clock,
            client,
            table: table.into(),
            feed_shards: DEFAULT_FEED_SHARDS,
            scan_page_limit: None,
            write_concurrency: 4,
            retry: BatchRetry::default(),
            feed_overlap: DEFAULT_FEED_OVERLAP.as_micros() as Version,
            last_version: AtomicU64::new(0),
        }
    }

    /// How long a write may take from getting its version to being
    /// readable in the feed (writers on other machines commit out of
    /// order); readers re-read that far behind their watermark.
    pub fn with_feed_overlap(mut self, overlap: Duration) -> Self {
        self.feed_overlap = overlap.as_micros().try_into().unwrap_or(Version::MAX);
        self
    }

    /// Only for tests: this store's machine clock runs `behind` the real one
    /// (a laptop minutes behind), to show that versions still follow
    /// DynamoDB's clock.
    pub fn with_clock_behind(self, behind: Duration) -> Self {
        self.clock
            .behind
            .store(behind.as_micros() as u64, Ordering::Relaxed);
        self
    }

    /// The clock versions are taken from.
    pub fn clock(&self) -> &ServerClock {
        &self.clock
    }

    /// Learns the server's clock before the first write: a GetItem of an id
    /// no person has (cheap, and allowed to every writer). A later response
    /// keeps the offset current.
    async fn learn_clock(&self) -> Result<(), StoreError> {
        if self.clock.known.load(Ordering::Acquire) {
            return Ok(());
        }
        self.client
            .get_item()
            .table_name(&self.table)
            .key(ID, AttributeValue::S("\u{0}clock".into()))
            .send()
            .await
            .map_err(|e| self.error("GetItem", e))?;
        if !self.clock.known.load(Ordering::Acquire) {
            // No Date header (an emulator without one): the local clock it is.
            tracing::warn!(
                "DynamoDB's answer has no Date header; versions use this machine's clock"
            );
            self.clock.known.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// The number of change-feed shards (at least 1). A property of the
    /// table, not of one instance: every writer and reader of a table must
    /// use the same number (a reader that knows fewer shards misses changes).
    pub fn with_feed_shards(mut self, shards: u32) -> Self {
        self.feed_shards = shards.max(1);
        self
    }

    /// At most `limit` items per Scan page, below DynamoDB's 1 MB per page
    /// (which applies when no limit is set, the default).
    pub fn with_scan_page_limit(mut self, limit: u32) -> Self {
        self.scan_page_limit = Some(i32::try_from(limit.max(1)).unwrap_or(i32::MAX));
        self
    }

    /// BatchWriteItem calls of one `put_batch` in flight at once (at least 1).
    pub fn with_write_concurrency(mut self, chunks: usize) -> Self {
        self.write_concurrency = chunks.max(1);
        self
    }

    pub fn with_batch_retry(mut self, retry: BatchRetry) -> Self {
        self.retry = BatchRetry {
            max_attempts: retry.max_attempts.max(1),
            ..retry
        };
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The feed shard of a person: a stable hash (CRC-32 of the id, the same
    /// on every machine and in every build) modulo the shard count.
    fn feed_of(&self, id: &str) -> String {
        format!("f{}", crc32fast::hash(id.as_bytes()) % self.feed_shards)
    }

    /// Reserves `n` consecutive versions and returns the first: microseconds
    /// since the epoch, or one past the last version issued if the clock has
    /// not moved on (or went back).
    fn reserve_versions(&self, n: u64) -> Version {
        let now = self.clock.now_micros();
        let first = |last: u64| now.max(last.saturating_add(1));
        let last = self
            .last_version
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(first(last).saturating_add(n.saturating_sub(1)))
            })
            .unwrap_or_else(|last| last);
        first(last)
    }

    fn error<E>(&self, operation: &'static str, err: SdkError<E, HttpResponse>) -> StoreError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        store_error(operation, &self.table, err)
    }

    /// Writes one chunk (at most 25 items, distinct ids, without their
    /// version), retrying what DynamoDB hands back unprocessed. Returns the
    /// ids still unwritten.
    async fn write_chunk(&self, items: Vec<Item>) -> Result<Vec<String>, StoreError> {
        self.learn_clock().await?;
        let first = self.reserve_versions(items.len() as u64);
        let mut pending = items
            .into_iter()
            .zip(first..)
            .map(|(mut item, version)| {
                item.insert(VERSION.into(), AttributeValue::N(version.to_string()));
                put_request(item)
            })
            .collect::<Result<Vec<_>, _>>()?;
        for attempt in 1..=self.retry.max_attempts {
            if attempt > 1 {
                tokio::time::sleep(self.retry.delay(attempt - 1)).await;
                // Stamp the retried items anew: a version must be taken just
                // before the write that commits it, or a feed reader may
                // already have moved past it (see docs/dynamodb.md).
                self.restamp(&mut pending);
            }
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(|e| self.error("BatchWriteItem", e))?;
            pending = out
                .unprocessed_items
                .and_then(|mut tables| tables.remove(&self.table))
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(Vec::new());
            }
            tracing::debug!(attempt, unprocessed = pending.len(), "items not processed");
        }
        let failed: Vec<String> = pending.iter().filter_map(request_id).collect();
        tracing::warn!(
            failed = failed.len(),
            attempts = self.retry.max_attempts,
            "items still unprocessed after every attempt"
        );
        Ok(failed)
    }

    fn restamp(&self, requests: &mut [WriteRequest]) {
        let first = self.reserve_versions(requests.len() as u64);
        for (request, version) in requests.iter_mut().zip(first..) {
            if let Some(put) = request.put_request.as_mut() {
                put.item
                    .insert(VERSION.into(), AttributeValue::N(version.to_string()));
            }
        }
    }

    /// One page of feed shard `feed`: changes after `since`, oldest first.
    async fn feed_page(
        &self,
        feed: &str,
        since: Version,
        start: Option<Item>,
        limit: usize,
    ) -> Result<(Vec<(Version, Change)>, Option<Item>), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(VERSION_INDEX)
            .key_condition_expression("#feed = :feed AND #version > :since")
            .expression_attribute_names("#feed", FEED)
            .expression_attribute_names("#version", VERSION)
            .expression_attribute_values(":feed", AttributeValue::S(feed.to_owned()))
            .expression_attribute_values(":since", AttributeValue::N(since.to_string()))
            .scan_index_forward(true)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| self.error("Query", e))?;
        let changes = out
            .items()
            .iter()
            .map(|item| Ok((version_of(item)?, change_of(item)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((changes, out.last_evaluated_key))
    }
}

/// Where one feed shard stands while `changes_since` merges the shards.
struct FeedCursor {
    feed: String,
    buffered: VecDeque<(Version, Change)>,
    /// Where the next page starts; `None` once the shard is read to its end.
    next: Option<Item>,
}

#[async_trait]
impl PeopleStore for DynamoPeopleStore {
    #[tracing::instrument(skip(self), fields(table = %self.table))]
    async fn get(&self, id: &str) -> Result<Option<Person>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ID, AttributeValue::S(id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", e))?;
        match &out.item {
            Some(item) if !is_tombstone(item) => from_item(item).map(Some),
            _ => Ok(None),
        }
    }

    /// Puts every person (the last one given for an id wins, as in the
    /// memory store). `written` counts the people given whose id was
    /// written, `unchanged` is always 0: DynamoDB would need a read or a
    /// conditional write per item to tell, which costs more than the write
    /// it saves.
    #[tracing::instrument(
        skip(self, people),
        fields(table = %self.table, people = people.len(), written, failed)
    )]
    async fn put_batch(&self, people: &[Person]) -> Result<WriteReport, StoreError> {
        // DynamoDB rejects a batch that names an id twice; keep the last.
        let last: HashMap<&str, usize> = people
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.as_str(), i))
            .collect();
        let unique: Vec<&Person> = people
            .iter()
            .enumerate()
            .filter(|(i, p)| last[p.id.as_str()] == *i)
            .map(|(_, p)| p)
            .collect();
        // Chunks by index: a closure taking a borrowed chunk trips the
        // compiler's `Send` check of the stream (a higher-ranked lifetime).
        let unique = &unique;
        let failed: Vec<String> = stream::iter((0..unique.len()).step_by(BATCH_WRITE_MAX))
            .map(|from| {
                let items = unique[from..unique.len().min(from + BATCH_WRITE_MAX)]
                    .iter()
                    .map(|p| to_item(p, self.feed_of(&p.id)))
                    .collect();
                self.write_chunk(items)
            })
            .buffer_unordered(self.write_concurrency)
            .try_concat()
            .await?;
        let unwritten: HashSet<&str> = failed.iter().map(String::as_str).collect();
        let written = people
            .iter()
            .filter(|p| !unwritten.contains(p.id.as_str()))
            .count();
        let span = tracing::Span::current();
        span.record("written", written);
        span.record("failed", failed.len());
        Ok(WriteReport {
            written,
            unchanged: 0,
            failed,
        })
    }

    /// Replaces each person's item with a tombstone (see the module docs of
    /// the table, docs/dynamodb.md): the feed carries it to every reader,
    /// `get` and `scan` skip it, and TTL removes it after
    /// [`TOMBSTONE_LIFETIME`]. `written` counts every id given (deleting an
    /// absent id leaves a tombstone too: telling would cost a read).
    #[tracing::instrument(
        skip(self, ids),
        fields(table = %self.table, ids = ids.len(), failed)
    )]
    async fn delete_batch(&self, ids: &[String]) -> Result<WriteReport, StoreError> {
        let mut unique: Vec<&str> = ids.iter().map(String::as_str).collect();
        unique.sort_unstable();
        unique.dedup();
        let now_secs = self.clock.now_micros() / 1_000_000;
        let unique = &unique;
        let failed: Vec<String> = stream::iter((0..unique.len()).step_by(BATCH_WRITE_MAX))
            .map(|from| {
                let items = unique[from..unique.len().min(from + BATCH_WRITE_MAX)]
                    .iter()
                    .map(|id| tombstone_item(id, self.feed_of(id), now_secs))
                    .collect();
                self.write_chunk(items)
            })
            .buffer_unordered(self.write_concurrency)
            .try_concat()
            .await?;
        let unwritten: HashSet<&str> = failed.iter().map(String::as_str).collect();
        let written = ids
            .iter()
            .filter(|id| !unwritten.contains(id.as_str()))
            .count();
        tracing::Span::current().record("failed", failed.len());
        Ok(WriteReport {
            written,
            unchanged: 0,
            failed,
        })
    }

    fn tombstone_lifetime(&self) -> Option<Duration> {
        Some(TOMBSTONE_LIFETIME)
    }

    #[tracing::instrument(skip(self, start), fields(table = %self.table, continued = start.is_some(), returned))]
    async fn scan(
        &self,
        segment: u32,
        segments: u32,
        start: Option<String>,
    ) -> Result<ScanPage, StoreError> {
        let (Ok(segment_no), Ok(total)) = (i32::try_from(segment), i32::try_from(segments)) else {
            return Err(StoreError::Permanent(
                format!("segment {segment} of {segments} is out of range").into(),
            ));
        };
        if segments == 0 || segment >= segments {
            return Err(StoreError::Permanent(
                format!("segment {segment} of {segments} does not exist").into(),
            ));
        }
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .segment(segment_no)
            .total_segments(total)
            // The index is built from this scan and then follows the feed
            // from the version taken before it: a strongly consistent scan
            // leaves only writes in flight to the feed's overlap window.
            .consistent_read(true)
            .set_limit(self.scan_page_limit)
            .set_exclusive_start_key(
                start.map(|id| HashMap::from([(ID.into(), AttributeValue::S(id))])),
            )
            .send()
            .await
            .map_err(|e| self.error("Scan", e))?;
        let people = out
            .items()
            .iter()
            .filter(|item| !is_tombstone(item))
            .map(from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let next = match out.last_evaluated_key {
            None => None,
            Some(key) => Some(match key.get(ID) {
                Some(AttributeValue::S(id)) => id.clone(),
                _ => {
                    return Err(StoreError::Permanent(
                        format!(
                            "Scan of {}: the page ends at a key without an id",
                            self.table
                        )
                        .into(),
                    ));
                }
            }),
        };
        tracing::Span::current().record("returned", people.len());
        Ok(ScanPage { people, next })
    }

    /// The current time (DynamoDB's clock) in microseconds, or later if this instance already
    /// issued a later version: every write that completed before the call
    /// has a version at most this, and every later write of this instance a
    /// greater one. Not 0 for an empty table (that would cost a read, and
    /// nobody needs to tell).
    #[tracing::instrument(skip(self), fields(table = %self.table))]
    async fn latest_version(&self) -> Result<Version, StoreError> {
        // A reader's watermark follows the server's clock too: one ahead
        // would move past writes still to come.
        self.learn_clock().await?;
        let now = self.clock.now_micros();
        Ok(self.last_version.fetch_max(now, Ordering::AcqRel).max(now))
    }

    /// Reads every feed shard from `since` on, in version order, and merges
    /// them: each shard is read only as far as the merge needs it, so a
    /// call costs about `limit` items of reads, not `limit` per shard.
    #[tracing::instrument(skip(self), fields(table = %self.table, returned, more))]
    fn feed_overlap(&self) -> Version {
        self.feed_overlap
    }

    async fn changes_since(&self, since: Version, limit: usize) -> Result<Changes, StoreError> {
        // One more than asked for tells whether more follow.
        let wanted = limit.saturating_add(1);
        let per_shard = wanted.div_ceil(self.feed_shards as usize);
        let mut shards = try_join_all((0..self.feed_shards).map(|shard| async move {
            let feed = format!("f{shard}");
            let (page, next) = self.feed_page(&feed, since, None, per_shard).await?;
            Ok::<_, StoreError>(FeedCursor {
                feed,
                buffered: page.into(),
                next,
            })
        }))
        .await?;

        let mut people: Vec<(Version, Change)> = Vec::new();
        let mut more = false;
        loop {
            // A shard with nothing buffered but more to read must be read
            // before the next-oldest change can be told.
            let needed = wanted - people.len();
            try_join_all(
                shards
                    .iter_mut()
                    .filter(|s| s.buffered.is_empty() && s.next.is_some())
                    .map(|s| async move {
                        let (page, next) = self
                            .feed_page(&s.feed, since, s.next.take(), needed)
                            .await?;
                        s.buffered.extend(page);
                        s.next = next;
                        Ok::<_, StoreError>(())
                    }),
            )
            .await?;
            let oldest = shards
                .iter_mut()
                .filter(|s| !s.buffered.is_empty())
                .min_by(|a, b| {
                    let (va, pa) = &a.buffered[0];
                    let (vb, pb) = &b.buffered[0];
                    (va, pa.id()).cmp(&(vb, pb.id()))
                });
            let Some(oldest) = oldest else { break };
            if people.len() == limit {
                more = true;
                // Writers on two machines can stamp the same microsecond. The
                // next call starts after `up_to`, so do not stop in the middle
                // of a version (unless a whole page shares one; the reader's
                // overlap window then catches the rest).
                let next_version = oldest.buffered[0].0;
                let keep = people
                    .iter()
                    .rposition(|(v, _)| *v < next_version)
                    .map_or(0, |i| i + 1);
                if keep > 0 {
                    people.truncate(keep);
                }
                break;
            }
            if let Some(change) = oldest.buffered.pop_front() {
                people.push(change);
            }
        }
        let up_to = people.last().map_or(since, |(v, _)| *v);
        let span = tracing::Span::current();
        span.record("returned", people.len());
        span.record("more", more);
        Ok(Changes {
            changes: people.into_iter().map(|(_, c)| c).collect(),
            up_to,
            more,
        })
    }
}

/// Creates the people table with its change-feed index, on demand billing,
/// and waits until both are active. A table that already exists is fine, if
/// it has the index.
#[tracing::instrument(skip(client))]
pub async fn create_people_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let attribute = |name: &str, kind| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let index = GlobalSecondaryIndex::builder()
        .index_name(VERSION_INDEX)
        .key_schema(built(key(FEED, KeyType::Hash))?)
        .key_schema(built(key(VERSION, KeyType::Range))?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build();
    let create = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(built(attribute(ID, ScalarAttributeType::S))?)
        .attribute_definitions(built(attribute(FEED, ScalarAttributeType::S))?)
        .attribute_definitions(built(attribute(VERSION, ScalarAttributeType::N))?)
        .key_schema(built(key(ID, KeyType::Hash))?)
        .global_secondary_indexes(built(index)?);
    create_table_and_wait(client, table, create, |t| {
        let active = t.table_status() == Some(&TableStatus::Active);
        let index = t
            .global_secondary_indexes()
            .iter()
            .find(|i| i.index_name() == Some(VERSION_INDEX));
        match index {
            None if active => Err(StoreError::Permanent(
                format!("table {table} exists without the index {VERSION_INDEX}").into(),
            )),
            Some(i) => Ok(active && i.index_status() == Some(&IndexStatus::Active)),
            None => Ok(false),
        }
    })
    .await?;
    // Tombstones expire through TTL on `expires_at` (the template declares
    // the same). Enabling it twice is an error, so look first.
    let ttl = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| store_error("DescribeTimeToLive", table, e))?;
    let enabled = ttl
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status())
        .is_some_and(|s| {
            matches!(
                s,
                aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled
                    | aws_sdk_dynamodb::types::TimeToLiveStatus::Enabling
            )
        });
    if !enabled {
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(built(
                aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                    .attribute_name(EXPIRES_AT)
                    .enabled(true)
                    .build(),
            )?)
            .send()
            .await
            .map_err(|e| store_error("UpdateTimeToLive", table, e))?;
    }
    Ok(())
}

/// Sends `create` (a table that exists already is fine), then waits until
/// `ready` finds the table usable: `Ok(true)`; `Ok(false)` is not yet, and
/// an error (a table of another shape) ends the wait.
pub(crate) async fn create_table_and_wait(
    client: &Client,
    table: &str,
    create: CreateTableFluentBuilder,
    ready: impl Fn(&TableDescription) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    match create.send().await {
        Ok(_) => tracing::info!("table created"),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            tracing::info!("table exists already");
        }
        Err(e) => return Err(store_error("CreateTable", table, e)),
    }
    let deadline = Instant::now() + TABLE_READY_TIMEOUT;
    loop {
        let description = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| store_error("DescribeTable", table, e))?
            .table;
        if let Some(description) = &description
            && ready(description)?
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StoreError::Unavailable(
                format!("table {table} not active after {TABLE_READY_TIMEOUT:?}").into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A DynamoDB call on `table` that failed, as a `StoreError`: retryable
/// when [`classify`] finds it transient, permanent otherwise. The SDK
/// error stays the source.
pub(crate) fn store_error<E>(
    operation: &'static str,
    table: &str,
    err: SdkError<E, HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    crate::sdk_error::store_error(
        classify(&err),
        CallError::new("DynamoDB", operation, "table", table, err),
    )
}

/// An item that is not a person as this adapter writes them.
#[derive(Debug, thiserror::Error)]
#[error("item {id:?} cannot be read as a person: {problem}")]
pub struct BadItem {
    id: String,
    problem: String,
}

fn built<T>(result: Result<T, BuildError>) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::Permanent(Box::new(e)))
}

fn put_request(item: Item) -> Result<WriteRequest, StoreError> {
    Ok(WriteRequest::builder()
        .put_request(built(PutRequest::builder().set_item(Some(item)).build())?)
        .build())
}

fn request_id(request: &WriteRequest) -> Option<String> {
    match request.put_request.as_ref()?.item.get(ID)? {
        AttributeValue::S(id) => Some(id.clone()),
        _ => None,
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A person's item, without its version (stamped when it is sent).
fn to_item(p: &Person, feed: String) -> Item {
    HashMap::from([
        (ID.into(), AttributeValue::S(p.id.clone())),
        (FIRST_NAME.into(), AttributeValue::S(p.first_name.clone())),
        (LAST_NAME.into(), AttributeValue::S(p.last_name.clone())),
        (NATIONALITY.into(), AttributeValue::S(p.nationality.clone())),
        // A list, not a string set: a set cannot be empty and loses order.
        (
            HOBBIES.into(),
            AttributeValue::L(p.hobbies.iter().cloned().map(AttributeValue::S).collect()),
        ),
        (FEED.into(), AttributeValue::S(feed)),
    ])
}

/// A tombstone's item, without its version: the id, the feed shard, the
/// mark, and when it may expire.
fn tombstone_item(id: &str, feed: String, now_secs: u64) -> Item {
    let expires = now_secs + TOMBSTONE_LIFETIME.as_secs();
    HashMap::from([
        (ID.into(), AttributeValue::S(id.to_owned())),
        (DELETED.into(), AttributeValue::Bool(true)),
        (EXPIRES_AT.into(), AttributeValue::N(expires.to_string())),
        (FEED.into(), AttributeValue::S(feed)),
    ])
}

fn is_tombstone(item: &Item) -> bool {
    matches!(item.get(DELETED), Some(AttributeValue::Bool(true)))
}

/// A feed item as a change: a tombstone is a delete.
fn change_of(item: &Item) -> Result<Change, StoreError> {
    if is_tombstone(item) {
        return match item.get(ID) {
            Some(AttributeValue::S(id)) => Ok(Change::Delete(id.clone())),
            _ => Err(bad_item("<no id>", "a tombstone without a string `id`")),
        };
    }
    from_item(item).map(Change::Put)
}

fn from_item(item: &Item) -> Result<Person, StoreError> {
    let id = match item.get(ID) {
        Some(AttributeValue::S(id)) => id.clone(),
        _ => return Err(bad_item("<no id>", "no string attribute `id`")),
    };
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        Some(_) => Err(bad_item(&id, &format!("`{name}` is not a string"))),
        None => Err(bad_item(&id, &format!("`{name}` is missing"))),
    };
    let hobbies = match item.get(HOBBIES) {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|h| match h {
                AttributeValue::S(s) => Ok(s.clone()),
                _ => Err(bad_item(
                    &id,
                    "`hobbies` holds a value that is not a string",
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(bad_item(&id, "`hobbies` is not a list")),
        None => return Err(bad_item(&id, "`hobbies` is missing")),
    };
    Ok(Person {
        first_name: text(FIRST_NAME)?,
        last_name: text(LAST_NAME)?,
        nationality: text(NATIONALITY)?,
        hobbies,
        id,
    })
}

fn version_of(item: &Item) -> Result<Version, StoreError> {
    match item.get(VERSION) {
        Some(AttributeValue::N(n)) => n.parse().map_err(|_| {
            bad_item(
                &id_or_unknown(item),
                &format!("`version` {n:?} is not a whole number"),
            )
        }),
        _ => Err(bad_item(
            &id_or_unknown(item),
            "no number attribute `version`",
        )),
    }
}

fn id_or_unknown(item: &Item) -> String {
    match item.get(ID) {
        Some(AttributeValue::S(id)) => id.clone(),
        _ => "<no id>".into(),
    }
}

fn bad_item(id: &str, problem: &str) -> StoreError {
    StoreError::Permanent(Box::new(BadItem {
        id: id.to_owned(),
        problem: problem.to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(hobbies: &[&str]) -> Person {
        Person {
            id: "p1".into(),
            first_name: "Zoë".into(),
            last_name: "O'Brien".into(),
            nationality: "Irish".into(),
            hobbies: hobbies.iter().map(|h| h.to_string()).collect(),
        }
    }

    #[test]
    fn items_round_trip_keeping_hobby_order_and_empty_hobbies() {
        for hobbies in [&[][..], &["Go", "Chess", "Archery"][..]] {
            let p = person(hobbies);
            let mut item = to_item(&p, "f1".into());
            item.insert(VERSION.into(), AttributeValue::N("42".into()));
            assert_eq!(from_item(&item).unwrap(), p);
            assert_eq!(version_of(&item).unwrap(), 42);
        }
    }

    #[test]
    fn an_item_that_does_not_decode_is_an_error_naming_its_id() {
        let mut item = to_item(&person(&[]), "f0".into());
        item.insert(HOBBIES.into(), AttributeValue::Ss(vec!["Chess".into()]));
        let err = from_item(&item).unwrap_err();
        assert!(matches!(err, StoreError::Permanent(_)));
        let source = StdError::source(&err).unwrap().to_string();
        assert!(
            source.contains("\"p1\"") && source.contains("hobbies"),
            "{source}"
        );
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_within_bounds() {
        let retry = BatchRetry::default();
        for (retry_no, full) in [(1, 25), (2, 50), (3, 100), (6, 800), (7, 1000), (30, 1000)] {
            let full = Duration::from_millis(full);
            for _ in 0..20 {
                let d = retry.delay(retry_no);
                assert!(d >= full / 2 && d <= full, "retry {retry_no}: {d:?}");
            }
        }
    }

    #[test]
    fn feed_shards_are_stable_and_in_range() {
        let client = Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .build(),
        );
        let store = DynamoPeopleStore::new(client, "t").with_feed_shards(4);
        // CRC-32 values are fixed by the algorithm, so the shard of an id
        // never changes between builds or machines.
        assert_eq!(
            store.feed_of("p1"),
            format!("f{}", crc32fast::hash(b"p1") % 4)
        );
        let shards: HashSet<String> = (0..100)
            .map(|i| store.feed_of(&format!("id-{i}")))
            .collect();
        assert_eq!(shards.len(), 4);
    }

    #[test]
    fn versions_strictly_increase_even_when_the_clock_does_not() {
        let client = Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .build(),
        );
        let store = DynamoPeopleStore::new(client, "t");
        // No server to ask: the local clock it is.
        store.clock.known.store(true, Ordering::Release);
        let a = store.reserve_versions(1_000_000);
        let b = store.reserve_versions(1);
        assert!(b >= a + 1_000_000, "{a} then {b}");
        let promised = futures::executor::block_on(store.latest_version()).unwrap();
        assert!(promised >= b);
        assert!(store.reserve_versions(1) > promised);
    }
}
