//! DynamoDB adapter of the request store port.
//!
//! The table design and the reasons for it are in `docs/jobs-storage.md`.
//! In short: one item per request keyed by `id` (a UUID), one item per
//! idempotency key keyed by `idem#<owner>/<key>` (`jobs::scoped_key`)
//! written in the same transaction,
//! every status change conditional on the request not having finished, and
//! a TTL attribute `expires_at` so that old requests go away by themselves.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeyType, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TableStatus, TransactWriteItem, Update,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::dynamodb_common::{
    CHECK_FAILED, EXPIRES_AT, Item, bad_item, built, cancellation_reasons, create_table_and_wait,
    from_item, on_demand_table, store_error, to_item, transaction_error,
};
use crate::retry::RetryPolicy;
use crate::sdk_error::{Fault, classify};
use people_app::jobs::{JobError, JobKind, RequestRecord, RequestStatus, scoped_key};
use people_app::ports::{Created, Outcome, RequestStore, Started, StoreError};

/// Ids of idempotency items start so. Request ids are UUIDs, so the two
/// kinds of item can never share an id.
pub const IDEMPOTENCY_PREFIX: &str = "idem#";
/// How long a request that has not finished is kept (from its creation):
/// far longer than any retry schedule, so only a request whose message was
/// lost for good expires unfinished.
pub const UNFINISHED_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// How long a finished request stays readable (from when it finished):
/// clients poll for results soon after submitting; a week covers a client
/// that comes back after a weekend.
pub const FINISHED_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// The largest `result_json` written. DynamoDB refuses items over 400 KB
/// (names and values together); the other attributes of a request take
/// well under 1 KB. A report result is about 2 KB; an import result is
/// small unless most of its people are rejected with long reasons.
pub const MAX_RESULT_JSON_BYTES: usize = 395 * 1024;

// Attribute names that expressions use; the items' structs name them all.
const ID: &str = "id";
const STATUS: &str = "status";
const UPDATED_AT: &str = "updated_at";
const RESULT_JSON: &str = "result_json";
const ERROR_CODE: &str = "error_code";
const ERROR_MESSAGE: &str = "error_message";
const ATTEMPTS: &str = "attempts";
/// On an idempotency item: the id of the request it names.
const REQUEST_ID: &str = "request_id";

/// `abandon`: only a request no worker has started.
const ABANDON_CONDITION: &str = "#status = :queued";
const ABANDON_UPDATE: &str = "SET #status = :failed, #updated_at = :now, #expires_at = :expires_at, \
     #error_code = :error_code, #error_message = :error_message";

/// Tries of the create transaction: besides the first, one after a key that
/// vanished or names a request that expired, and retries after another
/// transaction wrote the same key at the same moment.
const CREATE_ATTEMPTS: u32 = 4;

/// Request records in DynamoDB, with the same conditional transitions as
/// `MemoryRequestStore`.
pub struct DynamoRequestStore {
    client: Client,
    table: String,
    /// Backoff between tries of a create cancelled by a conflict.
    retry: RetryPolicy,
}

