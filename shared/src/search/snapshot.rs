//! What a reader sees: an immutable base segment, the base ranks that are
//! dead (people deleted or replaced since the base was built), and a small
//! delta segment holding everyone written since. Every answer is exact
//! across the two: a person is live in exactly one of them.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use roaring::RoaringBitmap;

use super::index::{Matches, Segment};
use super::table::PeopleTable;
use crate::domain::{PeopleFilter, Person, SortKey, ValueCount};

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageStart {
    /// The match at this 0-based position.
    Offset(u64),
    /// The first match after this key (keyset pagination: stable while
    /// people are added or changed between pages, and across merges, since
    /// a key names a place in the order, not a position in a segment).
    After(SortKey),
}

pub struct SearchPage {
    pub total: u64,
    /// Position of the first item among the matches.
    pub offset: u64,
    pub items: Vec<Person>,
    /// Key of the last item, when matches follow it.
    pub next: Option<SortKey>,
}

pub struct Snapshot {
    base: Arc<Segment>,
    /// Ranks of `base` whose person was deleted or replaced since.
    dead: Arc<RoaringBitmap>,
    delta: Arc<Segment>,
    /// Every nationality and hobby with its live count, by count desc then
    /// value: computed once per snapshot (a few hundred bitmap counts).
    nationalities: Vec<ValueCount>,
    hobbies: Vec<ValueCount>,
}

/// The matches of one segment, for aggregations (`jobs::report`).
pub(crate) struct SegmentMatches<'a> {
    pub(crate) table: &'a PeopleTable,
    segment: &'a Segment,
    pub(crate) matches: Matches<'a>,
}

impl SegmentMatches<'_> {
    /// The table rows of the matches, in order.
    pub(crate) fn rows(&self) -> impl Iterator<Item = u32> + '_ {
        self.matches.iter().map(|rank| self.segment.row_at(rank))
    }
}

impl Snapshot {
    pub(crate) fn new(base: Arc<Segment>, dead: Arc<RoaringBitmap>, delta: Arc<Segment>) -> Self {
        let (base_nats, base_hobbies) = base.value_counts(&dead);
        let (delta_nats, delta_hobbies) = delta.value_counts(&RoaringBitmap::new());
        Self {
            nationalities: sum_counts(base_nats, delta_nats),
            hobbies: sum_counts(base_hobbies, delta_hobbies),
            base,
            dead,
            delta,
        }
    }

    /// A snapshot of `table` alone (no delta).
    pub fn build(table: PeopleTable) -> Self {
        Self::new(
            Arc::new(Segment::build(table)),
            Arc::default(),
            Arc::new(Segment::build(PeopleTable::new())),
        )
    }

    pub(crate) fn base(&self) -> &Arc<Segment> {
        &self.base
    }

    pub(crate) fn dead(&self) -> &Arc<RoaringBitmap> {
        &self.dead
    }

    pub(crate) fn delta(&self) -> &Arc<Segment> {
        &self.delta
    }

    /// People in the delta segment and dead base ranks: what a merge folds
    /// into a new base.
    pub fn pending(&self) -> usize {
        self.delta.table().rows_len() + self.dead.len() as usize
    }

    /// People in the directory.
    pub fn len(&self) -> usize {
        self.base.len() - self.dead.len() as usize + self.delta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, id: &str) -> Option<Person> {
        if let Some(p) = self.delta.get(id) {
            return Some(p);
        }
        let row = self.base.table().row_of(id)?;
        if !self.dead.is_empty() && self.dead.contains(self.base.rank_of(id)?) {
            return None;
        }
        Some(self.base.table().person(row))
    }

    /// Top `limit` nationalities and hobbies by count, then value.
    pub fn filter_options(&self, limit: usize) -> (Vec<ValueCount>, Vec<ValueCount>) {
        let take = |v: &[ValueCount]| v.iter().take(limit).cloned().collect();
        (take(&self.nationalities), take(&self.hobbies))
    }

    /// How many people match `filter`.
    pub fn count(&self, filter: &PeopleFilter) -> u64 {
        let (a, b) = self.both(filter);
        a.len() + b.len()
    }

