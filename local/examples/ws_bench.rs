//! WebSocket load on a running local server (127.0.0.1 only): holds
//! `--clients` connections open, runs `--jobs` report requests over them
//! at `--rate` per second, and measures how long each result took from
//! the processor's completion (`finished_at`) to the client's receipt.
//! Then every client subscribes to a finished request and must receive
//! its result: all connections stay usable under load.
//!
//! ```text
//! cargo run --release --bin local &
//! cargo run --release -p local --example ws_bench -- --clients 10000 --jobs 2000
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Parser)]
struct Args {
    /// The server's WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:3000/ws")]
    url: String,
    /// Connections held open for the whole run.
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// Report requests submitted (`process` frames), one client each.
    #[arg(long, default_value_t = 2_000)]
    jobs: usize,
    /// Requests submitted per second.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Connections opened at once while connecting.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// The server's process id, to report its resident memory.
    #[arg(long)]
    server_pid: Option<u32>,
}

/// A result's `finished_at`, and when it was received (both clocks).
type Arrival = (DateTime<Utc>, Instant, DateTime<Utc>);

struct Client {
    outbox: mpsc::UnboundedSender<Message>,
    /// Who waits for the result of each `process` sent, in order: the
    /// reader pairs each `accepted` with the next one, before that
    /// request's result can arrive.
    waiting: std::sync::Mutex<VecDeque<oneshot::Sender<Arrival>>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.url.starts_with("ws://127.0.0.1:") || args.url.starts_with("ws://localhost:"),
        "this load generator only targets 127.0.0.1"
    );
    let closed = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicUsize::new(0));

    println!("connecting {} clients to {}", args.clients, args.url);
    let started = Instant::now();
    let clients: Vec<Arc<Client>> = futures::stream::iter(0..args.clients)
        .map(|_| connect(&args.url, closed.clone(), received.clone()))
        .buffer_unordered(args.connect_concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    println!(
        "{} connected in {:.1} s; server RSS {}",
        clients.len(),
        started.elapsed().as_secs_f64(),
        rss(args.server_pid)
    );

    // Jobs at a steady rate, each from the next client.
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / args.rate.max(1)));
    let mut pending = Vec::with_capacity(args.jobs);
    let nationalities = ["Icelandic", "Greek", "Czech", "Finnish", "Swiss"];
    let run_started = Instant::now();
    for job in 0..args.jobs {
        ticker.tick().await;
        let client = clients[job % clients.len()].clone();
        let nationality = nationalities[job % nationalities.len()];
        pending.push(tokio::spawn(async move {
            let sent = Instant::now();
            let frame = json!({"action": "process", "client_ref": job.to_string(),
                "request": {"kind": "report", "filter": {"nationality": nationality}}});
            let (tx, rx) = oneshot::channel();
            {
                // Queued and sent under one lock, so the orders match.
                let mut waiting = client.waiting.lock().unwrap();
                waiting.push_back(tx);
                client
                    .outbox
                    .send(Message::Text(frame.to_string().into()))
                    .ok()?;
            }
            let (finished_at, at, received_at) = tokio::time::timeout(Duration::from_secs(60), rx)
                .await
                .ok()?
                .ok()?;
            let push = (received_at - finished_at).num_microseconds()? as f64 / 1000.0;
            let end_to_end = at.duration_since(sent).as_secs_f64() * 1000.0;
            Some((push, end_to_end))
        }));
    }
    let mut push = Vec::new();
    let mut end_to_end = Vec::new();
    let mut lost = 0;
    for p in pending {
        match p.await? {
            Some((a, b)) => {
                push.push(a);
                end_to_end.push(b);
            }
            None => lost += 1,
        }
    }
    let run_secs = run_started.elapsed().as_secs_f64();
    println!(
        "{} jobs in {run_secs:.1} s ({:.0}/s), {lost} without a result; {} connections closed; server RSS {}",
        args.jobs,
        args.jobs as f64 / run_secs,
        closed.load(Ordering::SeqCst),
        rss(args.server_pid)
    );
    report("push latency, completion → client (ms)", &mut push);
    report("end to end, process frame → result (ms)", &mut end_to_end);

    // Every connection still works: each subscribes to a finished request.
    let before = received.load(Ordering::SeqCst);
    let ids: Vec<String> = FINISHED.lock().await.clone();
    anyhow::ensure!(!ids.is_empty(), "no finished request to subscribe to");
    for (i, client) in clients.iter().enumerate() {
        let frame = json!({"action": "subscribe", "request_id": ids[i % ids.len()]});
        client
            .outbox
            .send(Message::Text(frame.to_string().into()))?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    // `subscribed` and `process-result` for each client.
    let want = before + 2 * clients.len();
    while received.load(Ordering::SeqCst) < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = received.load(Ordering::SeqCst) - before;
    println!(
        "subscribe on all {} clients: {got} of {} messages received; {} connections closed; server RSS {}",
        clients.len(),
        2 * clients.len(),
        closed.load(Ordering::SeqCst),
        rss(args.server_pid)
    );
    anyhow::ensure!(lost == 0 && got == 2 * clients.len(), "messages were lost");
    Ok(())
}

/// Some of the requests the clients saw finish, to subscribe to again.
static FINISHED: Mutex<Vec<String>> = Mutex::const_new(Vec::new());

async fn connect(
    url: &str,
    closed: Arc<AtomicUsize>,
    received: Arc<AtomicUsize>,
) -> anyhow::Result<Arc<Client>> {
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 4096;
    config.write_buffer_size = 0;
    let (socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut to_send) = mpsc::unbounded_channel::<Message>();
    let client = Arc::new(Client {
        outbox,
        waiting: Default::default(),
    });
    let reader = client.clone();
    tokio::spawn(async move {
        while let Some(m) = to_send.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut results: HashMap<String, oneshot::Sender<Arrival>> = HashMap::new();
        while let Some(Ok(message)) = stream.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let received_at = Utc::now();
            let at = Instant::now();
            received.fetch_add(1, Ordering::SeqCst);
            let Ok(value) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            match value["type"].as_str() {
                Some("accepted") => {
                    let next = reader.waiting.lock().unwrap().pop_front();
                    if let Some(tx) = next {
                        results.insert(value["id"].as_str().unwrap_or_default().to_owned(), tx);
                    }
                }
                Some("process-result") => {
                    let id = value["id"].as_str().unwrap_or_default().to_owned();
                    let finished_at = value["finished_at"]
                        .as_str()
                        .and_then(|t| t.parse::<DateTime<Utc>>().ok());
                    if let (Some(tx), Some(finished_at)) = (results.remove(&id), finished_at) {
                        let mut finished = FINISHED.lock().await;
                        if finished.len() < 100 {
                            finished.push(id);
                        }
                        let _ = tx.send((finished_at, at, received_at));
                    }
                }
                _ => {}
            }
        }
        closed.fetch_add(1, Ordering::SeqCst);
    });
    Ok(client)
}

fn report(what: &str, values: &mut [f64]) {
    if values.is_empty() {
        println!("{what}: no samples");
        return;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: n={} p50 {:.3} p95 {:.3} p99 {:.3} max {:.3}",
        values.len(),
        at(0.50),
        at(0.95),
        at(0.99),
        values[values.len() - 1]
    );
}

fn rss(pid: Option<u32>) -> String {
    let Some(pid) = pid else { return "?".into() };
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{} MB", kb / 1000))
        })
        .unwrap_or_else(|| "?".into())
}
