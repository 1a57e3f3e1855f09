//! The index against its model: a naive filter and sort over a `Vec`.

use people_core::domain::{HobbiesMatch, PeopleFilter, Person};
use people_core::search::{Facet, FacetCounting, PageStart, SearchEngine};
use people_core::text::{fold, split_words};
use proptest::prelude::*;

const FIRST: &[&str] = &[
    "Ann", "Anna", "Ánna", "José", "Jose", "Jo", "Søren", "Łukasz", "Zoë", "Jean-Luc", "Mary Ann",
];
const LAST: &[&str] = &[
    "Müller",
    "Muller",
    "Mull",
    "O'Brien",
    "Ó Néill",
    "van der Meer",
    "Strauß",
    "Strauss",
    "Lee",
    "da Silva",
    "Şahin",
];
const NATS: &[&str] = &["German", "Irish", "South African", "Danish", "german"];
const HOBBIES: &[&str] = &["Chess", "Reading", "Wine Tasting", "Go", "chess"];
/// What people type: prefixes, other case, with and without accents.
const TYPED: &[&str] = &[
    "a", "an", "ANN", "jo", "jos", "josé", "s", "so", "søren", "soren", "l", "lu", "m", "mu",
    "MÜLL", "mull", "o", "brien", "o'brien", "ó", "van der", "strauss", "strauß", "zoe", "x",
    "jean-luc", "sa", "mary", "e",
];

fn person() -> impl Strategy<Value = Person> {
    (
        0..40u32,
        prop::sample::select(FIRST),
        prop::sample::select(LAST),
        prop::sample::select(NATS),
        prop::sample::subsequence(HOBBIES, 0..=3),
    )
        .prop_map(|(id, f, l, n, h)| Person {
            id: format!("id{id:02}"),
            first_name: f.into(),
            last_name: l.into(),
            nationality: n.into(),
            hobbies: h.into_iter().map(String::from).collect(),
        })
}

fn filter() -> impl Strategy<Value = PeopleFilter> {
    (
        prop::sample::subsequence(TYPED, 0..=2),
        prop::sample::subsequence(NATS, 0..=2),
        prop::sample::subsequence(HOBBIES, 0..=2),
        any::<bool>(),
        prop::option::of(prop::sample::select(&["Ghost", "Nobody"][..])),
    )
        .prop_map(|(typed, nats, hobbies, all, unknown)| {
            let mut nats: Vec<String> = nats.into_iter().map(String::from).collect();
            nats.extend(unknown.map(String::from));
            PeopleFilter::new(
                &typed.join(" "),
                nats,
                hobbies.into_iter().map(String::from).collect(),
                if all {
                    HobbiesMatch::All
                } else {
                    HobbiesMatch::Any
                },
            )
        })
}

/// Upsert semantics of the model: the last write of an id wins.
fn upsert(model: &mut Vec<Person>, people: &[Person]) {
    for p in people {
        match model.iter_mut().find(|m| m.id == p.id) {
            Some(m) => *m = p.clone(),
            None => model.push(p.clone()),
        }
    }
}

fn model_search(model: &[Person], f: &PeopleFilter) -> Vec<Person> {
    let mut hits: Vec<&Person> = model
        .iter()
        .filter(|p| {
            let name = fold(&format!("{} {}", p.first_name, p.last_name));
            let words: Vec<&str> = split_words(&name).collect();
            f.words
                .iter()
                .all(|q| words.iter().any(|w| w.starts_with(q.as_str())))
        })
        .filter(|p| f.nationalities.is_empty() || f.nationalities.contains(&p.nationality))
        .filter(|p| {
            f.hobbies.is_empty()
                || match f.hobbies_match {
                    HobbiesMatch::Any => f.hobbies.iter().any(|h| p.hobbies.contains(h)),
                    HobbiesMatch::All => f.hobbies.iter().all(|h| p.hobbies.contains(h)),
                }
        })
        .collect();
    hits.sort_by(|a, b| {
        (fold(&a.last_name), fold(&a.first_name), &a.id).cmp(&(
            fold(&b.last_name),
            fold(&b.first_name),
            &b.id,
        ))
    });
    hits.into_iter().cloned().collect()
}

