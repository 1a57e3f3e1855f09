//! Writes into the live index of the kit's 1M-person data set (no HTTP):
//! criterion timings of one upsert and one delete (with an empty delta and
//! with 10,000 changes waiting), a merge of 10,000 changes, then the query
//! mix's latency with and without a merge running beside it, and the
//! resident memory before and at the peak of a merge.
//!
//!   scripts/bench.sh live
//!   BENCH_PEOPLE=people.jsonl BENCH_QUERIES=queries.jsonl cargo bench -p people-http --bench live

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use people_core::domain::{Change, Person};
use people_core::search::SearchEngine;
use people_http::PeopleQuery;

fn query_pairs() -> Vec<Vec<(String, String)>> {
    people_testkit::bench::kit_queries()
        .into_iter()
        .map(|q| q.pairs)
        .collect()
}

fn person(id: String, n: usize) -> Person {
    Person {
        id,
        first_name: format!("Bench{}", n % 1000),
        last_name: ["Writer", "Changer", "Mover"][n % 3].into(),
        nationality: "Benchland".into(),
        hobbies: vec!["Benchmarking".into()],
    }
}

/// 10,000 changes: half replace people of the base, a quarter are new, a
/// quarter delete.
fn ten_thousand_changes(ids: &[String], round: usize) -> Vec<Change> {
    (0..10_000)
        .map(|i| {
            let base_id = ids[(round * 10_007 + i * 97) % ids.len()].clone();
            match i % 4 {
                0 | 1 => Change::Put(person(base_id, i + round)),
                2 => Change::Put(person(format!("new-{round}-{i}"), i)),
                _ => Change::Delete(base_id),
            }
        })
        .collect()
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// The query mix, round after round, until `stop`; every latency.
fn run_queries(engine: &SearchEngine, queries: &[PeopleQuery], stop: &AtomicBool) -> Vec<Duration> {
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        for q in queries {
            let t = Instant::now();
            let page = engine.snapshot().search(&q.filter, &q.start, q.page_size);
            black_box(page.items);
            samples.push(t.elapsed());
        }
    }
    samples.sort();
    samples
}

