//! What the modules of this test binary share: clients for its moto
//! server, unique resource names, SQS receives, the TTL check, the
//! DynamoDB operation of an intercepted request, and the macro that runs
//! a store scenario on the memory double and on the DynamoDB adapter.

use std::collections::HashMap;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use people_testkit::moto;

static NAMES: AtomicUsize = AtomicUsize::new(0);

/// A DynamoDB client for the test binary's moto server (started on first
/// use, which blocks: hence `block_in_place`).
pub(crate) fn moto_client() -> aws_sdk_dynamodb::Client {
    tokio::task::block_in_place(moto::client)
}

/// An SQS client for the same moto server.
pub(crate) fn moto_sqs_client() -> aws_sdk_sqs::Client {
    tokio::task::block_in_place(moto::sqs_client)
}

/// A name no other test of this binary uses: `{prefix}-{name}-{n}`.
pub(crate) fn unique(prefix: &str, name: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        name.replace('_', "-"),
        NAMES.fetch_add(1, Ordering::Relaxed)
    )
}

/// A DynamoDB item as stored (a consistent read).
pub(crate) async fn raw_item(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    id: &str,
) -> HashMap<String, AttributeValue> {
    client
        .get_item()
        .table_name(table)
        .key("id", AttributeValue::S(id.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_else(|| panic!("no item {id}"))
}

/// A number attribute of an item.
pub(crate) fn number(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    match &item[name] {
        AttributeValue::N(n) => n.parse().unwrap(),
        other => panic!("{name} is {other:?}"),
    }
}

/// A port that nothing listens on.
pub(crate) fn closed_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// An error and its sources, `outer <- inner <- ...`.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(" <- ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Each scenario (a function of `people_testkit::scenarios`, imported into
/// the calling module) twice: on the memory double (`$memory`, an
/// expression) and on DynamoDB (`$dynamo(name)`, a fresh table per test).
macro_rules! on_both_stores {
    ($memory:expr, $dynamo:ident; $($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                use super::*;
                let store = $memory;
                super::$scenario(&store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dynamodb() {
                let store = super::$dynamo(stringify!($scenario)).await;
                super::$scenario(&store).await;
            }
        }
    )*};
}

pub(crate) use on_both_stores;

/// The messages `url` hands out now (waiting up to 1 s), with the queue's
/// own visibility timeout.
pub(crate) async fn receive(
    client: &aws_sdk_sqs::Client,
    url: &str,
) -> Vec<aws_sdk_sqs::types::Message> {
    client
        .receive_message()
        .queue_url(url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

/// Asserts that `table` expires its items by `expires_at`.
pub(crate) async fn assert_ttl_on_expires_at(client: &aws_sdk_dynamodb::Client, table: &str) {
    let ttl = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(
        ttl.time_to_live_status(),
        Some(&aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled)
    );
}

/// The DynamoDB operation of a request on the wire (`BatchWriteItem` of
/// `x-amz-target: DynamoDB_20120810.BatchWriteItem`).
pub(crate) fn dynamodb_operation(request: &aws_smithy_runtime_api::http::Request) -> String {
    let target = request.headers().get("x-amz-target").unwrap_or_default();
    target.rsplit('.').next().unwrap_or_default().to_owned()
}
