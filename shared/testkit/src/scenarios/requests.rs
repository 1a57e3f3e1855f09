//! The request store's scenarios.

use chrono::{DateTime, TimeDelta, Utc};
use people_app::jobs::{JobError, JobKind, RequestRecord, RequestStatus};
use people_app::ports::{Created, Outcome, RequestStore, Started};
use serde_json::json;

pub fn new_request(kind: JobKind) -> RequestRecord {
    RequestRecord::queued(uuid::Uuid::new_v4().to_string(), kind, Utc::now())
}

pub fn later(seconds: i64) -> DateTime<Utc> {
    Utc::now() + TimeDelta::seconds(seconds)
}

pub fn failure(code: &str) -> Outcome {
    Outcome::Failed(JobError {
        code: code.into(),
        message: format!("{code}: it went wrong"),
    })
}

pub async fn created(store: &dyn RequestStore, record: &RequestRecord, key: Option<&str>) {
    assert_eq!(
        store.create(record, key).await.unwrap(),
        Created::New(record.clone())
    );
}

// ---------------------------------------------------------------- scenarios

pub async fn scenario_keys_are_scoped_to_their_owner(store: &dyn RequestStore) {
    // GIVEN a request of user A created with a key
    let mine = new_request(JobKind::Report).owned(Some("user-a"), Some("f-a".into()));
    created(store, &mine, Some("shared-key")).await;

    // WHEN user B, and an anonymous caller, use the same key text
    let theirs = new_request(JobKind::Report).owned(Some("user-b"), Some("f-b".into()));
    let anonymous = new_request(JobKind::Report).owned(None, Some("f-c".into()));

    // THEN each gets a request of its own
    created(store, &theirs, Some("shared-key")).await;
    created(store, &anonymous, Some("shared-key")).await;
    // ... and A's key still names A's request, owner and fingerprint kept
    let again = new_request(JobKind::Report).owned(Some("user-a"), Some("other".into()));
    let found = store.create(&again, Some("shared-key")).await.unwrap();
    assert_eq!(found, Created::Existing(mine.clone()));
    let Created::Existing(found) = found else {
        unreachable!()
    };
    assert_eq!(found.owner.as_deref(), Some("user-a"));
    assert_eq!(found.fingerprint.as_deref(), Some("f-a"));
}

