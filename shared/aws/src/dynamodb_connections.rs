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

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, DeleteRequest, KeySchemaElement,
    KeyType, Put, ScalarAttributeType, TableStatus, TransactWriteItem, WriteRequest,
};
use chrono::{DateTime, Utc};

use super::dynamodb::{BatchRetry, create_table_and_wait, store_error};
use super::dynamodb_requests::enable_ttl;
use people_app::ports::{CONNECTION_TTL, ConnectionStore, StoreError};

const PK: &str = "pk";
const SK: &str = "sk";
const EXPIRES_AT: &str = "expires_at";
const CONNECTED_AT: &str = "connected_at";
const CONNECTION_SK: &str = "connection";
const SUB_PREFIX: &str = "sub#";
const BATCH_WRITE_MAX: usize = 25;

type Item = HashMap<String, AttributeValue>;

pub struct DynamoConnectionStore {
    client: Client,
    table: String,
    retry: BatchRetry,
}

impl DynamoConnectionStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            retry: BatchRetry::default(),
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
            keys.extend(
                page.items()
                    .iter()
                    .filter_map(|item| item.get(SK)?.as_s().ok().cloned()),
            );
            match page.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => return Ok(keys),
            }
        }
    }

    /// Deletes items by key with BatchWriteItem, 25 at a time, retrying
    /// what DynamoDB hands back unprocessed.
    async fn delete_all(&self, keys: Vec<(String, String)>) -> Result<(), StoreError> {
        for chunk in keys.chunks(BATCH_WRITE_MAX) {
            let mut requests = chunk
                .iter()
                .map(|(pk, sk)| {
                    let delete = DeleteRequest::builder()
                        .set_key(Some(key(pk.clone(), sk.clone())))
                        .build()
                        .map_err(built)?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let mut attempt = 1;
            while !requests.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| store_error("BatchWriteItem", &self.table, e))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if attempt >= self.retry.max_attempts {
                    return Err(StoreError::Unavailable(
                        format!(
                            "{} deletes still unprocessed after {attempt} attempts",
                            requests.len()
                        )
                        .into(),
                    ));
                }
                tokio::time::sleep(self.retry.delay(attempt)).await;
                attempt += 1;
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
            .map_err(|e| store_error("TransactWriteItems", &self.table, e))?;
        Ok(())
    }
}

#[async_trait]
impl ConnectionStore for DynamoConnectionStore {
    async fn connect(&self, connection_id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut item = key(connection_pk(connection_id), CONNECTION_SK.into());
        item.insert(CONNECTED_AT.into(), epoch(now));
        item.insert(EXPIRES_AT.into(), expiry(now));
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
                keys.push((request_pk(request_id), connection_id.to_owned()));
            }
            keys.push((pk.clone(), sk));
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
            let mut item = key(pk, sk);
            item.insert(EXPIRES_AT.into(), expiry(now));
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .map_err(built)?;
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
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk, sk)))
                .build()
                .map_err(built)?;
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
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(built)
    };
    let key_element = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .map_err(built)
    };
    let create = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(PK)?)
        .attribute_definitions(attribute(SK)?)
        .key_schema(key_element(PK, KeyType::Hash)?)
        .key_schema(key_element(SK, KeyType::Range)?);
    create_table_and_wait(client, table, create, |t| {
        let keys: Vec<(&str, &KeyType)> = t
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name(), k.key_type()))
            .collect();
        if keys != [(PK, &KeyType::Hash), (SK, &KeyType::Range)] {
            return Err(StoreError::Permanent(
                format!("table {table} exists with another key: {keys:?}").into(),
            ));
        }
        Ok(t.table_status() == Some(&TableStatus::Active))
    })
    .await?;
    enable_ttl(client, table).await
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

fn key(pk: String, sk: String) -> Item {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(pk)),
        (SK.to_owned(), AttributeValue::S(sk)),
    ])
}

fn epoch(t: DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(t.timestamp().to_string())
}

fn expiry(now: DateTime<Utc>) -> AttributeValue {
    epoch(now + chrono::Duration::from_std(CONNECTION_TTL).expect("the TTL fits"))
}

fn built(e: BuildError) -> StoreError {
    StoreError::Permanent(Box::new(e))
}
