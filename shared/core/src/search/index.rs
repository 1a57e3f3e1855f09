//! The immutable index over a `PeopleTable`: people in the defined order
//! ("rank"), and one Roaring bitmap of ranks per name word, per short word
//! prefix, per nationality and per hobby.
//!
//! Because bitmaps hold ranks, every filter combination is a few bitmap
//! operations, the exact total is the cardinality of the result, and any page
//! (however deep) is a `select` on it: no query visits every person.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use rayon::prelude::*;
use roaring::{MultiOps, RoaringBitmap};

use super::features::{self, Facet};
use super::table::PeopleTable;
use crate::domain::{HobbiesMatch, PeopleFilter, SortKey, ValueCount};
use crate::text;

/// Query words of at most this many characters are answered from a
/// precomputed bitmap, since their vocabulary range is wide ("m" covers
/// hundreds of name words, "mar" dozens); longer ones union a few word
/// bitmaps. Each level costs about as much memory as the word index.
const PREFIX_CHARS: usize = 3;

pub(crate) struct Segment {
    table: PeopleTable,
    /// rank → row of `table`.
    by_rank: Vec<u32>,
    /// Per name symbol: its folded form.
    folded_name: Vec<Box<str>>,
    /// Name words in byte order, each with the ranks of people who have it.
    vocabulary: Vec<(Box<str>, RoaringBitmap)>,
    /// Every prefix of up to `PREFIX_CHARS` characters of a name word.
    short_prefixes: HashMap<Box<str>, RoaringBitmap>,
    /// Indexed by nationality symbol.
    nationality: Vec<RoaringBitmap>,
    /// Indexed by hobby symbol.
    hobby: Vec<RoaringBitmap>,
    /// Each rank's nationality and hobbies in rank order, and people per
    /// (nationality, hobby): what facet counts read (`features.rs`).
    /// Derived from the table whenever a segment is built, never stored.
    facet_rows: Option<features::FacetRows>,
}

/// People per nationality and per hobby symbol of a segment's table: kept
/// up to date for the base as its people die, so that a write does not
/// recount the base's bitmaps.
#[derive(Clone, Default)]
pub(crate) struct SymbolCounts {
    pub(crate) nationality: Vec<u64>,
    pub(crate) hobby: Vec<u64>,
}

/// The people that a filter matches, as ranks.
pub enum Matches<'a> {
    /// Everybody: ranks `0..n`.
    All(u32),
    /// Ranks `0..n` but those in the set (people deleted or replaced since
    /// the segment was built), without materialising a bitmap of everyone.
    AllBut(u32, &'a RoaringBitmap),
    Set(Cow<'a, RoaringBitmap>),
}

impl<'a> Matches<'a> {
    pub fn len(&self) -> u64 {
        match self {
            Matches::All(n) => u64::from(*n),
            Matches::AllBut(n, dead) => u64::from(*n) - dead.len(),
            Matches::Set(b) => b.len(),
        }
    }

    /// Leaves out the ranks in `dead`.
    pub(crate) fn without<'b>(self, dead: &'b RoaringBitmap) -> Matches<'b>
    where
        'a: 'b,
    {
        if dead.is_empty() {
            return self;
        }
        match self {
            Matches::All(n) => Matches::AllBut(n, dead),
            Matches::AllBut(n, d) => Matches::Set(Cow::Owned(
                RoaringBitmap::from_sorted_iter(0..n).expect("sorted") - d - dead,
            )),
            Matches::Set(b) => Matches::Set(Cow::Owned(b.into_owned() - dead)),
        }
    }

    /// The match at 0-based position `i`.
    pub(crate) fn select(&self, i: u64) -> Option<u32> {
        if i >= self.len() {
            return None;
        }
        let i = i as u32; // < len ≤ 2^32
        match self {
            Matches::All(_) => Some(i),
            Matches::AllBut(_, dead) => {
                // The smallest r with (r + 1) - |dead ∩ [0, r]| > i: between
                // i and i + |dead|.
                let (mut lo, mut hi) = (i, i.saturating_add(dead.len() as u32));
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if u64::from(mid) + 1 - dead.rank(mid) > u64::from(i) {
                        hi = mid;
                    } else {
                        lo = mid + 1;
                    }
                }
                Some(lo)
            }
            Matches::Set(b) => b.select(i),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many matches rank below `rank`.
    pub(crate) fn count_below(&self, rank: u32) -> u64 {
        match self {
            Matches::All(n) => u64::from(rank.min(*n)),
            Matches::AllBut(n, dead) => {
                let below = rank.min(*n);
                u64::from(below) - below.checked_sub(1).map_or(0, |r| dead.rank(r))
            }
            Matches::Set(b) => rank.checked_sub(1).map_or(0, |r| b.rank(r)),
        }
    }

    /// The ranks at positions `offset..offset + size` of the matches.
    pub(crate) fn ranks(&self, offset: u64, size: usize) -> Vec<u32> {
        if offset >= self.len() {
            return Vec::new();
        }
        let offset = offset as u32; // < len ≤ 2^32
        match self {
            Matches::All(n) => (offset..(*n).min(offset.saturating_add(size as u32))).collect(),
            Matches::AllBut(n, dead) => match self.select(u64::from(offset)) {
                Some(first) => (first..*n)
                    .filter(|r| !dead.contains(*r))
                    .take(size)
                    .collect(),
                None => Vec::new(),
            },
            Matches::Set(b) => match b.select(offset) {
                Some(first) => b.range(first..).take(size).collect(),
                None => Vec::new(),
            },
        }
    }

    /// Iterates every matching rank in order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match self {
            Matches::All(n) => Box::new(0..*n),
            Matches::AllBut(n, dead) => Box::new((0..*n).filter(|r| !dead.contains(*r))),
            Matches::Set(b) => Box::new(b.iter()),
        }
    }
}

