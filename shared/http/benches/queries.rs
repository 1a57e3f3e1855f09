//! Every query of the kit's `queries.jsonl` against the index of the kit's
//! 1M-person data set: criterion timings per query, then the latency
//! distribution (p50/p95/p99) per query type from many timed calls.
//!
//!   scripts/bench.sh            (makes the data file, then runs this)
//!   BENCH_PEOPLE=people.jsonl BENCH_QUERIES=queries.jsonl cargo bench -p people-http --bench queries
//!
//! A sample is what the API does for `GET /people` minus HTTP: parse and
//! validate the parameters, find the matches, count them, and build the page
//! of `Person` values (and, in the `facets` and `typos` variants of the mix,
//! the facet counts and the approximately matched words).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::Criterion;
use people_core::search::{SearchEngine, Snapshot};
use people_http::PeopleQuery;
use people_testkit::bench::KitQuery as Query;

fn queries() -> Vec<Query> {
    people_testkit::bench::kit_queries()
}

/// The query mix twice more: every query with `facets=nationality,hobbies`
/// (type `facets`), and every query with a search with `typos=1` and its
/// words of 5 or more characters misspelt by swapping their 2nd and 3rd
/// characters (type `typos`).
fn variants(queries: &[Query]) -> Vec<Query> {
    let mut out = Vec::new();
    for q in queries {
        let mut pairs = q.pairs.clone();
        pairs.push(("facets".into(), "nationality,hobbies".into()));
        out.push(Query {
            name: format!("facets.{}", q.name),
            pairs,
        });
    }
    for q in queries {
        if !q.pairs.iter().any(|(k, v)| k == "search" && !v.is_empty()) {
            continue;
        }
        let mut pairs: Vec<(String, String)> = q
            .pairs
            .iter()
            .map(|(k, v)| {
                if k != "search" {
                    return (k.clone(), v.clone());
                }
                let typo = v
                    .split(' ')
                    .map(|w| {
                        let mut cs: Vec<char> = w.chars().collect();
                        if cs.len() >= 5 {
                            cs.swap(1, 2);
                        }
                        cs.into_iter().collect::<String>()
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                (k.clone(), typo)
            })
            .collect();
        pairs.push(("typos".into(), "1".into()));
        out.push(Query {
            name: format!("typos.{}", q.name),
            pairs,
        });
    }
    out
}

fn run(snapshot: &Snapshot, q: &Query) -> u64 {
    let query = PeopleQuery::from_pairs(&q.pairs).expect("valid query");
    let page = snapshot.search(&query.filter, &query.start, query.page_size);
    black_box(&page.items);
    if !query.facets.is_empty() {
        black_box(snapshot.facets(&query.filter, &query.facets, query.facet_limit));
    }
    if query.filter.typos {
        black_box(snapshot.approximate_words(&query.filter));
    }
    page.total
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    // Nearest rank, as the PostgreSQL reference reports it.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn main() {
    let path = PathBuf::from(
        std::env::var("BENCH_PEOPLE")
            .expect("BENCH_PEOPLE=path/to/people.jsonl (scripts/bench.sh makes one)"),
    );
    let started = Instant::now();
    let table = people_core::jsonl::read_jsonl(&path, &mut |_| {}).expect("people file loads");
    let engine = SearchEngine::new(table);
    let snapshot = engine.snapshot();
    eprintln!(
        "indexed {} people in {:.2} s",
        snapshot.len(),
        started.elapsed().as_secs_f64()
    );
    let mut queries = queries();
    let more = variants(&queries);
    queries.extend(more);

    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for q in &queries {
        criterion.bench_function(&q.name, |b| b.iter(|| run(&snapshot, q)));
    }

    // Latency distribution: every query, interleaved round by round.
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1000);
    let mut by_type: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    let mut all = Vec::new();
    for _ in 0..rounds {
        for q in &queries {
            let t = Instant::now();
            run(&snapshot, q);
            let d = t.elapsed();
            let kind = q.name.split('.').next().unwrap_or(&q.name).to_owned();
            by_type.entry(kind).or_default().push(d);
            all.push(d);
        }
    }
    println!(
        "\nlatency per query type, {rounds} rounds of {} queries (ms):",
        queries.len()
    );
    println!(
        "{:<10} {:>8} {:>8} {:>8} {:>8}",
        "type", "p50", "p95", "p99", "max"
    );
    let row = |name: &str, samples: &mut Vec<Duration>| {
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{name:<10} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
            ms(percentile(samples, 50.0)),
            ms(percentile(samples, 95.0)),
            ms(percentile(samples, 99.0)),
            ms(*samples.last().expect("samples")),
        );
    };
    for (kind, samples) in by_type.iter_mut() {
        row(kind, samples);
    }
    row("overall", &mut all);
}
