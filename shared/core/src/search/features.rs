//! What the page (and any client) asks for beyond the reference semantics:
//! disjunctive facet counts, typo-tolerant query words, and match ranges.
//! Each is exact across the base and delta segments (`snapshot.rs`): a
//! person is live in exactly one of them, so per-segment answers add up.
//!
//! **Typos** (`PeopleFilter::typos`): a folded query word of at least
//! [`ONE_EDIT_CHARS`] characters matches a name word when some prefix of
//! that word is within one edit of it, and of at least [`TWO_EDITS_CHARS`]
//! within two. An edit is inserting, deleting or substituting one character
//! or transposing two adjacent ones (optimal string alignment distance, the
//! restricted Damerau-Levenshtein distance: no character is edited twice).
//! Characters are Unicode scalar values of the folded word. Shorter words
//! still match prefixes exactly, as without typos. The vocabulary of a
//! segment is a few thousand distinct name words, so a query word is
//! compared with every word by a bounded dynamic programme
//! ([`prefix_distance`]), which stops as soon as two rows exceed the bound.
//!
//! **Highlights**: ranges `[start, end)` in UTF-16 code units of the
//! original (unfolded) first and last name, what JavaScript's
//! `String.prototype.slice` takes, so a page can bold them.

use std::collections::HashMap;

use rayon::prelude::*;
use roaring::RoaringBitmap;
use serde::Serialize;

use super::Snapshot;
use super::index::{Matches, Segment};
use super::table::PeopleTable;
use crate::domain::{PeopleFilter, Person, ValueCount};
use crate::text;

/// Query words of this many characters or more tolerate one edit.
pub const ONE_EDIT_CHARS: usize = 5;
/// And of this many or more, two.
pub const TWO_EDITS_CHARS: usize = 9;

/// A facet: a field whose values are counted within the current filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Facet {
    Nationality,
    Hobbies,
}

impl Facet {
    pub fn name(self) -> &'static str {
        match self {
            Facet::Nationality => "nationality",
            Facet::Hobbies => "hobbies",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "nationality" => Some(Facet::Nationality),
            "hobbies" => Some(Facet::Hobbies),
            _ => None,
        }
    }

    /// `filter` without this facet's own clause: what its counts apply
    /// (disjunctive faceting, as Lucene's drill-sideways).
    pub(crate) fn sideways(self, filter: &PeopleFilter) -> PeopleFilter {
        let mut f = filter.clone();
        match self {
            Facet::Nationality => f.nationalities.clear(),
            Facet::Hobbies => f.hobbies.clear(),
        }
        f
    }

    /// The values of this facet that `filter` selects.
    pub(crate) fn selected(self, filter: &PeopleFilter) -> &[String] {
        match self {
            Facet::Nationality => &filter.nationalities,
            Facet::Hobbies => &filter.hobbies,
        }
    }
}

/// A query word that matched some name words of the results only within
/// the edits typo tolerance allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApproximateWord {
    /// The folded query word.
    pub word: String,
    /// Folded name words it matched approximately (not as an exact
    /// prefix), by how many of the matching people have them, then byte
    /// order; at most [`MAX_SUGGESTIONS`].
    pub matched: Vec<String>,
}

pub(super) const MAX_SUGGESTIONS: usize = 5;

/// Match ranges of one person, `[start, end)` in UTF-16 code units of
/// the names as sent (what JavaScript's `String.prototype.slice` takes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Highlight {
    pub first_name: Vec<[u32; 2]>,
    pub last_name: Vec<[u32; 2]>,
}

impl Snapshot {
    /// Counts of each facet in `facets` within `filter` minus that facet's
    /// own clause: the top `limit` values by count desc, then value asc,
    /// and the values `filter` selects in any case (with their counts, 0
    /// when nobody matching has them).
    pub fn facets(
        &self,
        filter: &PeopleFilter,
        facets: &[Facet],
        limit: usize,
    ) -> Vec<(Facet, Vec<ValueCount>)> {
        self.facets_with(filter, facets, limit, FacetCounting::Auto)
    }

    /// [`Snapshot::facets`] counted the way `counting` says: tests and
    /// benchmarks force each way to hold them all to the same answers.
    #[doc(hidden)]
    pub fn facets_with(
        &self,
        filter: &PeopleFilter,
        facets: &[Facet],
        limit: usize,
        counting: FacetCounting,
    ) -> Vec<(Facet, Vec<ValueCount>)> {
        let mut counts: Vec<Vec<(&str, u64)>> = vec![Vec::new(); facets.len()];
        let mut done = vec![false; facets.len()];
        for i in 0..facets.len() {
            if done[i] {
                continue;
            }
            // Facets with the same sideways filter (with no nationality and
            // no hobby picked, both) share its matches and one walk.
            let sideways = facets[i].sideways(filter);
            let group: Vec<usize> = (i..facets.len())
                .filter(|&j| !done[j] && facets[j].sideways(filter) == sideways)
                .collect();
            for &j in &group {
                done[j] = true;
            }
            if sideways == PeopleFilter::default() {
                // Everybody: counted once per snapshot already.
                for &j in &group {
                    counts[j] = self
                        .all_counts(facets[j])
                        .iter()
                        .map(|vc| (vc.value.as_str(), vc.count))
                        .collect();
                }
                continue;
            }
            let wanted: Vec<Facet> = group.iter().map(|&j| facets[j]).collect();
            let segments = std::iter::once((&**self.base(), &**self.dead()))
                .chain(self.deltas().iter().map(|d| (&*d.segment, &*d.dead)));
            for (segment, dead) in segments {
                let per_facet = segment.facet_counts(dead, &sideways, &wanted, counting);
                for (&j, part) in group.iter().zip(per_facet) {
                    counts[j].extend(part);
                }
            }
        }
        facets
            .iter()
            .zip(counts)
            .map(|(&facet, counts)| (facet, top_values(counts, facet.selected(filter), limit)))
            .collect()
    }

