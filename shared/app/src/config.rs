//! Configuration from the environment, checked once at start-up with a
//! message that names the variable and the values it takes.

use std::env;
use std::time::Duration;

/// `VARIABLE: message`, in `Display` and in `Debug` (what a function's
/// `main` prints when it returns the error).
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageType {
    /// In-process, seeded with the built-in generated data set.
    Memory,
    DynamoDb,
}

/// How the people data is reached, and how the in-memory index follows it.
///
/// | variable | default | meaning |
/// | --- | --- | --- |
/// | `STORAGE_TYPE` | `memory` | `memory` or `dynamodb` |
/// | `SEED_PEOPLE`, `SEED` | `100000`, `42` | memory: the generated data set |
/// | `PEOPLE_TABLE` | `people` | dynamodb: the people table |
/// | `PEOPLE_FEED_SHARDS` | `4` | dynamodb: shards of the change feed (same for every reader and writer) |
/// | `SCAN_SEGMENTS` | `4` | dynamodb: parallel Scan segments of a cold-start build |
/// | `SCAN_PAGE_ITEMS` | (unset: DynamoDB's 1 MB pages) | dynamodb: at most this many items per Scan page (for emulators that serve a 1 MB page slower than the SDK's 3 s attempt timeout) |
/// | `INDEX_REFRESH_MS` | `1000` | at most this often a request checks the change feed |
/// | `INDEX_REFRESH_OVERLAP_MS` | `30000` | how far behind its watermark each check re-reads |
/// | `AWS_ENDPOINT_URL` | (AWS) | read by the AWS SDK itself: an emulator such as moto |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeopleConfig {
    pub storage: StorageType,
    /// Memory storage: how many generated people to start with.
    pub seed_people: usize,
    pub seed: u64,
    pub people_table: String,
    pub feed_shards: u32,
    pub scan_segments: u32,
    /// `SCAN_PAGE_ITEMS`: a `Limit` on each Scan page (`None`: DynamoDB's
    /// 1 MB pages).
    pub scan_page_items: Option<u32>,
    pub refresh_every: Duration,
    pub refresh_overlap: Duration,
    /// `INDEX_BUCKET`: the S3 bucket of index images. With DynamoDB
    /// storage, the index starts from the newest image there and catches
    /// up from the feed, instead of a Scan (`adapters::s3`).
    pub index_bucket: Option<String>,
}

impl PeopleConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| env::var(k).ok())
    }

    /// `from_env` over any lookup, for tests.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let storage = match get("STORAGE_TYPE").as_deref() {
            None | Some("memory") => StorageType::Memory,
            Some("dynamodb") => StorageType::DynamoDb,
            Some(other) => {
                return Err(ConfigError {
                    variable: "STORAGE_TYPE",
                    message: format!("{other:?} is not one of: memory, dynamodb"),
                });
            }
        };
        let people_table = get("PEOPLE_TABLE").unwrap_or_else(|| "people".to_owned());
        if people_table.trim().is_empty() {
            return Err(ConfigError {
                variable: "PEOPLE_TABLE",
                message: "must not be empty".into(),
            });
        }
        let feed_shards = number(&get, "PEOPLE_FEED_SHARDS", 4)?;
        let scan_segments = number(&get, "SCAN_SEGMENTS", 4)?;
        for (variable, value) in [
            ("PEOPLE_FEED_SHARDS", feed_shards),
            ("SCAN_SEGMENTS", scan_segments),
        ] {
            if !(1..=1000).contains(&value) {
                return Err(ConfigError {
                    variable,
                    message: format!("{value} is not from 1 to 1000"),
                });
            }
        }
        Ok(Self {
            storage,
            seed_people: number(&get, "SEED_PEOPLE", 100_000)?,
            seed: number(&get, "SEED", 42)?,
            people_table,
            feed_shards,
            scan_segments,
            scan_page_items: match get("SCAN_PAGE_ITEMS") {
                None => None,
                Some(_) => Some(number(&get, "SCAN_PAGE_ITEMS", 0).and_then(|n: u32| {
                    if n == 0 {
                        Err(ConfigError {
                            variable: "SCAN_PAGE_ITEMS",
                            message: "must be at least 1".into(),
                        })
                    } else {
                        Ok(n)
                    }
                })?),
            },
            refresh_every: Duration::from_millis(number(&get, "INDEX_REFRESH_MS", 1000)?),
            refresh_overlap: Duration::from_millis(number(
                &get,
                "INDEX_REFRESH_OVERLAP_MS",
                30_000,
            )?),
            index_bucket: get("INDEX_BUCKET").filter(|b| !b.trim().is_empty()),
        })
    }
}

fn number<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match get(variable) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ConfigError {
            variable,
            message: format!("{v:?} is not a whole number"),
        }),
    }
}

