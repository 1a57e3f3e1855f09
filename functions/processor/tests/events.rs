//! The processor Lambda's handler on the SQS events of `events/`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Utc;
use lambda_runtime::{Context, LambdaEvent};
use people_app::config::{JobsConfig, PeopleConfig};
use people_app::jobs::{JobKind, RequestRecord, RequestStatus, Worker};
use people_app::memory::MemoryRequestStore;
use people_app::ports::RequestStore;
use people_aws::wiring::open_people;
use people_core::domain::PeopleFilter;
use people_core::search::PageStart;

const REPORT_ID: &str = "0b0e5f8c-6f7e-4c7a-9f57-2d0f4b1c9a11";
const IMPORT_ID: &str = "5d3c2a1b-8e9f-4a0b-b1c2-d3e4f5a6b7c8";
const REPORT: &str = include_str!("../../../events/sqs-report.json");
const IMPORT: &str = include_str!("../../../events/sqs-import.json");
const MALFORMED: &str = include_str!("../../../events/sqs-malformed.json");

async fn worker() -> (Worker, Arc<MemoryRequestStore>) {
    let config = PeopleConfig {
        seed_people: 3_000,
        ..PeopleConfig::from_lookup(|_| None).unwrap()
    };
    let requests = Arc::new(MemoryRequestStore::new());
    for (id, kind) in [(REPORT_ID, JobKind::Report), (IMPORT_ID, JobKind::Import)] {
        let record = RequestRecord::queued(id.into(), kind, Utc::now());
        requests.create(&record, None).await.unwrap();
    }
    let worker = Worker {
        people: open_people(
            &people_aws::sdk::Aws::from_env(),
            &config,
            None,
            people_app::index::Refresh::Inline,
        )
        .await
        .unwrap(),
        requests: requests.clone(),
        max_receives: 3,
        pusher: people_aws::wiring::open_pusher(
            &people_aws::sdk::Aws::from_env(),
            &JobsConfig::from_lookup(|_| None).unwrap(),
            None,
        )
        .await
        .unwrap(),
    };
    (worker, requests)
}

fn event(json: &str) -> SqsEvent {
    serde_json::from_str(json).expect("fixture is an SQS event")
}

/// A context whose deadline is `seconds` from now.
fn context(seconds: u64) -> Context {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut context = Context::default();
    context.deadline = now + seconds * 1000;
    context
}

async fn run(worker: &Worker, event: SqsEvent, seconds: u64) -> SqsBatchResponse {
    processor::handler(worker, LambdaEvent::new(event, context(seconds)))
        .await
        .expect("the handler answers")
}