impl DynamoRequestStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            retry: RetryPolicy::default(),
        }
    }

    /// The item `id`, read consistently (a worker reads right after the
    /// API wrote it).
    async fn item(&self, id: &str) -> Result<Option<Item>, StoreError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ID, AttributeValue::S(id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", &self.table, e))?
            .item)
    }

    async fn read(&self, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        self.item(id).await?.map(record_of).transpose()
    }

    /// The request id an idempotency item names, if the item exists.
    async fn key_target(&self, key_id: &str) -> Result<Option<String>, StoreError> {
        self.item(key_id).await?.map(request_id_of).transpose()
    }

    async fn create_unkeyed(
        &self,
        record: &RequestRecord,
        item: Item,
    ) -> Result<Created, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", ID)
            .send()
            .await;
        match put {
            Ok(_) => Ok(Created::New(record.clone())),
            Err(e) if classify(&e) == Fault::ConditionFailed => self.already_there(record).await,
            Err(e) => Err(store_error("PutItem", &self.table, e)),
        }
    }

    /// The request's id is taken. Either by this very record, written by an
    /// earlier try of this call whose answer was lost, or by another
    /// request: with UUIDs, a bug of the caller's.
    async fn already_there(&self, record: &RequestRecord) -> Result<Created, StoreError> {
        match self.read(&record.id).await? {
            Some(stored) if stored == *record => Ok(Created::New(stored)),
            _ => Err(id_taken(&record.id)),
        }
    }

    async fn create_keyed(
        &self,
        record: &RequestRecord,
        item: Item,
        key: &str,
        expires_at: i64,
    ) -> Result<Created, StoreError> {
        let key_id = key_item_id(record, key);
        let key_item = to_item(&KeyItem {
            id: key_id.clone(),
            request_id: record.id.clone(),
            created_at: record.created_at,
            expires_at,
        })?;
        let request_put = built(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#id)")
                .expression_attribute_names("#id", ID)
                .build(),
        )?;
        // A key item naming a request that no longer exists (it expired
        // first) may be taken over; only that one, so that two takeovers at
        // once cannot both win.
        let mut stale: Option<String> = None;
        let mut delays = self.retry.delays();
        for attempt in 1..=CREATE_ATTEMPTS {
            let mut key_put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(key_item.clone()))
                .expression_attribute_names("#id", ID)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            key_put = match &stale {
                None => key_put.condition_expression("attribute_not_exists(#id)"),
                Some(gone) => key_put
                    .condition_expression("attribute_not_exists(#id) OR #request_id = :gone")
                    .expression_attribute_names("#request_id", REQUEST_ID)
                    .expression_attribute_values(":gone", AttributeValue::S(gone.clone())),
            };
            let written = self
                .client
                .transact_write_items()
                .transact_items(
                    TransactWriteItem::builder()
                        .put(request_put.clone())
                        .build(),
                )
                .transact_items(
                    TransactWriteItem::builder()
                        .put(built(key_put.build())?)
                        .build(),
                )
                .send()
                .await;
            let err = match written {
                Ok(_) => return Ok(Created::New(record.clone())),
                Err(err) => err,
            };
            let reasons = cancellation_reasons(&err);
            let failed =
                |i: usize| reasons.get(i).map(|r| r.0.as_deref()) == Some(Some(CHECK_FAILED));
            if failed(1) {
                // The key is taken: by whom? The failed condition returns the
                // key item; an emulator that does not, is asked.
                let named = match reasons.get(1).and_then(|r| r.1.clone()) {
                    Some(key_item) => Some(request_id_of(key_item)?),
                    None => self.key_target(&key_id).await?,
                };
                match named {
                    // Expired and deleted in between: try again.
                    None => stale = None,
                    // An earlier try of this very call got through.
                    Some(id) if id == record.id => return Ok(Created::New(record.clone())),
                    Some(id) => match self.read(&id).await? {
                        Some(earlier) => return Ok(Created::Existing(earlier)),
                        None => stale = Some(id),
                    },
                }
                continue;
            }
            if failed(0) {
                // Not an earlier try of this call: that would have written
                // the key in the same transaction.
                return Err(id_taken(&record.id));
            }
            // The SDK retried throttling and network errors already; a
            // transaction cancelled by a conflict is ours to try again.
            let cancelled = err.as_service_error().is_some_and(|e| {
                e.is_transaction_canceled_exception() || e.is_transaction_in_progress_exception()
            });
            let error = transaction_error(&self.table, err);
            if cancelled
                && matches!(error, StoreError::Unavailable(_))
                && attempt < CREATE_ATTEMPTS
                && let Some(delay) = delays.next()
            {
                // Most likely a concurrent create with the same key: the next
                // try sees its key item.
                tracing::debug!(attempt, "create transaction cancelled; trying again");
                tokio::time::sleep(delay).await;
                continue;
            }
            return Err(error);
        }
        Err(StoreError::Unavailable(
            format!("the idempotency key item kept changing over {CREATE_ATTEMPTS} tries").into(),
        ))
    }
}

