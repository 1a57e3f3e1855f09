//! The search engine: the read path everywhere (tests, local server, the
//! query Lambda, the report worker).
//!
//! Readers take an `Arc<Snapshot>` and never wait. A write clones the table,
//! applies the changes and builds a new snapshot, then swaps it in; writers
//! are serialised, and a build of a million people takes a few hundred
//! milliseconds on two cores (see BENCHMARKS.md), so writes are meant to come
//! in batches (imports, change-feed refreshes), not one request at a time.

mod index;
mod live;
mod load;
mod table;

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

pub use index::{Matches, PageStart, SearchPage, Snapshot};
pub use live::{LiveIndex, Refresh};
pub use load::build_from_store;
pub use table::{PeopleTable, PersonRef, Upserted};

use crate::domain::Person;

pub struct SearchEngine {
    current: ArcSwap<Snapshot>,
    writer: Mutex<()>,
}

impl SearchEngine {
    pub fn new(table: PeopleTable) -> Self {
        Self {
            current: ArcSwap::from_pointee(Snapshot::build(table)),
            writer: Mutex::new(()),
        }
    }

    pub fn from_people<'a>(people: impl IntoIterator<Item = &'a Person>) -> Self {
        let mut table = PeopleTable::new();
        for p in people {
            table.upsert(p);
        }
        Self::new(table)
    }

    /// The current state, for as long as the caller holds it.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Inserts or replaces people by id; queries see all of them or none.
    /// Returns how many people changed. Blocking: call it off the async
    /// executor (`spawn_blocking`).
    pub fn upsert(&self, people: &[Person]) -> usize {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.current.load_full();
        let mut table = current.table().clone();
        let changed = people
            .iter()
            .filter(|p| !matches!(table.upsert(p), Upserted::Unchanged(_)))
            .count();
        if changed > 0 {
            self.current.store(Arc::new(Snapshot::build(table)));
        }
        changed
    }
}
