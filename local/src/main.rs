//! `cargo run --release --bin local`: the whole people directory in one
//! process on 127.0.0.1:3000, with in-memory backends.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use shared::config::{JobsConfig, PeopleConfig, StorageType};
use shared::jsonl as load;
use shared::search::Refresh;
use shared::wiring::{open_jobs, open_people, open_pusher};

#[derive(Parser)]
#[command(about = "Run the people directory locally with in-memory backends")]
struct Args {
    /// People to load, one JSON object a line (as gen_people.py writes);
    /// without it a built-in deterministic data set is generated.
    #[arg(long)]
    data: Option<PathBuf>,
    /// How many people to generate when no --data is given.
    #[arg(long, default_value_t = 100_000)]
    people: usize,
    /// Seed of the generated data set.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// 0 picks a free port.
    #[arg(long, default_value_t = 3000)]
    port: u16,
}

/// How long queued and running jobs get to finish on Ctrl-C or SIGTERM
/// (container runtimes wait 10 s before they kill).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // LOG_FORMAT=json: one JSON object per line, with the span fields
    // (correlation_id, request_id, ...), as the Lambdas log on AWS.
    if std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let metrics = local::install_metrics()?;
    let args = Args::parse();

    let started = Instant::now();
    let mut last_shown = 0;
    let mut progress = |n: usize| {
        if n >= last_shown + 250_000 {
            last_shown = n;
            eprintln!(
                "  read {n} people ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
        }
    };
    // Every variable is checked before the people are loaded, which can
    // take a while: a missing QUEUE_URL is reported at once.
    let mut config = PeopleConfig::from_env()?;
    let jobs_config = JobsConfig::from_env()?;
    config.seed_people = args.people;
    config.seed = args.seed;
    let table = match (&args.data, config.storage) {
        (Some(path), _) => {
            eprintln!("loading {}", path.display());
            Some(load::read_jsonl(path, &mut progress)?)
        }
        (None, StorageType::Memory) => {
            eprintln!("generating {} people (seed {})", args.people, args.seed);
            Some(load::generated(args.people, args.seed, &mut progress))
        }
        (None, StorageType::DynamoDb) => {
            eprintln!("reading people table {:?}", config.people_table);
            None
        }
    };
    let read_secs = started.elapsed().as_secs_f64();
    let people = open_people(&config, table, Refresh::Background)
        .await
        .context("opening people storage")?;
    eprintln!(
        "loaded {} people in {:.2} s (read {read_secs:.2} s, index {:.2} s); resident memory {} MB",
        people.index.engine().snapshot().len(),
        started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64() - read_secs,
        local::resident_bytes().map_or("?".into(), |b| (b / 1_000_000).to_string()),
    );
    let jobs = open_jobs(&jobs_config)
        .await
        .context("opening the request store and queue")?;
    let hub = Arc::new(shared::adapters::hub::ConnectionHub::new());
    let pusher = open_pusher(&jobs_config, Some(Arc::clone(&hub)))
        .await
        .context("opening the connection store and notifier")?;
    local::start_workers(
        &people,
        &jobs,
        &pusher,
        jobs_config.workers,
        Duration::from_secs(1),
    );
    local::start_sweeper(
        &jobs,
        &pusher,
        Duration::from_secs(60),
        shared::jobs::Sweeper::stuck_after(
            jobs_config.max_receives,
            shared::adapters::sqs::VISIBILITY_TIMEOUT,
        ),
    );
    let app = Arc::new(
        local::App::new(&people, &jobs, pusher.clone(), Arc::clone(&hub)).with_metrics(metrics),
    );
    let listener = tokio::net::TcpListener::bind((args.bind, args.port))
        .await
        .with_context(|| format!("binding {}:{}", args.bind, args.port))?;
    let addr = listener.local_addr()?;
    eprintln!("listening on http://{addr} (WebSocket: ws://{addr}/ws)");
    local::serve(listener, local::router(app), shutdown_signal()).await?;
    eprintln!(
        "no more requests taken; finishing queued jobs (at most {} s)",
        SHUTDOWN_GRACE.as_secs()
    );
    let stopped = local::stop(&jobs, &pusher, &hub, SHUTDOWN_GRACE).await;
    eprintln!(
        "stopped: {} request(s) failed unstarted, {} cut off, {} WebSocket(s) closed",
        stopped.never_started, stopped.cut_off, stopped.closed
    );
    Ok(())
}

/// Ctrl-C or SIGTERM (what a terminal, systemd or a container runtime sends).
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    eprintln!("shutting down: finishing requests in flight");
}
