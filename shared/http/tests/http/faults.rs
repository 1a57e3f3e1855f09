//! Faults injected through the ports (`people_app::memory::faults`), with the
//! real processor behind the in-memory queue's worker pool (which, like
//! SQS, redelivers a failed delivery, one whose worker died, and one still
//! running after the visibility timeout). For each fault: no request is
//! lost, no import is applied twice, no request stays `processing`, and the
//! final state can be read.

use people_app::access::Caller;
use std::sync::Arc;
use std::time::{Duration, Instant};

use people_app::config::PeopleConfig;
use people_app::index::Refresh;
use people_app::jobs::{
    Enqueuer, JobMessage, MIN_TIME_LEFT, ProcessError, RequestRecord, RequestStatus, Sweeper,
    Worker, process, submit, sweep,
};
use people_app::memory::faults::{Fault, Faults, FaultyPeopleStore, FaultyRequestStore};
use people_app::memory::{MemoryQueue, MemoryRequestStore};
use people_app::people::{People, open_memory as open_people};
use people_app::ports::{JobQueue, PeopleStore, QueueError, RequestStore};
use serde_json::{Value, json};

const BASE_PEOPLE: usize = 300;
/// An import of this many people is written in 3 chunks of at most 100.
const IMPORTED: usize = 250;

struct System {
    people: People,
    worker: Arc<Worker>,
    requests: Arc<dyn RequestStore>,
    enqueuer: Enqueuer,
    queue: Arc<MemoryQueue>,
    people_faults: Faults,
    request_faults: Faults,
}

/// A system whose stores fail as armed, with 2 workers, 3 receives, and a
/// visibility timeout of `visibility`.
async fn system(visibility: Duration) -> System {
    system_with(visibility, MemoryRequestStore::new()).await
}

