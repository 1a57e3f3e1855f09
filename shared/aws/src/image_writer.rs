//! The index-writer function's logic: an index that follows the people
//! table's feed, written to the image bucket as a new image when the feed
//! has moved far enough or the newest image is old enough.
//!
//! It runs on a schedule (template.yaml: every 5 minutes), apart from the
//! functions that answer requests, so no request or job ever waits for an
//! image to be written, and only this function may write to the bucket.
//! Each run catches its index up with the feed, then writes when
//!
//! - its index did not start from an image (there is none yet, or the
//!   newest was unreadable or too old: the functions are Scanning), or
//! - `changes` changes were applied since the image it holds, or
//! - anything changed and the image is `every` old, or
//! - the image is `max_age` old, changed or not (an image must stay younger
//!   than a feed tombstone lives, 7 days, to be usable; and the bucket's
//!   lifecycle rule expires images after 3 days).
//!
//! So a cold start's feed catch-up after the newest image is bounded by
//! `every` plus the schedule's period of writes, or `changes` changes.

use std::sync::Arc;
use std::time::Duration;

use crate::s3::{ImageStoreError, S3ImageStore, StoredImage};
use crate::wiring::{Origin, People, StartError, open_people_on};
use people_app::config::{ConfigError, PeopleConfig};
use people_app::index::Refresh;
use people_app::ports::{PeopleStore, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WritePolicy {
    pub every: Duration,
    pub changes: usize,
    pub max_age: Duration,
}

impl Default for WritePolicy {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(15 * 60),
            changes: 100_000,
            max_age: Duration::from_secs(24 * 3600),
        }
    }
}

impl WritePolicy {
    /// `INDEX_IMAGE_EVERY_S`, `INDEX_IMAGE_CHANGES`, `INDEX_IMAGE_MAX_AGE_S`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Self::default();
        let number = |variable: &'static str, default: u64| match get(variable) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError {
                    variable,
                    message: format!("{v:?} is not a whole number above 0"),
                }),
        };
        Ok(Self {
            every: Duration::from_secs(number("INDEX_IMAGE_EVERY_S", d.every.as_secs())?),
            changes: number("INDEX_IMAGE_CHANGES", d.changes as u64)? as usize,
            max_age: Duration::from_secs(number("INDEX_IMAGE_MAX_AGE_S", d.max_age.as_secs())?),
        })
    }

    /// Whether an index holding `changes` changes since an image written
    /// `age` ago (`None`: it holds no image) is due for a new one.
    pub fn due(&self, image_age: Option<Duration>, changes: usize) -> bool {
        match image_age {
            None => true,
            Some(age) => {
                changes >= self.changes || (changes > 0 && age >= self.every) || age >= self.max_age
            }
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run {
    Wrote {
        image: StoredImage,
        people: u64,
        changes: usize,
    },
    NotDue {
        changes: usize,
        age: Duration,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("catching the index up with the feed failed")]
    Feed(#[from] StoreError),
    #[error("writing the index image failed")]
    Image(#[from] ImageStoreError),
}

pub struct ImageWriter {
    people: People,
    images: S3ImageStore,
    policy: WritePolicy,
    state: tokio::sync::Mutex<State>,
}

struct State {
    /// When the image the index holds was written (ms since the epoch).
    image_written_ms: Option<u64>,
    /// Changes applied since.
    changes: usize,
}

impl ImageWriter {
    /// Starts from the newest image in `images` (or a Scan of `store`).
    pub async fn open(
        store: Arc<dyn PeopleStore>,
        images: S3ImageStore,
        config: &PeopleConfig,
        policy: WritePolicy,
    ) -> Result<Self, StartError> {
        // Boxed: the start-up future is deep enough to pass the compiler's
        // layout recursion limit inside a `main`.
        let (people, origin) = Box::pin(open_people_on(
            store,
            Some(&images),
            None,
            config,
            Refresh::Inline,
        ))
        .await?;
        let image_written_ms = match origin {
            Origin::Image { written_ms, .. } => Some(written_ms),
            Origin::Memory | Origin::Scan => None,
        };
        Ok(Self {
            people,
            images,
            policy,
            state: tokio::sync::Mutex::new(State {
                image_written_ms,
                changes: 0,
            }),
        })
    }

    pub fn people(&self) -> &People {
        &self.people
    }

    /// Catches up with the feed, then writes an image if one is due.
    #[tracing::instrument(skip(self))]
    pub async fn run(&self) -> Result<Run, WriteError> {
        let mut state = self.state.lock().await;
        state.changes += self.people.index.refresh().await?;
        let now = now_ms();
        let age = state
            .image_written_ms
            .map(|ms| Duration::from_millis(now.saturating_sub(ms)));
        if !self.policy.due(age, state.changes) {
            let age = age.unwrap_or_default();
            tracing::info!(
                changes = state.changes,
                age_s = age.as_secs(),
                "no index image due"
            );
            return Ok(Run::NotDue {
                changes: state.changes,
                age,
            });
        }
        let (position, snapshot) = self.people.index.image_view();
        let started = std::time::Instant::now();
        let saved = self.images.save(snapshot, position).await;
        let outcome = if saved.is_ok() { "written" } else { "failed" };
        metrics::counter!(people_app::telemetry::INDEX_IMAGE_WRITES, "outcome" => outcome)
            .increment(1);
        let (image, header) = saved?;
        tracing::info!(
            key = %image.key,
            bytes = image.size,
            people = header.people,
            version = position.version,
            changes = state.changes,
            seconds = started.elapsed().as_secs_f64(),
            "index image written"
        );
        let changes = std::mem::take(&mut state.changes);
        state.image_written_ms = Some(header.written_ms);
        Ok(Run::Wrote {
            image,
            people: header.people,
            changes,
        })
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_is_due_when_missing_moved_far_old_with_changes_or_too_old() {
        let p = WritePolicy {
            every: Duration::from_secs(900),
            changes: 1000,
            max_age: Duration::from_secs(86_400),
        };
        let mins = |m: u64| Some(Duration::from_secs(m * 60));
        assert!(p.due(None, 0));
        assert!(!p.due(mins(1), 0));
        assert!(!p.due(mins(1), 999));
        assert!(p.due(mins(1), 1000));
        assert!(!p.due(mins(14), 5));
        assert!(p.due(mins(15), 1));
        assert!(!p.due(mins(60), 0));
        assert!(p.due(mins(24 * 60), 0));
    }

    #[test]
    fn the_policy_reads_its_variables_and_refuses_zero() {
        let p =
            WritePolicy::from_lookup(|k| (k == "INDEX_IMAGE_CHANGES").then(|| "5".into())).unwrap();
        assert_eq!(p.changes, 5);
        assert_eq!(p.every, WritePolicy::default().every);
        let e = WritePolicy::from_lookup(|k| (k == "INDEX_IMAGE_EVERY_S").then(|| "0".into()))
            .unwrap_err();
        assert_eq!(e.variable, "INDEX_IMAGE_EVERY_S");
    }
}
