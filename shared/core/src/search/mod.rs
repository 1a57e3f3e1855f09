//! The search engine: the read path everywhere (tests, local server, the
//! query Lambda, the report worker).
//!
//! Readers take an `Arc<Snapshot>` and never wait. A snapshot is an
//! immutable **base** segment and a few small immutable **delta** segments
//! of the people written since the base was built (oldest first), each
//! segment with a bitmap of its **dead** ranks (people deleted or replaced
//! since it was built). A live person is live in exactly one segment.
//!
//! Why this shape fits the bitmap design: every bitmap of a segment holds
//! *ranks*, positions in the (last, first, id) order, so that a total is a
//! cardinality and a page is a `select`. Inserting one person into such an
//! index shifts the rank of everyone after them, which rewrites every
//! bitmap: O(n). So a write never touches a segment's bitmaps: a deletion
//! is one bit in a dead bitmap (an exact `andnot` at query time), and a
//! batch of k inserts or replacements becomes a new delta segment of its
//! own, built in O(k log k). Deltas are tiered as in an LSM tree (a binary
//! counter): while the newest holds at least half as many people as the
//! one before, the two are rebuilt as one, so each person is rebuilt
//! O(log d) times while the deltas grow to d, and there are O(log d)
//! deltas, at most `MAX_DELTAS`. A write of k people costs O(k log d)
//! amortised, whatever the size of the deltas; rebuilding one delta on each
//! write (the first design here) cost O(d) per write, and d grows without
//! bound while a merge runs. Queries run on every segment and merge by key,
//! which stays exact for totals, order, pages and cursors (`snapshot.rs`).
//!
//! When the deltas reach the merge threshold, a **merge** on its own
//! thread (`index-merge`) folds base and deltas into a new base, off every
//! request path; writes go on meanwhile and are replayed onto the new base
//! when it is installed. The merge starts from a clone of the base's table
//! that shares its row chunks (`table.rs`): removed people stay as garbage
//! rows and new ones are appended, so the rows are not copied, and the
//! peak during a merge is one table plus two sets of bitmaps, not two
//! indexes (BENCHMARKS.md). On Lambda the merge thread works whenever the
//! environment runs (a frozen environment pauses it; the next invocation
//! resumes it), and no request waits for it.

mod features;
mod image;
mod index;
mod snapshot;
mod table;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use arc_swap::ArcSwap;
use roaring::RoaringBitmap;

pub use features::{
    ApproximateWord, Facet, FacetCounting, Highlight, ONE_EDIT_CHARS, TWO_EDITS_CHARS,
    allowed_edits, highlight, prefix_distance,
};
pub use image::{
    FORMAT_VERSION, FeedPosition, ImageError, ImageHeader, IndexImage, load_file, read_image,
    save_file, write_image,
};
pub use index::Matches;
use index::{Segment, SymbolCounts};
pub use snapshot::{PageStart, SearchPage, Snapshot};
pub use table::{PeopleTable, PersonRef, Upserted};

use crate::domain::{Change, Person};

/// Monotonically increasing version that a people store gives each write.
pub type Version = u64;

/// Smallest delta that starts a merge.
const MIN_MERGE_AT: usize = 4_096;
/// Largest: the deltas are searched beside the base by every query, so
/// they are kept small next to it.
const MAX_MERGE_AT: usize = 32_768;
/// Most delta segments a snapshot has: past it, the two newest are rebuilt
/// as one even when their sizes differ (each query visits every segment).
const MAX_DELTAS: usize = 10;
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
    /// Ranks of `base` whose person was deleted or replaced since.
    dead: Arc<RoaringBitmap>,
    /// The base's live people per symbol, kept as its people die.
    base_counts: Arc<SymbolCounts>,
    /// People written since `base`, oldest segment first.
    deltas: Vec<Delta>,
    /// While a merge runs: the changes applied since it took its copy, to
    /// replay onto the base it builds.
    since_merge: Option<Vec<Change>>,
    merges: u64,
}

/// A delta segment and its dead ranks (shared with the snapshots that
/// hold it; a write copies the bitmap before changing it).
#[derive(Clone)]
pub(crate) struct Delta {
    pub(crate) segment: Arc<Segment>,
    pub(crate) dead: Arc<RoaringBitmap>,
}