#[async_trait]
impl RequestStore for DynamoRequestStore {
    #[tracing::instrument(
        skip(self, record, idempotency_key),
        fields(table = %self.table, request_id = %record.id, keyed = idempotency_key.is_some())
    )]
    async fn create(
        &self,
        record: &RequestRecord,
        idempotency_key: Option<&str>,
    ) -> Result<Created, StoreError> {
        let expires_at = expiry(record.created_at, UNFINISHED_TTL);
        let item = to_item(&RequestItem::new(record, expires_at)?)?;
        match idempotency_key {
            None => self.create_unkeyed(record, item).await,
            Some(key) => self.create_keyed(record, item, key, expires_at).await,
        }
    }

    #[tracing::instrument(skip(self), fields(table = %self.table))]
    async fn get(&self, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        if id.starts_with(IDEMPOTENCY_PREFIX) {
            return Ok(None);
        }
        self.read(id).await
    }

    #[tracing::instrument(skip_all, fields(table = %self.table, request_id = %record.id))]
    async fn abandon(
        &self,
        record: &RequestRecord,
        idempotency_key: Option<&str>,
        error: JobError,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let names = HashMap::from([
            ("#status".to_owned(), STATUS.to_owned()),
            ("#updated_at".to_owned(), UPDATED_AT.to_owned()),
            ("#expires_at".to_owned(), EXPIRES_AT.to_owned()),
            ("#error_code".to_owned(), ERROR_CODE.to_owned()),
            ("#error_message".to_owned(), ERROR_MESSAGE.to_owned()),
        ]);
        let values = HashMap::from([
            (":queued".to_owned(), status_value(RequestStatus::Queued)),
            (":failed".to_owned(), status_value(RequestStatus::Failed)),
            (":now".to_owned(), AttributeValue::S(timestamp(now))),
            (
                ":expires_at".to_owned(),
                AttributeValue::N(expiry(now, FINISHED_TTL).to_string()),
            ),
            (
                ":error_code".to_owned(),
                AttributeValue::S(error.code.clone()),
            ),
            (
                ":error_message".to_owned(),
                AttributeValue::S(error.message.clone()),
            ),
        ]);
        let Some(key) = idempotency_key else {
            let updated = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(ID, AttributeValue::S(record.id.clone()))
                .condition_expression(ABANDON_CONDITION)
                .update_expression(ABANDON_UPDATE)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .send()
                .await;
            return match updated {
                Ok(_) => Ok(true),
                Err(e) if classify(&e) == Fault::ConditionFailed => Ok(false),
                Err(e) => Err(store_error("UpdateItem", &self.table, e)),
            };
        };
        // The request failed and its key freed in one transaction, so that
        // the key never names a request nobody will process.
        let update = built(
            Update::builder()
                .table_name(&self.table)
                .key(ID, AttributeValue::S(record.id.clone()))
                .condition_expression(ABANDON_CONDITION)
                .update_expression(ABANDON_UPDATE)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .build(),
        )?;
        let delete = built(
            Delete::builder()
                .table_name(&self.table)
                .key(ID, AttributeValue::S(key_item_id(record, key)))
                .condition_expression("#request_id = :id")
                .expression_attribute_names("#request_id", REQUEST_ID)
                .expression_attribute_values(":id", AttributeValue::S(record.id.clone()))
                .build(),
        )?;
        let written = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .send()
            .await;
        let err = match written {
            Ok(_) => return Ok(true),
            Err(err) => err,
        };
        let reasons = cancellation_reasons(&err);
        let failed = |i: usize| reasons.get(i).map(|r| r.0.as_deref()) == Some(Some(CHECK_FAILED));
        if failed(0) {
            // A worker started it: the message did go out.
            return Ok(false);
        }
        if failed(1) {
            // The key no longer names this request (it expired): fail the
            // request alone.
            return self.abandon(record, None, error, now).await;
        }
        Err(transaction_error(&self.table, err))
    }

    #[tracing::instrument(skip(self), fields(table = %self.table))]
    async fn start(&self, id: &str, now: DateTime<Utc>) -> Result<Started, StoreError> {
        if id.starts_with(IDEMPOTENCY_PREFIX) {
            return Ok(Started::Missing);
        }
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(ID, AttributeValue::S(id.to_owned()))
            .condition_expression("#status IN (:queued, :processing)")
            .update_expression(
                "SET #status = :processing, #updated_at = :now, \
                 #attempts = if_not_exists(#attempts, :zero) + :one",
            )
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#updated_at", UPDATED_AT)
            .expression_attribute_names("#attempts", ATTEMPTS)
            .expression_attribute_values(":queued", status_value(RequestStatus::Queued))
            .expression_attribute_values(":processing", status_value(RequestStatus::Processing))
            .expression_attribute_values(":now", AttributeValue::S(timestamp(now)))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let failed = match updated {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                return Ok(Started::Started(record_of(item)?));
            }
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    failed.item().cloned()
                }
                _ => return Err(store_error("UpdateItem", &self.table, e)),
            },
        };
        // The condition failed on the item it returns (atomically); without
        // one, the item is missing, or the server does not return it: read.
        let current = match failed {
            Some(item) => Some(record_of(item)?),
            None => self.read(id).await?,
        };
        match current {
            None => Ok(Started::Missing),
            Some(record) if record.status.is_final() => Ok(Started::Finished(record)),
            // Only if the request was created between the update and the
            // read, which its creator does before queueing it.
            Some(record) => Err(StoreError::Unavailable(
                format!("request {:?} changed while being started", record.id).into(),
            )),
        }
    }

    #[tracing::instrument(skip(self, outcome), fields(table = %self.table, failed = matches!(outcome, Outcome::Failed(_))))]
    async fn finish(
        &self,
        id: &str,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if id.starts_with(IDEMPOTENCY_PREFIX) {
            return Ok(false);
        }
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(ID, AttributeValue::S(id.to_owned()))
            .condition_expression("attribute_exists(#id) AND #status IN (:queued, :processing)")
            .expression_attribute_names("#id", ID)
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#updated_at", UPDATED_AT)
            .expression_attribute_names("#expires_at", EXPIRES_AT)
            .expression_attribute_values(":queued", status_value(RequestStatus::Queued))
            .expression_attribute_values(":processing", status_value(RequestStatus::Processing))
            .expression_attribute_values(":now", AttributeValue::S(timestamp(now)))
            .expression_attribute_values(
                ":expires_at",
                AttributeValue::N(expiry(now, FINISHED_TTL).to_string()),
            );
        let update = match outcome {
            Outcome::Completed(result) => update
                .update_expression(
                    "SET #status = :status, #updated_at = :now, #expires_at = :expires_at, \
                     #result_json = :result_json",
                )
                .expression_attribute_names("#result_json", RESULT_JSON)
                .expression_attribute_values(":status", status_value(RequestStatus::Completed))
                .expression_attribute_values(
                    ":result_json",
                    AttributeValue::S(result_json(id, &result)?),
                ),
            Outcome::Failed(error) => update
                .update_expression(
                    "SET #status = :status, #updated_at = :now, #expires_at = :expires_at, \
                     #error_code = :error_code, #error_message = :error_message",
                )
                .expression_attribute_names("#error_code", ERROR_CODE)
                .expression_attribute_names("#error_message", ERROR_MESSAGE)
                .expression_attribute_values(":status", status_value(RequestStatus::Failed))
                .expression_attribute_values(":error_code", AttributeValue::S(error.code))
                .expression_attribute_values(":error_message", AttributeValue::S(error.message)),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if classify(&e) == Fault::ConditionFailed => Ok(false),
            Err(e) => Err(store_error("UpdateItem", &self.table, e)),
        }
    }

    /// A Scan of the whole table with a filter: run by the sweeper every
    /// few minutes, it reads every item once per run (requests expire
    /// through TTL, so the table holds about a week of them). Consistent,
    /// so a request started just now is seen as started.
    #[tracing::instrument(skip(self), fields(table = %self.table))]
    async fn stale(
        &self,
        started_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .filter_expression("#status = :processing AND #updated_at < :before")
                .expression_attribute_names("#status", STATUS)
                .expression_attribute_names("#updated_at", UPDATED_AT)
                .expression_attribute_values(":processing", status_value(RequestStatus::Processing))
                .expression_attribute_values(
                    ":before",
                    AttributeValue::S(timestamp(started_before)),
                )
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("Scan", &self.table, e))?;
            for item in page.items.unwrap_or_default() {
                let record = record_of(item)?;
                // As text, timestamps order exactly only to the second
                // (fractions have varying lengths): the exact check is here,
                // and one the filter missed by a fraction is the next run's.
                if record.updated_at < started_before {
                    found.push(record);
                    if found.len() >= limit {
                        return Ok(found);
                    }
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(found),
            }
        }
    }
}