/// `true` or `false` (unset: false).
fn flag(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
) -> Result<bool, ConfigError> {
    match get(variable).as_deref().map(str::trim) {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ConfigError {
            variable,
            message: format!("{other:?} is not true or false"),
        }),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueType {
    /// In process, drained by the local server's worker pool.
    Memory,
    Sqs,
}

/// Where process requests are queued and kept.
///
/// | variable | default | meaning |
/// | --- | --- | --- |
/// | `QUEUE_TYPE` | `memory` | `memory` or `sqs` |
/// | `QUEUE_URL` | | sqs: the jobs queue (required with `sqs`) |
/// | `REQUESTS_TABLE` | `requests` | with `STORAGE_TYPE=dynamodb`: the request records |
/// | `MAX_RECEIVES` | `3` | deliveries before a message is dead-lettered (the queue's `maxReceiveCount`) |
/// | `WORKERS` | `2` | memory queue: worker tasks of the local server |
/// | `REQUESTS_RETENTION_SECS` | `3600` | memory storage: how long finished requests are kept (DynamoDB: the table's TTL) |
/// | `CONNECTIONS_TABLE` | `connections` | with `STORAGE_TYPE=dynamodb`: WebSocket connections and subscriptions |
/// | `WEBSOCKET_ENDPOINT` | | the API Gateway Management API to push through: the WebSocket stage URL, or a local server's `http://127.0.0.1:3000`; unset, the local server pushes in process |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobsConfig {
    pub queue: QueueType,
    pub queue_url: Option<String>,
    pub storage: StorageType,
    pub requests_table: String,
    pub max_receives: u32,
    pub workers: usize,
    pub connections_table: String,
    pub websocket_endpoint: Option<String>,
    /// Memory storage: finished requests are kept this long.
    pub requests_retention: Duration,
    /// `ALLOW_ANONYMOUS_WRITES=true`: callers without a token may import
    /// (a stack's `AllowAnonymousWrites`). Off unless set.
    pub anonymous_writes: bool,
}

impl JobsConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let people = PeopleConfig::from_lookup(&get)?;
        let queue = match get("QUEUE_TYPE").as_deref() {
            None | Some("memory") => QueueType::Memory,
            Some("sqs") => QueueType::Sqs,
            Some(other) => {
                return Err(ConfigError {
                    variable: "QUEUE_TYPE",
                    message: format!("{other:?} is not one of: memory, sqs"),
                });
            }
        };
        let queue_url = get("QUEUE_URL").filter(|u| !u.trim().is_empty());
        if queue == QueueType::Sqs && queue_url.is_none() {
            return Err(ConfigError {
                variable: "QUEUE_URL",
                message: "required with QUEUE_TYPE=sqs".into(),
            });
        }
        let max_receives = number(&get, "MAX_RECEIVES", 3)?;
        if max_receives == 0 {
            return Err(ConfigError {
                variable: "MAX_RECEIVES",
                message: "must be at least 1".into(),
            });
        }
        let websocket_endpoint = get("WEBSOCKET_ENDPOINT").filter(|u| !u.trim().is_empty());
        if let Some(endpoint) = &websocket_endpoint
            && !(endpoint.starts_with("https://") || endpoint.starts_with("http://"))
        {
            return Err(ConfigError {
                variable: "WEBSOCKET_ENDPOINT",
                message: format!(
                    "{endpoint:?} is not a URL such as https://{{api-id}}.execute-api.{{region}}.amazonaws.com/{{stage}}"
                ),
            });
        }
        Ok(Self {
            queue,
            queue_url,
            storage: people.storage,
            requests_table: get("REQUESTS_TABLE").unwrap_or_else(|| "requests".to_owned()),
            max_receives,
            workers: number(&get, "WORKERS", 2)?,
            connections_table: get("CONNECTIONS_TABLE").unwrap_or_else(|| "connections".to_owned()),
            websocket_endpoint,
            requests_retention: Duration::from_secs(number(&get, "REQUESTS_RETENTION_SECS", 3600)?),
            anonymous_writes: flag(&get, "ALLOW_ANONYMOUS_WRITES")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<PeopleConfig, ConfigError> {
        PeopleConfig::from_lookup(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_to_memory() {
        let c = config(&[]).unwrap();
        assert_eq!(c.storage, StorageType::Memory);
        assert_eq!(c.seed_people, 100_000);
    }

    #[test]
    fn scan_pages_are_dynamodbs_unless_limited() {
        assert_eq!(config(&[]).unwrap().scan_page_items, None);
        let limited = config(&[("SCAN_PAGE_ITEMS", "500")]).unwrap();
        assert_eq!(limited.scan_page_items, Some(500));
        for bad in ["0", "many", "-1"] {
            let e = config(&[("SCAN_PAGE_ITEMS", bad)]).unwrap_err();
            assert_eq!(e.variable, "SCAN_PAGE_ITEMS", "{bad}");
        }
    }

    #[test]
    fn anonymous_writes_are_off_unless_turned_on() {
        let jobs = |pairs: &[(&str, &str)]| {
            JobsConfig::from_lookup(|k| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        assert!(!jobs(&[]).unwrap().anonymous_writes);
        assert!(
            !jobs(&[("ALLOW_ANONYMOUS_WRITES", "false")])
                .unwrap()
                .anonymous_writes
        );
        assert!(
            jobs(&[("ALLOW_ANONYMOUS_WRITES", "true")])
                .unwrap()
                .anonymous_writes
        );
        assert_eq!(
            jobs(&[("ALLOW_ANONYMOUS_WRITES", "yes")])
                .unwrap_err()
                .variable,
            "ALLOW_ANONYMOUS_WRITES"
        );
    }

    #[test]
    fn wrong_values_name_the_variable() {
        assert_eq!(
            config(&[("STORAGE_TYPE", "s3")]).unwrap_err().variable,
            "STORAGE_TYPE"
        );
        assert_eq!(
            config(&[("SEED_PEOPLE", "many")]).unwrap_err().variable,
            "SEED_PEOPLE"
        );
        assert_eq!(
            config(&[("STORAGE_TYPE", "dynamodb")]).unwrap().storage,
            StorageType::DynamoDb
        );
    }
}