    /// With typo tolerance on: the query words that matched some of the
    /// people matching `filter` only approximately, with the name words
    /// they matched that way. Empty with typo tolerance off.
    pub fn approximate_words(&self, filter: &PeopleFilter) -> Vec<ApproximateWord> {
        if !filter.typos {
            return Vec::new();
        }
        let segments = self.segments(filter);
        let mut out = Vec::new();
        for word in &filter.words {
            let edits = allowed_edits(word);
            if edits == 0 {
                continue;
            }
            let mut counts: HashMap<&str, u64> = HashMap::new();
            for (segment, matches) in &segments {
                if matches.is_empty() {
                    continue;
                }
                for (name_word, people, distance) in fuzzy_words(segment.vocabulary(), word, edits)
                {
                    if distance > 0 {
                        let n = count_in(matches, people);
                        if n > 0 {
                            *counts.entry(name_word).or_default() += n;
                        }
                    }
                }
            }
            if counts.is_empty() {
                continue;
            }
            let mut matched: Vec<(&str, u64)> = counts.into_iter().collect();
            matched.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            out.push(ApproximateWord {
                word: word.clone(),
                matched: matched
                    .into_iter()
                    .take(MAX_SUGGESTIONS)
                    .map(|(w, _)| w.to_owned())
                    .collect(),
            });
        }
        out
    }
}

/// How many edits a folded query word may be away from a name word's
/// prefix when typo tolerance is on.
pub fn allowed_edits(word: &str) -> usize {
    match word.chars().count() {
        n if n >= TWO_EDITS_CHARS => 2,
        n if n >= ONE_EDIT_CHARS => 1,
        _ => 0,
    }
}

/// The smallest optimal-string-alignment distance between `q` and a
/// prefix of `w`, with the longest prefix (in characters) at that
/// distance, when it is at most `k`.
pub fn prefix_distance(q: &[char], w: &[char], k: usize) -> Option<(usize, usize)> {
    let mut rows = Rows::default();
    prefix_distance_in(&mut rows, q, w, k)
}

/// The three rows of the programme, kept between words so that a scan of
/// the vocabulary allocates them once.
#[derive(Default)]
pub(crate) struct Rows {
    before: Vec<usize>,
    prev: Vec<usize>,
    cur: Vec<usize>,
}