fn check(engine: &SearchEngine, model: &[Person], f: &PeopleFilter, page_size: usize) {
    let expected = model_search(model, f);
    let snapshot = engine.snapshot();
    // Every page by offset, one past the end included.
    for page in 0..=expected.len().div_ceil(page_size) {
        let offset = page * page_size;
        let got = snapshot.search(f, &PageStart::Offset(offset as u64), page_size);
        assert_eq!(got.total, expected.len() as u64, "{f:?}");
        assert_eq!(got.offset, offset as u64, "{f:?} page {page}");
        let want: Vec<&Person> = expected.iter().skip(offset).take(page_size).collect();
        assert_eq!(
            got.items.iter().collect::<Vec<_>>(),
            want,
            "{f:?} page {page}"
        );
    }
    // The same sequence by following cursors.
    let mut seen = Vec::new();
    let mut start = PageStart::Offset(0);
    loop {
        let got = snapshot.search(f, &start, page_size);
        assert_eq!(got.offset, seen.len() as u64);
        seen.extend(got.items);
        match got.next {
            Some(key) => start = PageStart::After(key),
            None => break,
        }
    }
    assert_eq!(seen, expected, "{f:?} by cursor");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn index_answers_like_the_model(
        first in prop::collection::vec(person(), 0..40),
        second in prop::collection::vec(person(), 0..15),
        filters in prop::collection::vec(filter(), 1..6),
        page_size in 1usize..7,
    ) {
        let mut model = Vec::new();
        upsert(&mut model, &first);
        let engine = SearchEngine::from_people(&first);
        for f in &filters {
            check(&engine, &model, f, page_size);
        }
        upsert(&mut model, &second);
        engine.upsert(&second);
        for f in &filters {
            check(&engine, &model, f, page_size);
        }
        let snapshot = engine.snapshot();
        for p in &model {
            prop_assert_eq!(snapshot.get(&p.id), Some(p.clone()));
        }
        prop_assert_eq!(snapshot.len(), model.len());
    }
}

#[test]
fn filter_options_count_and_order() {
    let people: Vec<Person> = people_core::jsonl::generated_people(5_000, 7).collect();
    let engine = SearchEngine::from_people(&people);
    let (nats, hobbies) = engine.snapshot().filter_options(5);
    assert_eq!(nats.len(), 5);
    for list in [&nats, &hobbies] {
        for pair in list.windows(2) {
            assert!(
                pair[0].count > pair[1].count
                    || (pair[0].count == pair[1].count && pair[0].value < pair[1].value)
            );
        }
    }
    for vc in &nats {
        let n = people.iter().filter(|p| p.nationality == vc.value).count();
        assert_eq!(vc.count, n as u64, "{}", vc.value);
    }
    for vc in &hobbies {
        let n = people
            .iter()
            .filter(|p| p.hobbies.contains(&vc.value))
            .count();
        assert_eq!(vc.count, n as u64, "{}", vc.value);
    }
}

#[test]
fn a_cursor_survives_writes_between_pages() {
    let people: Vec<Person> = people_core::jsonl::generated_people(200, 3).collect();
    let engine = SearchEngine::from_people(&people);
    let f = PeopleFilter::default();
    let first = engine.snapshot().search(&f, &PageStart::Offset(0), 50);
    let key = first.next.clone().expect("more pages");
    // Someone is added before the cursor position, and so shifts every offset.
    let mut early = people[0].clone();
    early.id = "a-new-person".into();
    early.last_name = "Aaaa".into();
    engine.upsert(&[early]);
    let second = engine.snapshot().search(&f, &PageStart::After(key), 50);
    assert_eq!(second.total, 201);
    let before: Vec<&str> = first.items.iter().map(|p| p.id.as_str()).collect();
    let after_ids: Vec<&str> = second.items.iter().map(|p| p.id.as_str()).collect();
    assert!(
        before.iter().all(|id| !after_ids.contains(id)),
        "no person repeats"
    );
    assert_eq!(second.offset, 51, "the new person now precedes the page");
}

