//! Start-up: the people store chosen by the environment, and the search
//! index built from it and kept following it. Shared by the Lambda mains,
//! the local server and the worker, so they cannot differ.
//!
//! Every function takes the process's [`Aws`]: the AWS adapters get their
//! clients from it (one SDK configuration, one client per service), and
//! the memory ones never touch it. Each function is compiled with the
//! adapters it opens (this crate's features), so a binary links only the
//! SDKs of what it can open.

// Each group of wiring functions is a module compiled with the features
// it needs, re-exported here.

pub use crate::sdk::Aws;
pub use people_app::jobs::Jobs;
pub use people_app::people::{Origin, People, Start, StartError};

// The people index of any storage: dynamodb and s3.
#[cfg(all(feature = "dynamodb", feature = "s3"))]
mod people {
    use people_app::config::{PeopleConfig, StorageType};
    use people_app::index::Refresh;
    use people_app::people::open_memory_people;
    use people_core::search::PeopleTable;

    use super::{Aws, People, Start, StartError, open_people_on, open_people_store};
    use crate::s3::S3ImageStore;

    /// Opens the people store of `config` and indexes it. With memory storage,
    /// the store starts with `seed` (or the generated data set); DynamoDB is
    /// read from the newest index image (`INDEX_BUCKET`) or with a parallel
    /// Scan, and its data comes from `admin import`.
    pub async fn open_people(
        aws: &Aws,
        config: &PeopleConfig,
        seed: Option<PeopleTable>,
        refresh: Refresh,
    ) -> Result<People, StartError> {
        let start = match seed {
            Some(table) => Start::Table(table),
            None => Start::Store,
        };
        open_people_from(aws, config, start, refresh).await
    }

    /// [`open_people`], starting from `start`.
    pub async fn open_people_from(
        aws: &Aws,
        config: &PeopleConfig,
        start: Start,
        refresh: Refresh,
    ) -> Result<People, StartError> {
        match config.storage {
            StorageType::Memory => open_memory_people(config, start, refresh).await,
            StorageType::DynamoDb => {
                if matches!(start, Start::Table(_)) {
                    return Err(StartError::Unsupported(
                    "a data file seeds memory storage only; load DynamoDB with `admin import FILE`"
                        .into(),
                ));
                }
                let store = open_people_store(aws, config).await;
                let images = match (&start, &config.index_bucket) {
                    (Start::Store, Some(bucket)) => Some(S3ImageStore::new(aws.s3().await, bucket)),
                    _ => None,
                };
                let image = match start {
                    Start::Image(image) => Some((image, None)),
                    _ => None,
                };
                // Boxed, as the future is deep (see `ImageWriter::open`).
                let (people, _) = Box::pin(open_people_on(
                    store,
                    images.as_ref(),
                    image,
                    config,
                    refresh,
                ))
                .await?;
                Ok(people)
            }
        }
    }
}
#[cfg(all(feature = "dynamodb", feature = "s3"))]
pub use people::*;

// The index of a store with a feed, from an image or a Scan: s3.
#[cfg(feature = "s3")]
mod images {
    use std::sync::Arc;
    use std::time::Instant;

    use people_app::config::PeopleConfig;
    use people_app::index::{Refresh, build_from_store};
    use people_app::people::{Built, blocking, follow, image_outcome, scan_progress, usable};
    use people_app::ports::PeopleStore;
    use people_core::search::IndexImage;

    use super::{Origin, People, StartError};
    use crate::s3::{ImageStoreError, S3ImageStore};

    /// The index of `store` (DynamoDB's, or any store with a feed): from
    /// `image` when given, else from the newest image in `images`, else (none,
    /// a bad one, a stale one: logged, and counted in
    /// [`people_app::telemetry::INDEX_IMAGE_LOADS`]) from a parallel Scan; then
    /// following the feed from the position it is current with.
    pub async fn open_people_on(
        store: Arc<dyn PeopleStore>,
        images: Option<&S3ImageStore>,
        image: Option<(IndexImage, Option<String>)>,
        config: &PeopleConfig,
        refresh: Refresh,
    ) -> Result<(People, Origin), StartError> {
        let started = Instant::now();
        let image = match (image, images) {
            (Some((image, key)), _) => usable(image, store.as_ref(), "file").map(|i| (i, key)),
            (None, Some(images)) => newest_image(images, store.as_ref()).await,
            (None, None) => None,
        };
        let built = match image {
            Some((image, key)) => {
                let position = image.header.position;
                let written_ms = image.header.written_ms;
                let (engine, _) = blocking(move || image.into_engine()).await?;
                Built {
                    engine,
                    version: position.version,
                    caught_up_ms: Some(position.caught_up_ms),
                    origin: Origin::Image { key, written_ms },
                    started,
                }
            }
            None => {
                let (engine, version) =
                    build_from_store(store.as_ref(), config.scan_segments, &scan_progress())
                        .await?;
                Built {
                    engine,
                    version,
                    caught_up_ms: None,
                    origin: Origin::Scan,
                    started,
                }
            }
        };
        let origin = built.origin.clone();
        let people = follow(config, store, built, refresh);
        // An image is behind the table by up to the writer's interval: catch
        // up now, so that the first answer is as current as after a Scan (the
        // first refresh would otherwise wait for INDEX_REFRESH_MS, and a
        // function's first requests would answer from the image alone).
        if matches!(origin, Origin::Image { .. }) {
            let started = Instant::now();
            match people.index.refresh().await {
                Ok(changed) => tracing::info!(
                    changed,
                    seconds = started.elapsed().as_secs_f64(),
                    "index caught up with the change feed since the image"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    source = ?std::error::Error::source(&e),
                    "could not catch up with the change feed since the image; serving the image until a refresh succeeds"
                ),
            }
        }
        Ok((people, origin))
    }

