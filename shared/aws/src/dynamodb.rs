//! DynamoDB adapter of the people storage port.
//!
//! The table design and the reasons for it are in `docs/dynamodb.md`. In
//! short: one item per person keyed by `id`, and a global secondary index
//! `by_version` (partition key `feed`, one of a few shard keys; sort key
//! `version`) that is the change feed the query function's index follows.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, GlobalSecondaryIndex, IndexStatus, KeyType, Projection, ProjectionType,
    PutRequest, ScalarAttributeType, TableStatus, WriteRequest,
};
use futures::future::try_join_all;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::dynamodb_common::{
    BATCH_WRITE_MAX, Item, bad_item, built, create_table_and_wait, from_item, key_schema,
    on_demand_table, store_error, to_item, write_batch,
};
use people_app::ports::{Changes, PeopleStore, ScanPage, StoreError, Version, WriteReport};
use people_core::domain::{Change, Person};

/// How unprocessed items of a BatchWriteItem are retried (the adapters'
/// one retry policy, under the name this store's builder has always used).
pub use crate::retry::RetryPolicy as BatchRetry;

/// The change-feed index: partition key `feed`, sort key `version`.
pub const VERSION_INDEX: &str = "by_version";
/// Feed shards unless told otherwise: enough to spread a bulk import's
/// writes over several index partitions, few enough that a feed read (one
/// Query per shard) stays cheap.
pub const DEFAULT_FEED_SHARDS: u32 = 4;
/// Default re-read window of feed readers (see `with_feed_overlap`).
pub const DEFAULT_FEED_OVERLAP: Duration = Duration::from_secs(30);