// ------------------------------------------------ the live index, segmented

/// One step of a random interleaving against the live index.
#[derive(Debug, Clone)]
enum Op {
    Put(Vec<Person>),
    Delete(Vec<String>),
    /// A merge takes its copy now and installs its result at `FinishMerge`;
    /// the writes in between are replayed onto it.
    StartMerge,
    FinishMerge,
    /// A whole merge at once.
    Merge,
    Query(PeopleFilter, usize),
    /// Takes the first page's cursor now, for `UseCursors` later.
    TakeCursor(PeopleFilter, usize),
    UseCursors,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec(person(), 1..6).prop_map(Op::Put),
        2 => prop::collection::vec(0..40u32, 1..4)
            .prop_map(|ids| Op::Delete(ids.into_iter().map(|i| format!("id{i:02}")).collect())),
        1 => Just(Op::StartMerge),
        1 => Just(Op::FinishMerge),
        1 => Just(Op::Merge),
        2 => (filter(), 1usize..6).prop_map(|(f, s)| Op::Query(f, s)),
        1 => (filter(), 1usize..4).prop_map(|(f, s)| Op::TakeCursor(f, s)),
        1 => Just(Op::UseCursors),
    ]
}

fn model_key(p: &Person) -> (String, String, String) {
    (fold(&p.last_name), fold(&p.first_name), p.id.clone())
}

/// Filter options as the model counts them: every value, count desc,
/// value asc.
type Counts = Vec<(String, u64)>;

fn model_options(model: &[Person]) -> (Counts, Counts) {
    let mut nats: std::collections::HashMap<String, u64> = Default::default();
    let mut hobbies: std::collections::HashMap<String, u64> = Default::default();
    for p in model {
        *nats.entry(p.nationality.clone()).or_default() += 1;
        for h in &p.hobbies {
            *hobbies.entry(h.clone()).or_default() += 1;
        }
    }
    let sorted = |m: std::collections::HashMap<String, u64>| {
        let mut v: Vec<(String, u64)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    };
    (sorted(nats), sorted(hobbies))
}

fn check_live(engine: &SearchEngine, model: &[Person], f: &PeopleFilter, page_size: usize) {
    check(engine, model, f, page_size);
    let snapshot = engine.snapshot();
    assert_eq!(snapshot.len(), model.len());
    for p in model {
        assert_eq!(snapshot.get(&p.id), Some(p.clone()));
    }
    let (nats, hobbies) = snapshot.filter_options(100);
    let pairs = |v: Vec<people_core::domain::ValueCount>| -> Counts {
        v.into_iter().map(|vc| (vc.value, vc.count)).collect()
    };
    assert_eq!((pairs(nats), pairs(hobbies)), model_options(model));
    // The report over the same filter counts what the search finds.
    let hits = model_search(model, f);
    let report = people_app::jobs::report::report(&snapshot, f);
    assert_eq!(report.total, hits.len() as u64);
    let (nats, _) = model_options(&hits);
    let top: Counts = nats.into_iter().take(10).collect();
    assert_eq!(pairs(report.top_nationalities), top);
    let mut per_person = vec![0u64; hits.iter().map(|p| p.hobbies.len() + 1).max().unwrap_or(0)];
    for p in &hits {
        per_person[p.hobbies.len()] += 1;
    }
    assert_eq!(report.hobbies_per_person, per_person);
}

