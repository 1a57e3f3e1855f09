//! In-memory adapters: the local server's backends and the tests' doubles.

use std::sync::RwLock;

use async_trait::async_trait;

use crate::domain::Person;
use crate::ports::{Changes, PeopleStore, ScanPage, StoreError, Version, WriteReport};
use crate::search::{PeopleTable, Upserted};

/// People kept in a compact table, with a version per write.
#[derive(Default)]
pub struct MemoryPeopleStore {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    table: PeopleTable,
    /// Version of each row.
    versions: Vec<Version>,
    /// (version, row) in version order; a row rewritten later also has an
    /// older entry, which `changes_since` skips.
    log: Vec<(Version, u32)>,
    latest: Version,
}

impl MemoryPeopleStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `table`, as if its rows had been written in order
    /// (bulk seeding of the local server).
    pub fn with_table(table: PeopleTable) -> Self {
        let n = table.len() as u64;
        Self {
            inner: RwLock::new(Inner {
                versions: (1..=n).collect(),
                log: (1..=n).map(|v| (v, (v - 1) as u32)).collect(),
                latest: n,
                table,
            }),
        }
    }

    pub fn len(&self) -> usize {
        self.read().table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl PeopleStore for MemoryPeopleStore {
    async fn get(&self, id: &str) -> Result<Option<Person>, StoreError> {
        Ok(self.read().table.get(id))
    }

    async fn put_batch(&self, people: &[Person]) -> Result<WriteReport, StoreError> {
        let mut inner = self.write();
        let mut report = WriteReport::default();
        for p in people {
            let row = match inner.table.upsert(p) {
                Upserted::Unchanged(_) => {
                    report.unchanged += 1;
                    continue;
                }
                Upserted::Inserted(row) => {
                    inner.versions.push(0);
                    row
                }
                Upserted::Replaced(row) => row,
            };
            inner.latest += 1;
            let version = inner.latest;
            inner.versions[row as usize] = version;
            inner.log.push((version, row));
            report.written += 1;
        }
        Ok(report)
    }

    async fn scan(
        &self,
        segment: u32,
        segments: u32,
        start: Option<String>,
    ) -> Result<ScanPage, StoreError> {
        const PAGE: usize = 10_000;
        if segments == 0 || segment >= segments {
            return Err(StoreError::Permanent(
                format!("segment {segment} of {segments} does not exist").into(),
            ));
        }
        let from: usize = match start {
            None => segment as usize,
            Some(s) => s.parse().map_err(|_| {
                StoreError::Permanent(format!("scan cursor {s:?} is not a row number").into())
            })?,
        };
        let inner = self.read();
        let rows: Vec<usize> = (from..inner.table.len())
            .step_by(segments as usize)
            .take(PAGE + 1)
            .collect();
        let next = rows.get(PAGE).map(|r| r.to_string());
        let people = rows
            .iter()
            .take(PAGE)
            .map(|&r| inner.table.person(r as u32))
            .collect();
        Ok(ScanPage { people, next })
    }

    async fn latest_version(&self) -> Result<Version, StoreError> {
        Ok(self.read().latest)
    }

    async fn changes_since(&self, since: Version, limit: usize) -> Result<Changes, StoreError> {
        let inner = self.read();
        let start = inner.log.partition_point(|&(v, _)| v <= since);
        let mut people = Vec::new();
        let mut up_to = since;
        let mut more = false;
        for &(version, row) in &inner.log[start..] {
            if inner.versions[row as usize] != version {
                continue; // superseded by a later write of the same person
            }
            if people.len() == limit {
                more = true;
                break;
            }
            people.push(inner.table.person(row));
            up_to = version;
        }
        if !more {
            up_to = up_to.max(inner.latest);
        }
        Ok(Changes {
            people,
            up_to,
            more,
        })
    }
}
