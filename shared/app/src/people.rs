//! Start-up of the people index: the store and the index that follows it,
//! where the index came from, and memory storage's own start. The AWS
//! start (an image in S3, or a Scan of DynamoDB) is `people_aws::wiring`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use people_core::search::{IndexImage, PeopleTable, SearchEngine};

use crate::config::PeopleConfig;
use crate::index::{LiveIndex, Refresh};
use crate::memory::MemoryPeopleStore;
use crate::ports::{PeopleStore, StoreError};

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

/// What the index starts from.
pub enum Start {
    /// Memory storage: the generated data set; DynamoDB: the newest image
    /// in `INDEX_BUCKET` when there is a usable one, else a Scan.
    Store,
    /// Memory storage only: these people.
    Table(PeopleTable),
    /// An image read by the caller (the local server's `--snapshot FILE`).
    /// With memory storage it restores the store too; with DynamoDB the
    /// index catches up from the feed after its position (or, when it is
    /// older than a tombstone lives, is built from a Scan instead).
    Image(IndexImage),
}

/// Where an index came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Memory storage: its own people.
    Memory,
    /// An index image: the one at `key` in the bucket (`None`: a file).
    Image {
        key: Option<String>,
        written_ms: u64,
    },
    /// A Scan of the people table.
    Scan,
}

/// The people of memory storage, indexed: `seed`, or the generated data
/// set (`people_aws::wiring::open_people` for any storage).
pub async fn open_memory(
    config: &PeopleConfig,
    seed: Option<PeopleTable>,
    refresh: Refresh,
) -> Result<People, StartError> {
    let start = match seed {
        Some(table) => Start::Table(table),
        None => Start::Store,
    };
    open_memory_people(config, start, refresh).await
}

/// The people of memory storage, indexed: `start`'s, or the generated
/// data set.
pub async fn open_memory_people(
    config: &PeopleConfig,
    start: Start,
    refresh: Refresh,
) -> Result<People, StartError> {
    let started = Instant::now();
    let table = match start {
        Start::Table(table) => table,
        Start::Image(image) => image.table,
        Start::Store => generated(config)?,
    };
    let store = MemoryPeopleStore::with_table(table.clone());
    let version = store.latest_version().await?;
    let engine = blocking(move || SearchEngine::new(table)).await?;
    Ok(follow(
        config,
        Arc::new(store),
        Built {
            engine,
            version,
            caught_up_ms: None,
            origin: Origin::Memory,
            started,
        },
        refresh,
    ))
}

/// Memory storage's own people: `SEED_PEOPLE` generated ones.
#[cfg(any(test, feature = "generated"))]
fn generated(config: &PeopleConfig) -> Result<PeopleTable, StartError> {
    Ok(people_core::jsonl::generated(
        config.seed_people,
        config.seed,
        &mut |_| {},
    ))
}

#[cfg(not(any(test, feature = "generated")))]
fn generated(_: &PeopleConfig) -> Result<PeopleTable, StartError> {
    Err(StartError::Unsupported(
        "memory storage starts from the generated data set, which this binary is built without (people-app's feature `generated`)".into(),
    ))
}

pub struct Built {
    pub engine: SearchEngine,
    pub version: u64,
    pub caught_up_ms: Option<u64>,
    pub origin: Origin,
    pub started: Instant,
}

pub fn follow(
    config: &PeopleConfig,
    store: Arc<dyn PeopleStore>,
    built: Built,
    refresh: Refresh,
) -> People {
    let Built {
        engine,
        version,
        caught_up_ms,
        origin,
        started,
    } = built;
    metrics::histogram!(crate::telemetry::INDEX_MS, "what" => "build")
        .record(crate::telemetry::ms_since(started));
    metrics::gauge!(crate::telemetry::INDEX_PEOPLE).set(engine.snapshot().len() as f64);
    tracing::info!(
        people = engine.snapshot().len(),
        seconds = started.elapsed().as_secs_f64(),
        storage = ?config.storage,
        from = ?origin,
        "search index built"
    );
    let mut index = LiveIndex::following(
        engine,
        Arc::clone(&store),
        version,
        config.refresh_every,
        refresh,
    );
    if let Some(ms) = caught_up_ms {
        index = index.caught_up_at(ms);
    }
    People {
        store,
        index: Arc::new(index),
    }
}

pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Permanent(Box::new(e)))
}

pub fn image_outcome(outcome: &'static str) {
    metrics::counter!(crate::telemetry::INDEX_IMAGE_LOADS, "outcome" => outcome).increment(1);
}

/// `image`, unless it is older than a tombstone of `store` lives: a delete
/// since may be gone from the feed, so only a Scan is exact.
pub fn usable(image: IndexImage, store: &dyn PeopleStore, from: &str) -> Option<IndexImage> {
    let Some(lifetime) = store.tombstone_lifetime() else {
        image_outcome("loaded");
        return Some(image);
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let age = Duration::from_millis(now_ms.saturating_sub(image.header.position.caught_up_ms));
    // The same margin as the index's own staleness check (`search::live`).
    let margin = Duration::from_micros(store.feed_overlap()) + Duration::from_secs(60);
    if age + margin >= lifetime {
        image_outcome("stale");
        tracing::warn!(
            from,
            age_s = age.as_secs(),
            lifetime_s = lifetime.as_secs(),
            "the index image is older than a tombstone lives; building the index from a Scan"
        );
        return None;
    }
    image_outcome("loaded");
    Some(image)
}

/// Logs the Scan's progress at most once a second (a cold start over a
/// large table takes a while, and `scripts/dev.sh` shows these lines).
pub fn scan_progress() -> impl Fn(usize) + Sync {
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
