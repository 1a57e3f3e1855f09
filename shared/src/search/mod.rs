//! The search engine: the read path everywhere (tests, local server, the
//! query Lambda, the report worker).
//!
//! Readers take an `Arc<Snapshot>` and never wait. A snapshot is an
//! immutable **base** segment, a bitmap of the base's **dead** ranks, and a
//! small **delta** segment of the people written since the base was built.
//!
//! Why this shape fits the bitmap design: every bitmap of a segment holds
//! *ranks*, positions in the (last, first, id) order, so that a total is a
//! cardinality and a page is a `select`. Inserting one person into such an
//! index shifts the rank of everyone after them, which rewrites every
//! bitmap: O(n). So a write never touches the base. A deletion is one bit
//! in the dead bitmap (an exact `andnot` at query time); an insert or a
//! replacement goes to the delta, a segment of the same kind over its own
//! small rank space, rebuilt on each write (O(d log d), d bounded by the
//! merge threshold, a few milliseconds at most), and a replaced person's base
//! rank is marked dead. Queries run on both segments and merge by key, which
//! stays exact for totals, order, pages and cursors (`snapshot.rs`).
//!
//! When the delta reaches the merge threshold, a **merge** on its own
//! thread (`index-merge`) folds base and delta into a new base, off every
//! request path; writes go on meanwhile and are replayed onto the new base
//! when it is installed. The merge starts from a clone of the base's table
//! that shares its row chunks (`table.rs`): removed people stay as garbage
//! rows and new ones are appended, so the rows are not copied, and the
//! peak during a merge is one table plus two sets of bitmaps, not two
//! indexes (BENCHMARKS.md). On Lambda the merge thread works whenever the
//! environment runs (a frozen environment pauses it; the next invocation
//! resumes it), and no request waits for it.

mod image;
mod index;
mod live;
mod load;
mod snapshot;
mod table;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use arc_swap::ArcSwap;
use roaring::RoaringBitmap;

pub use image::{
    FORMAT_VERSION, FeedPosition, ImageError, ImageHeader, IndexImage, load_file, read_image,
    save_file, write_image,
};
pub use index::Matches;
use index::Segment;
pub use live::{LiveIndex, Refresh};
pub use load::build_from_store;
pub use snapshot::{PageStart, SearchPage, Snapshot};
pub use table::{PeopleTable, PersonRef, Upserted};

use crate::domain::{Change, Person};

/// Smallest delta that starts a merge.
const MIN_MERGE_AT: usize = 4_096;
/// Largest: beyond it, rebuilding the delta on each write would cost more
/// than a few milliseconds.
const MAX_MERGE_AT: usize = 32_768;
/// A merge also compacts the table when this fraction of its rows (1 in
/// `COMPACT_RATIO`) is garbage of deleted people.
const COMPACT_RATIO: usize = 4;

#[derive(Clone)]
pub struct SearchEngine {
    inner: Arc<Inner>,
}

struct Inner {
    current: ArcSwap<Snapshot>,
    writer: Mutex<Writer>,
    /// Signalled when a merge ends.
    merged: Condvar,
    /// Pending changes (delta rows + dead ranks) that start a merge; 0:
    /// never on its own (tests call [`SearchEngine::merge`]).
    merge_at: AtomicUsize,
}

struct Writer {
    base: Arc<Segment>,
    dead: RoaringBitmap,
    /// People written since `base`: its rows are the delta segment's.
    delta: PeopleTable,
    /// While a merge runs: the changes applied since it took its copy, to
    /// replay onto the base it builds.
    since_merge: Option<Vec<Change>>,
    merges: u64,
}

/// A merge that has taken its copy of the index and not yet installed its
/// result (see [`SearchEngine::start_merge`]).
pub struct Merge {
    inner: Arc<Inner>,
    snapshot: Arc<Snapshot>,
    delta: PeopleTable,
    done: bool,
}

