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

use roaring::RoaringBitmap;
use serde::Serialize;

use super::Snapshot;
use super::index::Matches;
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApproximateWord {
    /// The folded query word.
    pub word: String,
    /// Folded name words it matched approximately (not as an exact
    /// prefix), by how many of the matching people have them, then byte
    /// order; at most [`MAX_SUGGESTIONS`].
    pub matched: Vec<String>,
}

pub const MAX_SUGGESTIONS: usize = 5;

/// Match ranges of one person, `[start, end)` in UTF-16 code units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
        facets
            .iter()
            .map(|&facet| {
                let sideways = facet.sideways(filter);
                let selected = facet.selected(filter);
                let counts = if sideways == PeopleFilter::default() {
                    // Everybody: counted once per snapshot already.
                    top_values(
                        self.all_counts(facet)
                            .iter()
                            .map(|vc| (vc.value.as_str(), vc.count)),
                        selected,
                        limit,
                    )
                } else {
                    let segments = self.segments(&sideways);
                    let per_segment = segments.iter().flat_map(|(segment, matches)| {
                        segment
                            .facet_values(facet)
                            .map(move |(value, people)| (value, count_in(matches, people)))
                    });
                    top_values(per_segment, selected, limit)
                };
                (facet, counts)
            })
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

    #[test]
    fn top_values_keep_the_selected_ones() {
        let counts = [("a", 5), ("b", 3), ("c", 1), ("a", 1), ("z", 0)];
        let top = top_values(counts, &["c".into(), "q".into()], 1);
        let got: Vec<(&str, u64)> = top.iter().map(|v| (v.value.as_str(), v.count)).collect();
        assert_eq!(got, [("a", 6), ("c", 1), ("q", 0)]);
    }
}