pub async fn scenario_abandon_fails_only_a_queued_request_and_frees_its_key(
    store: &dyn RequestStore,
) {
    let error = || JobError {
        code: "enqueue_failed".into(),
        message: "the request could not be queued; submit it again".into(),
    };
    // GIVEN a queued request with a key, whose message could not be sent
    let lost = new_request(JobKind::Import);
    created(store, &lost, Some("retry-me")).await;

    // WHEN it is abandoned
    assert!(
        store
            .abandon(&lost, Some("retry-me"), error(), later(1))
            .await
            .unwrap()
    );

    // THEN it is failed, and the same key creates a new request
    let stored = store.get(&lost.id).await.unwrap().unwrap();
    assert_eq!(stored.status, RequestStatus::Failed);
    assert_eq!(stored.error, Some(error()));
    let retry = new_request(JobKind::Import);
    created(store, &retry, Some("retry-me")).await;

    // GIVEN a request a worker already started (the send's answer was lost
    // but the message went out)
    let sent = new_request(JobKind::Import);
    created(store, &sent, Some("went-out")).await;
    assert!(matches!(
        store.start(&sent.id, later(1)).await.unwrap(),
        Started::Started(_)
    ));
    // WHEN it is abandoned THEN nothing changes: still processing, key kept
    assert!(
        !store
            .abandon(&sent, Some("went-out"), error(), later(2))
            .await
            .unwrap()
    );
    let stored = store.get(&sent.id).await.unwrap().unwrap();
    assert_eq!(stored.status, RequestStatus::Processing);
    let Created::Existing(earlier) = store
        .create(&new_request(JobKind::Import), Some("went-out"))
        .await
        .unwrap()
    else {
        panic!("the key of a started request is kept");
    };
    assert_eq!(earlier.id, sent.id);
    // ... and without a key, the same holds
    let unkeyed = new_request(JobKind::Report);
    created(store, &unkeyed, None).await;
    assert!(
        store
            .abandon(&unkeyed, None, error(), later(1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .abandon(&unkeyed, None, error(), later(2))
            .await
            .unwrap()
    );
}

pub async fn scenario_create_then_get(store: &dyn RequestStore) {
    // GIVEN a new request
    let record = new_request(JobKind::Report);

    // WHEN it is created without an idempotency key
    let result = store.create(&record, None).await.unwrap();

    // THEN it is new and reads back exactly (timestamps to the nanosecond)
    assert_eq!(result, Created::New(record.clone()));
    assert_eq!(store.get(&record.id).await.unwrap(), Some(record));
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(store.get(&unknown).await.unwrap(), None);
}

pub async fn scenario_idempotency_key_returns_the_earlier_request(store: &dyn RequestStore) {
    // GIVEN a request created with a key
    let first = new_request(JobKind::Report);
    created(store, &first, Some("key-1")).await;

    // WHEN another request, different in every way, is created with that key
    let mut second = new_request(JobKind::Import);
    second.attempts = 7;
    let again = store.create(&second, Some("key-1")).await.unwrap();

    // THEN the first one is returned, and nothing new was written
    assert_eq!(again, Created::Existing(first.clone()));
    assert_eq!(store.get(&second.id).await.unwrap(), None);
    assert_eq!(store.get(&first.id).await.unwrap(), Some(first.clone()));
    // ... and neither the key nor its item is readable as a request
    assert_eq!(store.get("key-1").await.unwrap(), None);
    assert_eq!(store.get("idem#key-1").await.unwrap(), None);
    assert_eq!(store.get("idem#anonymous/key-1").await.unwrap(), None);
    // ... while another key, or none, creates the second request
    created(store, &second, Some("key-2")).await;
    let third = new_request(JobKind::Import);
    created(store, &third, None).await;
    assert_eq!(
        store
            .create(&new_request(JobKind::Report), Some("key-2"))
            .await
            .unwrap(),
        Created::Existing(second)
    );
}

pub async fn scenario_concurrent_creates_with_one_key_create_one_request(store: &dyn RequestStore) {
    // GIVEN eight different requests submitted at once with the same key
    let records: Vec<RequestRecord> = (0..8).map(|_| new_request(JobKind::Report)).collect();

    // WHEN they are all created concurrently
    let results = futures::future::join_all(
        records
            .iter()
            .map(|r| store.create(r, Some("double-click"))),
    )
    .await;

    // THEN exactly one is new, the others return it, and only it exists
    let results: Vec<Created> = results.into_iter().map(Result::unwrap).collect();
    let new: Vec<&RequestRecord> = results
        .iter()
        .filter_map(|c| match c {
            Created::New(r) => Some(r),
            Created::Existing(_) => None,
        })
        .collect();
    assert_eq!(new.len(), 1, "{results:?}");
    let winner = new[0].clone();
    for result in &results {
        if let Created::Existing(earlier) = result {
            assert_eq!(earlier, &winner);
        }
    }
    for record in &records {
        let stored = store.get(&record.id).await.unwrap();
        assert_eq!(stored.is_some(), record.id == winner.id, "{}", record.id);
    }
}

pub async fn scenario_start_moves_to_processing_and_counts_attempts(store: &dyn RequestStore) {
    let record = new_request(JobKind::Import);
    created(store, &record, None).await;

    // WHEN it is started, then started again (a redelivery)
    let first_start = later(1);
    let Started::Started(first) = store.start(&record.id, first_start).await.unwrap() else {
        panic!("not started");
    };
    let second_start = later(2);
    let Started::Started(second) = store.start(&record.id, second_start).await.unwrap() else {
        panic!("not started again");
    };

    // THEN it is processing, one attempt per start, stamped by each start
    let expected = |attempts, updated_at| RequestRecord {
        status: RequestStatus::Processing,
        attempts,
        updated_at,
        ..record.clone()
    };
    assert_eq!(first, expected(1, first_start));
    assert_eq!(second, expected(2, second_start));
    assert_eq!(store.get(&record.id).await.unwrap(), Some(second));
}

pub async fn scenario_stale_finds_the_requests_processing_since_long_ago(store: &dyn RequestStore) {
    // GIVEN a queued request (with an idempotency key item beside it), one
    // started long ago, one started just now, one started long ago and
    // finished
    let queued = new_request(JobKind::Report);
    created(store, &queued, Some("stale-key")).await;
    let (old, new, done) = (
        new_request(JobKind::Import),
        new_request(JobKind::Report),
        new_request(JobKind::Report),
    );
    for (record, started) in [(&old, later(-600)), (&new, later(0)), (&done, later(-600))] {
        created(store, record, None).await;
        assert!(matches!(
            store.start(&record.id, started).await.unwrap(),
            Started::Started(_)
        ));
    }
    assert!(
        store
            .finish(&done.id, failure("x"), later(-590))
            .await
            .unwrap()
    );

    // WHEN asked for the ones started more than 5 minutes ago
    let stale = store.stale(later(-300), 100).await.unwrap();

    // THEN only the old one, as stored
    assert_eq!(
        stale.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [old.id.as_str()]
    );
    assert_eq!(stale[0].status, RequestStatus::Processing);
    assert_eq!(stale[0].attempts, 1);
    // and at most `limit` of them
    assert_eq!(store.stale(later(1), 1).await.unwrap().len(), 1);
    assert_eq!(store.stale(later(1), 100).await.unwrap().len(), 2);
}

pub async fn scenario_finish_completes_once(store: &dyn RequestStore) {
    // GIVEN a started request
    let record = new_request(JobKind::Report);
    created(store, &record, None).await;
    store.start(&record.id, later(1)).await.unwrap();

    // WHEN it is finished, and then finished again, both ways
    let finished_at = later(2);
    let first = store
        .finish(
            &record.id,
            Outcome::Completed(json!({"total": 1})),
            finished_at,
        )
        .await
        .unwrap();
    let again = store
        .finish(
            &record.id,
            Outcome::Completed(json!({"total": 2})),
            later(3),
        )
        .await
        .unwrap();
    let failed_late = store
        .finish(&record.id, failure("late"), later(4))
        .await
        .unwrap();

    // THEN only the first call finished it, and its result stays
    assert!(first);
    assert!(!again);
    assert!(!failed_late);
    let done = RequestRecord {
        status: RequestStatus::Completed,
        updated_at: finished_at,
        result: Some(json!({"total": 1})),
        attempts: 1,
        ..record.clone()
    };
    assert_eq!(store.get(&record.id).await.unwrap(), Some(done.clone()));
    // ... and a late delivery that starts it finds it finished, unchanged
    assert_eq!(
        store.start(&record.id, later(5)).await.unwrap(),
        Started::Finished(done.clone())
    );
    assert_eq!(store.get(&record.id).await.unwrap(), Some(done));
}

pub async fn scenario_a_failed_request_stays_failed(store: &dyn RequestStore) {
    // GIVEN a request that failed while still queued (its message was lost)
    let record = new_request(JobKind::Import);
    created(store, &record, None).await;
    let failed_at = later(1);
    assert!(
        store
            .finish(&record.id, failure("enqueue_failed"), failed_at)
            .await
            .unwrap()
    );

    // WHEN a worker completes it anyway, or starts it
    let completed = store
        .finish(
            &record.id,
            Outcome::Completed(json!({"accepted": 1})),
            later(2),
        )
        .await
        .unwrap();
    let started = store.start(&record.id, later(3)).await.unwrap();

    // THEN it stays failed, without a result
    let failed = RequestRecord {
        status: RequestStatus::Failed,
        updated_at: failed_at,
        error: Some(JobError {
            code: "enqueue_failed".into(),
            message: "enqueue_failed: it went wrong".into(),
        }),
        ..record.clone()
    };
    assert!(!completed);
    assert_eq!(started, Started::Finished(failed.clone()));
    assert_eq!(store.get(&record.id).await.unwrap(), Some(failed));
}

pub async fn scenario_start_or_finish_of_a_missing_request(store: &dyn RequestStore) {
    // GIVEN a keyed request, so that the store holds a key as well
    created(store, &new_request(JobKind::Report), Some("k")).await;
    let unknown = uuid::Uuid::new_v4().to_string();

    for id in [unknown.as_str(), "idem#k", "k"] {
        // WHEN a missing id is started or finished
        let started = store.start(id, later(1)).await.unwrap();
        let finished = store
            .finish(id, Outcome::Completed(json!(1)), later(2))
            .await
            .unwrap();

        // THEN it is missing, nothing is finished, and nothing was created
        assert_eq!(started, Started::Missing, "{id}");
        assert!(!finished, "{id}");
        assert_eq!(store.get(id).await.unwrap(), None, "{id}");
    }
}

pub async fn scenario_nested_results_round_trip_exactly(store: &dyn RequestStore) {
    let record = new_request(JobKind::Import);
    created(store, &record, None).await;
    store.start(&record.id, later(1)).await.unwrap();
    // Everything JSON can hold that an AttributeValue map would bend: empty
    // containers, nulls, mixed arrays, big and negative numbers, floats,
    // escapes, and keys that look like DynamoDB's own.
    let result = json!({
        "accepted": 998,
        "rejected": [
            {"index": 3, "reason": "first_name: empty"},
            {"index": 7, "reason": "hobbies: \"Chess\" is listed twice\n\ttab"},
        ],
        "nested": {"a": {"b": {"c": [1, [2, [3, []]], {}]}}},
        "null": null,
        "mixed": [true, false, null, 0, -1, "", {"S": "not a string value"}],
        "big": u64::MAX,
        "negative": i64::MIN,
        "float": 0.1,
        "tiny": 5e-324,
        "unicode": "Zoë Ó Néill 😀 \u{0} \u{FFFF}",
        "": "empty key",
    });

    assert!(
        store
            .finish(&record.id, Outcome::Completed(result.clone()), later(2))
            .await
            .unwrap()
    );

    let stored = store.get(&record.id).await.unwrap().unwrap();
    assert_eq!(stored.result, Some(result.clone()));
    assert_eq!(stored.result.unwrap().to_string(), result.to_string());
}