/// Creates the requests table (partition key `id`, on demand billing),
/// waits until it is active, and turns on TTL on `expires_at`. A table that
/// exists already is fine if its key is `id`; TTL already on is fine if it
/// is on `expires_at`.
#[tracing::instrument(skip(client))]
pub async fn create_requests_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let key = [(ID, KeyType::Hash)];
    let create = on_demand_table(client, table, &[(ID, ScalarAttributeType::S)], &key)?;
    create_table_and_wait(client, table, create, &key, |t| {
        Ok(t.table_status() == Some(&TableStatus::Active))
    })
    .await
}

/// A result over what an item can hold.
#[derive(Debug, thiserror::Error)]
#[error(
    "the result of request {id:?} is {bytes} bytes of JSON, over the {MAX_RESULT_JSON_BYTES} a DynamoDB item can hold"
)]
pub struct ResultTooLarge {
    id: String,
    bytes: usize,
}

fn id_taken(id: &str) -> StoreError {
    StoreError::Permanent(format!("request id {id:?} is used by another request").into())
}

/// Epoch seconds of `from + ttl`, as DynamoDB TTL wants them.
fn expiry(from: DateTime<Utc>, ttl: Duration) -> i64 {
    from.timestamp()
        .saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX))
}

/// RFC 3339 in UTC with all the precision there is, so that a record reads
/// back equal to what was written.
fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Timestamps in items: [`timestamp`]'s text.
mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::timestamp(*t))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not RFC 3339: {e}")))
    }
}