    fn both(&self, filter: &PeopleFilter) -> (Matches<'_>, Matches<'_>) {
        (
            self.base.matches(filter).without(&self.dead),
            self.delta.matches(filter),
        )
    }

    /// The matches of each segment, base first.
    pub(crate) fn segment_matches(&self, filter: &PeopleFilter) -> [SegmentMatches<'_>; 2] {
        let (a, b) = self.both(filter);
        [
            SegmentMatches {
                table: self.base.table(),
                segment: &self.base,
                matches: a,
            },
            SegmentMatches {
                table: self.delta.table(),
                segment: &self.delta,
                matches: b,
            },
        ]
    }

    /// One page of the people matching `filter`, with the exact total.
    ///
    /// The page is a merge of the two segments' matches by key. An offset
    /// is placed by a binary search over the delta's matches (a delta match
    /// `j` sits at `j` + the base matches below its key), so a deep page
    /// costs O(log d · log n) key comparisons, not a walk from the start.
    pub fn search(&self, filter: &PeopleFilter, start: &PageStart, size: usize) -> SearchPage {
        let (a, b) = self.both(filter);
        let total = a.len() + b.len();
        let (a_from, b_from) = match start {
            PageStart::After(key) => (
                a.count_below(self.base.rank_after(key)),
                b.count_below(self.delta.rank_after(key)),
            ),
            PageStart::Offset(offset) if b.is_empty() => (*offset, 0),
            PageStart::Offset(offset) => {
                let position = |j: u64| {
                    let rank = b.select(j).expect("j is below the delta's count");
                    let (last, first, id) = self.delta.key_of_rank(rank);
                    j + a.count_below(self.base.rank_after_parts(last, first, id))
                };
                let (mut lo, mut hi) = (0, b.len());
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if position(mid) < *offset {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                (offset - lo, lo)
            }
        };
        let offset = a_from + b_from;
        let a_ranks = a.ranks(a_from, size);
        let b_ranks = b.ranks(b_from, size);
        let (mut i, mut j) = (0, 0);
        let mut picked: Vec<(&Segment, u32)> =
            Vec::with_capacity(size.min(a_ranks.len() + b_ranks.len()));
        while picked.len() < size && (i < a_ranks.len() || j < b_ranks.len()) {
            let take_a = match (a_ranks.get(i), b_ranks.get(j)) {
                (Some(&ra), Some(&rb)) => {
                    cmp_keys(self.base.key_of_rank(ra), self.delta.key_of_rank(rb))
                        == Ordering::Less
                }
                (Some(_), None) => true,
                _ => false,
            };
            if take_a {
                picked.push((&self.base, a_ranks[i]));
                i += 1;
            } else {
                picked.push((&self.delta, b_ranks[j]));
                j += 1;
            }
        }
        let next = match picked.last() {
            Some(&(segment, rank)) if offset + (picked.len() as u64) < total => {
                Some(segment.sort_key(rank))
            }
            _ => None,
        };
        let items = picked
            .iter()
            .map(|&(segment, rank)| segment.table().person(segment.row_at(rank)))
            .collect();
        SearchPage {
            total,
            offset,
            items,
            next,
        }
    }
}

pub(crate) fn cmp_keys(a: (&str, &str, &str), b: (&str, &str, &str)) -> Ordering {
    (a.0.as_bytes(), a.1.as_bytes(), a.2.as_bytes()).cmp(&(
        b.0.as_bytes(),
        b.1.as_bytes(),
        b.2.as_bytes(),
    ))
}

/// Adds two lists of counts by value, and orders them by count desc, then
/// value asc.
fn sum_counts(a: Vec<ValueCount>, b: Vec<ValueCount>) -> Vec<ValueCount> {
    let mut out = a;
    if !b.is_empty() {
        let mut by_value: HashMap<String, u64> =
            out.drain(..).map(|vc| (vc.value, vc.count)).collect();
        for vc in b {
            *by_value.entry(vc.value).or_default() += vc.count;
        }
        out = by_value
            .into_iter()
            .map(|(value, count)| ValueCount { value, count })
            .collect();
    }
    out.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    out
}