pub(crate) fn prefix_distance_in(
    rows: &mut Rows,
    q: &[char],
    w: &[char],
    k: usize,
) -> Option<(usize, usize)> {
    let m = q.len();
    // A prefix longer than m + k is more than k insertions away.
    let n = w.len().min(m + k);
    let w = &w[..n];
    let Rows { before, prev, cur } = rows;
    before.clear();
    before.resize(n + 1, 0);
    prev.clear();
    prev.extend(0..=n);
    cur.clear();
    cur.resize(n + 1, 0);
    let mut prev_min = 0;
    for i in 1..=m {
        cur[0] = i;
        let mut row_min = i;
        for j in 1..=n {
            let cost = usize::from(q[i - 1] != w[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && q[i - 1] == w[j - 2] && q[i - 2] == w[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            cur[j] = d;
            row_min = row_min.min(d);
        }
        // Every cell of a row comes from the row above (+0 or more) or two
        // above (+1): two rows over the bound put every later row over it.
        if row_min > k && prev_min > k {
            return None;
        }
        prev_min = row_min;
        // before <- prev <- cur; the old `before` is overwritten next row.
        std::mem::swap(before, prev);
        std::mem::swap(prev, cur);
    }
    let best = *prev.iter().min().expect("n + 1 cells");
    if best > k {
        return None;
    }
    let len = prev
        .iter()
        .rposition(|&d| d == best)
        .expect("best is in the row");
    Some((best, len))
}

/// The words of `vocabulary` (byte order, each with its people) that match
/// `word` within `k` edits, with their distance (0: `word` is a prefix).
pub(crate) fn fuzzy_words<'a>(
    vocabulary: &'a [(Box<str>, RoaringBitmap)],
    word: &str,
    k: usize,
) -> Vec<(&'a str, &'a RoaringBitmap, usize)> {
    let q: Vec<char> = word.chars().collect();
    let mut chars = Vec::new();
    let mut rows = Rows::default();
    vocabulary
        .iter()
        .filter_map(|(w, people)| {
            if w.starts_with(word) {
                return Some((&**w, people, 0));
            }
            chars.clear();
            chars.extend(w.chars());
            // Shorter than m - k: even the whole word is too far.
            if chars.len() + k < q.len() {
                return None;
            }
            prefix_distance_in(&mut rows, &q, &chars, k).map(|(d, _)| (&**w, people, d))
        })
        .collect()
}

/// How a segment's facet counts are found. [`FacetCounting::Auto`] is
/// what the API does; the others exist so that tests and benchmarks can
/// hold every way to the same answers.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FacetCounting {
    /// Per segment, the cheapest way that applies: the count table for a
    /// filter of nationalities only (or of one hobby only), else a walk of
    /// the matches or bitmap intersections, by estimated cost.
    Auto,
    /// A walk of the matches, reading each one's values (bitmaps when a
    /// segment has no per-rank columns).
    Rows,
    /// One bitmap intersection per value.
    Bitmaps,
}

/// Most (nationality, hobby) cells of a count table: a few thousand in
/// real data; a table past this is not built (and not needed to be exact).
const MAX_PAIRS: usize = 1 << 16;

/// The cost model that picks a walk or intersections, in units of one
/// bitmap element an intersection visits (about a nanosecond), fitted to
/// `benches/queries.rs` at 1M people: a walk costs per match, and per
/// value it reads (its reads land all over three columns when matches
/// are sparse); an intersection costs, per 65,536-rank container both
/// sides have, the smaller side's elements, or a fixed word-by-word AND
/// when both sides are dense there (roaring's bitmap containers, over
/// 4,096 elements). Ranks are in name order, so a name prefix's matches
/// sit in few containers and intersect cheaply; a nationality's or a
/// hobby's are spread over all of them.
const WALK_PER_MATCH: f64 = 3.0;
const WALK_PER_VALUE: f64 = 3.5;
const DENSE_PAIR: f64 = 400.0;
const ARRAY_LIMIT: u64 = 4096;
const CONTAINER_BITS: u32 = 16;
/// Short prefixes with at least this many people, and this share of the
/// segment, have their facet counts precomputed.
const PREFIX_TABLE_MIN: usize = 4096;
const PREFIX_TABLE_SHARE: usize = 32;

/// What facets count, per rank of a segment, in rank order, so that a walk
/// over a match set (ranks ascending) reads memory in order, and the
/// number of people per (nationality, hobby) pair. Derived from the table
/// when a segment is built or loaded; the index image does not hold it.
pub(crate) struct FacetRows {
    nationality: Vec<u16>,
    /// The hobbies of rank `r`: `hobbies[hobby_start[r]..hobby_start[r + 1]]`.
    hobby_start: Vec<u32>,
    hobbies: Vec<u16>,
    /// `pairs[n * hobby_symbols + h]`: people (every rank, dead or not)
    /// with nationality `n` and hobby `h`; none past [`MAX_PAIRS`] cells.
    pairs: Option<Vec<u32>>,
    nationality_symbols: usize,
    hobby_symbols: usize,
    /// 65,536-rank containers of the segment.
    containers: usize,
    /// People per value and container: `[value * containers + c]`, for
    /// the cost of an intersection.
    nationality_cards: Vec<u32>,
    hobby_cards: Vec<u32>,
    /// Per short word prefix (the index's precomputed ones) of at least
    /// [`PREFIX_TABLE_MIN`] people (every rank, dead or not): people per
    /// nationality and per hobby symbol. A one-letter search matches a
    /// fifth of the directory, too many to walk or intersect quickly.
    prefix_counts: HashMap<Box<str>, (Vec<u32>, Vec<u32>)>,
}

/// The columns of one container's ranks, built on their own.
struct Part {
    nationality: Vec<u16>,
    hobby_len: Vec<u8>,
    hobbies: Vec<u16>,
    nationality_cards: Vec<u32>,
    hobby_cards: Vec<u32>,
}

impl FacetRows {
    /// `None` when the table has more than 65,536 nationalities or
    /// hobbies (the columns hold 16-bit symbols): bitmaps count then.
    pub(crate) fn build(
        table: &PeopleTable,
        by_rank: &[u32],
        short_prefixes: &HashMap<Box<str>, RoaringBitmap>,
    ) -> Option<Self> {
        let (nats, hobs) = (table.nationality_count(), table.hobby_count());
        let fits = |n: usize| n <= usize::from(u16::MAX) + 1;
        if !fits(nats) || !fits(hobs) {
            return None;
        }
        let mut pairs = (nats.saturating_mul(hobs) <= MAX_PAIRS).then(|| vec![0u32; nats * hobs]);
        let containers = by_rank.len().div_ceil(1 << CONTAINER_BITS);
        // One container's ranks per task (the table's rows are read in
        // rank order, which is all over the table: the reads dominate).
        let parts: Vec<Part> = by_rank
            .par_chunks(1 << CONTAINER_BITS)
            .map(|ranks| {
                let mut part = Part {
                    nationality: Vec::with_capacity(ranks.len()),
                    hobby_len: Vec::with_capacity(ranks.len()),
                    hobbies: Vec::with_capacity(ranks.len() * 4),
                    nationality_cards: vec![0; nats],
                    hobby_cards: vec![0; hobs],
                };
                for &row in ranks {
                    let n = table.nationality_id(row);
                    part.nationality.push(n as u16);
                    part.nationality_cards[n as usize] += 1;
                    let hs = table.hobby_ids(row);
                    part.hobby_len.push(hs.len() as u8);
                    for &h in hs {
                        part.hobbies.push(h as u16);
                        part.hobby_cards[h as usize] += 1;
                    }
                }
                part
            })
            .collect();
        let mut nationality_cards = vec![0u32; nats * containers];
        let mut hobby_cards = vec![0u32; hobs * containers];
        let mut nationality = Vec::with_capacity(by_rank.len());
        let mut hobby_start = Vec::with_capacity(by_rank.len() + 1);
        let mut hobbies = Vec::with_capacity(parts.iter().map(|p| p.hobbies.len()).sum());
        hobby_start.push(0u32);
        for (c, part) in parts.into_iter().enumerate() {
            for (n, &k) in part.nationality_cards.iter().enumerate() {
                nationality_cards[n * containers + c] = k;
            }
            for (h, &k) in part.hobby_cards.iter().enumerate() {
                hobby_cards[h * containers + c] = k;
            }
            let mut at = u32::try_from(hobbies.len()).expect("fewer than 2^32 hobby entries");
            for len in part.hobby_len {
                at = at
                    .checked_add(u32::from(len))
                    .expect("fewer than 2^32 hobby entries");
                hobby_start.push(at);
            }
            nationality.extend(part.nationality);
            hobbies.extend(part.hobbies);
        }
        if let Some(pairs) = &mut pairs {
            for (rank, &n) in nationality.iter().enumerate() {
                let from = hobby_start[rank] as usize;
                for &h in &hobbies[from..hobby_start[rank + 1] as usize] {
                    pairs[n as usize * hobs + h as usize] += 1;
                }
            }
        }
        let mut rows = Self {
            nationality,
            hobby_start,
            hobbies,
            pairs,
            nationality_symbols: nats,
            hobby_symbols: hobs,
            containers,
            nationality_cards,
            hobby_cards,
            prefix_counts: HashMap::new(),
        };
        let min = PREFIX_TABLE_MIN.max(by_rank.len() / PREFIX_TABLE_SHARE) as u64;
        let large: Vec<(&Box<str>, &RoaringBitmap)> = short_prefixes
            .iter()
            .filter(|(_, people)| people.len() >= min)
            .collect();
        rows.prefix_counts = large
            .par_iter()
            .map(|(prefix, people)| {
                let (mut nat, mut hob) = (vec![0u64; nats], vec![0u64; hobs]);
                rows.tally(people.iter(), Some(&mut nat), Some(&mut hob));
                let narrow = |v: Vec<u64>| v.into_iter().map(|c| c as u32).collect();
                ((*prefix).clone(), (narrow(nat), narrow(hob)))
            })
            .collect();
        Some(rows)
    }

    fn hobbies_of(&self, rank: u32) -> &[u16] {
        let r = rank as usize;
        &self.hobbies[self.hobby_start[r] as usize..self.hobby_start[r + 1] as usize]
    }

    /// Hobby entries per rank, for the cost estimate.
    fn hobbies_per_rank(&self) -> f64 {
        self.hobbies.len() as f64 / self.nationality.len().max(1) as f64
    }

    /// Counts per symbol of the ranks in `ranks`, for the facets asked.
    fn tally(
        &self,
        ranks: impl Iterator<Item = u32>,
        nationality: Option<&mut Vec<u64>>,
        hobbies: Option<&mut Vec<u64>>,
    ) {
        match (nationality, hobbies) {
            (Some(nat), Some(hob)) => {
                for r in ranks {
                    nat[self.nationality[r as usize] as usize] += 1;
                    for &h in self.hobbies_of(r) {
                        hob[h as usize] += 1;
                    }
                }
            }
            (Some(nat), None) => {
                for r in ranks {
                    nat[self.nationality[r as usize] as usize] += 1;
                }
            }
            (None, Some(hob)) => {
                for r in ranks {
                    for &h in self.hobbies_of(r) {
                        hob[h as usize] += 1;
                    }
                }
            }
            (None, None) => {}
        }
    }
}

impl Segment {
    /// This segment's counts of each of `facets` among the people matching
    /// `sideways` (the ranks in `dead` left out), as (value, count).
    fn facet_counts<'s>(
        &'s self,
        dead: &RoaringBitmap,
        sideways: &PeopleFilter,
        facets: &[Facet],
        counting: FacetCounting,
    ) -> Vec<Vec<(&'s str, u64)>> {
        let mut out: Vec<Option<Vec<(&str, u64)>>> = vec![None; facets.len()];
        if counting == FacetCounting::Auto {
            for (slot, &facet) in out.iter_mut().zip(facets) {
                *slot = self
                    .pair_counts(dead, sideways, facet)
                    .or_else(|| self.prefix_counts(dead, sideways, facet));
            }
        }
        let rest: Vec<usize> = (0..facets.len()).filter(|&i| out[i].is_none()).collect();
        if !rest.is_empty() {
            let matches = self.matches(sideways).without(dead);
            let rows = self.facet_rows().filter(|rows| match counting {
                FacetCounting::Bitmaps => false,
                FacetCounting::Rows => true,
                FacetCounting::Auto => {
                    let wanted: Vec<Facet> = rest.iter().map(|&i| facets[i]).collect();
                    self.walk_is_cheaper(rows, &matches, &wanted)
                }
            });
            for &i in &rest {
                out[i] = Some(Vec::new());
            }
            if matches.is_empty() {
                // Nobody: no value has a count.
            } else if let Some(rows) = rows {
                let want = |f: Facet| rest.iter().any(|&i| facets[i] == f);
                let mut nat =
                    want(Facet::Nationality).then(|| vec![0u64; rows.nationality_symbols]);
                let mut hob = want(Facet::Hobbies).then(|| vec![0u64; rows.hobby_symbols]);
                match &matches {
                    Matches::All(n) => rows.tally(0..*n, nat.as_mut(), hob.as_mut()),
                    Matches::AllBut(n, gone) => rows.tally(
                        (0..*n).filter(|r| !gone.contains(*r)),
                        nat.as_mut(),
                        hob.as_mut(),
                    ),
                    Matches::Set(set) => rows.tally(set.iter(), nat.as_mut(), hob.as_mut()),
                }
                for &i in &rest {
                    let counts = match facets[i] {
                        Facet::Nationality => nat.as_deref(),
                        Facet::Hobbies => hob.as_deref(),
                    };
                    out[i] = Some(self.by_symbol(facets[i], counts.unwrap_or_default()));
                }
            } else {
                for &i in &rest {
                    out[i] = Some(
                        self.facet_values(facets[i])
                            .map(|(value, people)| (value, count_in(&matches, people)))
                            .collect(),
                    );
                }
            }
        }
        out.into_iter().map(Option::unwrap_or_default).collect()
    }

    /// Whether walking `matches` costs less than intersecting them with
    /// every value's bitmap, for `facets` (the cost model above).
    fn walk_is_cheaper(&self, rows: &FacetRows, matches: &Matches<'_>, facets: &[Facet]) -> bool {
        let m = matches.len();
        let per_match: f64 = facets
            .iter()
            .map(|f| match f {
                Facet::Nationality => 1.0,
                Facet::Hobbies => rows.hobbies_per_rank(),
            })
            .sum();
        let walk = m as f64 * (WALK_PER_MATCH + WALK_PER_VALUE * per_match);
        // The matches per container.
        let cs = rows.containers;
        let mut below = 0;
        let in_container: Vec<u64> = (1..=cs)
            .map(|c| {
                let end = u32::try_from(c << CONTAINER_BITS).unwrap_or(u32::MAX);
                let upto = if c == cs { m } else { matches.count_below(end) };
                let n = upto - below;
                below = upto;
                n
            })
            .collect();
        let pair = |a: u64, b: u64| match (a, b) {
            (0, _) | (_, 0) => 0.0,
            (a, b) if a > ARRAY_LIMIT && b > ARRAY_LIMIT => DENSE_PAIR,
            (a, b) => a.min(b) as f64,
        };
        let mut intersect = 0.0;
        for f in facets {
            let cards = match f {
                Facet::Nationality => &rows.nationality_cards,
                Facet::Hobbies => &rows.hobby_cards,
            };
            for value in cards.chunks_exact(cs.max(1)) {
                for (&b, &a) in value.iter().zip(&in_container) {
                    intersect += pair(a, u64::from(b));
                }
            }
            if intersect > walk {
                return true;
            }
        }
        walk < intersect
    }

    /// The precomputed counts of a large short prefix, when `sideways` is
    /// that one word alone, less its dead people.
    fn prefix_counts(
        &self,
        dead: &RoaringBitmap,
        sideways: &PeopleFilter,
        facet: Facet,
    ) -> Option<Vec<(&str, u64)>> {
        let rows = self.facet_rows()?;
        let ([word], true, true) = (
            sideways.words.as_slice(),
            sideways.nationalities.is_empty(),
            sideways.hobbies.is_empty(),
        ) else {
            return None;
        };
        let (nat, hob) = rows.prefix_counts.get(word.as_str())?;
        let table = match facet {
            Facet::Nationality => nat,
            Facet::Hobbies => hob,
        };
        let mut counts: Vec<u64> = table.iter().map(|&c| u64::from(c)).collect();
        if !dead.is_empty() {
            let gone = dead & self.prefix_bitmap(word)?;
            let mut less = vec![0u64; counts.len()];
            match facet {
                Facet::Nationality => rows.tally(gone.iter(), Some(&mut less), None),
                Facet::Hobbies => rows.tally(gone.iter(), None, Some(&mut less)),
            }
            for (c, l) in counts.iter_mut().zip(less) {
                *c -= l;
            }
        }
        Some(self.by_symbol(facet, &counts))
    }

    /// The counts from the (nationality, hobby) table when `sideways` is
    /// just nationalities and `facet` is hobbies, or just one hobby and
    /// `facet` is nationality: the table's row (or rows, nationalities
    /// being disjoint) less the dead people of that clause.
    fn pair_counts(
        &self,
        dead: &RoaringBitmap,
        sideways: &PeopleFilter,
        facet: Facet,
    ) -> Option<Vec<(&str, u64)>> {
        let rows = self.facet_rows()?;
        let pairs = rows.pairs.as_ref()?;
        if !sideways.words.is_empty() {
            return None;
        }
        let hobs = rows.hobby_symbols;
        let (by, values) = match facet {
            Facet::Hobbies if sideways.hobbies.is_empty() && !sideways.nationalities.is_empty() => {
                (Facet::Nationality, &sideways.nationalities)
            }
            Facet::Nationality
                if sideways.nationalities.is_empty()
                    && !sideways.hobbies.is_empty()
                    && sideways.hobbies.iter().all(|h| *h == sideways.hobbies[0]) =>
            {
                (Facet::Hobbies, &sideways.hobbies)
            }
            _ => return None,
        };
        let mut symbols: Vec<u32> = values
            .iter()
            .filter_map(|v| self.facet_symbols(by).get(v))
            .collect();
        symbols.sort_unstable();
        symbols.dedup();
        let mut counts = vec![
            0u64;
            match facet {
                Facet::Nationality => rows.nationality_symbols,
                Facet::Hobbies => hobs,
            }
        ];
        for &s in &symbols {
            let s = s as usize;
            match facet {
                Facet::Hobbies => {
                    for (h, c) in counts.iter_mut().enumerate() {
                        *c += u64::from(pairs[s * hobs + h]);
                    }
                }
                Facet::Nationality => {
                    for (n, c) in counts.iter_mut().enumerate() {
                        *c += u64::from(pairs[n * hobs + s]);
                    }
                }
            }
            if !dead.is_empty() {
                for rank in dead & self.facet_bitmap(by, s as u32) {
                    match facet {
                        Facet::Hobbies => {
                            for &h in rows.hobbies_of(rank) {
                                counts[h as usize] -= 1;
                            }
                        }
                        Facet::Nationality => counts[rows.nationality[rank as usize] as usize] -= 1,
                    }
                }
            }
        }
        Some(self.by_symbol(facet, &counts))
    }

    /// Counts indexed by symbol as (value, count), those above 0.
    fn by_symbol(&self, facet: Facet, counts: &[u64]) -> Vec<(&str, u64)> {
        self.facet_symbols(facet)
            .iter()
            .filter_map(|(id, value)| {
                let c = counts.get(id as usize).copied().unwrap_or(0);
                (c > 0).then_some((value, c))
            })
            .collect()
    }
}