/// Runs `ops` on `engine`, which holds `model`, checking it against the model.
fn run_ops(engine: &SearchEngine, mut model: Vec<Person>, ops: Vec<Op>) {
    let mut merge = None;
    let mut cursors: Vec<(PeopleFilter, usize, people_core::domain::SortKey)> = Vec::new();
    for op in ops {
        match op {
            Op::Put(people) => {
                upsert(&mut model, &people);
                engine.upsert(&people);
            }
            Op::Delete(ids) => {
                model.retain(|p| !ids.contains(&p.id));
                engine.delete(&ids);
            }
            Op::StartMerge => {
                if merge.is_none() {
                    merge = engine.start_merge();
                }
            }
            Op::FinishMerge => {
                if let Some(m) = merge.take() {
                    m.run();
                }
            }
            Op::Merge => {
                if let Some(m) = merge.take() {
                    m.run();
                }
                engine.merge();
            }
            Op::Query(f, size) => check_live(engine, &model, &f, size),
            Op::TakeCursor(f, size) => {
                if let Some(key) = engine
                    .snapshot()
                    .search(&f, &PageStart::Offset(0), size)
                    .next
                {
                    cursors.push((f, size, key));
                }
            }
            Op::UseCursors => {
                // A cursor names a place in the order: after any writes and
                // merges since, it continues with the matches after that key.
                let snapshot = engine.snapshot();
                for (f, size, key) in &cursors {
                    let got = snapshot.search(f, &PageStart::After(key.clone()), *size);
                    let after: Vec<Person> = model_search(&model, f)
                        .into_iter()
                        .filter(|p| {
                            model_key(p) > (key.last.clone(), key.first.clone(), key.id.clone())
                        })
                        .collect();
                    assert_eq!(
                        got.items,
                        after.iter().take(*size).cloned().collect::<Vec<_>>()
                    );
                    assert_eq!(got.offset + after.len() as u64, got.total, "{f:?}");
                }
            }
        }
    }
    if let Some(m) = merge.take() {
        m.run();
    }
    engine.wait_for_merge();
    check_live(engine, &model, &PeopleFilter::default(), 7);
    engine.merge();
    check_live(engine, &model, &PeopleFilter::default(), 7);
    assert_eq!(
        engine.snapshot().pending(),
        0,
        "a merge leaves an empty delta"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Inserts, replaces, deletes, merges (with writes during them) and
    /// queries, in random order, against the model.
    #[test]
    fn live_index_answers_like_the_model(
        first in prop::collection::vec(person(), 0..30),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let mut model = Vec::new();
        upsert(&mut model, &first);
        // From a base that holds `first`.
        let engine = SearchEngine::from_people(&first).with_merge_at(0);
        run_ops(&engine, model, ops.clone());
        // From an empty base, `first` written as a delta.
        let mut seeded = vec![Op::Put(first)];
        seeded.extend(ops);
        run_ops(&SearchEngine::from_people(&[]).with_merge_at(0), Vec::new(), seeded);
    }

    /// Merges that start on their own (a tiny threshold), on their thread,
    /// while writes and queries go on.
    #[test]
    fn background_merges_keep_answers_exact(
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let engine = SearchEngine::from_people(&[]).with_merge_at(3);
        run_ops(&engine, Vec::new(), ops);
    }
}

/// Writes of shrinking sizes leave several delta segments side by side
/// (each less than half the one before, so the tiering keeps them apart);
/// replacements and deletes then reach into every one of them. Every page
/// by offset and by cursor, totals, lookups and counts stay the model's,
/// and 140 more small writes leave no more than 10 deltas.
#[test]
fn several_delta_segments_answer_like_the_model() {
    let mut people: Vec<Person> = people_core::jsonl::generated_people(3_000, 5).collect();
    // The hard names of folding (the kit's data has none), in the base and
    // in every delta.
    for (i, p) in people.iter_mut().step_by(13).enumerate() {
        p.first_name = FIRST[i % FIRST.len()].into();
        p.last_name = LAST[i / FIRST.len() % LAST.len()].into();
    }
    let (base, rest) = people.split_at(1_000);
    let engine = SearchEngine::from_people(base).with_merge_at(0);
    let mut model = base.to_vec();
    let mut ops = Vec::new();
    let mut at = 0;
    for size in [800, 300, 120, 50, 20, 8, 3] {
        ops.push(Op::Put(rest[at..at + size].to_vec()));
        at += size;
    }
    // Replace a few people of each delta and of the base, delete others.
    let changed: Vec<Person> = [0, 900, 1_850, 1_950, 2_250, 2_288, 2_298]
        .iter()
        .map(|&i| {
            let mut p = people[i].clone();
            p.last_name = format!("{} Renamed", p.last_name);
            p
        })
        .collect();
    let gone: Vec<String> = [1, 901, 1_851, 1_951, 2_251, 2_289]
        .iter()
        .map(|&i| people[i].id.clone())
        .collect();
    let filters = [
        PeopleFilter::default(),
        PeopleFilter::new("a", Vec::new(), Vec::new(), HobbiesMatch::Any),
        PeopleFilter::new("strauss", Vec::new(), Vec::new(), HobbiesMatch::Any),
    ];
    for op in ops {
        if let Op::Put(batch) = &op {
            upsert(&mut model, batch);
            engine.upsert(batch);
        }
    }
    assert!(
        engine.snapshot().delta_segments() >= 5,
        "{} deltas",
        engine.snapshot().delta_segments()
    );
    for f in &filters {
        check_live(&engine, &model, f, 97);
    }
    upsert(&mut model, &changed);
    engine.upsert(&changed);
    model.retain(|p| !gone.contains(&p.id));
    assert_eq!(engine.delete(&gone), gone.len());
    for f in &filters {
        check_live(&engine, &model, f, 61);
    }
    // Many more writes: the deltas stay few (at most 10, `MAX_DELTAS`).
    for chunk in rest[at..].chunks(5) {
        upsert(&mut model, chunk);
        engine.upsert(chunk);
        assert!(engine.snapshot().delta_segments() <= 10);
    }
    check_live(&engine, &model, &PeopleFilter::default(), 250);
    assert!(engine.merge());
    assert_eq!(engine.snapshot().delta_segments(), 0);
    check_live(&engine, &model, &PeopleFilter::default(), 250);
}

#[test]
fn a_merge_keeps_a_cursor_valid_and_deletes_deleted() {
    let people: Vec<Person> = people_core::jsonl::generated_people(5_000, 11).collect();
    let engine = SearchEngine::from_people(&people).with_merge_at(0);
    let f = PeopleFilter::default();
    let first = engine.snapshot().search(&f, &PageStart::Offset(0), 100);
    let key = first.next.clone().expect("more pages");
    let gone: Vec<String> = people[..1_000].iter().map(|p| p.id.clone()).collect();
    assert_eq!(engine.delete(&gone), 1_000);
    assert_eq!(engine.delete(&gone), 0, "deleting twice changes nothing");
    let before_merge = engine
        .snapshot()
        .search(&f, &PageStart::After(key.clone()), 100);
    assert!(engine.merge());
    assert_eq!(engine.merges(), 1);
    let after_merge = engine.snapshot().search(&f, &PageStart::After(key), 100);
    assert_eq!(before_merge.items, after_merge.items);
    assert_eq!(after_merge.total, 4_000);
    assert_eq!(engine.snapshot().get(&gone[0]), None);
}

// Typo tolerance and facets against naive models. Names from a small
// alphabet, so that words a few edits apart are common.

const LETTERS: &[char] = &['a', 'b', 'c', 'ä'];

fn word(min: usize, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(LETTERS), min..=max)
        .prop_map(|cs| cs.into_iter().collect())
}

