//! `cargo run --release --bin local`: the whole people directory in one
//! process on 127.0.0.1:3000, with in-memory backends by default
//! (`STORAGE_TYPE`, `QUEUE_TYPE` choose DynamoDB and SQS), or with
//! `--functions` in front of the Lambda functions.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use people_app::config::{JobsConfig, PeopleConfig, StorageType};
use people_app::index::Refresh;
use people_aws::wiring::{Aws, Start, open_jobs, open_people, open_people_from, open_pusher};
use people_core::jsonl as load;

#[derive(Parser)]
#[command(
    about = "Run the people directory locally: in one process, with in-memory backends unless \
             STORAGE_TYPE / QUEUE_TYPE say DynamoDB / SQS; or, with --functions, in front of the \
             Lambda functions",
    after_help = "In front mode (--functions) only --bind, --port, --function-names, \
                  --schedule-every and --invoke-timeout apply, and the Management API is served \
                  on any --bind. Environment: STORAGE_TYPE, QUEUE_TYPE, QUEUE_URL, \
                  WEBSOCKET_ENDPOINT, ALLOW_ANONYMOUS_WRITES and the other variables of the \
                  functions (docs/deploy.md); RUST_LOG (default info); LOG_FORMAT=json."
)]
struct Args {
    /// People to load, one JSON object a line (as gen_people.py writes).
    /// Without it, memory storage gets the benchmark kit's data set (the
    /// same bytes as `gen_people.py --count PEOPLE --seed SEED`) and
    /// DynamoDB storage reads the people table.
    #[arg(long)]
    data: Option<PathBuf>,
    /// How many people to generate when there is no --data, no snapshot
    /// and the storage is memory.
    #[arg(long, default_value_t = 100_000)]
    people: usize,
    /// Seed of the generated data set.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// An index snapshot: loaded at start when the file exists (it then
    /// takes the place of --data / generated people, and with memory
    /// storage restores the people store too), written on shutdown and
    /// every --snapshot-every seconds when something changed.
    #[arg(long, value_name = "FILE")]
    snapshot: Option<PathBuf>,
    /// Seconds between snapshot writes.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    snapshot_every: u64,
    /// The address to listen on. A non-loopback one serves no Management
    /// API emulation unless --expose-management-api.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// 0 picks a free port.
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Front mode: the address of a Lambda invoke API (`cargo lambda
    /// watch`: http://127.0.0.1:9000; `sam local start-lambda`:
    /// http://127.0.0.1:3001). HTTP requests and WebSocket events become
    /// API Gateway events for the functions that template.yaml maps them
    /// to; with QUEUE_URL, the jobs queue is polled for the processor
    /// function. The functions push through this server's Management API:
    /// give them WEBSOCKET_ENDPOINT=http://127.0.0.1:PORT.
    #[arg(long, value_name = "URL")]
    functions: Option<String>,
    /// How the invoke API names the functions: by binary (cargo lambda) or
    /// by the template's logical id (sam local).
    #[arg(long, value_enum, default_value = "binary")]
    function_names: local::invoke::FunctionNames,
    /// Front mode: run template.yaml's schedules (the sweeper, the index
    /// writer) every this many seconds instead of at their rates; 0 runs
    /// none of them. (Without front mode the sweeper runs in process every
    /// 60 s.)
    #[arg(long, value_name = "SECS")]
    schedule_every: Option<u64>,
    /// Front mode: the longest one invocation may take, in seconds.
    #[arg(long, default_value_t = 120)]
    invoke_timeout: u64,
    /// Serve the Management API emulation (`/@connections/{id}`: push to
    /// and close any connection) on a non-loopback --bind too. Without it,
    /// only a loopback bind serves it. (Front mode always serves it.)
    #[arg(long)]
    expose_management_api: bool,
    /// Demand tokens of this issuer as a stack deployed with `JwtIssuer`
    /// does (exactly the tokens' `iss`; https, or http on this machine): a
    /// valid `Authorization: Bearer <jwt>` on every API route but the
    /// page, its files and /openapi.json (401 otherwise), and `?token=`
    /// on /ws (401 without, 403 when refused). Checked by the WebSocket
    /// authorizer's code against the issuer's keys (OpenID Connect
    /// discovery); the handlers check the scopes. Needs --jwt-audience.
    /// Not in front mode.
    #[arg(long, value_name = "URL", requires = "jwt_audience")]
    jwt_issuer: Option<String>,
    /// The audiences a token must be for, comma separated (`JwtAudience`).
    #[arg(long, value_name = "LIST", requires = "jwt_issuer")]
    jwt_audience: Option<String>,
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
    if let Some(functions) = &args.functions {
        return front(&args, functions, metrics).await;
    }
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
    // Every variable is checked before the people are loaded, which can
    // take a while: a missing QUEUE_URL is reported at once.
    let mut config = PeopleConfig::from_env()?;
    config.seed_people = args.people;
    config.seed = args.seed;
    let image = match &args.snapshot {
        Some(path) => local::snapshot::load(path).await?,
        None => None,
    };
    if let (Some(image), Some(path)) = (&image, &args.snapshot) {
        eprintln!(
            "loading snapshot {} ({} people, feed version {})",
            path.display(),
            image.header.people,
            image.header.position.version
        );
        if args.data.is_some() {
            eprintln!("  --data is not read: the snapshot holds the people");
        }
    }
    let table = match (&args.data, config.storage) {
        _ if image.is_some() => None,
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
    let start = match (image, table) {
        (Some(image), _) => Start::Image(image),
        (None, Some(table)) => Start::Table(table),
        (None, None) => Start::Store,
    };
    // One SDK configuration for every AWS adapter of the server (read
    // only when one of them is on AWS).
    let aws = Aws::from_env();
    let people = open_people_from(&aws, &config, start, Refresh::Background)
        .await
        .context("opening people storage")?;
    eprintln!(
        "loaded {} people in {:.2} s (read {read_secs:.2} s, index {:.2} s); resident memory {} MB",
        people.index.engine().snapshot().len(),
        started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64() - read_secs,
        local::resident_bytes().map_or("?".into(), |b| (b / 1_000_000).to_string()),
    );
    let snapshots = args.snapshot.clone().map(|path| {
        let file = local::snapshot::SnapshotFile::new(path, &people);
        if file.path().exists() {
            file.mark_current();
        }
        file.start_periodic(Duration::from_secs(args.snapshot_every));
        file
    });
    let jobs = open_jobs(&aws, &jobs_config)
        .await
        .context("opening the request store and queue")?;
    let hub = Arc::new(people_app::memory::hub::ConnectionHub::new());
    let pusher = open_pusher(&aws, &jobs_config, Some(Arc::clone(&hub)))
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
        people_app::jobs::Sweeper::stuck_after(
            jobs_config.max_receives,
            people_app::jobs::wire::VISIBILITY_TIMEOUT,
        ),
    );
    // QUEUE_TYPE=sqs: the queue is consumed here, as Lambda's event source
    // mapping would hand it to the processor.
    if jobs_config.queue == people_app::config::QueueType::Sqs {
        local::start_event_source(&people, &jobs, &jobs_config, &pusher)
            .await
            .context("starting the SQS event source")?;
    }
    // No authorizer here: every caller is anonymous, and may import unless
    // ALLOW_ANONYMOUS_WRITES=false.
    let anonymous_writes =
        std::env::var_os("ALLOW_ANONYMOUS_WRITES").is_none() || jobs_config.anonymous_writes;
    let mut app = local::App::new(&people, &jobs, pusher.clone(), Arc::clone(&hub))
        .with_metrics(metrics)
        .with_anonymous_writes(anonymous_writes);
    if let (Some(issuer), Some(audience)) = (&args.jwt_issuer, &args.jwt_audience) {
        let config = authorizer::Config::new(issuer, audience)?;
        let verifier = authorizer::Verifier::new(&config)?;
        verifier.prefetch().await;
        eprintln!("demanding tokens of {issuer} (audience {audience}) on the API and /ws");
        app = app.with_jwt(verifier);
    }
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
    announce(&format!(
        "listening on http://{addr} (WebSocket: ws://{addr}/ws)"
    ));
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
    if let Some(file) = snapshots {
        match file.write().await? {
            local::snapshot::Written::Wrote(header) => eprintln!(
                "wrote snapshot {} ({} people)",
                file.path().display(),
                header.people
            ),
            local::snapshot::Written::Unchanged => eprintln!(
                "snapshot {} is current: nothing changed since it was written",
                file.path().display()
            ),
        }
    }
    Ok(())
}

/// `--functions URL`: API Gateway and the SQS event source in front of the
/// functions behind a Lambda invoke API.
async fn front(
    args: &Args,
    functions: &str,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
) -> anyhow::Result<()> {
    use people_aws::template::Template;
    let invoker = local::invoke::Invoker::new(functions, Duration::from_secs(args.invoke_timeout))
        .context("building the invoke API client")?;
    let template = Template::built_in();
    let front = local::front::Front::new(invoker.clone(), &template, args.function_names)
        .context("reading the routes from template.yaml")?;
    // The in-process handlers are not used in this mode: empty memory
    // backends, so that nothing is loaded for them.
    let people_config = PeopleConfig {
        seed_people: 0,
        ..PeopleConfig::from_lookup(|_| None)?
    };
    // Memory only: no AWS configuration is read.
    let aws = Aws::from_env();
    let people = open_people(&aws, &people_config, None, Refresh::Background).await?;
    let jobs_config = JobsConfig::from_lookup(|_| None)?;
    let jobs = open_jobs(&aws, &jobs_config).await?;
    let hub = Arc::new(people_app::memory::hub::ConnectionHub::new());
    let pusher = open_pusher(&aws, &jobs_config, Some(Arc::clone(&hub))).await?;
    eprintln!(
        "front mode: the functions at {functions} (named by {:?})",
        args.function_names
    );
    for (route, function) in &front.routes {
        eprintln!("  {:<22} -> {function}", route.route_key());
    }
    eprintln!("  {:<22} -> {}", "WebSocket /ws", front.websocket);
    // The jobs queue, polled for the processor function.
    let queue_url = std::env::var("QUEUE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    match &queue_url {
        Some(url) => {
            let mapping = template.sqs_event_source()?;
            let function = args.function_names.of(&mapping.function).to_owned();
            eprintln!(
                "  SQS {url} -> {function} (batches of up to {}, window {} s)",
                mapping.batch_size,
                mapping.batching_window.as_secs()
            );
            let target = Arc::new(local::event_source::ViaInvokeApi {
                invoker: invoker.clone(),
                function,
            });
            local::spawn_event_source(url, 1, target)
                .await
                .context("starting the SQS event source")?;
        }
        None => eprintln!("  no QUEUE_URL: the jobs queue is not polled"),
    }
    // EventBridge's schedules.
    if args.schedule_every == Some(0) {
        eprintln!("  schedules: none run (--schedule-every 0)");
    } else {
        let schedules: Vec<local::schedule::Scheduled> = template
            .schedules()?
            .into_iter()
            .map(|s| local::schedule::Scheduled {
                function: args.function_names.of(&s.function).to_owned(),
                rule: format!("{}-{}", s.function.logical_id, s.name),
                every: args.schedule_every.map_or(s.rate, Duration::from_secs),
            })
            .collect();
        for s in &schedules {
            eprintln!(
                "  {:<22} -> {} every {} s",
                format!("schedule {}", s.rule),
                s.function,
                s.every.as_secs()
            );
        }
        let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
        local::schedule::spawn_schedules(invoker.clone(), schedules, region);
    }
    let app = Arc::new(
        local::App::new(&people, &jobs, pusher, hub)
            .with_metrics(metrics)
            .with_front(front),
    );
    let listener = tokio::net::TcpListener::bind((args.bind, args.port))
        .await
        .with_context(|| format!("binding {}:{}", args.bind, args.port))?;
    let addr = listener.local_addr()?;
    announce(&format!(
        "listening on http://{addr} (WebSocket: ws://{addr}/ws; Management API: http://{addr}/@connections)"
    ));
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

/// Writes the `listening on ...` line to stderr in one write: scripts and
/// tests read the address from it as it arrives, and `eprintln!` writes
/// its pieces one by one (a reader once took `http://127.0.0` for the
/// whole address).
fn announce(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}
