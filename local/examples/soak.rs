//! A bounded mixed soak of a running local server (127.0.0.1 only):
//! search queries from `--query-loops` connections back to back, report and
//! import requests over WebSocket (`process`) from `--ws-clients` connected
//! clients at `--job-rate` per second, and report requests over HTTP
//! (`POST /requests`) at `--post-rate` per second, for `--seconds`. Every
//! `--window` seconds it prints the window's errors, query latency
//! percentiles, jobs and push latency, and the server's resident memory.
//! At the end every request must have finished; it exits 1 if any request
//! failed or was lost, or any query got an error.
//!
//! ```text
//! scripts/soak.sh            # starts the server, runs this for 10 minutes, stops it
//! ```

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    /// The server's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    base: String,
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    #[arg(long, default_value_t = 30)]
    window: u64,
    /// Connections sending search queries back to back.
    #[arg(long, default_value_t = 4)]
    query_loops: usize,
    #[arg(long, default_value_t = 1000)]
    ws_clients: usize,
    /// `process` frames per second (one in ten is a small import).
    #[arg(long, default_value_t = 20)]
    job_rate: u64,
    /// `POST /requests` per second.
    #[arg(long, default_value_t = 5)]
    post_rate: u64,
    #[arg(long)]
    server_pid: Option<u32>,
}

/// What happened in the current window.
#[derive(Default)]
struct Window {
    query_ms: Vec<f64>,
    push_ms: Vec<f64>,
}

#[derive(Default)]
struct Totals {
    queries: AtomicU64,
    query_errors: AtomicU64,
    jobs_sent: AtomicU64,
    jobs_done: AtomicU64,
    jobs_failed: AtomicU64,
    frame_errors: AtomicU64,
    posts: AtomicU64,
    post_errors: AtomicU64,
    closed: AtomicUsize,
}