impl Segment {
    pub(crate) fn build(table: PeopleTable) -> Self {
        // Fold every distinct name once; real data has a few thousand.
        let names: Vec<(u32, &str)> = table.names.iter().collect();
        let folded_name: Vec<Box<str>> = names
            .par_iter()
            .map(|(_, s)| text::fold(s).into_boxed_str())
            .collect();
        // Order of the folded names, so the sort compares integers.
        let mut name_order_idx: Vec<u32> = (0..folded_name.len() as u32).collect();
        name_order_idx
            .sort_unstable_by(|&a, &b| folded_name[a as usize].cmp(&folded_name[b as usize]));
        let mut name_order = vec![0u32; folded_name.len()];
        let mut order = 0u32;
        for (i, &sym) in name_order_idx.iter().enumerate() {
            if i > 0 && folded_name[name_order_idx[i - 1] as usize] != folded_name[sym as usize] {
                order += 1;
            }
            name_order[sym as usize] = order;
        }

        // Sort keys per row, so the sort compares integers held together.
        let order_of: Vec<(u32, u32)> = (0..table.rows_len() as u32)
            .map(|row| {
                (
                    name_order[table.last_id(row) as usize],
                    name_order[table.first_id(row) as usize],
                )
            })
            .collect();
        let mut by_rank: Vec<u32> = table.rows().collect();
        let in_order = |&a: &u32, &b: &u32| {
            order_of[a as usize]
                .cmp(&order_of[b as usize])
                .then_with(|| table.id(a).as_bytes().cmp(table.id(b).as_bytes()))
        };
        // A table read from an index image (`image.rs`) holds its rows in
        // rank order already: one linear check instead of a sort.
        if !by_rank.is_sorted_by(|a, b| in_order(a, b) == Ordering::Less) {
            by_rank.par_sort_unstable_by(in_order);
        }
        drop(order_of);

        // Name words: per name symbol, the ids of its words in the vocabulary.
        let mut word_ids: HashMap<&str, u32> = HashMap::new();
        let mut words: Vec<&str> = Vec::new();
        let name_words: Vec<Vec<u32>> = folded_name
            .iter()
            .map(|f| {
                text::split_words(f)
                    .map(|w| {
                        *word_ids.entry(w).or_insert_with(|| {
                            words.push(w);
                            (words.len() - 1) as u32
                        })
                    })
                    .collect()
            })
            .collect();
        // Short prefixes of each word.
        let mut prefix_ids: HashMap<&str, u32> = HashMap::new();
        let mut prefixes: Vec<&str> = Vec::new();
        let word_prefixes: Vec<Vec<u32>> = words
            .iter()
            .map(|w| {
                w.char_indices()
                    .skip(1)
                    .map(|(i, _)| i)
                    .chain(std::iter::once(w.len()))
                    .take(PREFIX_CHARS)
                    .map(|end| {
                        let p = &w[..end];
                        *prefix_ids.entry(p).or_insert_with(|| {
                            prefixes.push(p);
                            (prefixes.len() - 1) as u32
                        })
                    })
                    .collect()
            })
            .collect();

        let (word_ranks, (prefix_ranks, (nat_ranks, hobby_ranks))) = rayon::join(
            || {
                let mut lists = vec![Vec::new(); words.len()];
                let mut person = Vec::new();
                for (rank, &row) in by_rank.iter().enumerate() {
                    person.clear();
                    person.extend_from_slice(&name_words[table.first_id(row) as usize]);
                    person.extend_from_slice(&name_words[table.last_id(row) as usize]);
                    person.sort_unstable();
                    person.dedup();
                    for &w in &person {
                        lists[w as usize].push(rank as u32);
                    }
                }
                lists
            },
            || {
                rayon::join(
                    || {
                        let mut lists = vec![Vec::new(); prefixes.len()];
                        let mut person = Vec::new();
                        for (rank, &row) in by_rank.iter().enumerate() {
                            person.clear();
                            for sym in [table.first_id(row), table.last_id(row)] {
                                for &w in &name_words[sym as usize] {
                                    person.extend_from_slice(&word_prefixes[w as usize]);
                                }
                            }
                            person.sort_unstable();
                            person.dedup();
                            for &p in &person {
                                lists[p as usize].push(rank as u32);
                            }
                        }
                        lists
                    },
                    || {
                        let mut nats = vec![Vec::new(); table.nationalities.len()];
                        let mut hobbies = vec![Vec::new(); table.hobby_names.len()];
                        for (rank, &row) in by_rank.iter().enumerate() {
                            nats[table.nationality_id(row) as usize].push(rank as u32);
                            for &h in table.hobby_ids(row) {
                                hobbies[h as usize].push(rank as u32);
                            }
                        }
                        (nats, hobbies)
                    },
                )
            },
        );

        let to_bitmaps = |lists: Vec<Vec<u32>>| -> Vec<RoaringBitmap> {
            lists
                .into_par_iter()
                .map(|ranks| {
                    // Not `optimize()`d: run containers made intersections
                    // several times slower here (BENCHMARKS.md).
                    RoaringBitmap::from_sorted_iter(ranks)
                        .expect("ranks are pushed in increasing order")
                })
                .collect()
        };
        let word_bitmaps = to_bitmaps(word_ranks);
        let mut vocabulary: Vec<(Box<str>, RoaringBitmap)> = words
            .iter()
            .map(|w| Box::<str>::from(*w))
            .zip(word_bitmaps)
            .collect();
        vocabulary.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let short_prefixes = prefixes
            .iter()
            .map(|p| Box::<str>::from(*p))
            .zip(to_bitmaps(prefix_ranks))
            .collect();
        let nationality = to_bitmaps(nat_ranks);
        let hobby = to_bitmaps(hobby_ranks);
        drop(names);
        let facet_rows = features::FacetRows::build(&table, &by_rank, &short_prefixes);
        Segment {
            table,
            by_rank,
            folded_name,
            vocabulary,
            short_prefixes,
            nationality,
            hobby,
            facet_rows,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_rank.len()
    }

    pub(crate) fn table(&self) -> &PeopleTable {
        &self.table
    }

    /// People per nationality symbol and per hobby symbol of the table,
    /// counting every rank.
    pub(crate) fn symbol_counts(&self) -> SymbolCounts {
        SymbolCounts {
            nationality: self.nationality.iter().map(RoaringBitmap::len).collect(),
            hobby: self.hobby.iter().map(RoaringBitmap::len).collect(),
        }
    }

    /// `counts` as values (those above 0).
    pub(crate) fn values_of(&self, counts: &SymbolCounts) -> (Vec<ValueCount>, Vec<ValueCount>) {
        let values = |symbols: &super::table::Symbols, counts: &[u64]| -> Vec<ValueCount> {
            symbols
                .iter()
                .filter(|&(id, _)| counts[id as usize] > 0)
                .map(|(id, value)| ValueCount {
                    value: value.to_owned(),
                    count: counts[id as usize],
                })
                .collect()
        };
        (
            values(&self.table.nationalities, &counts.nationality),
            values(&self.table.hobby_names, &counts.hobby),
        )
    }

    /// People per nationality and per hobby (with a count above 0), the
    /// ranks in `dead` left out.
    pub(crate) fn value_counts(&self, dead: &RoaringBitmap) -> (Vec<ValueCount>, Vec<ValueCount>) {
        (
            counts(&self.table.nationalities, &self.nationality, dead),
            counts(&self.table.hobby_names, &self.hobby, dead),
        )
    }

    /// The people matching `filter`.
    ///
    /// The filter is a conjunction of clauses, each a union of bitmaps (a
    /// query word's prefix range, the listed nationalities, the listed
    /// hobbies for "any"; each hobby is its own clause for "all"). Clauses are
    /// applied smallest first, and a union is distributed over the running
    /// intersection when that is smaller than the union itself.
    pub(crate) fn matches(&self, filter: &PeopleFilter) -> Matches<'_> {
        let mut clauses: Vec<Vec<&RoaringBitmap>> = Vec::new();
        for word in &filter.words {
            let edits = if filter.typos {
                features::allowed_edits(word)
            } else {
                0
            };
            clauses.push(if edits == 0 {
                self.prefix(word)
            } else {
                features::fuzzy_words(&self.vocabulary, word, edits)
                    .into_iter()
                    .map(|(_, people, _)| people)
                    .collect()
            });
        }
        if !filter.nationalities.is_empty() {
            clauses.push(
                filter
                    .nationalities
                    .iter()
                    .filter_map(|v| self.table.nationalities.get(v))
                    .map(|s| &self.nationality[s as usize])
                    .collect(),
            );
        }
        if !filter.hobbies.is_empty() {
            let known = |v: &String| {
                self.table
                    .hobby_names
                    .get(v)
                    .map(|s| &self.hobby[s as usize])
            };
            match filter.hobbies_match {
                HobbiesMatch::Any => {
                    clauses.push(filter.hobbies.iter().filter_map(known).collect())
                }
                HobbiesMatch::All => {
                    for h in &filter.hobbies {
                        clauses.push(known(h).into_iter().collect());
                    }
                }
            }
        }
        if clauses.is_empty() {
            return Matches::All(self.len() as u32);
        }
        let size = |c: &Vec<&RoaringBitmap>| c.iter().map(|b| b.len()).sum::<u64>();
        clauses.sort_by_cached_key(size);
        let mut clauses = clauses.into_iter();
        let mut acc: Cow<'_, RoaringBitmap> = match clauses.next() {
            Some(first) => union(first),
            None => unreachable!("clauses is not empty"),
        };
        for clause in clauses {
            if acc.is_empty() {
                break;
            }
            acc = match clause.as_slice() {
                [] => Cow::Owned(RoaringBitmap::new()),
                [one] => Cow::Owned(acc.into_owned() & *one),
                many if acc.len() * many.len() as u64 <= size(&clause) => {
                    Cow::Owned(many.iter().map(|b| &*acc & *b).union())
                }
                _ => Cow::Owned(acc.into_owned() & &*union(clause)),
            };
        }
        Matches::Set(acc)
    }

    /// The bitmaps whose union is the people with a name word that starts
    /// with `prefix` (a folded word).
    fn prefix(&self, prefix: &str) -> Vec<&RoaringBitmap> {
        if prefix.chars().count() <= PREFIX_CHARS {
            return self.short_prefixes.get(prefix).into_iter().collect();
        }
        let start = self.vocabulary.partition_point(|(w, _)| &**w < prefix);
        self.vocabulary[start..]
            .iter()
            .take_while(|(w, _)| w.starts_with(prefix))
            .map(|(_, b)| b)
            .collect()
    }

    pub(crate) fn key_of_rank(&self, rank: u32) -> (&str, &str, &str) {
        let row = self.by_rank[rank as usize];
        let t = &self.table;
        (
            &self.folded_name[t.last_id(row) as usize],
            &self.folded_name[t.first_id(row) as usize],
            t.id(row),
        )
    }

    pub(crate) fn sort_key(&self, rank: u32) -> SortKey {
        let (last, first, id) = self.key_of_rank(rank);
        SortKey {
            last: last.to_owned(),
            first: first.to_owned(),
            id: id.to_owned(),
        }
    }

    /// The first rank whose key is greater than `key`.
    pub(crate) fn rank_after(&self, key: &SortKey) -> u32 {
        self.rank_after_parts(&key.last, &key.first, &key.id)
    }

    /// The first rank whose key is greater than (last, first, id), folded.
    pub(crate) fn rank_after_parts(&self, last: &str, first: &str, id: &str) -> u32 {
        let want = (last.as_bytes(), first.as_bytes(), id.as_bytes());
        self.by_rank.partition_point(|&row| {
            let t = &self.table;
            let have = (
                self.folded_name[t.last_id(row) as usize].as_bytes(),
                self.folded_name[t.first_id(row) as usize].as_bytes(),
                t.id(row).as_bytes(),
            );
            have.cmp(&want) != Ordering::Greater
        }) as u32
    }

    /// The rank of the person with `id`, if this segment holds them: a
    /// binary search by their key, so no rank-per-row array is kept.
    pub(crate) fn rank_of(&self, id: &str) -> Option<u32> {
        let row = self.table.row_of(id)?;
        let t = &self.table;
        let after = self.rank_after_parts(
            &self.folded_name[t.last_id(row) as usize],
            &self.folded_name[t.first_id(row) as usize],
            id,
        );
        Some(after - 1)
    }

    /// Row of the table at `rank`, for aggregations over matches.
    pub(crate) fn row_at(&self, rank: u32) -> u32 {
        self.by_rank[rank as usize]
    }
}