fn main() {
    let path = PathBuf::from(
        std::env::var("BENCH_PEOPLE")
            .expect("BENCH_PEOPLE=path/to/people.jsonl (scripts/bench.sh makes one)"),
    );
    let rss_start = status_kb("VmRSS:");
    let table = people_core::jsonl::read_jsonl(&path, &mut |_| {}).expect("people file loads");
    let ids: Vec<String> = (0..table.rows_len() as u32)
        .step_by(7)
        .map(|r| table.id(r).to_owned())
        .collect();
    let engine = SearchEngine::new(table).with_merge_at(0);
    let people = engine.snapshot().len();
    let rss_index = status_kb("VmRSS:");
    eprintln!("indexed {people} people; resident {} MB", rss_index / 1024);
    // The peak of one merge of 10,000 changes, first, before the timings
    // below leave freed memory in the allocator: VmHWM reset just before.
    engine.apply(&ten_thousand_changes(&ids, 0));
    let rss_before_first = status_kb("VmRSS:");
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    engine.merge();
    let first_peak = status_kb("VmHWM:");
    let rss_after_first = status_kb("VmRSS:");

    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    // One upsert: a few ids rewritten over and over, so the delta stays
    // small (the cost of a write right after a merge).
    let mut n = 0usize;
    criterion.bench_function("upsert one, empty delta", |b| {
        b.iter(|| {
            n += 1;
            engine.upsert(&[person(ids[n % 16].clone(), n)])
        })
    });
    let mut d = 0usize;
    criterion.bench_function("delete one, empty delta", |b| {
        b.iter_batched(
            || {
                d += 1;
                ids[(d * 31) % ids.len()].clone()
            },
            |id| engine.delete(&[id]),
            BatchSize::SmallInput,
        )
    });
    engine.merge();
    // The same with 10,000 changes waiting in the delta.
    engine.apply(&ten_thousand_changes(&ids, 0));
    criterion.bench_function("upsert one, 10k pending", |b| {
        b.iter(|| {
            n += 1;
            engine.upsert(&[person(ids[n % 16].clone(), n)])
        })
    });
    criterion.bench_function("delete one, 10k pending", |b| {
        b.iter_batched(
            || {
                d += 1;
                ids[(d * 31) % ids.len()].clone()
            },
            |id| engine.delete(&[id]),
            BatchSize::SmallInput,
        )
    });
    engine.merge();

    let mut round = 1;
    let mut merges = criterion.benchmark_group("merge");
    merges.sample_size(10);
    merges.measurement_time(Duration::from_secs(10));
    merges.bench_function("merge of 10,000 changes", |b| {
        b.iter_batched(
            || {
                round += 1;
                engine.apply(&ten_thousand_changes(&ids, round));
            },
            |()| engine.merge(),
            BatchSize::PerIteration,
        )
    });
    merges.finish();

    // Queries with and without a merge running beside them.
    let queries: Vec<PeopleQuery> = query_pairs()
        .iter()
        .map(|p| PeopleQuery::from_pairs(p).expect("valid query"))
        .collect();
    let quiet = {
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let h = s.spawn(|| run_queries(&engine, &queries, &stop));
            std::thread::sleep(Duration::from_secs(5));
            stop.store(true, Ordering::Relaxed);
            h.join().expect("query thread")
        })
    };
    // Peak memory of one merge: VmHWM reset (clear_refs 5) just before.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    round += 1;
    engine.apply(&ten_thousand_changes(&ids, round));
    let rss_before_merge = status_kb("VmRSS:");
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let engine = Arc::new(engine);
    let (during, merge_ms, merges_done) = {
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let h = s.spawn(|| run_queries(&engine, &queries, &stop));
            let t = Instant::now();
            let mut merges_done = 0;
            // Merges back to back for 5 s, each after 10,000 new changes.
            while t.elapsed() < Duration::from_secs(5) {
                round += 1;
                engine.apply(&ten_thousand_changes(&ids, round));
                engine.merge();
                merges_done += 1;
            }
            let merge_ms = t.elapsed().as_secs_f64() * 1e3 / merges_done as f64;
            stop.store(true, Ordering::Relaxed);
            (h.join().expect("query thread"), merge_ms, merges_done)
        })
    };
    let peak = status_kb("VmHWM:");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("\nquery mix, one thread (ms):");
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "", "p50", "p95", "p99", "max", "queries"
    );
    for (name, s) in [("no merge", &quiet), ("merges running beside", &during)] {
        println!(
            "{name:<28} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>10}",
            ms(percentile(s, 50.0)),
            ms(percentile(s, 95.0)),
            ms(percentile(s, 99.0)),
            ms(*s.last().expect("samples")),
            s.len()
        );
    }
    println!(
        "p99 ratio (merging / quiet): {:.2}; {merges_done} merges of 10,000 changes, {merge_ms:.0} ms each beside the queries",
        percentile(&during, 99.0).as_secs_f64() / percentile(&quiet, 99.0).as_secs_f64()
    );
    println!(
        "first merge: resident {} MB before it, peak {} MB during it ({:.2}x the index's {} MB over the process before loading), {} MB after",
        rss_before_first / 1024,
        first_peak / 1024,
        (first_peak - rss_start) as f64 / (rss_index - rss_start) as f64,
        (rss_index - rss_start) / 1024,
        rss_after_first / 1024,
    );
    println!(
        "resident memory: {} MB before loading, {} MB with the index ({} MB for the index), {} MB before the merges, peak {} MB during them (+{} MB, {:.2}x the index)",
        rss_start / 1024,
        rss_index / 1024,
        (rss_index - rss_start) / 1024,
        rss_before_merge / 1024,
        peak / 1024,
        peak.saturating_sub(rss_before_merge) / 1024,
        (peak - rss_start) as f64 / (rss_index - rss_start) as f64,
    );
}