/// How many of `matches` are in `values`.
pub(crate) fn count_in(matches: &Matches<'_>, values: &RoaringBitmap) -> u64 {
    match matches {
        Matches::All(_) => values.len(),
        Matches::AllBut(_, dead) => values.len() - values.intersection_len(dead),
        Matches::Set(set) => set.intersection_len(values),
    }
}

/// Adds per-segment counts by value; the top `limit` by count desc, then
/// value asc, and every `selected` value (0 when nobody has it) besides.
pub(crate) fn top_values<'a>(
    counts: impl IntoIterator<Item = (&'a str, u64)>,
    selected: &[String],
    limit: usize,
) -> Vec<ValueCount> {
    let mut by_value: HashMap<&str, u64> = HashMap::new();
    for (value, count) in counts {
        if count > 0 {
            *by_value.entry(value).or_default() += count;
        }
    }
    let mut all: Vec<(&str, u64)> = by_value.iter().map(|(v, c)| (*v, *c)).collect();
    all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mut out: Vec<ValueCount> = all
        .iter()
        .take(limit)
        .map(|(v, c)| ValueCount {
            value: (*v).to_owned(),
            count: *c,
        })
        .collect();
    let mut extra: Vec<ValueCount> = selected
        .iter()
        .filter(|s| !out.iter().any(|vc| &vc.value == *s))
        .map(|s| ValueCount {
            value: s.clone(),
            count: by_value.get(s.as_str()).copied().unwrap_or(0),
        })
        .collect();
    extra.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    extra.dedup();
    out.extend(extra);
    out
}