    /// The newest image in `images`, when there is a usable one; logs why not.
    async fn newest_image(
        images: &S3ImageStore,
        store: &dyn PeopleStore,
    ) -> Option<(IndexImage, Option<String>)> {
        let started = Instant::now();
        let stored = match images.newest().await {
            Ok(Some(stored)) => stored,
            Ok(None) => {
                image_outcome("none");
                tracing::warn!("no index image yet; building the index from a Scan");
                return None;
            }
            Err(e) => {
                image_outcome("unavailable");
                tracing::warn!(error = %e, source = ?std::error::Error::source(&e), "could not list the index images; building the index from a Scan");
                return None;
            }
        };
        match images.load(&stored).await {
            Ok(image) => {
                tracing::info!(
                    key = %stored.key,
                    bytes = stored.size,
                    people = image.header.people,
                    version = image.header.position.version,
                    seconds = started.elapsed().as_secs_f64(),
                    "index image read"
                );
                usable(image, store, "bucket").map(|i| (i, Some(stored.key)))
            }
            Err(e) => {
                let outcome = match e {
                    ImageStoreError::Image(_) => "bad",
                    ImageStoreError::Store(_) => "unavailable",
                };
                image_outcome(outcome);
                tracing::warn!(key = %stored.key, error = %e, source = ?std::error::Error::source(&e), "could not read the index image; building the index from a Scan");
                None
            }
        }
    }
}
#[cfg(feature = "s3")]
pub use images::*;

// The people and request stores: dynamodb.
#[cfg(feature = "dynamodb")]
mod stores {
    use std::sync::Arc;

    use people_app::config::{JobsConfig, PeopleConfig, StorageType};
    use people_app::memory::{MemoryPeopleStore, MemoryRequestStore};
    use people_app::ports::{PeopleStore, RequestStore};

    use super::{Aws, StartError};
    use crate::dynamodb::DynamoPeopleStore;
    use crate::dynamodb_requests::DynamoRequestStore;

    /// The people store of `config` alone, for a writer that keeps no index
    /// (the enqueue function). Memory storage starts empty.
    pub async fn open_people_store(aws: &Aws, config: &PeopleConfig) -> Arc<dyn PeopleStore> {
        match config.storage {
            StorageType::Memory => Arc::new(MemoryPeopleStore::new()),
            StorageType::DynamoDb => {
                let store = DynamoPeopleStore::new(aws.dynamodb().await, &config.people_table)
                    .with_feed_shards(config.feed_shards)
                    .with_feed_overlap(config.refresh_overlap);
                Arc::new(match config.scan_page_items {
                    Some(items) => store.with_scan_page_limit(items),
                    None => store,
                })
            }
        }
    }

    /// The request store of `config` (the query function only reads it).
    pub async fn open_requests(
        aws: &Aws,
        config: &JobsConfig,
    ) -> Result<Arc<dyn RequestStore>, StartError> {
        Ok(match config.storage {
            StorageType::Memory => {
                Arc::new(MemoryRequestStore::new().with_retention(config.requests_retention))
            }
            StorageType::DynamoDb => Arc::new(DynamoRequestStore::new(
                aws.dynamodb().await,
                &config.requests_table,
            )),
        })
    }
}
#[cfg(feature = "dynamodb")]
pub use stores::*;

// The request store and the queue: dynamodb and sqs.
#[cfg(all(feature = "dynamodb", feature = "sqs"))]
mod jobs {
    use std::sync::Arc;

    use people_app::config::{JobsConfig, QueueType};
    use people_app::memory::MemoryQueue;
    use people_app::ports::JobQueue;

    use super::{Aws, Jobs, StartError, open_requests};
    use crate::sqs::SqsQueue;

