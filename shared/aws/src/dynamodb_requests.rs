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
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, KeySchemaElement, KeyType, Put,
    ReturnValue, ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem, Update,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::dynamodb::{create_table_and_wait, store_error};
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

const ID: &str = "id";
const KIND: &str = "kind";
const STATUS: &str = "status";
const CREATED_AT: &str = "created_at";
const UPDATED_AT: &str = "updated_at";
const RESULT_JSON: &str = "result_json";
const ERROR_CODE: &str = "error_code";
const ERROR_MESSAGE: &str = "error_message";
const ATTEMPTS: &str = "attempts";
const EXPIRES_AT: &str = "expires_at";
/// On an idempotency item: the id of the request it names.
const REQUEST_ID: &str = "request_id";
/// The `sub` of the caller who submitted the request (absent: anonymous).
const OWNER: &str = "owner";
/// The fingerprint of the submitted job (`jobs::fingerprint`).
const FINGERPRINT: &str = "fingerprint";

/// `abandon`: only a request no worker has started.
const ABANDON_CONDITION: &str = "#status = :queued";
const ABANDON_UPDATE: &str = "SET #status = :failed, #updated_at = :now, #expires_at = :expires_at, \
     #error_code = :error_code, #error_message = :error_message";

/// Tries of the create transaction: besides the first, one after a key that
/// vanished or names a request that expired, and retries after another
/// transaction wrote the same key at the same moment.
const CREATE_ATTEMPTS: u32 = 4;

type Item = HashMap<String, AttributeValue>;

/// Request records in DynamoDB, with the same conditional transitions as
/// `MemoryRequestStore`.
pub struct DynamoRequestStore {
    client: Client,
    table: String,
}

impl DynamoRequestStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The request `id`, read consistently (a worker reads right after the
    /// API wrote it).
    async fn read(&self, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ID, AttributeValue::S(id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", &self.table, e))?
            .item;
        item.as_ref().map(from_item).transpose()
    }

    /// The request id an idempotency item names, if the item exists.
    async fn key_target(&self, key_id: &str) -> Result<Option<String>, StoreError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ID, AttributeValue::S(key_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", &self.table, e))?
            .item;
        item.as_ref().map(|i| request_id_of(key_id, i)).transpose()
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
            Err(e)
                if e.as_service_error()
                    .is_some_and(PutItemError::is_conditional_check_failed_exception) =>
            {
                self.already_there(record).await
            }
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
        let key_item: Item = HashMap::from([
            (ID.into(), AttributeValue::S(key_id.clone())),
            (REQUEST_ID.into(), AttributeValue::S(record.id.clone())),
            (
                CREATED_AT.into(),
                AttributeValue::S(timestamp(record.created_at)),
            ),
            (EXPIRES_AT.into(), AttributeValue::N(expires_at.to_string())),
        ]);
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
            let reasons = cancellation_codes(&err);
            let failed =
                |i: usize| reasons.get(i).map(|r| r.0.as_deref()) == Some(Some(CHECK_FAILED));
            if failed(1) {
                // The key is taken: by whom? The failed condition returns the
                // key item; an emulator that does not, is asked.
                let named = match reasons.get(1).and_then(|r| r.1.as_ref()) {
                    Some(key_item) => Some(request_id_of(&key_id, key_item)?),
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
            if cancelled && matches!(error, StoreError::Unavailable(_)) && attempt < CREATE_ATTEMPTS
            {
                // Most likely a concurrent create with the same key: the next
                // try sees its key item.
                tracing::debug!(attempt, "create transaction cancelled; trying again");
                tokio::time::sleep(Duration::from_millis(20) * 2u32.pow(attempt - 1)).await;
                continue;
            }
            return Err(error);
        }
        Err(StoreError::Unavailable(
            format!("the idempotency key item kept changing over {CREATE_ATTEMPTS} tries").into(),
        ))
    }
}

const CHECK_FAILED: &str = "ConditionalCheckFailed";

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
        let item = to_item(record, expires_at)?;
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
                Err(e)
                    if e.as_service_error()
                        .is_some_and(UpdateItemError::is_conditional_check_failed_exception) =>
                {
                    Ok(false)
                }
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
        let reasons = cancellation_codes(&err);
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
                return Ok(Started::Started(from_item(&item)?));
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
            Some(item) => Some(from_item(&item)?),
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
                .expression_attribute_values(":result_json", result_json(id, &result)?),
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
            Err(e)
                if e.as_service_error()
                    .is_some_and(UpdateItemError::is_conditional_check_failed_exception) =>
            {
                Ok(false)
            }
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
            for item in page.items() {
                let record = from_item(item)?;
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
    let create = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(built(
            AttributeDefinition::builder()
                .attribute_name(ID)
                .attribute_type(ScalarAttributeType::S)
                .build(),
        )?)
        .key_schema(built(
            KeySchemaElement::builder()
                .attribute_name(ID)
                .key_type(KeyType::Hash)
                .build(),
        )?);
    create_table_and_wait(client, table, create, |t| {
        let keys: Vec<(&str, &KeyType)> = t
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name(), k.key_type()))
            .collect();
        if keys != [(ID, &KeyType::Hash)] {
            return Err(StoreError::Permanent(
                format!("table {table} exists with another key: {keys:?}").into(),
            ));
        }
        Ok(t.table_status() == Some(&TableStatus::Active))
    })
    .await?;
    enable_ttl(client, table).await
}