const ID: &str = "id";
const VERSION: &str = "version";
const FEED: &str = "feed";
/// Set (true) on a tombstone: the item of a deleted person, kept so that
/// the change feed carries the delete.
const DELETED: &str = "deleted";
/// How long a tombstone stays at least (DynamoDB's TTL removes expired
/// items within days after, never before). See docs/dynamodb.md.
pub const TOMBSTONE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

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
        self.item("\u{0}clock", false).await?;
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
        self.retry = retry.at_least_once();
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

    /// The item of `id`, if there is one (a tombstone included).
    async fn item(&self, id: &str, consistent: bool) -> Result<Option<Item>, StoreError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ID, AttributeValue::S(id.to_owned()))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| store_error("GetItem", &self.table, e))?
            .item)
    }

    /// Writes `items` (distinct ids, without their version) in chunks of
    /// 25, `write_concurrency` chunks at once. Returns the ids unwritten.
    async fn write_all(&self, items: Vec<Item>) -> Result<Vec<String>, StoreError> {
        let mut items = items.into_iter();
        let chunks = std::iter::from_fn(|| {
            let chunk: Vec<Item> = items.by_ref().take(BATCH_WRITE_MAX).collect();
            (!chunk.is_empty()).then_some(chunk)
        });
        stream::iter(chunks)
            .map(|chunk| self.write_chunk(chunk))
            .buffer_unordered(self.write_concurrency)
            .try_concat()
            .await
    }

    /// Writes one chunk (at most 25 items, distinct ids, without their
    /// version), retrying what DynamoDB hands back unprocessed. Returns the
    /// ids still unwritten.
    async fn write_chunk(&self, items: Vec<Item>) -> Result<Vec<String>, StoreError> {
        self.learn_clock().await?;
        let first = self.reserve_versions(items.len() as u64);
        let pending = items
            .into_iter()
            .zip(first..)
            .map(|(mut item, version)| {
                item.insert(VERSION.into(), AttributeValue::N(version.to_string()));
                put_request(item)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let unprocessed = write_batch(
            &self.retry,
            &self.table,
            pending,
            |pending| {
                self.client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
            },
            // Stamp the retried items anew: a version must be taken just
            // before the write that commits it, or a feed reader may
            // already have moved past it (see docs/dynamodb.md).
            |pending| self.restamp(pending),
        )
        .await?;
        Ok(unprocessed.iter().filter_map(request_id).collect())
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
            .map_err(|e| store_error("Query", &self.table, e))?;
        let changes = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(change_of)
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
        match self.item(id, true).await? {
            Some(item) if !is_tombstone(&item) => person_of(item).map(Some),
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
        let items = unique
            .iter()
            .map(|p| to_item(&PersonItem::new(p, self.feed_of(&p.id))))
            .collect::<Result<_, _>>()?;
        let failed = self.write_all(items).await?;
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
        let items = unique
            .iter()
            .map(|id| to_item(&Tombstone::new(id, self.feed_of(id), now_secs)))
            .collect::<Result<_, _>>()?;
        let failed = self.write_all(items).await?;
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
            .map_err(|e| store_error("Scan", &self.table, e))?;
        let people = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter(|item| !is_tombstone(item))
            .map(person_of)
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
/// waits until both are active, and turns on TTL on `expires_at` (for
/// tombstones; the template declares the same). A table that already
/// exists is fine, if it has the index.
#[tracing::instrument(skip(client))]
pub async fn create_people_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let key = [(ID, KeyType::Hash)];
    let mut index = GlobalSecondaryIndex::builder()
        .index_name(VERSION_INDEX)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        );
    for element in key_schema(&[(FEED, KeyType::Hash), (VERSION, KeyType::Range)])? {
        index = index.key_schema(element);
    }
    let create = on_demand_table(
        client,
        table,
        &[
            (ID, ScalarAttributeType::S),
            (FEED, ScalarAttributeType::S),
            (VERSION, ScalarAttributeType::N),
        ],
        &key,
    )?
    .global_secondary_indexes(built(index.build())?);
    create_table_and_wait(client, table, create, &key, |t| {
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
    .await
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

/// A person's item. Written without its version: `version` is stamped on
/// the item when it is sent, and again before each retry (`restamp`).
#[derive(Debug, Serialize, Deserialize)]
struct PersonItem {
    id: String,
    first_name: String,
    last_name: String,
    nationality: String,
    /// A list, not a string set: a set cannot be empty and loses order.
    hobbies: Vec<String>,
    /// The feed shard (see `feed_of`); only the index reads it.
    #[serde(skip_deserializing)]
    feed: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<Version>,
}

impl PersonItem {
    fn new(p: &Person, feed: String) -> Self {
        Self {
            id: p.id.clone(),
            first_name: p.first_name.clone(),
            last_name: p.last_name.clone(),
            nationality: p.nationality.clone(),
            hobbies: p.hobbies.clone(),
            feed,
            version: None,
        }
    }
}

impl From<PersonItem> for Person {
    fn from(item: PersonItem) -> Self {
        Person {
            id: item.id,
            first_name: item.first_name,
            last_name: item.last_name,
            nationality: item.nationality,
            hobbies: item.hobbies,
        }
    }
}

/// A tombstone's item: the id, the feed shard, the mark, and when it may
/// expire (its version stamped as a person's).
#[derive(Debug, Serialize, Deserialize)]
struct Tombstone {
    id: String,
    deleted: bool,
    expires_at: u64,
    #[serde(skip_deserializing)]
    feed: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<Version>,
}

impl Tombstone {
    fn new(id: &str, feed: String, now_secs: u64) -> Self {
        Self {
            id: id.to_owned(),
            deleted: true,
            expires_at: now_secs + TOMBSTONE_LIFETIME.as_secs(),
            feed,
            version: None,
        }
    }
}

fn is_tombstone(item: &Item) -> bool {
    matches!(item.get(DELETED), Some(AttributeValue::Bool(true)))
}

const A_PERSON: &str = "a person";

fn person_of(item: Item) -> Result<Person, StoreError> {
    from_item::<PersonItem>(A_PERSON, ID, item).map(Person::from)
}

/// A feed item as a change and its version: a tombstone is a delete.
fn change_of(item: Item) -> Result<(Version, Change), StoreError> {
    let (id, version, change) = if is_tombstone(&item) {
        let t: Tombstone = from_item(A_PERSON, ID, item)?;
        (t.id.clone(), t.version, Change::Delete(t.id))
    } else {
        let p: PersonItem = from_item(A_PERSON, ID, item)?;
        (p.id.clone(), p.version, Change::Put(p.into()))
    };
    let version =
        version.ok_or_else(|| bad_item(A_PERSON, &id, "no number attribute `version`"))?;
    Ok((version, change))
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

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.into())
    }

    #[test]
    fn items_keep_the_attributes_the_table_has_always_had() {
        // The names and types that tables written before serde_dynamo hold.
        let item = to_item(&PersonItem::new(&person(&["Go", "Chess"]), "f1".into())).unwrap();
        assert_eq!(
            item,
            HashMap::from([
                ("id".into(), s("p1")),
                ("first_name".into(), s("Zoë")),
                ("last_name".into(), s("O'Brien")),
                ("nationality".into(), s("Irish")),
                (
                    "hobbies".into(),
                    AttributeValue::L(vec![s("Go"), s("Chess")])
                ),
                ("feed".into(), s("f1")),
            ])
        );
        let tombstone = to_item(&Tombstone::new("p1", "f2".into(), 1_000)).unwrap();
        assert_eq!(
            tombstone,
            HashMap::from([
                ("id".into(), s("p1")),
                ("deleted".into(), AttributeValue::Bool(true)),
                (
                    "expires_at".into(),
                    AttributeValue::N((1_000 + TOMBSTONE_LIFETIME.as_secs()).to_string())
                ),
                ("feed".into(), s("f2")),
            ])
        );
    }

    #[test]
    fn items_round_trip_keeping_hobby_order_and_empty_hobbies() {
        for hobbies in [&[][..], &["Go", "Chess", "Archery"][..]] {
            let p = person(hobbies);
            let mut item = to_item(&PersonItem::new(&p, "f1".into())).unwrap();
            item.insert(VERSION.into(), AttributeValue::N("42".into()));
            assert_eq!(person_of(item.clone()).unwrap(), p);
            assert_eq!(change_of(item).unwrap(), (42, Change::Put(p)));
        }
        let mut tombstone = to_item(&Tombstone::new("p1", "f0".into(), 7)).unwrap();
        tombstone.insert(VERSION.into(), AttributeValue::N("43".into()));
        assert!(is_tombstone(&tombstone));
        assert_eq!(
            change_of(tombstone).unwrap(),
            (43, Change::Delete("p1".into()))
        );
    }

    #[test]
    fn an_item_that_does_not_decode_is_an_error_naming_its_id() {
        let mut item = to_item(&PersonItem::new(&person(&[]), "f0".into())).unwrap();
        item.insert("hobbies".into(), s("Chess"));
        let err = person_of(item).unwrap_err();
        assert!(matches!(err, StoreError::Permanent(_)));
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(
            source.contains("\"p1\"") && source.contains("hobbies"),
            "{source}"
        );
        let unversioned = to_item(&PersonItem::new(&person(&[]), "f0".into())).unwrap();
        let err = change_of(unversioned).unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("version"), "{source}");
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