    /// Opens the request store and the queue of `config`.
    pub async fn open_jobs(aws: &Aws, config: &JobsConfig) -> Result<Jobs, StartError> {
        let requests = open_requests(aws, config).await?;
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
                (Arc::new(SqsQueue::new(aws.sqs().await, url)), None)
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
}
#[cfg(all(feature = "dynamodb", feature = "sqs"))]
pub use jobs::*;

// Messages handed back to the queue: sqs.
#[cfg(feature = "sqs")]
mod redelivery {
    use std::sync::Arc;

    use people_app::config::JobsConfig;
    use people_app::ports::Redelivery;

    use super::Aws;
    use crate::sqs::SqsQueue;

    /// Where a consumer hands received messages back to the queue: the SQS
    /// queue at `QUEUE_URL` when it is set (the processor's is, for that).
    pub async fn open_redelivery(aws: &Aws, config: &JobsConfig) -> Option<Arc<dyn Redelivery>> {
        let url = config.queue_url.clone()?;
        Some(Arc::new(SqsQueue::new(aws.sqs().await, url)))
    }
}
#[cfg(feature = "sqs")]
pub use redelivery::*;

// Connections and pushes: dynamodb and apigw.
#[cfg(all(feature = "dynamodb", feature = "apigw"))]
mod push {
    use std::sync::Arc;

    use people_app::config::{JobsConfig, StorageType};
    use people_app::memory::connections::MemoryConnectionStore;
    use people_app::memory::hub::ConnectionHub;
    use people_app::ports::{ConnectionStore, Notifier};
    use people_app::ws::Pusher;

    use super::{Aws, StartError};
    use crate::apigw::ManagementApiNotifier;
    use crate::dynamodb_connections::DynamoConnectionStore;

    /// The connection store and notifier of `config`: pushes go through the
    /// Management API at `WEBSOCKET_ENDPOINT` when it is set, else to the
    /// sockets of `hub` (the local server's). A Lambda, which has no sockets,
    /// needs the endpoint whenever connections are kept in DynamoDB.
    pub async fn open_pusher(
        aws: &Aws,
        config: &JobsConfig,
        hub: Option<Arc<ConnectionHub>>,
    ) -> Result<Pusher, StartError> {
        let connections: Arc<dyn ConnectionStore> = match config.storage {
            StorageType::Memory => Arc::new(MemoryConnectionStore::new()),
            StorageType::DynamoDb => Arc::new(DynamoConnectionStore::new(
                aws.dynamodb().await,
                &config.connections_table,
            )),
        };
        let notifier: Arc<dyn Notifier> = match (&config.websocket_endpoint, hub) {
            (Some(endpoint), _) => {
                Arc::new(ManagementApiNotifier::at(aws.config().await, endpoint))
            }
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
}
#[cfg(all(feature = "dynamodb", feature = "apigw"))]
pub use push::*;

#[cfg(all(
    test,
    feature = "dynamodb",
    feature = "s3",
    feature = "sqs",
    feature = "apigw"
))]
mod tests {
    use super::*;
    use people_app::config::{JobsConfig, PeopleConfig};
    use people_app::index::Refresh;

    /// With the code's defaults (memory everything, as under `cargo
    /// lambda watch`), a start reads no AWS configuration: no credentials,
    /// no region, no endpoint are needed.
    #[tokio::test]
    async fn memory_adapters_read_no_aws_configuration() {
        let aws = Aws::from_env();
        let people = PeopleConfig {
            seed_people: 10,
            ..PeopleConfig::from_lookup(|_| None).unwrap()
        };
        let jobs = JobsConfig::from_lookup(|_| None).unwrap();
        open_people(&aws, &people, None, Refresh::Inline)
            .await
            .unwrap();
        open_people_store(&aws, &people).await;
        open_jobs(&aws, &jobs).await.unwrap();
        open_pusher(&aws, &jobs, None).await.unwrap();
        assert!(open_redelivery(&aws, &jobs).await.is_none());
        assert!(!aws.is_loaded());
    }

    /// Every adapter of a process is built from the one configuration.
    #[tokio::test]
    async fn aws_adapters_share_one_configuration() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        let aws = Aws::with_config(sdk);
        assert!(aws.is_loaded());
        let jobs = JobsConfig::from_lookup(|k| match k {
            "STORAGE_TYPE" => Some("dynamodb".into()),
            "QUEUE_TYPE" => Some("sqs".into()),
            "QUEUE_URL" => Some("http://127.0.0.1:9/queue/jobs".into()),
            "WEBSOCKET_ENDPOINT" => Some("http://127.0.0.1:9".into()),
            _ => None,
        })
        .unwrap();
        open_jobs(&aws, &jobs).await.unwrap();
        open_pusher(&aws, &jobs, None).await.unwrap();
        for region in [
            aws.dynamodb().await.config().region().cloned(),
            aws.sqs().await.config().region().cloned(),
            aws.s3().await.config().region().cloned(),
        ] {
            assert_eq!(region.as_ref().map(|r| r.as_ref()), Some("eu-west-1"));
        }
    }
}