const QUERIES: &[&str] = &[
    "/people?search=jo",
    "/people?search=m&page_size=50",
    "/people?search=anna%20k",
    "/people?nationality=German&hobbies=Chess,Reading&hobbies_match=all",
    "/people?nationality=Polish,Czech&page=3",
    "/people?hobbies=Yoga&page_size=100&page=20",
    "/people?search=mar&nationality=Spanish",
    "/filters?limit=10",
    "/people/p0000042",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.base.starts_with("http://127.0.0.1:") || args.base.starts_with("http://localhost:"),
        "this soak only targets 127.0.0.1"
    );
    let ws_url = format!("ws://{}/ws", args.base.trim_start_matches("http://"));
    let window = Arc::new(std::sync::Mutex::new(Window::default()));
    let totals = Arc::new(Totals::default());
    let end = Instant::now() + Duration::from_secs(args.seconds);

    // WebSocket clients; each reader records results and push latency.
    let mut clients = Vec::with_capacity(args.ws_clients);
    for _ in 0..args.ws_clients {
        clients.push(connect(&ws_url, window.clone(), totals.clone()).await?);
    }
    println!(
        "{} WebSocket clients connected; running {} s",
        clients.len(),
        args.seconds
    );

    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for loop_no in 0..args.query_loops {
        let (http, base, window, totals) = (
            http.clone(),
            args.base.clone(),
            window.clone(),
            totals.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = loop_no;
            while Instant::now() < end {
                let path = QUERIES[i % QUERIES.len()];
                i += 1;
                let started = Instant::now();
                let ok = match http.get(format!("{base}{path}")).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                totals.queries.fetch_add(1, Ordering::Relaxed);
                if ok {
                    window.lock().unwrap().query_ms.push(ms);
                } else {
                    totals.query_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Jobs over WebSocket.
    {
        let (clients, totals) = (clients.clone(), totals.clone());
        let rate = args.job_rate.max(1);
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
            let mut n = 0usize;
            while Instant::now() < end {
                tick.tick().await;
                let request = if n % 10 == 9 {
                    // The same ten people each time: the data set stays the same size.
                    let people: Vec<Value> = (0..10)
                        .map(|i| json!({"id": format!("soak-{i}"), "first_name": "Soak", "last_name": format!("Tester{i}"), "nationality": "Icelandic", "hobbies": ["Chess"]}))
                        .collect();
                    json!({"kind": "import", "people": people})
                } else {
                    let nationality = ["Icelandic", "Greek", "Swiss"][n % 3];
                    json!({"kind": "report", "filter": {"nationality": nationality}})
                };
                let frame = json!({"action": "process", "request": request});
                let client = &clients[n % clients.len()];
                n += 1;
                if client.send(Message::Text(frame.to_string().into())).is_ok() {
                    totals.jobs_sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Reports over HTTP; their ids are checked at the end.
    let posted = Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let (http, base, totals, posted) = (
            http.clone(),
            args.base.clone(),
            totals.clone(),
            posted.clone(),
        );
        let rate = args.post_rate.max(1);
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
            while Instant::now() < end {
                tick.tick().await;
                let sent = http
                    .post(format!("{base}/requests"))
                    .header("content-type", "application/json")
                    .body(r#"{"kind":"report","filter":{"search":"an","hobbies":["Chess"]}}"#)
                    .send()
                    .await;
                totals.posts.fetch_add(1, Ordering::Relaxed);
                match sent {
                    Ok(r) if r.status() == 202 => {
                        let body: Value = r.json().await.unwrap_or_default();
                        if let Some(id) = body["id"].as_str() {
                            // Followed until it completes, as a client polling
                            // GET /requests/{id} would.
                            let (http, base, id) = (http.clone(), base.clone(), id.to_owned());
                            posted.lock().unwrap().push(tokio::spawn(async move {
                                completes(&http, &base, &id).await
                            }));
                            continue;
                        }
                        totals.post_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        totals.post_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    println!(
        "{:>6} {:>9} {:>6} {:>8} {:>8} {:>8} {:>7} {:>7} {:>9} {:>8}",
        "t s", "queries", "errors", "q p50", "q p95", "q p99", "jobs", "done", "push p95", "RSS MB"
    );
    let started = Instant::now();
    let mut rss_series = Vec::new();
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(args.window).min(end - Instant::now())).await;
        let Window {
            mut query_ms,
            mut push_ms,
        } = std::mem::take(&mut *window.lock().unwrap());
        let rss = rss_mb(args.server_pid);
        rss_series.push(rss.unwrap_or(0));
        println!(
            "{:>6.0} {:>9} {:>6} {:>8.3} {:>8.3} {:>8.3} {:>7} {:>7} {:>9.3} {:>8}",
            started.elapsed().as_secs_f64(),
            query_ms.len(),
            totals.query_errors.load(Ordering::Relaxed)
                + totals.post_errors.load(Ordering::Relaxed)
                + totals.frame_errors.load(Ordering::Relaxed),
            pct(&mut query_ms, 0.50),
            pct(&mut query_ms, 0.95),
            pct(&mut query_ms, 0.99),
            totals.jobs_sent.load(Ordering::Relaxed),
            totals.jobs_done.load(Ordering::Relaxed),
            pct(&mut push_ms, 0.95),
            rss.map_or("?".into(), |r| r.to_string()),
        );
    }
    for t in tasks {
        t.await?;
    }
    // Let the last jobs finish, then check every request.
    let sent = totals.jobs_sent.load(Ordering::Relaxed);
    let settle = Instant::now() + Duration::from_secs(30);
    while totals.jobs_done.load(Ordering::Relaxed) + totals.jobs_failed.load(Ordering::Relaxed)
        < sent
        && Instant::now() < settle
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let followed: Vec<_> = std::mem::take(&mut *posted.lock().unwrap());
    let posted_count = followed.len();
    let mut unfinished = 0;
    for f in followed {
        if !f.await? {
            unfinished += 1;
        }
    }
    let done = totals.jobs_done.load(Ordering::Relaxed);
    let failed = totals.jobs_failed.load(Ordering::Relaxed);
    let warm = rss_series
        .get(1)
        .or(rss_series.first())
        .copied()
        .unwrap_or(0);
    let last = rss_series.last().copied().unwrap_or(0);
    println!(
        "queries {} (errors {}); WebSocket jobs {sent} sent, {done} completed, {failed} failed, {} frame errors; \
         HTTP reports {} posted ({} errors), {unfinished} not completed; connections closed {}; \
         RSS after the first window {warm} MB, at the end {last} MB",
        totals.queries.load(Ordering::Relaxed),
        totals.query_errors.load(Ordering::Relaxed),
        totals.frame_errors.load(Ordering::Relaxed),
        posted_count,
        totals.post_errors.load(Ordering::Relaxed),
        totals.closed.load(Ordering::Relaxed),
    );
    let clean = totals.query_errors.load(Ordering::Relaxed) == 0
        && totals.post_errors.load(Ordering::Relaxed) == 0
        && totals.frame_errors.load(Ordering::Relaxed) == 0
        && failed == 0
        && done == sent
        && unfinished == 0
        && totals.closed.load(Ordering::Relaxed) == 0;
    anyhow::ensure!(clean, "the soak saw errors or unfinished requests");
    Ok(())
}

/// A connected client: frames to send go through the returned channel.
async fn connect(
    url: &str,
    window: Arc<std::sync::Mutex<Window>>,
    totals: Arc<Totals>,
) -> anyhow::Result<mpsc::UnboundedSender<Message>> {
    let (socket, _) = tokio_tungstenite::connect_async(url).await?;
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(Ok(message)) = stream.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let received_at = Utc::now();
            let Ok(value) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            match value["type"].as_str() {
                Some("process-result") => {
                    let id = value["id"].as_str().unwrap_or_default().to_owned();
                    // A result can come twice (at least once); count it once.
                    if !seen.insert(id) {
                        continue;
                    }
                    if value["status"] == "completed" {
                        totals.jobs_done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        totals.jobs_failed.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(finished) = value["finished_at"]
                        .as_str()
                        .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                        && let Some(us) = (received_at - finished).num_microseconds()
                    {
                        window.lock().unwrap().push_ms.push(us as f64 / 1000.0);
                    }
                }
                Some("error") => {
                    totals.frame_errors.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
        totals.closed.fetch_add(1, Ordering::Relaxed);
    });
    Ok(tx)
}

/// Polls `GET /requests/{id}` until it is completed (true) or failed, gone
/// or 30 s passed (false).
async fn completes(http: &reqwest::Client, base: &str, id: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let record: Option<Value> = match http.get(format!("{base}/requests/{id}")).send().await {
            Ok(r) if r.status() == 200 => r.json().await.ok(),
            _ => None,
        };
        match record.as_ref().and_then(|r| r["status"].as_str()) {
            Some("completed") => return true,
            Some("queued" | "processing") => {}
            _ => return false,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn pct(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    values[((values.len() - 1) as f64 * q).round() as usize]
}

fn rss_mb(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1000)
}
