//! DynamoDB adapter of the connection store port (`docs/websocket.md`).
//!
//! One table keyed by `pk` (hash) and `sk` (range), three kinds of item:
//!
//! | item                 | `pk`                | `sk`                   |
//! |----------------------|---------------------|------------------------|
//! | a connection         | `conn#<connection>` | `connection`           |
//! | its subscription     | `conn#<connection>` | `sub#<request>`        |
//! | a request's follower | `req#<request>`     | `<connection>`         |
//!
//! A worker finds the followers of a request with one consistent Query on
//! `req#<request>` (no Scan, no index that lags), and `$disconnect` finds
//! everything of a connection with one Query on `conn#<connection>`. Each
//! subscription is written twice, in one transaction. Every item carries
//! `expires_at` (TTL); since DynamoDB deletes expired items only eventually,
//! reads skip the expired ones themselves.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, DeleteRequest, KeyType, Put, ScalarAttributeType, TableStatus,
    TransactWriteItem, WriteRequest,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::dynamodb_common::{
    BATCH_WRITE_MAX, EXPIRES_AT, Item, built, create_table_and_wait, from_item, on_demand_table,
    store_error, to_item, transaction_error, write_batch,
};
use crate::retry::RetryPolicy;
use people_app::ports::{CONNECTION_TTL, ConnectionStore, StoreError};

const PK: &str = "pk";
const SK: &str = "sk";
const CONNECTION_SK: &str = "connection";
const SUB_PREFIX: &str = "sub#";

pub struct DynamoConnectionStore {
    client: Client,
    table: String,
    retry: RetryPolicy,
}

impl DynamoConnectionStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            retry: RetryPolicy::default(),
        }
    }

    /// Every `sk` under `pk`, read consistently, skipping expired items
    /// when `live_at` is given.
    async fn sort_keys(
        &self,
        pk: String,
        live_at: Option<DateTime<Utc>>,
    ) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", AttributeValue::S(pk.clone()))
                .projection_expression("#sk")
                .set_exclusive_start_key(start.take());
            if let Some(now) = live_at {
                query = query
                    .filter_expression("#expires_at > :now")
                    .expression_attribute_names("#expires_at", EXPIRES_AT)
                    .expression_attribute_values(":now", epoch(now));
            }
            let page = query
                .send()
                .await
                .map_err(|e| store_error("Query", &self.table, e))?;
            for item in page.items.unwrap_or_default() {
                keys.push(from_item::<SortKey>("a key", PK, item)?.sk);
            }
            match page.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => return Ok(keys),
            }
        }
    }

    /// Deletes items by key with BatchWriteItem, 25 at a time, retrying
    /// what DynamoDB hands back unprocessed.
    async fn delete_all(&self, keys: Vec<Key>) -> Result<(), StoreError> {
        for chunk in keys.chunks(BATCH_WRITE_MAX) {
            let requests = chunk
                .iter()
                .map(|key| {
                    let delete = built(
                        DeleteRequest::builder()
                            .set_key(Some(to_item(key)?))
                            .build(),
                    )?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let unprocessed = write_batch(
                &self.retry,
                &self.table,
                requests,
                |requests| {
                    self.client
                        .batch_write_item()
                        .request_items(&self.table, requests)
                        .send()
                },
                |_| {},
            )
            .await?;
            if !unprocessed.is_empty() {
                return Err(StoreError::Unavailable(
                    format!(
                        "{} deletes still unprocessed after {} attempts",
                        unprocessed.len(),
                        self.retry.max_attempts
                    )
                    .into(),
                ));
            }
        }
        Ok(())
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(|e| transaction_error(&self.table, e))?;
        Ok(())
    }
}

#[async_trait]
impl ConnectionStore for DynamoConnectionStore {
    async fn connect(&self, connection_id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let item = to_item(&KeyedItem {
            key: Key::new(connection_pk(connection_id), CONNECTION_SK.into()),
            connected_at: Some(now.timestamp()),
            expires_at: expiry(now),
        })?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_error("PutItem", &self.table, e))?;
        Ok(())
    }

    async fn disconnect(&self, connection_id: &str) -> Result<(), StoreError> {
        let pk = connection_pk(connection_id);
        let mut keys = Vec::new();
        for sk in self.sort_keys(pk.clone(), None).await? {
            if let Some(request_id) = sk.strip_prefix(SUB_PREFIX) {
                keys.push(Key::new(request_pk(request_id), connection_id.to_owned()));
            }
            keys.push(Key::new(pk.clone(), sk));
        }
        self.delete_all(keys).await
    }

    async fn subscribe(
        &self,
        connection_id: &str,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let put = |pk: String, sk: String| -> Result<TransactWriteItem, StoreError> {
            let item = to_item(&KeyedItem {
                key: Key::new(pk, sk),
                connected_at: None,
                expires_at: expiry(now),
            })?;
            let put = built(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .build(),
            )?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        self.transact(vec![
            put(request_pk(request_id), connection_id.to_owned())?,
            put(connection_pk(connection_id), subscription_sk(request_id))?,
        ])
        .await
    }

    async fn unsubscribe(&self, connection_id: &str, request_id: &str) -> Result<(), StoreError> {
        let delete = |pk: String, sk: String| -> Result<TransactWriteItem, StoreError> {
            let delete = built(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(to_item(&Key::new(pk, sk))?))
                    .build(),
            )?;
            Ok(TransactWriteItem::builder().delete(delete).build())
        };
        self.transact(vec![
            delete(request_pk(request_id), connection_id.to_owned())?,
            delete(connection_pk(connection_id), subscription_sk(request_id))?,
        ])
        .await
    }

    async fn subscriptions(
        &self,
        connection_id: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let keys = self
            .sort_keys(connection_pk(connection_id), Some(now))
            .await?;
        Ok(keys.iter().filter(|sk| sk.starts_with(SUB_PREFIX)).count())
    }

    async fn subscribers(
        &self,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        self.sort_keys(request_pk(request_id), Some(now)).await
    }
}

