//! The in-process notifier: the local server's live WebSocket connections,
//! each with a bounded outbox that its socket task drains. It answers like
//! API Gateway's Management API: `Gone` for an unknown or closed connection,
//! `TooLarge` over 128 KiB.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::ports::{Notifier, NotifyError};
use crate::ws::MAX_MESSAGE_BYTES;

/// Messages a connection's outbox holds before a push is refused as
/// unavailable: a client that stops reading must not grow the server.
pub const OUTBOX: usize = 256;

/// What the socket task of a connection is told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Text(String),
    Binary(Vec<u8>),
    /// Close the connection with this close code and reason
    /// (`DELETE /@connections/{id}`: 1000; the server stopping: 1001).
    Close(u16, String),
}

/// What `GET /@connections/{id}` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub connected_at: DateTime<Utc>,
    pub last_active_at: DateTime<Utc>,
    pub source_ip: String,
    pub user_agent: Option<String>,
}

struct Live {
    outbox: mpsc::Sender<Outgoing>,
    info: ConnectionInfo,
}

#[derive(Default)]
pub struct ConnectionHub {
    live: Mutex<HashMap<String, Live>>,
}

impl ConnectionHub {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new connection; its socket task reads the returned outbox.
    pub fn register(&self, connection_id: &str, info: ConnectionInfo) -> mpsc::Receiver<Outgoing> {
        let (outbox, rx) = mpsc::channel(OUTBOX);
        self.lock()
            .insert(connection_id.to_owned(), Live { outbox, info });
        rx
    }

    pub fn unregister(&self, connection_id: &str) {
        self.lock().remove(connection_id);
    }

    /// The client sent something.
    pub fn touch(&self, connection_id: &str, now: DateTime<Utc>) {
        if let Some(live) = self.lock().get_mut(connection_id) {
            live.info.last_active_at = now;
        }
    }

    pub fn info(&self, connection_id: &str) -> Option<ConnectionInfo> {
        self.lock().get(connection_id).map(|l| l.info.clone())
    }

    /// Asks the connection to close; false if there is no such connection.
    pub fn close(&self, connection_id: &str) -> bool {
        self.close_with(connection_id, 1000, "closed by the server")
    }

    /// Asks the connection to close with `code` and `reason`; false if
    /// there is no such connection.
    pub fn close_with(&self, connection_id: &str, code: u16, reason: &str) -> bool {
        let outbox = self.lock().remove(connection_id).map(|l| l.outbox);
        match outbox {
            Some(outbox) => {
                // A full outbox is dropped with the sender: the socket task
                // sees the channel end and closes the connection all the same.
                let _ = outbox.try_send(Outgoing::Close(code, reason.to_owned()));
                true
            }
            None => false,
        }
    }

    /// Asks every connection to close with `code` and `reason`.
    pub fn close_all(&self, code: u16, reason: &str) -> usize {
        let ids = self.ids();
        ids.iter()
            .filter(|id| self.close_with(id, code, reason))
            .count()
    }

    /// The ids of the live connections.
    pub fn ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl Notifier for ConnectionHub {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), NotifyError> {
        if data.len() > MAX_MESSAGE_BYTES {
            return Err(NotifyError::TooLarge);
        }
        let outbox = self
            .lock()
            .get(connection_id)
            .map(|l| l.outbox.clone())
            .ok_or(NotifyError::Gone)?;
        let message = match std::str::from_utf8(data) {
            Ok(text) => Outgoing::Text(text.to_owned()),
            Err(_) => Outgoing::Binary(data.to_vec()),
        };
        outbox.try_send(message).map_err(|e| match e {
            mpsc::error::TrySendError::Closed(_) => NotifyError::Gone,
            mpsc::error::TrySendError::Full(_) => NotifyError::Unavailable(
                format!("connection {connection_id} has {OUTBOX} messages unread").into(),
            ),
        })
    }
}