impl SearchEngine {
    pub fn new(table: PeopleTable) -> Self {
        let base = Arc::new(Segment::build(table));
        let merge_at = default_merge_at(base.len());
        let writer = Writer {
            base,
            dead: RoaringBitmap::new(),
            delta: PeopleTable::new(),
            since_merge: None,
            merges: 0,
        };
        let snapshot = writer.snapshot();
        Self {
            inner: Arc::new(Inner {
                current: ArcSwap::from_pointee(snapshot),
                writer: Mutex::new(writer),
                merged: Condvar::new(),
                merge_at: AtomicUsize::new(merge_at),
            }),
        }
    }

    pub fn from_people<'a>(people: impl IntoIterator<Item = &'a Person>) -> Self {
        let mut table = PeopleTable::new();
        for p in people {
            table.upsert(p);
        }
        Self::new(table)
    }

    /// Merges start on their own once `pending` changes wait in the delta
    /// (0: only through [`SearchEngine::merge`]).
    pub fn with_merge_at(self, pending: usize) -> Self {
        self.inner.merge_at.store(pending, Ordering::Relaxed);
        self
    }

    /// The current state, for as long as the caller holds it.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.current.load_full()
    }

    /// Inserts or replaces people by id; queries see all of them or none.
    /// Returns how many people changed.
    pub fn upsert(&self, people: &[Person]) -> usize {
        let changes: Vec<Change> = people.iter().cloned().map(Change::Put).collect();
        self.apply(&changes)
    }

    /// Removes people by id; returns how many were there.
    pub fn delete(&self, ids: &[String]) -> usize {
        let changes: Vec<Change> = ids.iter().cloned().map(Change::Delete).collect();
        self.apply(&changes)
    }

    /// Applies changes in order; queries see all of them or none. Costs
    /// O(k log n) for the k changes plus a rebuild of the delta segment
    /// (bounded by the merge threshold), never a rebuild of the base; may
    /// start a merge on its own thread. Returns how many changes changed
    /// something. Blocking for a few milliseconds at most: call it off the
    /// async executor (`spawn_blocking`).
    pub fn apply(&self, changes: &[Change]) -> usize {
        let mut w = self.inner.lock();
        let mut changed = 0;
        for change in changes {
            if w.apply(change) {
                changed += 1;
                if let Some(log) = &mut w.since_merge {
                    log.push(change.clone());
                }
            }
        }
        if changed > 0 {
            self.inner.current.store(Arc::new(w.snapshot()));
        }
        let merge_at = self.inner.merge_at.load(Ordering::Relaxed);
        let due = merge_at > 0 && w.since_merge.is_none() && w.pending() >= merge_at;
        drop(w);
        if due {
            self.merge_in_background();
        }
        changed
    }

    fn merge_in_background(&self) {
        let Some(merge) = self.start_merge() else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("index-merge".into())
            .spawn(move || merge.run());
        if let Err(e) = spawned {
            // The merge was dropped unstarted, which released its claim.
            tracing::warn!(error = %e, "could not start an index merge thread; will try again");
        }
    }

    /// Takes a merge's copy of the index, or `None` while another merge
    /// runs. Writes may go on before [`Merge::run`]; they are replayed onto
    /// its result.
    pub fn start_merge(&self) -> Option<Merge> {
        let mut w = self.inner.lock();
        if w.since_merge.is_some() {
            return None;
        }
        w.since_merge = Some(Vec::new());
        Some(Merge {
            inner: Arc::clone(&self.inner),
            snapshot: self.inner.current.load_full(),
            delta: w.delta.clone(),
            done: false,
        })
    }

    /// Folds the delta into a new base now, on this thread (waiting for a
    /// merge that is running to end first). Returns whether there was
    /// anything to fold.
    pub fn merge(&self) -> bool {
        self.wait_for_merge();
        match self.start_merge() {
            Some(merge) if merge.snapshot.pending() > 0 => {
                merge.run();
                true
            }
            _ => false,
        }
    }

    /// Blocks while a merge runs.
    pub fn wait_for_merge(&self) {
        let mut w = self.inner.lock();
        while w.since_merge.is_some() {
            w = self.inner.merged.wait(w).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Replaces the whole index with `other`'s (a rebuild from a scan),
    /// after any running merge has ended.
    pub fn replace_with(&self, other: &SearchEngine) {
        let (base, dead, delta) = {
            let o = other.inner.lock();
            (Arc::clone(&o.base), o.dead.clone(), o.delta.clone())
        };
        let mut w = self.inner.lock();
        // A merge would install a base built from the old one: wait for it
        // under the same lock, so none starts in between.
        while w.since_merge.is_some() {
            w = self.inner.merged.wait(w).unwrap_or_else(|e| e.into_inner());
        }
        w.base = base;
        w.dead = dead;
        w.delta = delta;
        self.inner.current.store(Arc::new(w.snapshot()));
    }

    /// Merges installed so far.
    pub fn merges(&self) -> u64 {
        self.inner.lock().merges
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Merge {
    /// Builds the new base (the long part, holding no lock), then installs
    /// it with the changes made meanwhile replayed as a new delta.
    pub fn run(mut self) {
        let start = std::time::Instant::now();
        let base = self.snapshot.base();
        let mut table = base.table().clone();
        for rank in self.snapshot.dead().iter() {
            table.remove(base.table().id(base.row_at(rank)));
        }
        for row in self.delta.rows() {
            let hobbies: Vec<&str> = self
                .delta
                .hobby_ids(row)
                .iter()
                .map(|&h| self.delta.hobby_name(h))
                .collect();
            table.upsert_ref(PersonRef {
                id: self.delta.id(row),
                first_name: self.delta.first_name(row),
                last_name: self.delta.last_name(row),
                nationality: self.delta.nationality(row),
                hobbies: &hobbies,
            });
        }
        if table.removed_len() * COMPACT_RATIO > table.rows_len() {
            table = table.compacted();
        }
        let base = Arc::new(Segment::build(table));
        let folded = self.snapshot.pending();
        let mut w = self.inner.lock();
        let replay = w.since_merge.take().unwrap_or_default();
        w.base = base;
        w.dead = RoaringBitmap::new();
        w.delta = PeopleTable::new();
        for change in &replay {
            w.apply(change);
        }
        w.merges += 1;
        self.inner.current.store(Arc::new(w.snapshot()));
        let people = w.base.len();
        drop(w);
        self.done = true;
        self.inner.merged.notify_all();
        metrics::histogram!(crate::telemetry::INDEX_MS, "what" => "merge")
            .record(crate::telemetry::ms_since(start));
        tracing::info!(
            folded,
            replayed = replay.len(),
            people,
            ms = start.elapsed().as_millis() as u64,
            "index merge installed"
        );
    }
}

impl Drop for Merge {
    /// A merge that never ran (or panicked) releases its claim, so that
    /// writes stop logging for it and the next merge can start.
    fn drop(&mut self) {
        if !self.done {
            let mut w = self.inner.lock();
            w.since_merge = None;
            drop(w);
            self.inner.merged.notify_all();
        }
    }
}

impl Writer {
    fn pending(&self) -> usize {
        self.delta.rows_len() + self.dead.len() as usize
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new(
            Arc::clone(&self.base),
            Arc::new(self.dead.clone()),
            Arc::new(Segment::build(self.delta.clone())),
        )
    }

    /// Applies one change; returns whether it changed anything.
    fn apply(&mut self, change: &Change) -> bool {
        match change {
            Change::Put(p) => {
                if let Some(row) = self.delta.row_of(&p.id) {
                    if self.delta.holds(row, p) {
                        return false;
                    }
                } else if let Some(rank) = self.base.rank_of(&p.id)
                    && !self.dead.contains(rank)
                {
                    if self.base.table().holds(self.base.row_at(rank), p) {
                        return false;
                    }
                    self.dead.insert(rank);
                }
                self.delta.upsert(p);
                true
            }
            Change::Delete(id) => {
                let in_delta = self.delta.remove(id).is_some();
                let in_base = self
                    .base
                    .rank_of(id)
                    .is_some_and(|rank| self.dead.insert(rank));
                in_delta || in_base
            }
        }
    }
}

fn default_merge_at(people: usize) -> usize {
    (people / 64).clamp(MIN_MERGE_AT, MAX_MERGE_AT)
}