fn failed_ids(response: &SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_completes_once_and_a_duplicate_changes_nothing() {
    let (worker, requests) = worker().await;
    let response = run(&worker, event(REPORT), 60).await;
    assert!(failed_ids(&response).is_empty());
    let done = requests.get(REPORT_ID).await.unwrap().unwrap();
    assert_eq!(done.status, RequestStatus::Completed);
    assert_eq!(done.attempts, 1);
    let filter = PeopleFilter::new(
        "jo",
        vec!["German".into(), "Danish".into()],
        vec![],
        Default::default(),
    );
    let total = worker
        .people
        .index
        .current()
        .await
        .search(&filter, &PageStart::Offset(0), 1)
        .total;
    assert!(total > 0);
    assert_eq!(done.result.as_ref().unwrap()["total"], total);

    // GIVEN the same message again (at-least-once delivery) THEN it is
    // acknowledged and the stored result is untouched.
    let response = run(&worker, event(REPORT), 60).await;
    assert!(failed_ids(&response).is_empty());
    assert_eq!(requests.get(REPORT_ID).await.unwrap().unwrap(), done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_is_applied_once_and_searchable() {
    let (worker, requests) = worker().await;
    let before = worker.people.store.latest_version().await.unwrap();
    let response = run(&worker, event(IMPORT), 60).await;
    assert!(failed_ids(&response).is_empty());
    let done = requests.get(IMPORT_ID).await.unwrap().unwrap();
    assert_eq!(done.status, RequestStatus::Completed);
    let result = done.result.clone().unwrap();
    assert_eq!(result["accepted"], 2);
    assert_eq!(result["rejected"][0]["index"], 2);
    let after = worker.people.store.latest_version().await.unwrap();
    assert_eq!(after - before, 2, "two people written");
    let snapshot = worker.people.index.current().await;
    assert_eq!(snapshot.get("evt-1").unwrap().first_name, "Søren");
    let found = snapshot.search(
        &PeopleFilter::new("hildegard bingen", vec![], vec![], Default::default()),
        &PageStart::Offset(0),
        5,
    );
    assert_eq!(found.total, 1, "the person without an id was imported");

    // A redelivery writes nothing more.
    let response = run(&worker, event(IMPORT), 60).await;
    assert!(failed_ids(&response).is_empty());
    assert_eq!(worker.people.store.latest_version().await.unwrap(), after);
    assert_eq!(requests.get(IMPORT_ID).await.unwrap().unwrap(), done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_fails_alone_in_its_batch() {
    let (worker, requests) = worker().await;
    let mut batch = event(MALFORMED);
    batch.records.extend(event(REPORT).records);
    let response = run(&worker, batch, 60).await;
    assert_eq!(
        failed_ids(&response),
        ["8c3f2e74-4d80-4fa0-9e2c-3b405f6e7d8c"]
    );
    assert_eq!(
        requests.get(REPORT_ID).await.unwrap().unwrap().status,
        RequestStatus::Completed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_close_to_the_deadline_the_message_goes_back_until_the_last_receive() {
    let (worker, requests) = worker().await;
    // First delivery, 1 s left: not started, handed back to SQS.
    let response = run(&worker, event(REPORT), 1).await;
    assert_eq!(failed_ids(&response).len(), 1);
    assert_eq!(
        requests.get(REPORT_ID).await.unwrap().unwrap().status,
        RequestStatus::Queued
    );
    // Third and last delivery, still no time: the request is failed, so it
    // does not stay unfinished after the message is dead-lettered.
    let mut last = event(REPORT);
    last.records[0]
        .attributes
        .insert("ApproximateReceiveCount".into(), "3".into());
    let response = run(&worker, last, 1).await;
    assert!(failed_ids(&response).is_empty());
    let record = requests.get(REPORT_ID).await.unwrap().unwrap();
    assert_eq!(record.status, RequestStatus::Failed);
    assert_eq!(record.error.unwrap().code, "gave_up");
}

/// Records the receipt handles it is asked to make visible again.
#[derive(Default)]
struct Handback(std::sync::Mutex<Vec<String>>);

#[async_trait::async_trait]
impl people_app::ports::Redelivery for Handback {
    async fn release(
        &self,
        receipt_handles: &[String],
    ) -> Result<(), people_app::ports::QueueError> {
        self.0.lock().unwrap().extend_from_slice(receipt_handles);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unstarted_messages_are_handed_back_to_the_queue_at_once() {
    let (worker, requests) = worker().await;
    let handback = Handback::default();
    let mut batch = event(REPORT);
    batch.records.extend(event(IMPORT).records);
    let response = processor::handler_with(
        &worker,
        Some(&handback),
        LambdaEvent::new(batch.clone(), context(2)),
    )
    .await
    .unwrap();
    // Neither was started; both are failures, both handed back.
    assert_eq!(failed_ids(&response).len(), 2);
    let handles: Vec<String> = batch
        .records
        .iter()
        .map(|m| m.receipt_handle.clone().unwrap())
        .collect();
    assert_eq!(*handback.0.lock().unwrap(), handles);
    for id in [REPORT_ID, IMPORT_ID] {
        assert_eq!(
            requests.get(id).await.unwrap().unwrap().status,
            RequestStatus::Queued
        );
    }
    // With time, nothing is handed back.
    let response = processor::handler_with(
        &worker,
        Some(&handback),
        LambdaEvent::new(event(REPORT), context(60)),
    )
    .await
    .unwrap();
    assert!(failed_ids(&response).is_empty());
    assert_eq!(handback.0.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_for_an_unknown_request_is_not_acknowledged() {
    let (worker, _) = worker().await;
    let other = REPORT.replace(REPORT_ID, "11111111-2222-4333-8444-555555555555");
    let response = run(&worker, event(&other), 60).await;
    assert_eq!(failed_ids(&response).len(), 1);
}

/// The Embedded Metric Format document the function writes to its log
/// after an invocation carries the job metrics, in the service's namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_writes_its_metrics_in_embedded_metric_format() {
    // The one recorder of this test binary; other tests' jobs count too.
    let collector = people_http::lambda::init_metrics("processor").unwrap();
    let (worker, _) = worker().await;
    let response = run(&worker, event(REPORT), 60).await;
    assert!(failed_ids(&response).is_empty());
    let mut log = Vec::new();
    collector.flush(&mut log).unwrap();
    let log = String::from_utf8(log).unwrap();
    let documents: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON document per line"))
        .collect();
    let completed = documents
        .iter()
        .find(|d| d["outcome"] == "completed" && d.get("jobs_total").is_some())
        .unwrap_or_else(|| panic!("no jobs_total for completed in {log}"));
    assert!(completed["jobs_total"].as_f64().unwrap() >= 1.0);
    assert_eq!(completed["function"], "processor");
    let directive = &completed["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], people_http::lambda::NAMESPACE);
    assert!(
        directive["Dimensions"][0]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("outcome"))
    );
    assert!(
        documents
            .iter()
            .any(|d| d.get("job_queue_age_ms").is_some() && d["kind"] == "report"),
        "{log}"
    );
}
