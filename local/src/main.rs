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
    /// Serve the Management API emulation (`/@connections/{id}`: push to
    /// and close any connection) on a non-loopback --bind too. Without it,
    /// only a loopback bind serves it.
    #[arg(long)]
    expose_management_api: bool,
}

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
    let jobs_config = JobsConfig::from_env()?;
    let management_api = local::serves_management_api(args.bind, args.expose_management_api);
    anyhow::ensure!(
        management_api || jobs_config.websocket_endpoint.is_none(),
        "WEBSOCKET_ENDPOINT pushes through the Management API emulation, which a bind on {} does not serve; pass --expose-management-api to serve it anyway",
        args.bind
    );

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
    let mut config = PeopleConfig::from_env()?;
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
    // No authorizer here: every caller is anonymous, and may import unless
    // ALLOW_ANONYMOUS_WRITES=false.
    let anonymous_writes =
        std::env::var_os("ALLOW_ANONYMOUS_WRITES").is_none() || jobs_config.anonymous_writes;
    let mut app = local::App::new(&people, &jobs, pusher, hub)
        .with_metrics(metrics)
        .with_anonymous_writes(anonymous_writes);
    if !management_api {
        eprintln!(
            "not serving the Management API emulation on {} (pass --expose-management-api to serve it)",
            args.bind
        );
        app = app.without_management_api();
    }
    let app = Arc::new(app);
    let listener = tokio::net::TcpListener::bind((args.bind, args.port))
        .await
        .with_context(|| format!("binding {}:{}", args.bind, args.port))?;
    let addr = listener.local_addr()?;
    eprintln!("listening on http://{addr} (WebSocket: ws://{addr}/ws)");
    local::serve(listener, local::router(app), shutdown_signal()).await?;
    eprintln!("stopped");
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
