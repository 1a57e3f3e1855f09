//! An index that follows the people store's change feed.
//!
//! A request that finds the last check older than the refresh interval
//! starts one refresh. In a long-running process (the local server) it runs
//! in the background and the request is answered from the current
//! snapshot. On Lambda, where work left running after the response is
//! frozen until the next invocation, the request that finds a refresh due
//! waits for it ([`Refresh::Inline`]), but for one feed page at most
//! (`INLINE_CHANGES`): a longer catch-up continues on the next requests, so
//! a request's cost stays bounded; every other request in that second does
//! not wait. A refresh reads the changes since the newest version it has
//! seen (and, once per overlap window, re-reads that window for writes
//! that became readable late), applies each page as a delta of the index
//! (never a rebuild: merges run on the engine's own thread), and swaps the
//! snapshot.
//!
//! Freshness bound: a write is in the index of a warm instance at most
//! `refresh_every` + one refresh (a feed read, plus a delta of a few
//! milliseconds when something changed) after it became readable in the store, provided the
//! instance receives requests; an idle instance catches up on its next
//! request. A write that became readable later than newer ones (DynamoDB,
//! several writers) is in at most `overlap` + `refresh_every` after it was
//! versioned. Checking costs a request one clock read; the store sees one
//! feed read per interval per instance (one Query per feed shard on
//! DynamoDB), and each change is read about twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::build_from_store;
use crate::ports::{PeopleStore, StoreError, Version};
use people_core::search::{FeedPosition, SearchEngine, Snapshot};

/// Changes read per feed page.
const CHANGES_PER_BATCH: usize = 20_000;
/// Changes a request applies at most when it refreshes inline (Lambda).
const INLINE_CHANGES: usize = 5_000;

pub struct LiveIndex {
    engine: SearchEngine,
    feed: Option<Feed>,
}

/// Where a due refresh runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// In a background task; the request does not wait.
    Background,
    /// In the request that finds it due (Lambda).
    Inline,
}

struct Feed {
    store: Arc<dyn PeopleStore>,
    every: Duration,
    mode: Refresh,
    started: Instant,
    /// Milliseconds since `started` when the next check is due.
    next_due_ms: AtomicU64,
    refreshing: AtomicBool,
    /// The newest version read from the feed.
    seen: AtomicU64,
    /// Every change up to this version is in the index, including writes
    /// that became readable late (see `catch_up`).
    swept: AtomicU64,
    /// Wall-clock milliseconds since the epoch of the last complete
    /// catch-up (not an `Instant`: whether a monotonic clock runs while a
    /// Lambda environment is frozen is not promised).
    caught_up_ms: AtomicU64,
}

impl LiveIndex {
    /// An index that changes only through [`LiveIndex::engine`] writes.
    pub fn fixed(engine: SearchEngine) -> Self {
        Self { engine, feed: None }
    }

    /// An index that catches up with `store`, whose changes up to
    /// `version` it already holds.
    pub fn following(
        engine: SearchEngine,
        store: Arc<dyn PeopleStore>,
        version: Version,
        every: Duration,
        mode: Refresh,
    ) -> Self {
        Self {
            engine,
            feed: Some(Feed {
                every,
                mode,
                started: Instant::now(),
                next_due_ms: AtomicU64::new(every.as_millis() as u64),
                refreshing: AtomicBool::new(false),
                seen: AtomicU64::new(version),
                swept: AtomicU64::new(version.saturating_sub(store.feed_overlap())),
                caught_up_ms: AtomicU64::new(wall_ms()),
                store,
            }),
        }
    }

    /// Starts the staleness clock at `ms` (wall clock, ms since the epoch)
    /// instead of now: for an index loaded from an image, when that image
    /// last caught up with the feed.
    pub fn caught_up_at(self, ms: u64) -> Self {
        if let Some(feed) = &self.feed {
            feed.caught_up_ms.store(ms, Ordering::Release);
        }
        self
    }

