//! What the three DynamoDB adapters share: the `StoreError` of a failed
//! call, items through `serde_dynamo`, the BatchWriteItem loop over
//! unprocessed items, and table creation with TTL.
//!
//! The SDK calls an adapter makes stay in its own file (a closure here, a
//! method there): `scripts/check_iam.py` reads them from the adapter's
//! methods to check each function's grants.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemError, BatchWriteItemOutput};
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableDescription, TimeToLiveSpecification, TimeToLiveStatus, WriteRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::retry::RetryPolicy;
use crate::sdk_error::{self, CallError, Fault, classify};
use people_app::ports::StoreError;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// DynamoDB refuses a BatchWriteItem of more than 25 requests.
pub(crate) const BATCH_WRITE_MAX: usize = 25;
/// The TTL attribute of every table (epoch seconds).
pub(crate) const EXPIRES_AT: &str = "expires_at";
/// How long table creation waits for a new table to become usable.
const TABLE_READY_TIMEOUT: Duration = Duration::from_secs(300);

/// A DynamoDB call on `table` that failed, as a `StoreError`.
pub(crate) fn store_error<E>(
    operation: &'static str,
    table: &str,
    err: SdkError<E, HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    store_error_as(classify(&err), operation, table, err)
}

fn store_error_as<E>(
    fault: Fault,
    operation: &'static str,
    table: &str,
    err: SdkError<E, HttpResponse>,
) -> StoreError
where
    E: StdError + Send + Sync + 'static,
{
    sdk_error::store_error(
        fault,
        CallError::new("DynamoDB", operation, "table", table, err),
    )
}

/// A TransactWriteItems that failed: as [`classify`] says, except that a
/// transaction cancelled because another one was writing the same item,
/// or throttled, is transient too (only its cancellation reasons tell).
pub(crate) fn transaction_error(
    table: &str,
    err: SdkError<TransactWriteItemsError, HttpResponse>,
) -> StoreError {
    const TRANSIENT_REASONS: &[&str] = &[
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
    ];
    let conflict = cancellation_reasons(&err).iter().any(|(code, _)| {
        code.as_deref()
            .is_some_and(|c| TRANSIENT_REASONS.contains(&c))
    });
    let fault = if conflict {
        Fault::Transient
    } else {
        classify(&err)
    };
    store_error_as(fault, "TransactWriteItems", table, err)
}

/// The reason code a cancelled transaction gives an item whose condition
/// failed.
pub(crate) const CHECK_FAILED: &str = "ConditionalCheckFailed";

/// Per item of a cancelled transaction: its reason code, and the item that
/// failed its condition (when asked for with `ALL_OLD`).
pub(crate) fn cancellation_reasons(
    err: &SdkError<TransactWriteItemsError, HttpResponse>,
) -> Vec<(Option<String>, Option<Item>)> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => cancelled
            .cancellation_reasons()
            .iter()
            .map(|r| (r.code().map(str::to_owned), r.item().cloned()))
            .collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn built<T>(result: Result<T, BuildError>) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::Permanent(Box::new(e)))
}

/// An item that is not what the adapter writes.
#[derive(Debug, thiserror::Error)]
#[error("item {id:?} cannot be read as {what}: {problem}")]
pub(crate) struct BadItem {
    id: String,
    what: &'static str,
    problem: String,
}

pub(crate) fn bad_item(what: &'static str, id: &str, problem: impl Into<String>) -> StoreError {
    StoreError::Permanent(Box::new(BadItem {
        id: id.to_owned(),
        what,
        problem: problem.into(),
    }))
}

/// `value` as an item (its struct names the attributes).
pub(crate) fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Permanent(Box::new(e)))
}

/// `item` as `what` (`"a person"`): an item that does not decode is an
/// error naming its `id_attribute` and the attribute at fault, never
/// skipped.
pub(crate) fn from_item<T: DeserializeOwned>(
    what: &'static str,
    id_attribute: &str,
    item: Item,
) -> Result<T, StoreError> {
    let id = match item.get(id_attribute) {
        Some(AttributeValue::S(id)) => id.clone(),
        _ => format!("<no {id_attribute}>"),
    };
    let item: serde_dynamo::Item = item.into();
    let deserializer = serde_dynamo::Deserializer::from_attribute_value(
        serde_dynamo::AttributeValue::M(item.into()),
    );
    serde_path_to_error::deserialize(deserializer).map_err(|e| bad_item(what, &id, e.to_string()))
}

/// Sends one BatchWriteItem of `requests` (at most 25, on `table`) through
/// `send`, then again what DynamoDB hands back unprocessed, as `policy`
/// allows; `before_retry` may change the requests before each retry.
/// Returns the requests still unprocessed after the last attempt. The SDK
/// already retries a throttled *request*; items of an accepted request
/// handed back are ours to retry.
pub(crate) async fn write_batch<S, F>(
    policy: &RetryPolicy,
    table: &str,
    mut requests: Vec<WriteRequest>,
    mut send: S,
    mut before_retry: impl FnMut(&mut [WriteRequest]),
) -> Result<Vec<WriteRequest>, StoreError>
where
    S: FnMut(Vec<WriteRequest>) -> F,
    F: Future<Output = Result<BatchWriteItemOutput, SdkError<BatchWriteItemError, HttpResponse>>>,
{
    let mut delays = policy.delays();
    let mut attempt = 1;
    loop {
        requests = send(requests)
            .await
            .map_err(|e| store_error("BatchWriteItem", table, e))?
            .unprocessed_items
            .and_then(|mut tables| tables.remove(table))
            .unwrap_or_default();
        if requests.is_empty() {
            return Ok(requests);
        }
        let Some(delay) = delays.next() else {
            tracing::warn!(
                unprocessed = requests.len(),
                attempts = attempt,
                "items still unprocessed after every attempt"
            );
            return Ok(requests);
        };
        tracing::debug!(attempt, unprocessed = requests.len(), "items not processed");
        tokio::time::sleep(delay).await;
        before_retry(&mut requests);
        attempt += 1;
    }
}

