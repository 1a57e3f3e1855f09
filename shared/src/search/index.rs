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

use super::table::PeopleTable;
use crate::domain::{HobbiesMatch, PeopleFilter, Person, SortKey, ValueCount};
use crate::text;

/// Query words of at most this many characters are answered from a
/// precomputed bitmap, since their vocabulary range is wide ("m" covers
/// hundreds of name words, "mar" dozens); longer ones union a few word
/// bitmaps. Each level costs about as much memory as the word index.
const PREFIX_CHARS: usize = 3;

pub struct Snapshot {
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
    top_nationalities: Vec<ValueCount>,
    top_hobbies: Vec<ValueCount>,
}

/// The people that a filter matches, as ranks.
pub enum Matches<'a> {
    /// Everybody: ranks `0..n`.
    All(u32),
    Set(Cow<'a, RoaringBitmap>),
}

impl Matches<'_> {
    pub fn len(&self) -> u64 {
        match self {
            Matches::All(n) => u64::from(*n),
            Matches::Set(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many matches rank below `rank`.
    fn count_below(&self, rank: u32) -> u64 {
        match self {
            Matches::All(n) => u64::from(rank.min(*n)),
            Matches::Set(b) => rank.checked_sub(1).map_or(0, |r| b.rank(r)),
        }
    }

    /// The ranks at positions `offset..offset + size` of the matches.
    fn ranks(&self, offset: u64, size: usize) -> Vec<u32> {
        if offset >= self.len() {
            return Vec::new();
        }
        let offset = offset as u32; // < len ≤ 2^32
        match self {
            Matches::All(n) => (offset..(*n).min(offset.saturating_add(size as u32))).collect(),
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
            Matches::Set(b) => Box::new(b.iter()),
        }
    }
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageStart {
    /// The match at this 0-based position.
    Offset(u64),
    /// The first match after this key (keyset pagination: stable while
    /// people are added or changed between pages).
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

impl Snapshot {
    pub fn build(table: PeopleTable) -> Self {
        let n = table.len();
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

        let mut by_rank: Vec<u32> = (0..n as u32).collect();
        by_rank.par_sort_unstable_by(|&a, &b| {
            let (a_, b_) = (a as usize, b as usize);
            name_order[table.last[a_] as usize]
                .cmp(&name_order[table.last[b_] as usize])
                .then_with(|| {
                    name_order[table.first[a_] as usize].cmp(&name_order[table.first[b_] as usize])
                })
                .then_with(|| table.id(a).as_bytes().cmp(table.id(b).as_bytes()))
        });

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
                    person.extend_from_slice(&name_words[table.first[row as usize] as usize]);
                    person.extend_from_slice(&name_words[table.last[row as usize] as usize]);
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
                            for sym in [table.first[row as usize], table.last[row as usize]] {
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
                            nats[table.nationality[row as usize] as usize].push(rank as u32);
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
        let top_nationalities = counts(&table.nationalities, &nationality);
        let top_hobbies = counts(&table.hobby_names, &hobby);
        drop(names);
        Snapshot {
            table,
            by_rank,
            folded_name,
            vocabulary,
            short_prefixes,
            nationality,
            hobby,
            top_nationalities,
            top_hobbies,
        }
    }

    pub fn len(&self) -> usize {
        self.by_rank.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_rank.is_empty()
    }

    pub fn table(&self) -> &PeopleTable {
        &self.table
    }

    pub fn get(&self, id: &str) -> Option<Person> {
        self.table.get(id)
    }

    /// Top `limit` nationalities and hobbies by count, then value.
    pub fn filter_options(&self, limit: usize) -> (Vec<ValueCount>, Vec<ValueCount>) {
        let take = |v: &[ValueCount]| v.iter().take(limit).cloned().collect();
        (take(&self.top_nationalities), take(&self.top_hobbies))
    }

    /// The people matching `filter`.
    ///
    /// The filter is a conjunction of clauses, each a union of bitmaps (a
    /// query word's prefix range, the listed nationalities, the listed
    /// hobbies for "any"; each hobby is its own clause for "all"). Clauses are
    /// applied smallest first, and a union is distributed over the running
    /// intersection when that is smaller than the union itself.
    pub fn matches(&self, filter: &PeopleFilter) -> Matches<'_> {
        let mut clauses: Vec<Vec<&RoaringBitmap>> = Vec::new();
        for word in &filter.words {
            clauses.push(self.prefix(word));
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

    fn key_of_rank(&self, rank: u32) -> (&str, &str, &str) {
        let row = self.by_rank[rank as usize];
        let t = &self.table;
        (
            &self.folded_name[t.last[row as usize] as usize],
            &self.folded_name[t.first[row as usize] as usize],
            t.id(row),
        )
    }

    pub fn sort_key(&self, rank: u32) -> SortKey {
        let (last, first, id) = self.key_of_rank(rank);
        SortKey {
            last: last.to_owned(),
            first: first.to_owned(),
            id: id.to_owned(),
        }
    }

    /// The first rank whose key is greater than `key`.
    fn rank_after(&self, key: &SortKey) -> u32 {
        let want = (key.last.as_bytes(), key.first.as_bytes(), key.id.as_bytes());
        self.by_rank.partition_point(|&row| {
            let t = &self.table;
            let have = (
                self.folded_name[t.last[row as usize] as usize].as_bytes(),
                self.folded_name[t.first[row as usize] as usize].as_bytes(),
                t.id(row).as_bytes(),
            );
            have.cmp(&want) != Ordering::Greater
        }) as u32
    }

    /// One page of the people matching `filter`, with the exact total.
    pub fn search(&self, filter: &PeopleFilter, start: &PageStart, size: usize) -> SearchPage {
        let matches = self.matches(filter);
        let total = matches.len();
        let offset = match start {
            PageStart::Offset(o) => *o,
            PageStart::After(key) => matches.count_below(self.rank_after(key)),
        };
        let ranks = matches.ranks(offset, size);
        let next = match ranks.last() {
            Some(&last) if offset + (ranks.len() as u64) < total => Some(self.sort_key(last)),
            _ => None,
        };
        let items = ranks
            .iter()
            .map(|&r| self.table.person(self.by_rank[r as usize]))
            .collect();
        SearchPage {
            total,
            offset,
            items,
            next,
        }
    }

    /// Row of the table at `rank`, for aggregations over matches.
    pub fn row_at(&self, rank: u32) -> u32 {
        self.by_rank[rank as usize]
    }
}

fn counts(symbols: &super::table::Symbols, bitmaps: &[RoaringBitmap]) -> Vec<ValueCount> {
    let mut out: Vec<ValueCount> = symbols
        .iter()
        .map(|(id, value)| ValueCount {
            value: value.to_owned(),
            count: bitmaps[id as usize].len(),
        })
        .filter(|vc| vc.count > 0)
        .collect();
    out.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    out
}

/// Union of bitmaps, borrowing when there is only one.
fn union(bitmaps: Vec<&RoaringBitmap>) -> Cow<'_, RoaringBitmap> {
    match bitmaps.as_slice() {
        [] => Cow::Owned(RoaringBitmap::new()),
        [one] => Cow::Borrowed(*one),
        _ => Cow::Owned(bitmaps.into_iter().union()),
    }
}