    pub fn engine(&self) -> &SearchEngine {
        &self.engine
    }

    /// What an index image of this index holds: the current snapshot and
    /// the feed position it is current with at least (`version` 0 and now
    /// for an index that follows no feed).
    ///
    /// The position is read first: a refresh applies its changes before it
    /// moves `seen`, so the snapshot taken after holds every change up to
    /// it. Where writes become readable out of order, the position is the
    /// last sweep plus the overlap, so that a reader starting from it
    /// re-reads (from `version - overlap`) every write that may have been
    /// readable late, as this index would have.
    pub fn image_view(&self) -> (FeedPosition, Arc<Snapshot>) {
        let position = match &self.feed {
            None => FeedPosition {
                version: 0,
                caught_up_ms: wall_ms(),
            },
            Some(feed) => {
                let caught_up_ms = feed.caught_up_ms.load(Ordering::Acquire);
                let seen = feed.seen.load(Ordering::Acquire);
                let overlap = feed.store.feed_overlap();
                let version = if overlap == 0 {
                    seen
                } else {
                    seen.min(feed.swept.load(Ordering::Acquire).saturating_add(overlap))
                };
                FeedPosition {
                    version,
                    caught_up_ms,
                }
            }
        };
        (position, self.engine.snapshot())
    }

    /// The snapshot to answer from, after starting (or, inline, running)
    /// a refresh when one is due. Needs a Tokio runtime.
    pub async fn current(self: &Arc<Self>) -> Arc<Snapshot> {
        if let Some(feed) = &self.feed {
            let now = feed.started.elapsed().as_millis() as u64;
            if now >= feed.next_due_ms.load(Ordering::Relaxed)
                && !feed.refreshing.swap(true, Ordering::AcqRel)
            {
                let this = Arc::clone(self);
                let limit = match feed.mode {
                    Refresh::Background => None,
                    Refresh::Inline => Some(INLINE_CHANGES),
                };
                let refresh = async move {
                    if let Err(e) = this.refresh_up_to(limit).await {
                        tracing::warn!(error = %e, source = ?std::error::Error::source(&e), "index refresh failed; serving the previous snapshot");
                    }
                    // Only the request that claimed the refresh releases it.
                    if let Some(feed) = &this.feed {
                        feed.refreshing.store(false, Ordering::Release);
                    }
                };
                match feed.mode {
                    Refresh::Background => {
                        tokio::spawn(refresh);
                    }
                    Refresh::Inline => refresh.await,
                }
            }
        }
        self.engine.snapshot()
    }

    /// Applies every change since the last refresh now, and returns how many
    /// people changed (an import calls it so its people are searchable when
    /// it completes). Safe beside a refresh that [`LiveIndex::current`]
    /// started: both only ever move the feed positions forward, and applying
    /// a change twice leaves the index as it was.
    pub async fn refresh(self: &Arc<Self>) -> Result<usize, StoreError> {
        self.refresh_up_to(None).await
    }

    /// A refresh that applies about `limit` changes at most (all: `None`);
    /// when it stops short, the next refresh is due at once.
    async fn refresh_up_to(self: &Arc<Self>, limit: Option<usize>) -> Result<usize, StoreError> {
        let Some(feed) = &self.feed else {
            return Ok(0);
        };
        let result = self.catch_up(feed, limit).await;
        let now = feed.started.elapsed();
        let due = match &result {
            Ok((_, false)) => now,
            _ => now + feed.every,
        };
        feed.next_due_ms
            .store(due.as_millis() as u64, Ordering::Relaxed);
        result.map(|(changed, _)| changed)
    }