fn near_person() -> impl Strategy<Value = Person> {
    (
        0..30u32,
        word(1, 7),
        (word(2, 11), prop::option::of(word(1, 4))),
        prop::sample::select(NATS),
        prop::sample::subsequence(HOBBIES, 0..=3),
    )
        .prop_map(|(id, f, (l, l2), n, h)| Person {
            id: format!("id{id:02}"),
            first_name: f,
            last_name: match l2 {
                Some(more) => format!("{l}-{more}"),
                None => l,
            },
            nationality: n.into(),
            hobbies: h.into_iter().map(String::from).collect(),
        })
}

/// The definition, spelt out: some prefix of some name word is within
/// the allowed edits (optimal string alignment distance) of the query word.
fn model_typo_match(p: &Person, q: &str, typos: bool) -> bool {
    let k = match q.chars().count() {
        _ if !typos => 0,
        n if n >= 9 => 2,
        n if n >= 5 => 1,
        _ => 0,
    };
    let name = fold(&format!("{} {}", p.first_name, p.last_name));
    split_words(&name).any(|w| {
        let chars: Vec<char> = w.chars().collect();
        (0..=chars.len()).any(|j| {
            let prefix: String = chars[..j].iter().collect();
            strsim::osa_distance(q, &prefix) <= k
        })
    })
}

