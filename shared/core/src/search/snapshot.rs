//! What a reader sees: an immutable base segment and a few small delta
//! segments holding everyone written since, each with its dead ranks
//! (people deleted or replaced since it was built). Every answer is exact
//! across them: a person is live in exactly one segment.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use roaring::RoaringBitmap;

use super::Delta;
use super::index::{Matches, Segment, SymbolCounts};
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
    /// Oldest first.
    deltas: Vec<Delta>,
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
    /// `base_counts`: the base's live people per symbol (its dead left out).
    pub(crate) fn new(
        base: Arc<Segment>,
        dead: Arc<RoaringBitmap>,
        base_counts: &SymbolCounts,
        deltas: Vec<Delta>,
    ) -> Self {
        let (mut nationalities, mut hobbies) = (Vec::new(), Vec::new());
        let counts = std::iter::once(base.values_of(base_counts))
            .chain(deltas.iter().map(|d| d.segment.value_counts(&d.dead)));
        for (nats, hobs) in counts {
            nationalities.push(nats);
            hobbies.push(hobs);
        }
        let (nationalities, hobbies) = (sum_counts(nationalities), sum_counts(hobbies));
        Self {
            nationalities,
            hobbies,
            base,
            dead,
            deltas,
        }
    }

    /// A snapshot of `table` alone (no delta).
    pub fn build(table: PeopleTable) -> Self {
        let base = Arc::new(Segment::build(table));
        let counts = base.symbol_counts();
        Self::new(base, Arc::default(), &counts, Vec::new())
    }

    pub(crate) fn base(&self) -> &Arc<Segment> {
        &self.base
    }

    pub(crate) fn dead(&self) -> &Arc<RoaringBitmap> {
        &self.dead
    }

    pub(crate) fn deltas(&self) -> &[Delta] {
        &self.deltas
    }

    /// People in the delta segments and dead base ranks: what a merge folds
    /// into a new base.
    pub fn pending(&self) -> usize {
        self.deltas.iter().map(|d| d.segment.len()).sum::<usize>() + self.dead.len() as usize
    }

    /// Delta segments beside the base (a few; tiered, see `search/mod.rs`).
    pub fn delta_segments(&self) -> usize {
        self.deltas.len()
    }

    /// People in the directory.
    pub fn len(&self) -> usize {
        self.base.len() - self.dead.len() as usize
            + self
                .deltas
                .iter()
                .map(|d| d.segment.len() - d.dead.len() as usize)
                .sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, id: &str) -> Option<Person> {
        let segments = std::iter::once((&self.base, &self.dead))
            .chain(self.deltas.iter().map(|d| (&d.segment, &d.dead)));
        for (segment, dead) in segments {
            if let Some(rank) = segment.rank_of(id)
                && !dead.contains(rank)
            {
                return Some(segment.table().person(segment.row_at(rank)));
            }
        }
        None
    }

    /// Top `limit` nationalities and hobbies by count, then value.
    pub fn filter_options(&self, limit: usize) -> (Vec<ValueCount>, Vec<ValueCount>) {
        let take = |v: &[ValueCount]| v.iter().take(limit).cloned().collect();
        (take(&self.nationalities), take(&self.hobbies))
    }

    /// How many people match `filter`.
    pub fn count(&self, filter: &PeopleFilter) -> u64 {
        self.segments(filter).iter().map(|(_, m)| m.len()).sum()
    }

    /// Each segment with its matches of `filter` (dead ranks left out),
    /// base first.
    pub(crate) fn segments(&self, filter: &PeopleFilter) -> Vec<(&Segment, Matches<'_>)> {
        std::iter::once((&*self.base, self.base.matches(filter).without(&self.dead)))
            .chain(
                self.deltas
                    .iter()
                    .map(|d| (&*d.segment, d.segment.matches(filter).without(&d.dead))),
            )
            .collect()
    }

    /// Every value of `facet` with its live count (no filter).
    pub(crate) fn all_counts(&self, facet: super::Facet) -> &[ValueCount] {
        match facet {
            super::Facet::Nationality => &self.nationalities,
            super::Facet::Hobbies => &self.hobbies,
        }
    }

    /// The matches of each segment, base first.
    pub(crate) fn segment_matches(&self, filter: &PeopleFilter) -> Vec<SegmentMatches<'_>> {
        self.segments(filter)
            .into_iter()
            .map(|(segment, matches)| SegmentMatches {
                table: segment.table(),
                segment,
                matches,
            })
            .collect()
    }

    /// One page of the people matching `filter`, with the exact total.
    ///
    /// The page is a merge of the segments' matches by key. An offset is
    /// placed per delta by a binary search over its matches (its match `j`
    /// sits at `j` + the other segments' matches below its key), and the
    /// base takes the rest, so a deep page costs O(s² log d · log n) for s
    /// segments, not a walk from the start.
    pub fn search(&self, filter: &PeopleFilter, start: &PageStart, size: usize) -> SearchPage {
        let parts = self.segments(filter);
        let total: u64 = parts.iter().map(|(_, m)| m.len()).sum();
        let starts: Vec<u64> = match start {
            PageStart::After(key) => parts
                .iter()
                .map(|(segment, m)| m.count_below(segment.rank_after(key)))
                .collect(),
            PageStart::Offset(offset) => split(&parts, *offset),
        };
        let offset: u64 = starts.iter().sum();
        let mut runs: Vec<(&Segment, Vec<u32>, usize)> = parts
            .iter()
            .zip(&starts)
            .map(|((segment, m), &from)| (*segment, m.ranks(from, size), 0))
            .filter(|(_, ranks, _)| !ranks.is_empty())
            .collect();
        let mut picked: Vec<(&Segment, u32)> = Vec::with_capacity(size);
        while picked.len() < size {
            // The run whose next match has the smallest key.
            let mut best: Option<usize> = None;
            for (i, (segment, ranks, at)) in runs.iter().enumerate() {
                let Some(&rank) = ranks.get(*at) else {
                    continue;
                };
                let better = match best {
                    None => true,
                    Some(b) => {
                        let (bs, br, ba) = &runs[b];
                        cmp_keys(segment.key_of_rank(rank), bs.key_of_rank(br[*ba]))
                            == Ordering::Less
                    }
                };
                if better {
                    best = Some(i);
                }
            }
            let Some(b) = best else {
                break;
            };
            let (segment, ranks, at) = &mut runs[b];
            picked.push((*segment, ranks[*at]));
            *at += 1;
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

/// Where the match at global position `offset` falls in each segment: how
/// many of each segment's matches come before it. Per delta, a binary
/// search for the number of its matches whose global position is below
/// `offset` (a match's position is its index plus the other segments'
/// matches with a smaller key); the base, the largest, takes the rest.
fn split(parts: &[(&Segment, Matches<'_>)], offset: u64) -> Vec<u64> {
    let total: u64 = parts.iter().map(|(_, m)| m.len()).sum();
    if offset >= total {
        // Past the end: every delta is spent and the base takes the rest,
        // so that the page's offset is still the one asked for.
        let mut starts: Vec<u64> = parts.iter().map(|(_, m)| m.len()).collect();
        starts[0] = offset - starts[1..].iter().sum::<u64>();
        return starts;
    }
    let mut starts = vec![0u64; parts.len()];
    for (i, (segment, m)) in parts.iter().enumerate().skip(1) {
        if m.is_empty() {
            continue;
        }
        let position = |j: u64| {
            let rank = m.select(j).expect("j is below the segment's count");
            let (last, first, id) = segment.key_of_rank(rank);
            j + parts
                .iter()
                .enumerate()
                .filter(|&(t, _)| t != i)
                .map(|(_, (other, om))| om.count_below(other.rank_after_parts(last, first, id)))
                .sum::<u64>()
        };
        let (mut lo, mut hi) = (0, m.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if position(mid) < offset {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        starts[i] = lo;
    }
    starts[0] = offset - starts[1..].iter().sum::<u64>();
    starts
}

pub(crate) fn cmp_keys(a: (&str, &str, &str), b: (&str, &str, &str)) -> Ordering {
    (a.0.as_bytes(), a.1.as_bytes(), a.2.as_bytes()).cmp(&(
        b.0.as_bytes(),
        b.1.as_bytes(),
        b.2.as_bytes(),
    ))
}

/// Adds lists of counts by value, and orders them by count desc, then
/// value asc.
fn sum_counts(lists: Vec<Vec<ValueCount>>) -> Vec<ValueCount> {
    let mut lists = lists.into_iter();
    let mut out = lists.next().unwrap_or_default();
    let rest: Vec<Vec<ValueCount>> = lists.filter(|l| !l.is_empty()).collect();
    if !rest.is_empty() {
        let mut by_value: HashMap<String, u64> =
            out.drain(..).map(|vc| (vc.value, vc.count)).collect();
        for vc in rest.into_iter().flatten() {
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