/// A kind or status as stored: the name serde gives it, as in the API.
fn status_value(status: RequestStatus) -> AttributeValue {
    serde_dynamo::to_attribute_value(status)
        .unwrap_or_else(|e| unreachable!("a unit variant serializes: {e}"))
}

fn result_json(id: &str, result: &serde_json::Value) -> Result<String, StoreError> {
    let json = result.to_string();
    if json.len() > MAX_RESULT_JSON_BYTES {
        return Err(StoreError::Permanent(Box::new(ResultTooLarge {
            id: id.to_owned(),
            bytes: json.len(),
        })));
    }
    Ok(json)
}

/// A request's item. The result is JSON text (`result_json`), the error
/// two attributes; absent options are absent attributes.
#[derive(Debug, Serialize, Deserialize)]
struct RequestItem {
    id: String,
    kind: JobKind,
    status: RequestStatus,
    #[serde(with = "rfc3339")]
    created_at: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    updated_at: DateTime<Utc>,
    #[serde(default)]
    attempts: u32,
    /// Epoch seconds; TTL's, never read back.
    #[serde(skip_deserializing)]
    expires_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    result_json: Option<String>,
    /// The `sub` of the caller who submitted the request (absent: anonymous).
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    /// The fingerprint of the submitted job (`jobs::fingerprint`).
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

impl RequestItem {
    fn new(r: &RequestRecord, expires_at: i64) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.id.clone(),
            kind: r.kind,
            status: r.status,
            created_at: r.created_at,
            updated_at: r.updated_at,
            attempts: r.attempts,
            expires_at,
            result_json: r
                .result
                .as_ref()
                .map(|result| result_json(&r.id, result))
                .transpose()?,
            owner: r.owner.clone(),
            fingerprint: r.fingerprint.clone(),
            error_code: r.error.as_ref().map(|e| e.code.clone()),
            error_message: r.error.as_ref().map(|e| e.message.clone()),
        })
    }
}

/// An idempotency key's item: which request it names.
#[derive(Debug, Serialize, Deserialize)]
struct KeyItem {
    id: String,
    request_id: String,
    #[serde(with = "rfc3339")]
    created_at: DateTime<Utc>,
    expires_at: i64,
}

const A_REQUEST: &str = "a request";

fn record_of(item: Item) -> Result<RequestRecord, StoreError> {
    let item: RequestItem = from_item(A_REQUEST, ID, item)?;
    let result = item
        .result_json
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| {
            bad_item(
                A_REQUEST,
                &item.id,
                format!("`{RESULT_JSON}` is not JSON: {e}"),
            )
        })?;
    let error = match (item.error_code, item.error_message) {
        (None, None) => None,
        (code, message) => Some(JobError {
            code: code.unwrap_or_default(),
            message: message.unwrap_or_default(),
        }),
    };
    Ok(RequestRecord {
        id: item.id,
        kind: item.kind,
        status: item.status,
        created_at: item.created_at,
        updated_at: item.updated_at,
        result,
        error,
        attempts: item.attempts,
        owner: item.owner,
        fingerprint: item.fingerprint,
    })
}

/// The id of the item of `record`'s idempotency key: scoped to its owner.
fn key_item_id(record: &RequestRecord, key: &str) -> String {
    format!(
        "{IDEMPOTENCY_PREFIX}{}",
        scoped_key(record.owner.as_deref(), key)
    )
}