impl Delta {
    fn new(table: PeopleTable) -> Self {
        Self {
            segment: Arc::new(Segment::build(table)),
            dead: Arc::default(),
        }
    }

    /// People live in it.
    fn live(&self) -> usize {
        self.segment.len() - self.dead.len() as usize
    }
}

/// Where a person is live.
#[derive(Clone, Copy)]
enum Place {
    Base(u32),
    /// Delta `.0`, rank `.1`.
    Delta(usize, u32),
}

/// A merge that has taken its copy of the index and not yet installed its
/// result (see [`SearchEngine::start_merge`]).
pub struct Merge {
    inner: Arc<Inner>,
    snapshot: Arc<Snapshot>,
    done: bool,
}

impl SearchEngine {
    pub fn new(table: PeopleTable) -> Self {
        let base = Arc::new(Segment::build(table));
        let merge_at = default_merge_at(base.len());
        let writer = Writer {
            base_counts: Arc::new(base.symbol_counts()),
            base,
            dead: Arc::default(),
            deltas: Vec::new(),
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
    /// O(k log d) amortised for k changes into deltas of d people (a new
    /// delta segment of the k, and the tiering of the deltas), never a
    /// rebuild of the base; may start a merge on its own thread. Returns
    /// how many changes changed something. Blocking for a few milliseconds
    /// at most: call it off the async executor (`spawn_blocking`).
    pub fn apply(&self, changes: &[Change]) -> usize {
        let mut w = self.inner.lock();
        let applied = w.apply(changes);
        let changed = applied.len();
        if let Some(log) = &mut w.since_merge {
            log.extend(applied.into_iter().map(|i| changes[i].clone()));
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
        let (base, dead, base_counts, deltas) = {
            let o = other.inner.lock();
            (
                Arc::clone(&o.base),
                Arc::clone(&o.dead),
                Arc::clone(&o.base_counts),
                o.deltas.clone(),
            )
        };
        let mut w = self.inner.lock();
        // A merge would install a base built from the old one: wait for it
        // under the same lock, so none starts in between.
        while w.since_merge.is_some() {
            w = self.inner.merged.wait(w).unwrap_or_else(|e| e.into_inner());
        }
        w.base = base;
        w.dead = dead;
        w.base_counts = base_counts;
        w.deltas = deltas;
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
        for delta in self.snapshot.deltas() {
            copy_live(delta, &mut table);
        }
        if table.removed_len() * COMPACT_RATIO > table.rows_len() {
            table = table.compacted();
        }
        let base = Arc::new(match merge_pool() {
            Some(pool) => pool.install(|| Segment::build(table)),
            None => Segment::build(table),
        });
        let folded = self.snapshot.pending();
        let mut w = self.inner.lock();
        let replay = w.since_merge.take().unwrap_or_default();
        w.base_counts = Arc::new(base.symbol_counts());
        w.base = base;
        w.dead = Arc::default();
        w.deltas = Vec::new();
        w.apply(&replay);
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
        self.deltas.iter().map(|d| d.segment.len()).sum::<usize>() + self.dead.len() as usize
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new(
            Arc::clone(&self.base),
            Arc::clone(&self.dead),
            &self.base_counts,
            self.deltas.clone(),
        )
    }

    /// Where `id` is live, newest segment first.
    fn place(&self, id: &str) -> Option<Place> {
        for (i, delta) in self.deltas.iter().enumerate().rev() {
            if let Some(rank) = delta.segment.rank_of(id)
                && !delta.dead.contains(rank)
            {
                return Some(Place::Delta(i, rank));
            }
        }
        let rank = self.base.rank_of(id)?;
        (!self.dead.contains(rank)).then_some(Place::Base(rank))
    }

    fn holds(&self, place: Place, p: &Person) -> bool {
        let (segment, rank) = match place {
            Place::Base(rank) => (&self.base, rank),
            Place::Delta(i, rank) => (&self.deltas[i].segment, rank),
        };
        segment.table().holds(segment.row_at(rank), p)
    }

    fn kill(&mut self, place: Place) {
        match place {
            Place::Base(rank) => {
                if Arc::make_mut(&mut self.dead).insert(rank) {
                    let table = self.base.table();
                    let row = self.base.row_at(rank);
                    let counts = Arc::make_mut(&mut self.base_counts);
                    counts.nationality[table.nationality_id(row) as usize] -= 1;
                    for &h in table.hobby_ids(row) {
                        counts.hobby[h as usize] -= 1;
                    }
                }
            }
            Place::Delta(i, rank) => {
                Arc::make_mut(&mut self.deltas[i].dead).insert(rank);
            }
        }
    }

    /// Applies `changes` in order as one new delta segment (then tiers the
    /// deltas); returns the positions of the changes that changed something.
    fn apply(&mut self, changes: &[Change]) -> Vec<usize> {
        // The batch's people: they become the new delta.
        let mut fresh = PeopleTable::new();
        let mut applied = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            let changed = match change {
                Change::Put(p) => match fresh.row_of(&p.id) {
                    Some(row) if fresh.holds(row, p) => false,
                    Some(_) => {
                        fresh.upsert(p);
                        true
                    }
                    None => match self.place(&p.id) {
                        Some(place) if self.holds(place, p) => false,
                        Some(place) => {
                            self.kill(place);
                            fresh.upsert(p);
                            true
                        }
                        None => {
                            fresh.upsert(p);
                            true
                        }
                    },
                },
                Change::Delete(id) => {
                    // Live in the batch, or in a segment: never both, since
                    // a put kills the person's older place.
                    if fresh.remove(id).is_some() {
                        true
                    } else if let Some(place) = self.place(id) {
                        self.kill(place);
                        true
                    } else {
                        false
                    }
                }
            };
            if changed {
                applied.push(i);
            }
        }
        if !fresh.is_empty() {
            self.deltas.push(Delta::new(fresh));
        }
        self.tier();
        applied
    }

    /// Drops the deltas nobody is live in, then rebuilds the two newest as
    /// one while the newest holds at least half as many people as the one
    /// before it (or there are more than `MAX_DELTAS`).
    fn tier(&mut self) {
        self.deltas.retain(|d| d.live() > 0);
        while let [.., older, newer] = self.deltas.as_slice() {
            if newer.live() * 2 < older.live() && self.deltas.len() <= MAX_DELTAS {
                break;
            }
            let newer = self.deltas.pop().expect("two deltas");
            let older = self.deltas.pop().expect("two deltas");
            let mut table = PeopleTable::new();
            copy_live(&older, &mut table);
            copy_live(&newer, &mut table);
            self.deltas.push(Delta::new(table));
        }
    }
}

/// The thread pool merges build their base on: half the cores (one at
/// least), and not rayon's global pool. A delta is built on the global pool
/// by the write that makes it, and rayon runs a job sent from outside a
/// pool only when a pool thread is free: behind a merge's parallel sort
/// of a million people, an import of a thousand waited seconds (measured).
/// `None` if the pool's threads cannot be started: merges then share the
/// global pool.
fn merge_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("index-merge-{i}"))
            .build()
            .inspect_err(|e| tracing::warn!(error = %e, "no thread pool for index merges; they share the global one"))
            .ok()
    })
    .as_ref()
}

/// Upserts the people live in `delta` into `table`.
fn copy_live(delta: &Delta, table: &mut PeopleTable) {
    let from = delta.segment.table();
    for rank in 0..delta.segment.len() as u32 {
        if delta.dead.contains(rank) {
            continue;
        }
        let row = delta.segment.row_at(rank);
        let hobbies: Vec<&str> = from
            .hobby_ids(row)
            .iter()
            .map(|&h| from.hobby_name(h))
            .collect();
        table.upsert_ref(PersonRef {
            id: from.id(row),
            first_name: from.first_name(row),
            last_name: from.last_name(row),
            nationality: from.nationality(row),
            hobbies: &hobbies,
        });
    }
}

fn default_merge_at(people: usize) -> usize {
    (people / 64).clamp(MIN_MERGE_AT, MAX_MERGE_AT)
}
