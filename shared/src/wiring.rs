//! Start-up: the people store chosen by the environment, and the search
//! index built from it and kept following it. Shared by the Lambda mains,
//! the local server and the worker, so they cannot differ.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::adapters::apigw::ManagementApiNotifier;
use crate::adapters::dynamodb::DynamoPeopleStore;
use crate::adapters::dynamodb_connections::DynamoConnectionStore;
use crate::adapters::dynamodb_requests::DynamoRequestStore;
use crate::adapters::hub::ConnectionHub;
use crate::adapters::memory::{MemoryPeopleStore, MemoryQueue, MemoryRequestStore};
use crate::adapters::memory_connections::MemoryConnectionStore;
use crate::adapters::sqs::SqsQueue;
use crate::config::{JobsConfig, PeopleConfig, QueueType, StorageType, aws_config};
use crate::ports::{
    ConnectionStore, JobQueue, Notifier, PeopleStore, Redelivery, RequestStore, StoreError,
};
use crate::search::{LiveIndex, PeopleTable, Refresh, SearchEngine, build_from_store};
use crate::ws::Pusher;

/// The people store and the index that follows it.
#[derive(Clone)]
pub struct People {
    pub store: Arc<dyn PeopleStore>,
    pub index: Arc<LiveIndex>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("reading the people store to build the index failed")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Unsupported(String),
}

/// Opens the people store of `config` and indexes it. With memory storage,
/// the store starts with `seed` (or the generated data set); DynamoDB is
/// read with a parallel Scan, and its data comes from `admin import`.
pub async fn open_people(
    config: &PeopleConfig,
    seed: Option<PeopleTable>,
    refresh: Refresh,
) -> Result<People, StartError> {
    let started = Instant::now();
    let (store, engine, version): (Arc<dyn PeopleStore>, SearchEngine, u64) = match config.storage {
        StorageType::Memory => {
            let table = match seed {
                Some(table) => table,
                None => crate::jsonl::generated(config.seed_people, config.seed, &mut |_| {}),
            };
            let store = MemoryPeopleStore::with_table(table.clone());
            let version = store.latest_version().await?;
            let engine = tokio::task::spawn_blocking(move || SearchEngine::new(table))
                .await
                .map_err(|e| StoreError::Permanent(Box::new(e)))?;
            (Arc::new(store), engine, version)
        }
        StorageType::DynamoDb => {
            if seed.is_some() {
                return Err(StartError::Unsupported(
                    "a data file seeds memory storage only; load DynamoDB with `admin import FILE`"
                        .into(),
                ));
            }
            let store = open_people_store(config).await;
            let (engine, version) =
                build_from_store(store.as_ref(), config.scan_segments, &scan_progress()).await?;
            (store, engine, version)
        }
    };
    metrics::histogram!(crate::telemetry::INDEX_MS, "what" => "build")
        .record(crate::telemetry::ms_since(started));
    metrics::gauge!(crate::telemetry::INDEX_PEOPLE).set(engine.snapshot().len() as f64);
    tracing::info!(
        people = engine.snapshot().len(),
        seconds = started.elapsed().as_secs_f64(),
        storage = ?config.storage,
        "search index built"
    );
    let index = LiveIndex::following(
        engine,
        Arc::clone(&store),
        version,
        config.refresh_every,
        refresh,
    );
    Ok(People {
        store,
        index: Arc::new(index),
    })
}

/// Logs the Scan's progress at most once a second (a cold start over a
/// large table takes a while, and `scripts/dev.sh` shows these lines).
fn scan_progress() -> impl Fn(usize) + Sync {
    let started = Instant::now();
    let last = std::sync::Mutex::new(Instant::now());
    move |read| {
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() >= Duration::from_secs(1) {
            *last = Instant::now();
            tracing::info!(
                people = read,
                seconds = started.elapsed().as_secs_f64(),
                "search index: reading the people table"
            );
        }
    }
}

