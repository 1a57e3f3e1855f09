//! In-memory connection store: the local server's, and the tests' double
//! of the DynamoDB one. Same semantics, including expiry.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ports::{CONNECTION_TTL, ConnectionStore, StoreError};

#[derive(Default)]
pub struct MemoryConnectionStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Connection id → when it expires, and the requests it follows.
    connections: HashMap<String, Connection>,
    /// Request id → connection id → when that subscription expires.
    subscribers: HashMap<String, HashMap<String, DateTime<Utc>>>,
}

/// Connections leave on `$disconnect` (a process's memory does not outlive
/// its sockets); subscriptions expire like DynamoDB's.
#[derive(Default)]
struct Connection {
    requests: HashSet<String>,
}

impl MemoryConnectionStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections recorded (live or not yet expired).
    pub fn connections(&self) -> usize {
        self.lock().connections.len()
    }

    /// Subscriptions recorded, over all requests.
    pub fn subscriptions(&self) -> usize {
        self.lock().subscribers.values().map(HashMap::len).sum()
    }
}

fn expiry(now: DateTime<Utc>) -> DateTime<Utc> {
    now + chrono::Duration::from_std(CONNECTION_TTL).expect("the TTL fits")
}

#[async_trait]
impl ConnectionStore for MemoryConnectionStore {
    async fn connect(&self, connection_id: &str, _now: DateTime<Utc>) -> Result<(), StoreError> {
        self.lock()
            .connections
            .insert(connection_id.to_owned(), Connection::default());
        Ok(())
    }

    async fn disconnect(&self, connection_id: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let Some(connection) = inner.connections.remove(connection_id) else {
            return Ok(());
        };
        for request in connection.requests {
            if let Some(subs) = inner.subscribers.get_mut(&request) {
                subs.remove(connection_id);
                if subs.is_empty() {
                    inner.subscribers.remove(&request);
                }
            }
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        connection_id: &str,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner
            .connections
            .entry(connection_id.to_owned())
            .or_default()
            .requests
            .insert(request_id.to_owned());
        inner
            .subscribers
            .entry(request_id.to_owned())
            .or_default()
            .insert(connection_id.to_owned(), expiry(now));
        Ok(())
    }

    async fn unsubscribe(&self, connection_id: &str, request_id: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(connection) = inner.connections.get_mut(connection_id) {
            connection.requests.remove(request_id);
        }
        if let Some(subs) = inner.subscribers.get_mut(request_id) {
            subs.remove(connection_id);
            if subs.is_empty() {
                inner.subscribers.remove(request_id);
            }
        }
        Ok(())
    }

    async fn subscriptions(
        &self,
        connection_id: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let inner = self.lock();
        let Some(connection) = inner.connections.get(connection_id) else {
            return Ok(0);
        };
        let live = |request: &String| {
            inner
                .subscribers
                .get(request)
                .and_then(|subs| subs.get(connection_id))
                .is_some_and(|expires_at| *expires_at > now)
        };
        Ok(connection.requests.iter().filter(|r| live(r)).count())
    }

    async fn subscribers(
        &self,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let inner = self.lock();
        let mut live: Vec<String> = inner
            .subscribers
            .get(request_id)
            .into_iter()
            .flatten()
            .filter(|(_, expires_at)| **expires_at > now)
            .map(|(id, _)| id.clone())
            .collect();
        live.sort();
        Ok(live)
    }
}