fn counts(
    symbols: &super::table::Symbols,
    bitmaps: &[RoaringBitmap],
    dead: &RoaringBitmap,
) -> Vec<ValueCount> {
    symbols
        .iter()
        .map(|(id, value)| {
            let b = &bitmaps[id as usize];
            let gone = if dead.is_empty() {
                0
            } else {
                b.intersection_len(dead)
            };
            ValueCount {
                value: value.to_owned(),
                count: b.len() - gone,
            }
        })
        .filter(|vc| vc.count > 0)
        .collect()
}

/// Union of bitmaps, borrowing when there is only one.
fn union(bitmaps: Vec<&RoaringBitmap>) -> Cow<'_, RoaringBitmap> {
    match bitmaps.as_slice() {
        [] => Cow::Owned(RoaringBitmap::new()),
        [one] => Cow::Borrowed(*one),
        _ => Cow::Owned(bitmaps.into_iter().union()),
    }
}

/// What facets and typo tolerance (`features.rs`) read.
impl Segment {
    /// Each value of `facet` with the ranks of the people who have it.
    pub(crate) fn facet_values(
        &self,
        facet: Facet,
    ) -> impl Iterator<Item = (&str, &RoaringBitmap)> {
        let (symbols, bitmaps) = match facet {
            Facet::Nationality => (&self.table.nationalities, &self.nationality),
            Facet::Hobbies => (&self.table.hobby_names, &self.hobby),
        };
        symbols
            .iter()
            .map(move |(id, value)| (value, &bitmaps[id as usize]))
    }