/// The request an idempotency item names. Only `request_id` is needed,
/// so only it is read: an item handed back by a failed condition is whole,
/// but nothing else of it matters here.
fn request_id_of(item: Item) -> Result<String, StoreError> {
    #[derive(Deserialize)]
    struct Target {
        request_id: String,
    }
    from_item::<Target>("an idempotency key", ID, item).map(|t| t.request_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn record() -> RequestRecord {
        let created = Utc.timestamp_opt(1_750_000_000, 123_456_789).unwrap();
        RequestRecord {
            id: "7d0c5a7e-0000-4000-8000-000000000001".into(),
            kind: JobKind::Import,
            status: RequestStatus::Failed,
            created_at: created,
            updated_at: created + chrono::TimeDelta::seconds(3),
            result: Some(serde_json::json!({"accepted": 1, "rejected": [{"index": 0}]})),
            error: Some(JobError {
                code: "gave_up".into(),
                message: "processing failed 3 times".into(),
            }),
            attempts: 3,
            owner: Some("sub-1".into()),
            fingerprint: Some("f1".into()),
        }
    }

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.into())
    }

    #[test]
    fn items_keep_the_attributes_the_table_has_always_had() {
        let r = record();
        let item = to_item(&RequestItem::new(&r, 42).unwrap()).unwrap();
        assert_eq!(
            item,
            HashMap::from([
                ("id".into(), s(&r.id)),
                ("kind".into(), s("import")),
                ("status".into(), s("failed")),
                ("created_at".into(), s("2025-06-15T15:06:40.123456789Z")),
                ("updated_at".into(), s("2025-06-15T15:06:43.123456789Z")),
                ("attempts".into(), AttributeValue::N("3".into())),
                ("expires_at".into(), AttributeValue::N("42".into())),
                (
                    "result_json".into(),
                    s(r#"{"accepted":1,"rejected":[{"index":0}]}"#)
                ),
                ("owner".into(), s("sub-1")),
                ("fingerprint".into(), s("f1")),
                ("error_code".into(), s("gave_up")),
                ("error_message".into(), s("processing failed 3 times")),
            ])
        );
        // Absent options are absent attributes, not NULLs.
        let bare = RequestRecord {
            result: None,
            error: None,
            owner: None,
            fingerprint: None,
            ..r
        };
        let item = to_item(&RequestItem::new(&bare, 42).unwrap()).unwrap();
        assert_eq!(item.len(), 7, "{item:?}");
        let key = to_item(&KeyItem {
            id: "idem#k".into(),
            request_id: bare.id.clone(),
            created_at: bare.created_at,
            expires_at: 42,
        })
        .unwrap();
        assert_eq!(
            key,
            HashMap::from([
                ("id".into(), s("idem#k")),
                ("request_id".into(), s(&bare.id)),
                ("created_at".into(), s("2025-06-15T15:06:40.123456789Z")),
                ("expires_at".into(), AttributeValue::N("42".into())),
            ])
        );
        assert_eq!(request_id_of(key).unwrap(), bare.id);
    }

    #[test]
    fn items_round_trip_to_the_nanosecond() {
        let r = record();
        let item = to_item(&RequestItem::new(&r, 42).unwrap()).unwrap();
        assert_eq!(record_of(item).unwrap(), r);
        let bare = RequestRecord {
            result: None,
            error: None,
            owner: None,
            fingerprint: None,
            ..record()
        };
        let mut item = to_item(&RequestItem::new(&bare, 42).unwrap()).unwrap();
        // Items of before `attempts` was counted read as 0.
        item.remove(ATTEMPTS);
        assert_eq!(
            record_of(item).unwrap(),
            RequestRecord {
                attempts: 0,
                ..bare
            }
        );
    }

    #[test]
    fn expiry_is_in_epoch_seconds() {
        let r = record();
        assert_eq!(
            expiry(r.created_at, UNFINISHED_TTL),
            1_750_000_000 + 30 * 86_400
        );
    }

    #[test]
    fn a_result_too_large_for_an_item_is_a_permanent_error() {
        let big = serde_json::Value::String("x".repeat(MAX_RESULT_JSON_BYTES));
        let err = result_json("r1", &big).unwrap_err();
        assert!(matches!(err, StoreError::Permanent(_)));
    }

    #[test]
    fn an_item_of_another_shape_is_an_error_naming_its_id() {
        let mut item = to_item(&RequestItem::new(&record(), 1).unwrap()).unwrap();
        item.insert(STATUS.into(), AttributeValue::S("sleeping".into()));
        let err = record_of(item).unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(
            source.contains("7d0c5a7e") && source.contains("sleeping"),
            "{source}"
        );
    }
}
