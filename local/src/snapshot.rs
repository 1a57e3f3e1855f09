//! `--snapshot FILE`: the local server's index image (`people_core::search`'s
//! image format). Read at start when the file exists; written every
//! `--snapshot-every` seconds when the index changed, and once more at
//! shutdown after the last jobs finished, each time atomically (a
//! temporary file renamed over the old one), so a restart keeps what was
//! imported, edited or deleted, and a crash loses at most one period.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use people_aws::wiring::People;
use people_core::search::{ImageHeader, IndexImage, Snapshot, load_file, save_file};

/// Reads the image at `path`, `None` when there is no such file. A file
/// that is there but unreadable is an error: starting empty and then
/// writing over it would lose what it holds.
pub async fn load(path: &Path) -> anyhow::Result<Option<IndexImage>> {
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || load_file(&owned))
        .await?
        .with_context(|| {
            format!(
                "{} is not a usable snapshot (move it away to start without it)",
                path.display()
            )
        })
}

/// Writes the index of `people` to a file.
pub struct SnapshotFile {
    path: PathBuf,
    people: People,
    /// The snapshot last written: an unchanged index is not written again.
    last: Mutex<Option<Arc<Snapshot>>>,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Unchanged,
    Wrote(ImageHeader),
}

impl SnapshotFile {
    pub fn new(path: PathBuf, people: &People) -> Arc<Self> {
        Arc::new(Self {
            path,
            people: people.clone(),
            last: Mutex::new(None),
        })
    }

    /// Treats the index as written now (it was just loaded from the file).
    pub fn mark_current(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(self.people.index.engine().snapshot());
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Catches the index up with the store, then writes it if it changed
    /// since the last write.
    pub async fn write(&self) -> anyhow::Result<Written> {
        if let Err(e) = self.people.index.refresh().await {
            // What the index holds is still worth keeping.
            tracing::warn!(error = %e, "could not catch the index up before writing the snapshot");
        }
        let (position, snapshot) = self.people.index.image_view();
        {
            let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            if last.as_ref().is_some_and(|l| Arc::ptr_eq(l, &snapshot)) {
                return Ok(Written::Unchanged);
            }
        }
        let started = Instant::now();
        let path = self.path.clone();
        let written = Arc::clone(&snapshot);
        let header = tokio::task::spawn_blocking(move || save_file(&path, &written, position))
            .await?
            .with_context(|| format!("writing the snapshot {}", self.path.display()))?;
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(snapshot);
        tracing::info!(
            path = %self.path.display(),
            people = header.people,
            ms = started.elapsed().as_millis() as u64,
            "snapshot written"
        );
        Ok(Written::Wrote(header))
    }

    /// Writes every `every` while the server runs (a failed write is
    /// logged and tried again next period).
    pub fn start_periodic(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                if let Err(e) = this.write().await {
                    tracing::warn!(error = ?e, "periodic snapshot failed; will try again");
                }
            }
        })
    }
}
