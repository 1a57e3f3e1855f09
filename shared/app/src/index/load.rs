//! Building the index from people storage: a parallel, segmented scan.

use std::sync::Mutex;

use futures::future::try_join_all;

use crate::ports::{PeopleStore, StoreError, Version};
use people_core::search::{PeopleTable, SearchEngine};

/// Reads every person from `store` in `segments` parallel scans and indexes
/// them. Returns the engine and the store version it is current with at
/// least: apply `changes_since` that version to catch up with writes that
/// happened during the scan.
pub async fn build_from_store(
    store: &dyn PeopleStore,
    segments: u32,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<(SearchEngine, Version), StoreError> {
    let segments = segments.max(1);
    let version = store.latest_version().await?;
    let table = Mutex::new(PeopleTable::new());
    try_join_all((0..segments).map(|segment| {
        let table = &table;
        async move {
            let mut start = None;
            loop {
                let page = store.scan(segment, segments, start).await?;
                let loaded = {
                    let mut t = table.lock().unwrap_or_else(|e| e.into_inner());
                    for p in &page.people {
                        t.upsert(p);
                    }
                    t.len()
                };
                progress(loaded);
                match page.next {
                    Some(next) => start = Some(next),
                    None => return Ok::<_, StoreError>(()),
                }
            }
        }
    }))
    .await?;
    let table = table.into_inner().unwrap_or_else(|e| e.into_inner());
    let engine = tokio::task::spawn_blocking(|| SearchEngine::new(table))
        .await
        .map_err(|e| StoreError::Permanent(Box::new(e)))?;
    Ok((engine, version))
}
