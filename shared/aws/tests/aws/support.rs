//! What the modules of this test binary share: clients for its moto
//! server, unique resource names, and the macro that runs a store scenario
//! on the memory double and on the DynamoDB adapter.

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