/// A CreateTable of `table`, on demand billing, with these attributes and
/// key (hash first).
pub(crate) fn on_demand_table(
    client: &Client,
    table: &str,
    attributes: &[(&str, ScalarAttributeType)],
    key: &[(&str, KeyType)],
) -> Result<CreateTableFluentBuilder, StoreError> {
    let mut create = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest);
    for (name, kind) in attributes {
        create = create.attribute_definitions(built(
            AttributeDefinition::builder()
                .attribute_name(*name)
                .attribute_type(kind.clone())
                .build(),
        )?);
    }
    for element in key_schema(key)? {
        create = create.key_schema(element);
    }
    Ok(create)
}

pub(crate) fn key_schema(key: &[(&str, KeyType)]) -> Result<Vec<KeySchemaElement>, StoreError> {
    key.iter()
        .map(|(name, kind)| {
            built(
                KeySchemaElement::builder()
                    .attribute_name(*name)
                    .key_type(kind.clone())
                    .build(),
            )
        })
        .collect()
}

/// Sends `create` (a table that exists already is fine if its key is
/// `key`), waits until `ready` finds the table usable (`Ok(false)`: not
/// yet; an error, a table of another shape, ends the wait), then turns on
/// TTL on `expires_at`.
pub(crate) async fn create_table_and_wait(
    client: &Client,
    table: &str,
    create: CreateTableFluentBuilder,
    key: &[(&str, KeyType)],
    ready: impl Fn(&TableDescription) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    match create.send().await {
        Ok(_) => tracing::info!("table created"),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            tracing::info!("table exists already");
        }
        Err(e) => return Err(store_error("CreateTable", table, e)),
    }
    let deadline = Instant::now() + TABLE_READY_TIMEOUT;
    loop {
        let description = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| store_error("DescribeTable", table, e))?
            .table;
        if let Some(description) = &description {
            let keys: Vec<(&str, &KeyType)> = description
                .key_schema()
                .iter()
                .map(|k| (k.attribute_name(), k.key_type()))
                .collect();
            let expected: Vec<(&str, &KeyType)> = key.iter().map(|(n, k)| (*n, k)).collect();
            if keys != expected {
                return Err(StoreError::Permanent(
                    format!("table {table} exists with another key: {keys:?}").into(),
                ));
            }
            if ready(description)? {
                break;
            }
        }
        if Instant::now() >= deadline {
            return Err(StoreError::Unavailable(
                format!("table {table} not active after {TABLE_READY_TIMEOUT:?}").into(),
            ));
        }
        // Polling a table being created, not a retry: DescribeTable is
        // cheap and the wait is bounded by the deadline.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    enable_ttl(client, table).await
}

/// Turns on TTL on `expires_at`, unless it is on already (DynamoDB refuses
/// to enable it twice). TTL is housekeeping, not correctness: a server that
/// does not implement it is logged, not an error.
async fn enable_ttl(client: &Client, table: &str) -> Result<(), StoreError> {
    let described = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await;
    let current = match described {
        Ok(out) => out.time_to_live_description,
        Err(e) if not_implemented(&e) => {
            tracing::warn!(error = ?e, "this server has no TTL; items will not expire");
            return Ok(());
        }
        Err(e) => return Err(store_error("DescribeTimeToLive", table, e)),
    };
    let status = current.as_ref().and_then(|d| d.time_to_live_status());
    let attribute = current.as_ref().and_then(|d| d.attribute_name());
    match status {
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) => {
            return if attribute == Some(EXPIRES_AT) {
                tracing::info!("TTL on {EXPIRES_AT} already");
                Ok(())
            } else {
                Err(StoreError::Permanent(
                    format!("table {table} has TTL on {attribute:?}, not {EXPIRES_AT:?}").into(),
                ))
            };
        }
        Some(TimeToLiveStatus::Disabling) => {
            // DynamoDB takes up to an hour and refuses changes meanwhile.
            return Err(StoreError::Unavailable(
                format!("TTL of table {table} is being disabled; try again later").into(),
            ));
        }
        _ => {}
    }
    let specification = built(
        TimeToLiveSpecification::builder()
            .attribute_name(EXPIRES_AT)
            .enabled(true)
            .build(),
    )?;
    match client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(specification)
        .send()
        .await
    {
        Ok(_) => {
            tracing::info!("TTL enabled on {EXPIRES_AT}");
            Ok(())
        }
        Err(e) if not_implemented(&e) => {
            tracing::warn!(error = ?e, "this server has no TTL; items will not expire");
            Ok(())
        }
        Err(e) => Err(store_error("UpdateTimeToLive", table, e)),
    }
}

fn not_implemented<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::ServiceError(service) => {
            service.raw().status().as_u16() == 501
                || matches!(
                    service.err().code(),
                    Some(
                        "UnknownOperationException" | "NotImplemented" | "NotImplementedException"
                    )
                )
        }
        _ => false,
    }
}