/// Creates the connections table with TTL on `expires_at` (for emulators
/// and fresh accounts; the SAM stack makes its own). Idempotent.
#[tracing::instrument(skip(client))]
pub async fn create_connections_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let key = [(PK, KeyType::Hash), (SK, KeyType::Range)];
    let create = on_demand_table(
        client,
        table,
        &[(PK, ScalarAttributeType::S), (SK, ScalarAttributeType::S)],
        &key,
    )?;
    create_table_and_wait(client, table, create, &key, |t| {
        Ok(t.table_status() == Some(&TableStatus::Active))
    })
    .await
}

fn connection_pk(connection_id: &str) -> String {
    format!("conn#{connection_id}")
}

fn request_pk(request_id: &str) -> String {
    format!("req#{request_id}")
}

fn subscription_sk(request_id: &str) -> String {
    format!("{SUB_PREFIX}{request_id}")
}

/// An item's key.
#[derive(Debug, Serialize)]
struct Key {
    pk: String,
    sk: String,
}

impl Key {
    fn new(pk: String, sk: String) -> Self {
        Self { pk, sk }
    }
}

/// A connection (with `connected_at`) or one of the two items of a
/// subscription; every one expires.
#[derive(Debug, Serialize)]
struct KeyedItem {
    #[serde(flatten)]
    key: Key,
    #[serde(skip_serializing_if = "Option::is_none")]
    connected_at: Option<i64>,
    /// Epoch seconds.
    expires_at: i64,
}

/// What the queries read: the sort key alone (a projection).
#[derive(Debug, Deserialize)]
struct SortKey {
    sk: String,
}

fn epoch(t: DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(t.timestamp().to_string())
}

fn expiry(now: DateTime<Utc>) -> i64 {
    (now + chrono::Duration::from_std(CONNECTION_TTL).expect("the TTL fits")).timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::collections::HashMap;

    #[test]
    fn items_keep_the_attributes_the_table_has_always_had() {
        let now = Utc.timestamp_opt(1_750_000_000, 0).unwrap();
        let s = |text: &str| AttributeValue::S(text.into());
        let n = |v: i64| AttributeValue::N(v.to_string());
        let ttl = CONNECTION_TTL.as_secs() as i64;
        let connection = to_item(&KeyedItem {
            key: Key::new(connection_pk("c1"), CONNECTION_SK.into()),
            connected_at: Some(now.timestamp()),
            expires_at: expiry(now),
        })
        .unwrap();
        assert_eq!(
            connection,
            HashMap::from([
                ("pk".into(), s("conn#c1")),
                ("sk".into(), s("connection")),
                ("connected_at".into(), n(1_750_000_000)),
                ("expires_at".into(), n(1_750_000_000 + ttl)),
            ])
        );
        let follower = to_item(&KeyedItem {
            key: Key::new(request_pk("r1"), "c1".into()),
            connected_at: None,
            expires_at: expiry(now),
        })
        .unwrap();
        assert_eq!(
            follower,
            HashMap::from([
                ("pk".into(), s("req#r1")),
                ("sk".into(), s("c1")),
                ("expires_at".into(), n(1_750_000_000 + ttl)),
            ])
        );
        assert_eq!(
            to_item(&Key::new("a".into(), "b".into())).unwrap(),
            HashMap::from([("pk".into(), s("a")), ("sk".into(), s("b"))])
        );
    }
}