/// Turns on TTL on `expires_at`, unless it is on already (DynamoDB refuses
/// to enable it twice). TTL is housekeeping, not correctness: a server that
/// does not implement it is logged, not an error.
pub(crate) async fn enable_ttl(client: &Client, table: &str) -> Result<(), StoreError> {
    let described = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await;
    let current = match described {
        Ok(out) => out.time_to_live_description,
        Err(e) if not_implemented(&e) => {
            tracing::warn!(error = ?e, "this server has no TTL; requests will not expire");
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
            tracing::warn!(error = ?e, "this server has no TTL; requests will not expire");
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

/// `store_error`, plus what only a transaction says: cancelled because
/// another transaction was writing the same item, or throttled, is worth
/// retrying.
fn transaction_error(
    table: &str,
    err: SdkError<TransactWriteItemsError, HttpResponse>,
) -> StoreError {
    const RETRYABLE_REASONS: &[&str] = &[
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
    ];
    let retryable = err.as_service_error().is_some_and(|e| {
        e.is_transaction_in_progress_exception()
            || cancellation_codes_of(e).iter().any(|(code, _)| {
                code.as_deref()
                    .is_some_and(|c| RETRYABLE_REASONS.contains(&c))
            })
    });
    match store_error("TransactWriteItems", table, err) {
        StoreError::Permanent(source) if retryable => StoreError::Unavailable(source),
        other => other,
    }
}

/// Per item of a cancelled transaction: its reason code, and the item that
/// failed its condition (when asked for with `ALL_OLD`).
fn cancellation_codes(
    err: &SdkError<TransactWriteItemsError, HttpResponse>,
) -> Vec<(Option<String>, Option<Item>)> {
    err.as_service_error()
        .map(cancellation_codes_of)
        .unwrap_or_default()
}

fn cancellation_codes_of(err: &TransactWriteItemsError) -> Vec<(Option<String>, Option<Item>)> {
    match err {
        TransactWriteItemsError::TransactionCanceledException(cancelled) => cancelled
            .cancellation_reasons()
            .iter()
            .map(|r| (r.code().map(str::to_owned), r.item().cloned()))
            .collect(),
        _ => Vec::new(),
    }
}

/// An item that is not a request (or idempotency key) as this adapter
/// writes them.
#[derive(Debug, thiserror::Error)]
#[error("item {id:?} cannot be read as a request: {problem}")]
pub struct BadRequestItem {
    id: String,
    problem: String,
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

fn bad_item(id: &str, problem: impl Into<String>) -> StoreError {
    StoreError::Permanent(Box::new(BadRequestItem {
        id: id.to_owned(),
        problem: problem.into(),
    }))
}

fn built<T>(result: Result<T, BuildError>) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::Permanent(Box::new(e)))
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

/// The name serde gives a unit variant: storage and the API spell kinds
/// and statuses the same way.
fn variant_name<T: Serialize>(value: T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        other => unreachable!("a unit variant serializes to a string, not {other:?}"),
    }
}

fn status_value(status: RequestStatus) -> AttributeValue {
    AttributeValue::S(variant_name(status))
}

fn result_json(id: &str, result: &serde_json::Value) -> Result<AttributeValue, StoreError> {
    let json = result.to_string();
    if json.len() > MAX_RESULT_JSON_BYTES {
        return Err(StoreError::Permanent(Box::new(ResultTooLarge {
            id: id.to_owned(),
            bytes: json.len(),
        })));
    }
    Ok(AttributeValue::S(json))
}

fn to_item(r: &RequestRecord, expires_at: i64) -> Result<Item, StoreError> {
    let mut item: Item = HashMap::from([
        (ID.into(), AttributeValue::S(r.id.clone())),
        (KIND.into(), AttributeValue::S(variant_name(r.kind))),
        (STATUS.into(), status_value(r.status)),
        (
            CREATED_AT.into(),
            AttributeValue::S(timestamp(r.created_at)),
        ),
        (
            UPDATED_AT.into(),
            AttributeValue::S(timestamp(r.updated_at)),
        ),
        (ATTEMPTS.into(), AttributeValue::N(r.attempts.to_string())),
        (EXPIRES_AT.into(), AttributeValue::N(expires_at.to_string())),
    ]);
    if let Some(result) = &r.result {
        item.insert(RESULT_JSON.into(), result_json(&r.id, result)?);
    }
    if let Some(owner) = &r.owner {
        item.insert(OWNER.into(), AttributeValue::S(owner.clone()));
    }
    if let Some(fingerprint) = &r.fingerprint {
        item.insert(FINGERPRINT.into(), AttributeValue::S(fingerprint.clone()));
    }
    if let Some(error) = &r.error {
        item.insert(ERROR_CODE.into(), AttributeValue::S(error.code.clone()));
        item.insert(
            ERROR_MESSAGE.into(),
            AttributeValue::S(error.message.clone()),
        );
    }
    Ok(item)
}

fn from_item(item: &Item) -> Result<RequestRecord, StoreError> {
    let id = match item.get(ID) {
        Some(AttributeValue::S(id)) => id.clone(),
        _ => return Err(bad_item("<no id>", "no string attribute `id`")),
    };
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(bad_item(&id, format!("`{name}` is not a string"))),
        None => Ok(None),
    };
    let required =
        |name: &str| text(name)?.ok_or_else(|| bad_item(&id, format!("`{name}` is missing")));
    let time = |name: &str| -> Result<DateTime<Utc>, StoreError> {
        let value = required(name)?;
        DateTime::parse_from_rfc3339(value)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| bad_item(&id, format!("`{name}` {value:?} is not RFC 3339: {e}")))
    };
    let kind: JobKind = parse_variant(&id, KIND, required(KIND)?)?;
    let status: RequestStatus = parse_variant(&id, STATUS, required(STATUS)?)?;
    let attempts = match item.get(ATTEMPTS) {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| bad_item(&id, format!("`{ATTEMPTS}` {n:?} is not a count")))?,
        Some(_) => return Err(bad_item(&id, format!("`{ATTEMPTS}` is not a number"))),
        None => 0,
    };
    let result = text(RESULT_JSON)?
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| bad_item(&id, format!("`{RESULT_JSON}` is not JSON: {e}")))?;
    let error = match (text(ERROR_CODE)?, text(ERROR_MESSAGE)?) {
        (None, None) => None,
        (code, message) => Some(JobError {
            code: code.unwrap_or_default().to_owned(),
            message: message.unwrap_or_default().to_owned(),
        }),
    };
    let owner = text(OWNER)?.map(str::to_owned);
    let fingerprint = text(FINGERPRINT)?.map(str::to_owned);
    Ok(RequestRecord {
        kind,
        status,
        created_at: time(CREATED_AT)?,
        updated_at: time(UPDATED_AT)?,
        result,
        error,
        attempts,
        owner,
        fingerprint,
        id,
    })
}