/// Match ranges of `person` for the folded query `words`.
pub fn highlight(person: &Person, words: &[String], typos: bool) -> Highlight {
    let words: Vec<(Vec<char>, usize)> = words
        .iter()
        .map(|w| {
            let k = if typos { allowed_edits(w) } else { 0 };
            (w.chars().map(sigma).collect(), k)
        })
        .collect();
    Highlight {
        first_name: ranges(&person.first_name, &words),
        last_name: ranges(&person.last_name, &words),
    }
}

/// Final and medial sigma are one letter to a person typing; folding a
/// name as a whole may give either, folding one character gives `σ`.
fn sigma(c: char) -> char {
    if c == 'ς' { 'σ' } else { c }
}

/// One folded character and the UTF-16 span of the original character(s)
/// it came from (marks that fold to nothing join the character before).
struct Folded {
    c: char,
    start: u32,
    end: u32,
}

fn ranges(name: &str, words: &[(Vec<char>, usize)]) -> Vec<[u32; 2]> {
    if words.is_empty() {
        return Vec::new();
    }
    let mut folded: Vec<Folded> = Vec::new();
    let mut at = 0u32;
    let mut buf = [0u8; 4];
    for c in name.chars() {
        let units = c.len_utf16() as u32;
        let f = text::fold(c.encode_utf8(&mut buf));
        if f.is_empty()
            && let Some(last) = folded.last_mut()
            && last.end == at
        {
            last.end = at + units;
        }
        for fc in f.chars() {
            folded.push(Folded {
                c: sigma(fc),
                start: at,
                end: at + units,
            });
        }
        at += units;
    }
    let mut out: Vec<[u32; 2]> = Vec::new();
    let mut i = 0;
    while i < folded.len() {
        if !text::is_word_char(folded[i].c) {
            i += 1;
            continue;
        }
        let start = i;
        while i < folded.len() && text::is_word_char(folded[i].c) {
            i += 1;
        }
        let word = &folded[start..i];
        let chars: Vec<char> = word.iter().map(|f| f.c).collect();
        for (q, k) in words {
            let len = if chars.starts_with(q) {
                Some(q.len())
            } else if *k > 0 {
                prefix_distance(q, &chars, *k).map(|(_, len)| len)
            } else {
                None
            };
            if let Some(len) = len.filter(|&l| l > 0) {
                out.push([word[0].start, word[len - 1].end]);
            }
        }
    }
    out.sort_unstable();
    let mut merged: Vec<[u32; 2]> = Vec::with_capacity(out.len());
    for r in out {
        match merged.last_mut() {
            Some(last) if r[0] <= last[1] => last[1] = last[1].max(r[1]),
            _ => merged.push(r),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::HobbiesMatch;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    fn person(first: &str, last: &str) -> Person {
        Person {
            id: "p".into(),
            first_name: first.into(),
            last_name: last.into(),
            nationality: "X".into(),
            hobbies: vec![],
        }
    }

    fn words(s: &str) -> Vec<String> {
        text::words(s)
    }

    #[test]
    fn prefix_distance_counts_each_kind_of_edit() {
        let d = |q: &str, w: &str, k| prefix_distance(&chars(q), &chars(w), k);
        assert_eq!(d("smith", "smithson", 1), Some((0, 5)));
        assert_eq!(d("smiht", "smithson", 1), Some((1, 5))); // transposition
        assert_eq!(d("smoth", "smith", 1), Some((1, 5))); // substitution
        assert_eq!(d("smth", "smith", 1), Some((1, 5))); // deletion
        assert_eq!(d("smiith", "smith", 1), Some((1, 5))); // insertion
        assert_eq!(d("smxyh", "smith", 1), None);
        assert_eq!(d("smxyh", "smith", 2), Some((2, 5)));
        assert_eq!(d("abcdef", "", 1), None);
    }

    #[test]
    fn allowed_edits_follow_the_word_length() {
        assert_eq!(allowed_edits("joan"), 0);
        assert_eq!(allowed_edits("joana"), 1);
        assert_eq!(allowed_edits("alexandra"), 2);
        assert_eq!(allowed_edits("ölçü"), 0);
    }

    #[test]
    fn highlights_are_utf16_ranges_of_the_original_names() {
        // "jos" matches "José" from 0; "mül" the first three of "Müller".
        let h = highlight(&person("José", "Müller"), &words("jos mul"), false);
        assert_eq!(h.first_name, [[0, 3]]);
        assert_eq!(h.last_name, [[0, 3]]);
        // A decomposed accent stays with its letter: "jose" covers "e\u{301}".
        let h = highlight(&person("Jose\u{301}", "X"), &words("jose"), false);
        assert_eq!(h.first_name, [[0, 5]]);
        // ß folds to "ss": half of it is all of it.
        let h = highlight(&person("Ann", "Strauß"), &words("straus"), false);
        assert_eq!(h.last_name, [[0, 6]]);
        // Every word of a name.
        let h = highlight(&person("Mary Ann", "O'Brien"), &words("an m brie"), false);
        assert_eq!(h.first_name, [[0, 1], [5, 7]]);
        assert_eq!(h.last_name, [[2, 6]]);
        // 𝒜 (two UTF-16 units) folds to "a".
        let h = highlight(&person("𝒜bc Abd", "Y"), &words("ab"), false);
        assert_eq!(h.first_name, [[0, 3], [5, 7]]);
        // Nothing matched, nothing to bold.
        let h = highlight(&person("Ann", "Lee"), &words(""), false);
        assert_eq!(h, Highlight::default());
    }

    #[test]
    fn approximate_words_highlight_the_prefix_they_matched() {
        let h = highlight(&person("Jon", "Smithson"), &words("smiht"), true);
        assert_eq!(h.last_name, [[0, 5]]);
        let h = highlight(&person("Jon", "Smithson"), &words("smiht"), false);
        assert!(h.last_name.is_empty());
    }

    /// Counts as a map, without the zeros (intersections list every
    /// value; `top_values` drops zeros).
    fn nonzero<'a>(counts: &[(&'a str, u64)]) -> HashMap<&'a str, u64> {
        counts.iter().copied().filter(|(_, c)| *c > 0).collect()
    }

    fn segment_of(people: &[Person]) -> Segment {
        let mut table = PeopleTable::new();
        for p in people {
            table.upsert(p);
        }
        Segment::build(table)
    }

    /// Auto picks a walk for a few matches and intersections for nearly
    /// everybody, and the count table for a filter of nationalities only
    /// or one hobby only; each way gives the same counts, dead people
    /// left out.
    #[test]
    fn each_way_of_counting_is_picked_where_it_is_cheapest_and_agrees() {
        let people: Vec<Person> = crate::jsonl::generated_people(3_000, 5).collect();
        let segment = segment_of(&people);
        let rows = segment.facet_rows().expect("symbols fit the columns");
        let both = [Facet::Nationality, Facet::Hobbies];
        let name = words(&people[0].last_name);
        let few = PeopleFilter::new(&name.join(" "), vec![], vec![], HobbiesMatch::Any);
        let few_matches = segment.matches(&few);
        assert!(few_matches.len() < 100, "{}", few_matches.len());
        assert!(segment.walk_is_cheaper(rows, &few_matches, &both));
        let hobbies: Vec<String> = segment
            .facet_symbols(Facet::Hobbies)
            .iter()
            .map(|(_, h)| h.to_owned())
            .collect();
        let most = PeopleFilter::new("", vec![], hobbies, HobbiesMatch::Any);
        let most_matches = segment.matches(&most);
        assert!(most_matches.len() > 2_500, "{}", most_matches.len());
        assert!(!segment.walk_is_cheaper(rows, &most_matches, &[Facet::Nationality]));

        // Some people dead: every way leaves them out.
        let dead: RoaringBitmap = (0..3_000u32).step_by(7).collect();
        let live = |p: &&Person| {
            let rank = segment.rank_of(&p.id).expect("in the segment");
            !dead.contains(rank)
        };
        let nat = people[1].nationality.clone();
        let hobby = people
            .iter()
            .flat_map(|p| &p.hobbies)
            .next()
            .unwrap()
            .clone();
        let by_nat = PeopleFilter::new(
            "",
            vec![nat.clone(), nat.clone()],
            vec![],
            HobbiesMatch::Any,
        );
        let by_hobby = PeopleFilter::new("", vec![], vec![hobby.clone()], HobbiesMatch::All);
        for (filter, facet) in [(&by_nat, Facet::Hobbies), (&by_hobby, Facet::Nationality)] {
            let table = segment
                .pair_counts(&dead, filter, facet)
                .expect("the table applies");
            let mut want: HashMap<&str, u64> = HashMap::new();
            for p in people.iter().filter(live) {
                match facet {
                    Facet::Hobbies if p.nationality == nat => {
                        for h in &p.hobbies {
                            *want.entry(h.as_str()).or_default() += 1;
                        }
                    }
                    Facet::Nationality if p.hobbies.contains(&hobby) => {
                        *want.entry(p.nationality.as_str()).or_default() += 1;
                    }
                    _ => {}
                }
            }
            let got: HashMap<&str, u64> = table.iter().copied().collect();
            assert_eq!(got, want, "{facet:?}");
            for counting in [FacetCounting::Rows, FacetCounting::Bitmaps] {
                let other = segment.facet_counts(&dead, filter, &[facet], counting);
                assert_eq!(nonzero(&other[0]), want, "{facet:?} {counting:?}");
            }
        }
        // Not for a search, nor for two hobbies (a person may have both).
        assert!(segment.pair_counts(&dead, &few, Facet::Hobbies).is_none());
        let two = PeopleFilter::new("", vec![], people[0].hobbies.clone(), HobbiesMatch::Any);
        if people[0].hobbies.len() > 1 {
            assert!(
                segment
                    .pair_counts(&dead, &two, Facet::Nationality)
                    .is_none()
            );
        }
    }

    /// A one- or two-letter search of many people is answered from the
    /// prefix's precomputed counts, less its dead people, with the counts
    /// of a walk and of intersections.
    #[test]
    fn large_short_prefixes_have_exact_precomputed_counts() {
        let people =
            crate::jsonl::with_hard_names(crate::jsonl::generated_people(20_000, 8).collect(), 97);
        let segment = segment_of(&people);
        let dead: RoaringBitmap = (0..20_000u32).step_by(3).collect();
        let mut tabled = 0;
        for word in ["m", "a", "s", "j", "ma", "an", "mar"] {
            let filter = PeopleFilter::new(word, vec![], vec![], HobbiesMatch::Any);
            for facet in [Facet::Nationality, Facet::Hobbies] {
                let Some(table) = segment.prefix_counts(&dead, &filter, facet) else {
                    continue;
                };
                tabled += 1;
                let table: HashMap<&str, u64> = table.into_iter().collect();
                for counting in [FacetCounting::Rows, FacetCounting::Bitmaps] {
                    let other = segment.facet_counts(&dead, &filter, &[facet], counting);
                    assert_eq!(table, nonzero(&other[0]), "{word} {facet:?} {counting:?}");
                }
            }
            // Not with another clause beside the word.
            let with_nat = PeopleFilter::new(
                word,
                vec![people[0].nationality.clone()],
                vec![],
                HobbiesMatch::Any,
            );
            assert!(
                segment
                    .prefix_counts(&dead, &with_nat, Facet::Hobbies)
                    .is_none()
            );
        }
        assert!(tabled >= 4, "some prefixes are large enough: {tabled}");
    }

    #[test]
    fn top_values_keep_the_selected_ones() {
        let counts = [("a", 5), ("b", 3), ("c", 1), ("a", 1), ("z", 0)];
        let top = top_values(counts, &["c".into(), "q".into()], 1);
        let got: Vec<(&str, u64)> = top.iter().map(|v| (v.value.as_str(), v.count)).collect();
        assert_eq!(got, [("a", 6), ("c", 1), ("q", 0)]);
    }
}
