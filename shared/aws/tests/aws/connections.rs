//! The connection store: each scenario of
//! `people_testkit::scenarios::connections` on `MemoryConnectionStore` and on
//! `DynamoConnectionStore`, then the table's own setup and TTL.

use crate::support::*;
use people_testkit::scenarios::connections::*;

use chrono::{TimeDelta, Utc};
use people_app::memory::connections::MemoryConnectionStore;
use people_app::ports::{CONNECTION_TTL, ConnectionStore};
use people_aws::dynamodb_connections::{DynamoConnectionStore, create_connections_table};

async fn dynamo_connections(name: &str) -> DynamoConnectionStore {
    let client = moto_client();
    let table = unique("connections", name);
    create_connections_table(&client, &table).await.unwrap();
    DynamoConnectionStore::new(client, table)
}

on_both_stores!(
    MemoryConnectionStore::new(), dynamo_connections;
    connections_scenario_subscribe_then_disconnect,
    connections_scenario_expired_subscriptions_are_not_followers,
    connections_scenario_a_connection_with_many_subscriptions_leaves_none,
    connections_scenario_subscriptions_of_a_connection_are_counted,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connections_table_is_made_once_with_ttl_and_items_expire() {
    let client = moto_client();
    let table = unique("connections", "setup");
    create_connections_table(&client, &table).await.unwrap();
    create_connections_table(&client, &table).await.unwrap();
    assert_ttl_on_expires_at(&client, &table).await;

    let store = DynamoConnectionStore::new(client.clone(), &table);
    let now = Utc::now();
    store.connect("c", now).await.unwrap();
    store.subscribe("c", "r", now).await.unwrap();
    let items = client
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap();
    assert_eq!(
        items.len(),
        3,
        "connection, subscription, follower: {items:?}"
    );
    let expected = (now + TimeDelta::from_std(CONNECTION_TTL).unwrap()).timestamp();
    for item in &items {
        assert_eq!(number(item, "expires_at"), expected, "{item:?}");
    }
}