/// The people store of `config` alone, for a writer that keeps no index
/// (the enqueue function). Memory storage starts empty.
pub async fn open_people_store(config: &PeopleConfig) -> Arc<dyn PeopleStore> {
    match config.storage {
        StorageType::Memory => Arc::new(MemoryPeopleStore::new()),
        StorageType::DynamoDb => {
            let client = aws_sdk_dynamodb::Client::new(&aws_config().await);
            Arc::new(
                DynamoPeopleStore::new(client, &config.people_table)
                    .with_feed_shards(config.feed_shards)
                    .with_feed_overlap(config.refresh_overlap),
            )
        }
    }
}

/// Where requests are kept and queued.
#[derive(Clone)]
pub struct Jobs {
    pub requests: Arc<dyn RequestStore>,
    pub queue: Arc<dyn JobQueue>,
    /// The in-process queue, for the local worker pool to drain.
    pub memory_queue: Option<Arc<MemoryQueue>>,
    pub max_receives: u32,
    /// Callers without a token may import (`JobsConfig::anonymous_writes`).
    pub anonymous_writes: bool,
}

/// The request store of `config` (the query function only reads it).
pub async fn open_requests(config: &JobsConfig) -> Result<Arc<dyn RequestStore>, StartError> {
    Ok(match config.storage {
        StorageType::Memory => {
            Arc::new(MemoryRequestStore::new().with_retention(config.requests_retention))
        }
        StorageType::DynamoDb => Arc::new(DynamoRequestStore::new(
            aws_sdk_dynamodb::Client::new(&aws_config().await),
            &config.requests_table,
        )),
    })
}

/// Opens the request store and the queue of `config`.
pub async fn open_jobs(config: &JobsConfig) -> Result<Jobs, StartError> {
    let requests = open_requests(config).await?;
    let (queue, memory_queue): (Arc<dyn JobQueue>, _) = match config.queue {
        QueueType::Memory => {
            let q = Arc::new(MemoryQueue::new());
            (q.clone(), Some(q))
        }
        QueueType::Sqs => {
            let url = config
                .queue_url
                .clone()
                .expect("JobsConfig requires QUEUE_URL with QUEUE_TYPE=sqs");
            let client = aws_sdk_sqs::Client::new(&aws_config().await);
            (Arc::new(SqsQueue::new(client, url)), None)
        }
    };
    Ok(Jobs {
        requests,
        queue,
        memory_queue,
        max_receives: config.max_receives,
        anonymous_writes: config.anonymous_writes,
    })
}

/// Where a consumer hands received messages back to the queue: the SQS
/// queue at `QUEUE_URL` when it is set (the processor's is, for that).
pub async fn open_redelivery(config: &JobsConfig) -> Option<Arc<dyn Redelivery>> {
    let url = config.queue_url.clone()?;
    let client = aws_sdk_sqs::Client::new(&aws_config().await);
    Some(Arc::new(SqsQueue::new(client, url)))
}

/// The connection store and notifier of `config`: pushes go through the
/// Management API at `WEBSOCKET_ENDPOINT` when it is set, else to the
/// sockets of `hub` (the local server's). A Lambda, which has no sockets,
/// needs the endpoint whenever connections are kept in DynamoDB.
pub async fn open_pusher(
    config: &JobsConfig,
    hub: Option<Arc<ConnectionHub>>,
) -> Result<Pusher, StartError> {
    let connections: Arc<dyn ConnectionStore> = match config.storage {
        StorageType::Memory => Arc::new(MemoryConnectionStore::new()),
        StorageType::DynamoDb => Arc::new(DynamoConnectionStore::new(
            aws_sdk_dynamodb::Client::new(&aws_config().await),
            &config.connections_table,
        )),
    };
    let notifier: Arc<dyn Notifier> = match (&config.websocket_endpoint, hub) {
        (Some(endpoint), _) => Arc::new(ManagementApiNotifier::at(&aws_config().await, endpoint)),
        (None, Some(hub)) => hub,
        (None, None) if config.storage == StorageType::DynamoDb => {
            return Err(StartError::Unsupported(
                "WEBSOCKET_ENDPOINT is required with STORAGE_TYPE=dynamodb: results are pushed through the WebSocket API's Management API".into(),
            ));
        }
        // Memory storage outside the local server (`cargo lambda watch`):
        // no connection can be subscribed here, so nothing is ever pushed.
        (None, None) => Arc::new(ConnectionHub::new()),
    };
    Ok(Pusher {
        connections,
        notifier,
    })
}
