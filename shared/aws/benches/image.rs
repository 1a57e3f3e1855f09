//! Index images: size, write time, load time to a queryable index (wall and
//! this process's CPU time), resident memory, and the query mix on the
//! loaded index. A plain timing harness (no criterion: one load of 10M
//! people takes seconds, and a load is what is measured, once per run).
//!
//!   cargo bench -p people-aws --bench image -- write N FILE    generate N people, index, write FILE
//!   cargo bench -p people-aws --bench image -- load FILE       read FILE, index it, run the query mix
//!   cargo bench -p people-aws --bench image -- s3 FILE URL     upload FILE's index to an S3 endpoint
//!                                                          (moto) and load it back with ranged GETs
//!
//! `load` is meant to run in its own process, so its resident memory is the
//! loaded index's alone. The people are the built-in generator's
//! (the kit's, `people_datagen`, seed 42: the local server's `--people N`).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use people_core::search::{FeedPosition, SearchEngine, Snapshot, load_file, save_file};
use people_http::PeopleQuery;

/// User + system CPU time of this process so far (from /proc, in ticks of
/// 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line; 12 and 13 here.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn resident_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn peak_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let (wall, cpu) = (Instant::now(), cpu_time());
    let out = f();
    println!(
        "{what}: {:.3} s wall, {:.2} s CPU",
        wall.elapsed().as_secs_f64(),
        (cpu_time() - cpu).as_secs_f64()
    );
    out
}

fn write(n: usize, path: &Path) {
    let table = timed(&format!("generate {n} people"), || {
        people_core::jsonl::generated(n, 42, &mut |_| {})
    });
    let engine = timed("index (sort + bitmaps)", || SearchEngine::new(table));
    // Current now: a function starting from it finds it fresh.
    let position = FeedPosition {
        version: 1,
        caught_up_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    };
    let snapshot = engine.snapshot();
    timed("write image", || save_file(path, &snapshot, position)).expect("image written");
    let size = std::fs::metadata(path).expect("image exists").len();
    println!(
        "image: {size} bytes ({:.1} MB, {:.1} bytes a person)",
        size as f64 / 1e6,
        size as f64 / n.max(1) as f64
    );
}

fn load(path: &Path) {
    let before = resident_mb();
    let image = timed("read image (decode into the table)", || load_file(path))
        .expect("image reads")
        .expect("image exists");
    let (engine, header) = timed("index it (order check + bitmaps)", || image.into_engine());
    let snapshot = engine.snapshot();
    println!(
        "loaded {} people; resident {} MB (before {before} MB), peak {} MB",
        header.people,
        resident_mb(),
        peak_mb()
    );
    query_mix(&snapshot);
}

/// Every query of the kit's set, round-robin, for about 10 s: p50, p99 and
/// the slowest query's p99.
fn query_mix(snapshot: &Snapshot) {
    let queries: Vec<(String, PeopleQuery)> = people_testkit::bench::kit_queries()
        .into_iter()
        .map(|q| {
            (
                q.name,
                PeopleQuery::from_pairs(&q.pairs).expect("valid query"),
            )
        })
        .collect();
    let mut all = Vec::new();
    let mut per: Vec<Vec<Duration>> = vec![Vec::new(); queries.len()];
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        for (i, (_, q)) in queries.iter().enumerate() {
            let t = Instant::now();
            let page = snapshot.search(&q.filter, &q.start, q.page_size);
            black_box(&page.items);
            let d = t.elapsed();
            all.push(d);
            per[i].push(d);
        }
    }
    all.sort_unstable();
    let pct = |v: &[Duration], p: f64| {
        let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
        v[rank.min(v.len()) - 1]
    };
    let (worst, worst_p99) = per
        .iter_mut()
        .enumerate()
        .map(|(i, v)| {
            v.sort_unstable();
            (i, pct(v, 99.0))
        })
        .max_by_key(|(_, d)| *d)
        .expect("queries");
    println!(
        "query mix ({} queries x {} rounds): p50 {:?}, p99 {:?}; slowest query {} p99 {:?}",
        queries.len(),
        all.len() / queries.len().max(1),
        pct(&all, 50.0),
        pct(&all, 99.0),
        queries[worst].0,
        worst_p99
    );
}

fn s3(path: &Path, endpoint: &str) {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let image = load_file(path).expect("image reads").expect("image exists");
    let (engine, header) = image.into_engine();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "bench"))
        .force_path_style(true)
        .build();
    let client = aws_sdk_s3::Client::from_conf(config);
    let store = people_aws::s3::S3ImageStore::new(client.clone(), "bench-images");
    rt.block_on(async {
        let _ = client.create_bucket().bucket("bench-images").send().await;
        let (stored, _) = {
            let (wall, cpu) = (Instant::now(), cpu_time());
            let out = store
                .save(engine.snapshot(), header.position)
                .await
                .expect("image uploaded");
            println!(
                "upload to S3: {:.3} s wall, {:.2} s CPU ({} bytes)",
                wall.elapsed().as_secs_f64(),
                (cpu_time() - cpu).as_secs_f64(),
                out.0.size
            );
            out
        };
        drop(engine);
        let (wall, cpu) = (Instant::now(), cpu_time());
        let newest = store.newest().await.expect("list").expect("an image");
        assert_eq!(newest, stored);
        let image = store.load(&newest).await.expect("image loads");
        let (engine, _) = tokio::task::spawn_blocking(move || image.into_engine())
            .await
            .expect("indexed");
        println!(
            "load from S3 to queryable: {:.3} s wall, {:.2} s CPU of this process ({} people)",
            wall.elapsed().as_secs_f64(),
            (cpu_time() - cpu).as_secs_f64(),
            engine.snapshot().len()
        );
    });
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["write", n, file] => write(n.parse().expect("N is a number"), Path::new(file)),
        ["load", file] => load(Path::new(file)),
        ["s3", file, endpoint] => s3(Path::new(file), endpoint),
        // `cargo bench` with no arguments (all benches): nothing to do here.
        [] => println!("image bench: pass `write N FILE`, `load FILE` or `s3 FILE URL`"),
        other => panic!("unknown arguments {other:?}: see the header of benches/image.rs"),
    }
}