fn model_typo_search(model: &[Person], f: &PeopleFilter) -> Vec<Person> {
    let exact_rest = PeopleFilter {
        words: Vec::new(),
        typos: false,
        ..f.clone()
    };
    model_search(model, &exact_rest)
        .into_iter()
        .filter(|p| f.words.iter().all(|q| model_typo_match(p, q, f.typos)))
        .collect()
}

/// Disjunctive counts: each facet with every filter but its own.
fn model_facet(model: &[Person], f: &PeopleFilter, nationality: bool) -> Vec<(String, u64)> {
    let mut sideways = f.clone();
    if nationality {
        sideways.nationalities.clear();
    } else {
        sideways.hobbies.clear();
    }
    let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
    for p in model_typo_search(model, &sideways) {
        if nationality {
            *counts.entry(p.nationality.clone()).or_default() += 1;
        } else {
            for h in &p.hobbies {
                *counts.entry(h.clone()).or_default() += 1;
            }
        }
    }
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

fn check_typos_and_facets(engine: &SearchEngine, model: &[Person], f: &PeopleFilter, limit: usize) {
    let snapshot = engine.snapshot();
    let expected = model_typo_search(model, f);
    let got = snapshot.search(f, &PageStart::Offset(0), 1000);
    assert_eq!(got.total, expected.len() as u64, "{f:?}");
    assert_eq!(got.items, expected, "{f:?}");
    // Every way of counting (the count table, a walk of the matches,
    // bitmap intersections; `Auto` picks per segment) gives the model's.
    let countings = [
        FacetCounting::Auto,
        FacetCounting::Rows,
        FacetCounting::Bitmaps,
    ];
    let asked = [
        vec![Facet::Nationality, Facet::Hobbies],
        vec![Facet::Hobbies],
        vec![Facet::Nationality],
    ];
    for (counting, facets) in countings
        .iter()
        .flat_map(|c| asked.iter().map(move |a| (*c, a)))
    {
        let got = snapshot.facets_with(f, facets, limit, counting);
        assert_eq!(got.len(), facets.len());
        check_facets(model, f, limit, got, counting);
    }
    // Every word reported as approximate matched someone only that way.
    for approx in snapshot.approximate_words(f) {
        assert!(f.words.contains(&approx.word));
        for w in &approx.matched {
            assert!(!w.starts_with(&approx.word), "{w} is an exact match");
            assert!(
                expected.iter().any(|p| {
                    let name = fold(&format!("{} {}", p.first_name, p.last_name));
                    split_words(&name).any(|x| x == w)
                }),
                "{w} belongs to nobody matching {f:?}"
            );
        }
    }
}

fn check_facets(
    model: &[Person],
    f: &PeopleFilter,
    limit: usize,
    facets: Vec<(Facet, Vec<people_core::domain::ValueCount>)>,
    counting: FacetCounting,
) {
    for (facet, counts) in facets {
        let nationality = facet == Facet::Nationality;
        let all = model_facet(model, f, nationality);
        let selected = if nationality {
            &f.nationalities
        } else {
            &f.hobbies
        };
        let mut want: Vec<(String, u64)> = all.iter().take(limit).cloned().collect();
        let mut extra: Vec<(String, u64)> = selected
            .iter()
            .filter(|s| !want.iter().any(|(v, _)| v == *s))
            .map(|s| {
                let n = all.iter().find(|(v, _)| v == s).map_or(0, |(_, n)| *n);
                (s.clone(), n)
            })
            .collect();
        extra.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        want.extend(extra);
        let got: Vec<(String, u64)> = counts.into_iter().map(|vc| (vc.value, vc.count)).collect();
        assert_eq!(got, want, "{facet:?} of {f:?}, {counting:?}");
    }
}

fn near_filter() -> impl Strategy<Value = PeopleFilter> {
    (
        prop::collection::vec(word(1, 10), 0..=2),
        prop::sample::subsequence(NATS, 0..=2),
        prop::sample::subsequence(HOBBIES, 0..=2),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(words, nats, hobbies, all, typos)| {
            PeopleFilter::new(
                &words.join(" "),
                nats.into_iter().map(String::from).collect(),
                hobbies.into_iter().map(String::from).collect(),
                if all {
                    HobbiesMatch::All
                } else {
                    HobbiesMatch::Any
                },
            )
            .with_typos(typos)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Typo tolerance, facet counts (with selected values kept) and the
    /// approximate words, on one segment and then across base and delta
    /// (writes and deletes after the base was built).
    #[test]
    fn typos_and_facets_answer_like_the_model(
        first in prop::collection::vec(near_person(), 0..40),
        second in prop::collection::vec(near_person(), 0..10),
        gone in prop::collection::vec(0..30u32, 0..5),
        third in prop::collection::vec(near_person(), 0..4),
        later_gone in prop::collection::vec(0..30u32, 0..3),
        filters in prop::collection::vec(near_filter(), 1..6),
        limit in 1usize..4,
    ) {
        let mut model = Vec::new();
        upsert(&mut model, &first);
        let engine = SearchEngine::from_people(&first).with_merge_at(0);
        for f in &filters {
            check_typos_and_facets(&engine, &model, f, limit);
        }
        upsert(&mut model, &second);
        engine.upsert(&second);
        let gone: Vec<String> = gone.iter().map(|i| format!("id{i:02}")).collect();
        model.retain(|p| !gone.contains(&p.id));
        engine.delete(&gone);
        for f in &filters {
            check_typos_and_facets(&engine, &model, f, limit);
        }
        // A smaller batch stays a delta of its own beside the first one
        // (tiering), and deletes then hit the base and both deltas.
        upsert(&mut model, &third);
        engine.upsert(&third);
        let later_gone: Vec<String> = later_gone.iter().map(|i| format!("id{i:02}")).collect();
        model.retain(|p| !later_gone.contains(&p.id));
        engine.delete(&later_gone);
        for f in &filters {
            check_typos_and_facets(&engine, &model, f, limit);
        }
    }
}

#[test]
fn a_typo_finds_the_name_and_says_so() {
    let people: Vec<Person> = [("Jon", "Smith"), ("Ann", "Smithson"), ("Bo", "Schmidt")]
        .iter()
        .enumerate()
        .map(|(i, (f, l))| Person {
            id: format!("p{i}"),
            first_name: (*f).into(),
            last_name: (*l).into(),
            nationality: "Irish".into(),
            hobbies: vec![],
        })
        .collect();
    let engine = SearchEngine::from_people(&people);
    let snapshot = engine.snapshot();
    let exact = PeopleFilter::new("smiht", vec![], vec![], HobbiesMatch::Any);
    assert_eq!(snapshot.count(&exact), 0);
    let typos = exact.clone().with_typos(true);
    let page = snapshot.search(&typos, &PageStart::Offset(0), 10);
    let names: Vec<&str> = page.items.iter().map(|p| p.last_name.as_str()).collect();
    assert_eq!(names, ["Smith", "Smithson"]);
    let approx = snapshot.approximate_words(&typos);
    assert_eq!(approx.len(), 1);
    assert_eq!(approx[0].word, "smiht");
    assert_eq!(approx[0].matched, ["smith", "smithson"]);
    // Four characters: exact, even with typos on.
    let short = PeopleFilter::new("smit", vec![], vec![], HobbiesMatch::Any).with_typos(true);
    assert_eq!(snapshot.count(&short), 2);
    assert!(snapshot.approximate_words(&short).is_empty());
}