fn parse_variant<T: DeserializeOwned>(
    id: &str,
    attribute: &str,
    value: &str,
) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(value.to_owned()))
        .map_err(|_| bad_item(id, format!("`{attribute}` {value:?} is unknown")))
}

/// The id of the item of `record`'s idempotency key: scoped to its owner.
fn key_item_id(record: &RequestRecord, key: &str) -> String {
    format!(
        "{IDEMPOTENCY_PREFIX}{}",
        scoped_key(record.owner.as_deref(), key)
    )
}

fn request_id_of(key_id: &str, item: &Item) -> Result<String, StoreError> {
    match item.get(REQUEST_ID) {
        Some(AttributeValue::S(id)) => Ok(id.clone()),
        _ => Err(bad_item(key_id, "an idempotency item without `request_id`")),
    }
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

    #[test]
    fn items_round_trip_to_the_nanosecond() {
        let r = record();
        let item = to_item(&r, 42).unwrap();
        assert_eq!(item[STATUS], AttributeValue::S("failed".into()));
        assert_eq!(item[KIND], AttributeValue::S("import".into()));
        assert_eq!(item[EXPIRES_AT], AttributeValue::N("42".into()));
        assert_eq!(from_item(&item).unwrap(), r);
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
        let mut item = to_item(&record(), 1).unwrap();
        item.insert(STATUS.into(), AttributeValue::S("sleeping".into()));
        let err = from_item(&item).unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(
            source.contains("7d0c5a7e") && source.contains("sleeping"),
            "{source}"
        );
    }
}