    /// The ranks of the people whose `facet` is the value with symbol `id`.
    pub(crate) fn facet_bitmap(&self, facet: Facet, id: u32) -> &RoaringBitmap {
        match facet {
            Facet::Nationality => &self.nationality[id as usize],
            Facet::Hobbies => &self.hobby[id as usize],
        }
    }

    /// The people with a name word that starts with `prefix`, when it is
    /// one of the precomputed short prefixes.
    pub(crate) fn prefix_bitmap(&self, prefix: &str) -> Option<&RoaringBitmap> {
        self.short_prefixes.get(prefix)
    }

    /// The symbols of `facet`'s values.
    pub(crate) fn facet_symbols(&self, facet: Facet) -> &super::table::Symbols {
        match facet {
            Facet::Nationality => &self.table.nationalities,
            Facet::Hobbies => &self.table.hobby_names,
        }
    }

    /// Per rank, the values facets count (none when the symbols do not
    /// fit the compact columns).
    pub(crate) fn facet_rows(&self) -> Option<&features::FacetRows> {
        self.facet_rows.as_ref()
    }

    /// Name words in byte order, each with the ranks of people who have it.
    pub(crate) fn vocabulary(&self) -> &[(Box<str>, RoaringBitmap)] {
        &self.vocabulary
    }
}