    /// Rebuilds the index from a scan of the store when this instance has
    /// not read the feed for longer than a tombstone lives: a delete it
    /// has not seen may be gone from the feed.
    async fn rebuild_if_stale(&self, feed: &Feed) -> Result<(), StoreError> {
        let Some(lifetime) = feed.store.tombstone_lifetime() else {
            return Ok(());
        };
        let since_ms = wall_ms().saturating_sub(feed.caught_up_ms.load(Ordering::Acquire));
        // The overlap is in the store's version units (microseconds).
        let margin = Duration::from_micros(feed.store.feed_overlap()) + Duration::from_secs(60);
        if Duration::from_millis(since_ms) + margin < lifetime {
            return Ok(());
        }
        tracing::warn!(
            ?lifetime,
            "the feed was not read for longer than a tombstone lives; rebuilding the index from a scan"
        );
        let (fresh, version) = build_from_store(feed.store.as_ref(), 4, &|_| {}).await?;
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || engine.replace_with(&fresh))
            .await
            .map_err(|e| StoreError::Permanent(Box::new(e)))?;
        feed.seen.store(version, Ordering::Release);
        feed.swept.store(
            version.saturating_sub(feed.store.feed_overlap()),
            Ordering::Release,
        );
        Ok(())
    }

    /// Reads the feed after the newest version seen. Where writes can
    /// become readable out of version order (DynamoDB: the store's
    /// `feed_overlap`), once per overlap period it also re-reads from the
    /// last sweep: by then every write up to `latest - overlap` is readable,
    /// so it is swept in for good. Each change is read at most about twice,
    /// not once per refresh.
    async fn catch_up(
        self: &Arc<Self>,
        feed: &Feed,
        limit: Option<usize>,
    ) -> Result<(usize, bool), StoreError> {
        let start = std::time::Instant::now();
        self.rebuild_if_stale(feed).await?;
        let seen = feed.seen.load(Ordering::Acquire);
        let overlap = feed.store.feed_overlap();
        let mut since = seen;
        let mut sweep_to = None;
        if overlap > 0 {
            let safe = feed.store.latest_version().await?.saturating_sub(overlap);
            let swept = feed.swept.load(Ordering::Acquire);
            if safe >= swept.saturating_add(overlap) {
                since = swept.min(seen);
                sweep_to = Some(safe);
            }
        }
        let mut changed = 0;
        let mut read = 0;
        let mut newest = seen;
        let complete = loop {
            let page = limit.map_or(CHANGES_PER_BATCH, |l| l.min(CHANGES_PER_BATCH));
            let changes = feed.store.changes_since(since, page).await?;
            read += changes.changes.len();
            if !changes.changes.is_empty() {
                // Applying is CPU work: keep it off the request threads.
                let engine = self.engine.clone();
                let batch = changes.changes;
                changed += tokio::task::spawn_blocking(move || engine.apply(&batch))
                    .await
                    .map_err(|e| StoreError::Permanent(Box::new(e)))?;
            }
            newest = newest.max(changes.up_to);
            if !changes.more {
                break true;
            }
            since = changes.up_to;
            if limit.is_some_and(|l| read >= l) {
                break false;
            }
        };
        feed.seen.fetch_max(newest, Ordering::AcqRel);
        if let Some(safe) = sweep_to {
            // A sweep that stopped short has still swept what it read
            // (every write up to `safe` was readable when it started).
            let swept = if complete { safe } else { newest.min(safe) };
            feed.swept.fetch_max(swept, Ordering::AcqRel);
        }
        if complete {
            // Wall clock, as the field says (this was the process-relative
            // `started.elapsed()`, which never exceeded the start value, so
            // a long-lived instance rebuilt from a Scan once a tombstone
            // lifetime after it started, and on every refresh after that).
            feed.caught_up_ms.fetch_max(wall_ms(), Ordering::AcqRel);
        }
        if changed > 0 {
            let people = self.engine.snapshot().len();
            metrics::histogram!(crate::telemetry::INDEX_MS, "what" => "refresh")
                .record(crate::telemetry::ms_since(start));
            metrics::gauge!(crate::telemetry::INDEX_PEOPLE).set(people as f64);
            tracing::info!(
                changed,
                seen = newest,
                people,
                "index caught up with the change feed"
            );
        }
        Ok((changed, complete))
    }
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
