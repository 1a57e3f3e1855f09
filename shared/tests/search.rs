//! The index against its model: a naive filter and sort over a `Vec`.

use proptest::prelude::*;
use shared::domain::{HobbiesMatch, PeopleFilter, Person};
use shared::search::{PageStart, SearchEngine};
use shared::text::{fold, split_words};

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
    let people: Vec<Person> = shared::datagen::generate(5_000, 7).collect();
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
    let people: Vec<Person> = shared::datagen::generate(200, 3).collect();
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