/// `system`, on the request store `inner`.
async fn system_with(visibility: Duration, inner: MemoryRequestStore) -> System {
    let config = PeopleConfig {
        seed_people: BASE_PEOPLE,
        ..PeopleConfig::from_lookup(|_| None).unwrap()
    };
    let plain = open_people(&config, None, Refresh::Inline).await.unwrap();
    let people_faults = Faults::new();
    let store: Arc<dyn PeopleStore> = Arc::new(FaultyPeopleStore {
        inner: plain.store.clone(),
        faults: people_faults.clone(),
    });
    // The index is built from, and follows, the faulty store, as a
    // worker's follows its store.
    let (engine, version) = people_app::index::build_from_store(store.as_ref(), 1, &|_| {})
        .await
        .unwrap();
    let index = Arc::new(people_app::index::LiveIndex::following(
        engine,
        store.clone(),
        version,
        Duration::ZERO,
        Refresh::Inline,
    ));
    let people = People { store, index };
    let request_faults = Faults::new();
    let requests: Arc<dyn RequestStore> = Arc::new(FaultyRequestStore {
        inner: Arc::new(inner),
        faults: request_faults.clone(),
    });
    let queue = Arc::new(MemoryQueue::new().with_visibility_timeout(visibility));
    let worker = Arc::new(Worker {
        people: people.clone(),
        requests: requests.clone(),
        max_receives: 3,
        pusher: people_app::memory::pusher(None),
    });
    let pool = Arc::clone(&worker);
    queue.run_workers(2, 3, Duration::from_millis(20), move |body, receives| {
        let worker = Arc::clone(&pool);
        async move {
            process(&worker, &body, receives, None)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    });
    System {
        worker,
        enqueuer: Enqueuer {
            requests: requests.clone(),
            queue: queue.clone(),
            anonymous_writes: true,
        },
        people,
        requests,
        queue,
        people_faults,
        request_faults,
    }
}

fn import_body() -> Vec<u8> {
    let people: Vec<Value> = (0..IMPORTED)
        .map(|i| json!({"first_name": format!("Fault{i}"), "last_name": "Tester", "nationality": "Icelandic", "hobbies": ["Chess"]}))
        .collect();
    json!({"kind": "import", "people": people})
        .to_string()
        .into_bytes()
}

/// Submits the import of `import_body` through `enqueuer`.
async fn submit_import(
    enqueuer: &Enqueuer,
) -> Result<RequestRecord, people_app::jobs::SubmitError> {
    submit(
        enqueuer,
        &import_body(),
        &Caller::Anonymous,
        None,
        "fault-test",
    )
    .await
}

/// Submits, then waits until the request is finished; returns its record.
async fn run_to_the_end(s: &System, body: &[u8]) -> RequestRecord {
    run_keyed(s, body, None).await
}

/// `run_to_the_end` with an idempotency key.
async fn run_keyed(s: &System, body: &[u8], key: Option<&str>) -> RequestRecord {
    let record = submit(&s.enqueuer, body, &Caller::Anonymous, key, "fault-test")
        .await
        .unwrap();
    wait_finished(s, record).await
}

async fn wait_finished(s: &System, record: RequestRecord) -> RequestRecord {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Read past the faults: the test's own view of the store.
        if let Ok(Some(r)) = s.requests.get(&record.id).await
            && r.status.is_final()
        {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "request {} never finished",
            record.id
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// People whose last name is "Tester" in the store and in the index.
async fn imported_people(s: &System) -> (usize, u64) {
    let in_store = stored_people(s)
        .await
        .iter()
        .filter(|p| p.last_name == "Tester")
        .count();
    let filter =
        people_core::domain::PeopleFilter::new("tester", vec![], vec![], Default::default());
    let snapshot = s.people.index.current().await;
    let in_index = snapshot
        .search(&filter, &people_core::search::PageStart::Offset(0), 1)
        .total;
    (in_store, in_index)
}

fn accepted(record: &RequestRecord) -> u64 {
    record.result.as_ref().unwrap()["accepted"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_writes_are_retried_and_the_import_lands_once() {
    let s = system(Duration::from_secs(60)).await;
    // The first write of the first two deliveries is throttled.
    s.people_faults.fail("put_batch", Fault::Unavailable, 2);
    let record = run_to_the_end(&s, &import_body()).await;
    assert_eq!(record.status, RequestStatus::Completed, "{record:?}");
    assert_eq!(record.attempts, 3);
    assert_eq!(accepted(&record), IMPORTED as u64);
    assert_eq!(imported_people(&s).await, (IMPORTED, IMPORTED as u64));
    assert!(s.queue.dead_letters().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_dies_mid_import_is_replaced_and_nothing_is_applied_twice() {
    let s = system(Duration::from_secs(60)).await;
    // The first chunk is written, then the worker dies.
    s.people_faults.fail_after("put_batch", 1, Fault::Die, 1);
    let record = run_to_the_end(&s, &import_body()).await;
    assert_eq!(s.people_faults.fired(), [("put_batch", Fault::Die)]);
    assert_eq!(record.status, RequestStatus::Completed, "{record:?}");
    assert_eq!(record.attempts, 2);
    assert_eq!(accepted(&record), IMPORTED as u64);
    assert_eq!(imported_people(&s).await, (IMPORTED, IMPORTED as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_worker_is_overtaken_and_the_import_still_lands_once() {
    // The first write stalls past the visibility timeout: the message is
    // delivered again and a second worker runs it while the first goes on.
    let s = system(Duration::from_millis(200)).await;
    s.people_faults
        .fail("put_batch", Fault::Delay(Duration::from_millis(800)), 1);
    let record = run_to_the_end(&s, &import_body()).await;
    assert_eq!(record.status, RequestStatus::Completed, "{record:?}");
    assert_eq!(record.attempts, 2, "both deliveries started it");
    assert_eq!(accepted(&record), IMPORTED as u64);
    // Wait for the stalled one to finish too, then count.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(imported_people(&s).await, (IMPORTED, IMPORTED as u64));
    let after = s.requests.get(&record.id).await.unwrap().unwrap();
    assert_eq!(
        after.result, record.result,
        "the late finish changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_retries_fails_the_request_visibly() {
    let s = system(Duration::from_secs(60)).await;
    // Every delivery finds the request store throttling at start.
    s.request_faults.fail("start", Fault::Unavailable, 3);
    let record = run_to_the_end(&s, &import_body()).await;
    assert_eq!(record.status, RequestStatus::Failed);
    assert_eq!(record.error.as_ref().unwrap().code, "gave_up");
    assert_eq!(imported_people(&s).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_fails_the_request_at_once() {
    let s = system(Duration::from_secs(60)).await;
    s.people_faults.fail("put_batch", Fault::Permanent, 1);
    let record = run_to_the_end(&s, &import_body()).await;
    assert_eq!(record.status, RequestStatus::Failed);
    assert_eq!(record.attempts, 1, "not retried");
    let error = record.error.unwrap();
    assert_eq!(error.code, "storage_error");
    // Only the correlation id, no internal error text.
    assert!(!error.message.contains("injected"), "{}", error.message);
    assert!(error.message.contains("fault-test"), "{}", error.message);
}

/// GIVEN a deadline 0.5 s past MIN_TIME_LEFT and a write that takes 1 s:
/// the first of an import's three chunks, its last chunk, or the record
/// of its result WHEN the processor runs the message THEN it stops at the
/// next check (before the second chunk or the index refresh: "retry
/// later"; before the push: the result kept, the push left), the people
/// written stay written, and a redelivery without a deadline lands the
/// import once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_reached_inside_a_job_stops_it_at_the_next_check_and_the_redelivery_lands_it_once()
 {
    // (slow operation, of which store, after how many calls; people written
    // when the job stops; whether the request is finished by then)
    let cases = [
        ("put_batch", true, 0, 100, false),
        ("put_batch", true, 2, IMPORTED, false),
        ("finish", false, 0, IMPORTED, true),
    ];
    for (operation, people_store, after, written, finished) in cases {
        let case = format!("{operation} after {after}");
        let s = system(Duration::from_secs(60)).await;
        let (queue, enqueuer) = own_queue(&s);
        let record = submit_import(&enqueuer).await.unwrap();
        let body = queue.try_receive().expect("the job message");
        let faults = if people_store {
            &s.people_faults
        } else {
            &s.request_faults
        };
        faults.fail_after(operation, after, Fault::Delay(Duration::from_secs(1)), 1);
        let deadline = Instant::now() + MIN_TIME_LEFT + Duration::from_millis(500);
        let stopped = process(&s.worker, &body, 1, Some(deadline)).await;
        match &stopped {
            // Finished and kept, only the push left for the next delivery.
            Err(ProcessError::Undelivered(id)) if finished => assert_eq!(id, &record.id),
            Err(e @ ProcessError::Retry { .. }) if !finished => {
                assert!(e.to_string().contains("deadline"), "{case}: {e}")
            }
            other => panic!("{case}: {other:?}"),
        }
        let now = s.requests.get(&record.id).await.unwrap().unwrap();
        if finished {
            assert_eq!(now.status, RequestStatus::Completed, "{case}");
            assert_eq!(accepted(&now), IMPORTED as u64, "{case}");
        } else {
            assert_eq!(now.status, RequestStatus::Processing, "{case}");
            assert!(now.result.is_none(), "{case}");
        }
        assert_eq!(imported_people(&s).await.0, written, "{case}");

        let again = process(&s.worker, &body, 2, None).await;
        assert!(again.is_ok(), "{case}: {again:?}");
        let done = s.requests.get(&record.id).await.unwrap().unwrap();
        assert_eq!(done.status, RequestStatus::Completed, "{case}");
        assert_eq!(accepted(&done), IMPORTED as u64, "{case}");
        assert_eq!(
            imported_people(&s).await,
            (IMPORTED, IMPORTED as u64),
            "{case}"
        );
    }
}

/// A queue of the test's own, without workers (the test delivers its
/// messages), and an enqueuer onto it over the system's request store.
fn own_queue(s: &System) -> (Arc<MemoryQueue>, Enqueuer) {
    let queue = Arc::new(MemoryQueue::new());
    let enqueuer = Enqueuer {
        requests: s.requests.clone(),
        queue: queue.clone(),
        anonymous_writes: true,
    };
    (queue, enqueuer)
}

/// Everybody in the people store.
async fn stored_people(s: &System) -> Vec<people_core::domain::Person> {
    let mut people = Vec::new();
    let mut start = None;
    loop {
        let page = s.people.store.scan(0, 1, start).await.unwrap();
        people.extend(page.people);
        match page.next {
            Some(next) => start = Some(next),
            None => return people,
        }
    }
}

/// GIVEN a delete of 250 ids (three chunks), a deadline 0.5 s past
/// MIN_TIME_LEFT and a first chunk that takes 1 s WHEN the processor runs
/// it THEN it stops before the second chunk with "retry later", the first
/// 100 are gone, and a redelivery deletes the rest and counts 250.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_reached_inside_a_delete_stops_it_before_the_next_chunk() {
    let s = system(Duration::from_secs(60)).await;
    let (queue, enqueuer) = own_queue(&s);
    let ids: Vec<String> = stored_people(&s)
        .await
        .iter()
        .take(IMPORTED)
        .map(|p| p.id.to_string())
        .collect();
    assert_eq!(ids.len(), IMPORTED);
    let body = json!({"kind": "delete", "ids": ids}).to_string();
    let record = submit(
        &enqueuer,
        body.as_bytes(),
        &Caller::Anonymous,
        None,
        "fault-test",
    )
    .await
    .unwrap();
    let message = queue.try_receive().expect("the job message");
    s.people_faults
        .fail("delete_batch", Fault::Delay(Duration::from_secs(1)), 1);
    let deadline = Instant::now() + MIN_TIME_LEFT + Duration::from_millis(500);
    match process(&s.worker, &message, 1, Some(deadline)).await {
        Err(e @ ProcessError::Retry { .. }) => assert!(e.to_string().contains("deadline"), "{e}"),
        other => panic!("{other:?}"),
    }
    let now = s.requests.get(&record.id).await.unwrap().unwrap();
    assert_eq!(now.status, RequestStatus::Processing);
    assert_eq!(stored_people(&s).await.len(), BASE_PEOPLE - 100);

    assert!(process(&s.worker, &message, 2, None).await.is_ok());
    let done = s.requests.get(&record.id).await.unwrap().unwrap();
    assert_eq!(done.status, RequestStatus::Completed, "{done:?}");
    assert_eq!(done.result.unwrap()["deleted"], IMPORTED);
    assert_eq!(stored_people(&s).await.len(), BASE_PEOPLE - IMPORTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_finish_is_retried_and_the_result_is_kept() {
    let s = system(Duration::from_secs(60)).await;
    // The import's writes land; recording the result fails once.
    s.request_faults.fail("finish", Fault::Unavailable, 1);
    let record = run_to_the_end(&s, &import_body()).await;
    assert_eq!(record.status, RequestStatus::Completed, "{record:?}");
    assert_eq!(record.attempts, 2);
    assert_eq!(imported_people(&s).await, (IMPORTED, IMPORTED as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_send_leaves_no_request_queued() {
    let s = system(Duration::from_secs(60)).await;
    s.queue.fail_next_sends(1);
    let refused = submit_import(&s.enqueuer).await;
    assert!(refused.is_err());
    // The client was told (503 over HTTP); and nothing stays queued.
    let again = run_to_the_end(&s, &import_body()).await;
    assert_eq!(again.status, RequestStatus::Completed);
    assert_eq!(imported_people(&s).await, (IMPORTED, IMPORTED as u64));
}

/// A body under the 256 KiB limit can still serialize to a queue message
/// over it (found while fuzzing: `1e5` is written back as `100000.0`). It
/// is refused as the client's to fix, and nothing is recorded or queued.
#[tokio::test]
async fn a_body_that_would_overflow_the_queue_is_refused_before_anything_is_kept() {
    let numbers = vec!["1e5"; 65_000].join(",");
    let body = format!(
        r#"{{"kind":"import","people":[{{"first_name":"A","last_name":"B","nationality":"C","hobbies":[{numbers}]}}]}}"#
    );
    assert!(body.len() <= people_app::jobs::MAX_BODY_BYTES);
    let requests = Arc::new(MemoryRequestStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let enqueuer = Enqueuer {
        requests: requests.clone(),
        queue: queue.clone(),
        anonymous_writes: true,
    };
    match submit(&enqueuer, body.as_bytes(), &Caller::Anonymous, None, "c").await {
        Err(people_app::jobs::SubmitError::Invalid { field, message }) => {
            assert_eq!(field, "body");
            assert!(message.contains("over the queue's"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(requests.is_empty());
    assert!(queue.try_receive().is_none());
}

/// A worker that dies on every delivery, the last one included, leaves its
/// request `processing`, and its message is dead-lettered: nothing would
/// ever end it. The sweeper does, once no delivery can be left, and pushes
/// that to the request's subscribers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_last_delivery_dies_is_ended_by_the_sweeper() {
    let s = system(Duration::from_secs(60)).await;
    s.people_faults.fail("put_batch", Fault::Die, 3);
    let record = submit(
        &s.enqueuer,
        &import_body(),
        &Caller::Anonymous,
        None,
        "fault-test",
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.queue.dead_letters().is_empty() {
        assert!(Instant::now() < deadline, "never dead-lettered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stuck = s.requests.get(&record.id).await.unwrap().unwrap();
    assert_eq!(stuck.status, RequestStatus::Processing);
    assert_eq!(stuck.attempts, 3);

    let sweeper = Sweeper {
        requests: s.requests.clone(),
        pusher: s.worker.pusher.clone(),
        stuck_after: Sweeper::stuck_after(3, Duration::from_secs(360)),
    };
    // Not yet: a delivery may still come.
    let now = chrono::Utc::now();
    assert_eq!(sweep(&sweeper, now).await.unwrap().failed, 0);
    // Past every delivery's visibility timeout: ended, once.
    let later = now + chrono::Duration::seconds(3 * 360 + 1);
    assert_eq!(sweep(&sweeper, later).await.unwrap().failed, 1);
    assert_eq!(sweep(&sweeper, later).await.unwrap().failed, 0);
    let ended = s.requests.get(&record.id).await.unwrap().unwrap();
    assert_eq!(ended.status, RequestStatus::Failed);
    assert_eq!(ended.error.unwrap().code, "timed_out");
}

/// The in-process queue is bounded: once it holds its capacity, a new
/// request is refused with 503 (and recorded failed, never left queued).
#[tokio::test]
async fn a_full_memory_queue_refuses_requests_with_503() {
    let requests = Arc::new(MemoryRequestStore::new());
    let queue = Arc::new(MemoryQueue::new().with_capacity(2));
    let enqueuer = Enqueuer {
        requests: requests.clone(),
        queue: queue.clone(),
        anonymous_writes: true,
    };
    let post = || {
        http::Request::post("/requests")
            .header("content-type", "application/json")
            .body(bytes::Bytes::from_static(
                br#"{"kind":"report","filter":{"nationality":"Icelandic"}}"#,
            ))
            .unwrap()
    };
    for _ in 0..2 {
        assert_eq!(
            people_http::handle_submit(&enqueuer, post()).await.status(),
            202
        );
    }
    let refused = people_http::handle_submit(&enqueuer, post()).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(queue.waiting(), 2);
    // Taken by a worker, there is room again.
    queue.try_receive().unwrap();
    assert_eq!(
        people_http::handle_submit(&enqueuer, post()).await.status(),
        202
    );
}

/// GIVEN all people of an import written WHEN the refresh of the worker's
/// index fails THEN the import is completed all the same (its client would
/// otherwise submit it again), and a later refresh brings the people in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_index_refresh_after_the_writes_does_not_fail_the_import() {
    let s = system(Duration::from_secs(60)).await;
    s.people_faults.fail("changes_since", Fault::Permanent, 1);
    let record = run_to_the_end(&s, &import_body()).await;
    assert_eq!(
        s.people_faults.fired(),
        [("changes_since", Fault::Permanent)]
    );
    assert_eq!(record.status, RequestStatus::Completed, "{record:?}");
    assert_eq!(record.attempts, 1);
    assert_eq!(accepted(&record), IMPORTED as u64);
    s.people.index.refresh().await.unwrap();
    assert_eq!(imported_people(&s).await, (IMPORTED, IMPORTED as u64));
}

/// GIVEN an import of people without ids, submitted with a key, done, and
/// its request forgotten (a retention of zero: it expired) WHEN the same
/// body is submitted again with the same key THEN it is a new request, and
/// it writes the very same people again: none is added twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resubmission_with_the_same_key_reproduces_the_ids_of_people_without_one() {
    let retained = MemoryRequestStore::new().with_retention(Duration::ZERO);
    let s = system_with(Duration::from_secs(60), retained).await;
    let first = run_keyed(&s, &import_body(), Some("import-7")).await;
    assert_eq!(imported_people(&s).await, (IMPORTED, IMPORTED as u64));
    let second = run_keyed(&s, &import_body(), Some("import-7")).await;
    assert_ne!(first.id, second.id, "the first request had expired");
    assert_eq!(second.status, RequestStatus::Completed);
    assert_eq!(imported_people(&s).await, (IMPORTED, IMPORTED as u64));
    // Without a key, a resubmission is a new import.
    run_to_the_end(&s, &import_body()).await;
    assert_eq!(
        imported_people(&s).await,
        (2 * IMPORTED, 2 * IMPORTED as u64)
    );
}

/// A queue whose send delivers the message, waits until a worker started
/// the request, and then reports a failure: the answer was lost.
struct LostAnswer {
    inner: Arc<MemoryQueue>,
    requests: Arc<dyn RequestStore>,
}

#[async_trait::async_trait]
impl JobQueue for LostAnswer {
    async fn send(&self, message: &JobMessage) -> Result<(), QueueError> {
        self.inner.send(message).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(r)) = self.requests.get(&message.request_id).await
                && r.status != RequestStatus::Queued
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Err(QueueError::Unavailable("the answer was lost".into()))
    }
}

/// GIVEN a send that delivered its message but lost the answer, and a
/// worker that already started the request WHEN submit sees the failure
/// THEN it does not mark the request failed: the client gets the request
/// (202 over HTTP), which completes, its people written once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_send_failure_does_not_fail_a_started_request() {
    let s = system(Duration::from_secs(60)).await;
    let enqueuer = Enqueuer {
        requests: s.requests.clone(),
        queue: Arc::new(LostAnswer {
            inner: s.queue.clone(),
            requests: s.requests.clone(),
        }),
        anonymous_writes: true,
    };
    let record = submit_import(&enqueuer)
        .await
        .expect("the request was queued after all");
    let done = wait_finished(&s, record).await;
    assert_eq!(done.status, RequestStatus::Completed, "{done:?}");
    assert_eq!(done.attempts, 1);
    assert_eq!(imported_people(&s).await, (IMPORTED, IMPORTED as u64));
}

/// The size check counts the bytes SQS counts: U+FFFF is 3 bytes in the
/// body a client sends but 6 in the queue message (`\\uffff`), so a body
/// well under 256 KiB can be a message over it.
#[tokio::test]
async fn the_queue_size_check_counts_the_bytes_sqs_counts() {
    let hobby: String = "\u{FFFF}".repeat(50_000);
    let body = format!(
        r#"{{"kind":"import","people":[{{"first_name":"A","last_name":"B","nationality":"C","hobbies":["{hobby}"]}}]}}"#
    );
    assert!(body.len() < 160 * 1024);
    let requests = Arc::new(MemoryRequestStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let enqueuer = Enqueuer {
        requests: requests.clone(),
        queue: queue.clone(),
        anonymous_writes: true,
    };
    match submit(&enqueuer, body.as_bytes(), &Caller::Anonymous, None, "c").await {
        Err(people_app::jobs::SubmitError::Invalid { field, message }) => {
            assert_eq!(field, "body");
            assert!(message.contains("over the queue's"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(requests.is_empty());
}

/// A report filter's values are counted after splitting on commas, as
/// `GET /people` counts them.
#[tokio::test]
async fn a_report_filter_counts_comma_separated_values() {
    let enqueuer = Enqueuer {
        requests: Arc::new(MemoryRequestStore::new()),
        queue: Arc::new(MemoryQueue::new()),
        anonymous_writes: true,
    };
    let values = |n: usize| {
        (0..n)
            .map(|i| format!("N{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let body = |n: usize| {
        json!({"kind": "report", "filter": {"nationality": values(n)}})
            .to_string()
            .into_bytes()
    };
    assert!(
        submit(&enqueuer, &body(100), &Caller::Anonymous, None, "c")
            .await
            .is_ok()
    );
    match submit(&enqueuer, &body(101), &Caller::Anonymous, None, "c").await {
        Err(people_app::jobs::SubmitError::Invalid { field, .. }) => {
            assert_eq!(field, "filter.nationality")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
