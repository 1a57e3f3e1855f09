//! The connection store's scenarios.

use chrono::{TimeDelta, Utc};
use people_app::ports::{CONNECTION_TTL, ConnectionStore};

pub async fn connections_scenario_subscribe_then_disconnect(store: &dyn ConnectionStore) {
    let now = Utc::now();
    for c in ["c1", "c2", "c3"] {
        store.connect(c, now).await.unwrap();
    }
    store.subscribe("c1", "r1", now).await.unwrap();
    store.subscribe("c2", "r1", now).await.unwrap();
    store.subscribe("c2", "r2", now).await.unwrap();
    // Subscribing twice is one subscription.
    store.subscribe("c2", "r2", now).await.unwrap();
    assert_eq!(store.subscribers("r1", now).await.unwrap(), ["c1", "c2"]);
    assert_eq!(store.subscribers("r2", now).await.unwrap(), ["c2"]);
    assert!(store.subscribers("r3", now).await.unwrap().is_empty());

    store.disconnect("c2").await.unwrap();
    assert_eq!(store.subscribers("r1", now).await.unwrap(), ["c1"]);
    assert!(store.subscribers("r2", now).await.unwrap().is_empty());
    // Disconnecting twice, or a connection never seen, is fine.
    store.disconnect("c2").await.unwrap();
    store.disconnect("never").await.unwrap();

    store.unsubscribe("c1", "r1").await.unwrap();
    assert!(store.subscribers("r1", now).await.unwrap().is_empty());
}

pub async fn connections_scenario_expired_subscriptions_are_not_followers(
    store: &dyn ConnectionStore,
) {
    let then = Utc::now() - TimeDelta::hours(3);
    store.connect("old", then).await.unwrap();
    store.subscribe("old", "r", then).await.unwrap();
    let ttl = TimeDelta::from_std(CONNECTION_TTL).unwrap();
    assert_eq!(
        store
            .subscribers("r", then + ttl - TimeDelta::seconds(1))
            .await
            .unwrap(),
        ["old"]
    );
    // Past the TTL, before any sweeper removed the item.
    assert!(store.subscribers("r", Utc::now()).await.unwrap().is_empty());
}

pub async fn connections_scenario_a_connection_with_many_subscriptions_leaves_none(
    store: &dyn ConnectionStore,
) {
    let now = Utc::now();
    store.connect("busy", now).await.unwrap();
    store.connect("other", now).await.unwrap();
    // More than one BatchWriteItem (25) of deletes.
    for i in 0..40 {
        store
            .subscribe("busy", &format!("r{i}"), now)
            .await
            .unwrap();
    }
    store.subscribe("other", "r7", now).await.unwrap();
    store.disconnect("busy").await.unwrap();
    for i in 0..40 {
        let followers = store.subscribers(&format!("r{i}"), now).await.unwrap();
        if i == 7 {
            assert_eq!(followers, ["other"]);
        } else {
            assert!(followers.is_empty(), "r{i}: {followers:?}");
        }
    }
}

pub async fn connections_scenario_subscriptions_of_a_connection_are_counted(
    store: &dyn ConnectionStore,
) {
    let now = Utc::now();
    store.connect("counted", now).await.unwrap();
    for r in ["r1", "r2", "r3", "r2"] {
        store.subscribe("counted", r, now).await.unwrap();
    }
    assert_eq!(store.subscriptions("counted", now).await.unwrap(), 3);
    store.unsubscribe("counted", "r1").await.unwrap();
    assert_eq!(store.subscriptions("counted", now).await.unwrap(), 2);
    assert_eq!(store.subscriptions("nobody", now).await.unwrap(), 0);
    let after_ttl = now + TimeDelta::from_std(people_app::ports::CONNECTION_TTL).unwrap();
    assert_eq!(store.subscriptions("counted", after_ttl).await.unwrap(), 0);
}
