//! The whole job flow on DynamoDB and SQS: submit, queue, process.

use crate::requests::dynamo_store;
use crate::support::*;

use std::sync::Arc;

use people_app::access::Caller;
use people_app::jobs::{JobMessage, RequestStatus};
use people_app::ports::RequestStore;
use people_aws::sqs::{SqsQueue, create_queues};

// ------------------- the whole job flow on DynamoDB and SQS (moto)

/// GIVEN the enqueue and processor code on the DynamoDB request store and a
/// real SQS queue WHEN a report is submitted, received and processed, and
/// then received again THEN it completes once and the duplicate changes
/// nothing; a submission whose send fails leaves a failed record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_queue_process_on_dynamodb_and_sqs() {
    use people_app::config::PeopleConfig;
    use people_app::index::Refresh;
    use people_app::jobs::{Enqueuer, Processed, SubmitError, Worker, process, submit};
    use people_aws::wiring::open_people;

    let requests: Arc<dyn RequestStore> = Arc::new(dynamo_store("flow").await);
    let sqs = moto_sqs_client();
    let (url, _dlq) = create_queues(&sqs, &unique("jobs", "flow")).await.unwrap();
    let enqueuer = Enqueuer {
        requests: Arc::clone(&requests),
        queue: Arc::new(SqsQueue::new(sqs.clone(), url.clone())),
        anonymous_writes: true,
    };
    let body = br#"{"kind":"report","filter":{"search":"jo"}}"#;
    let record = submit(
        &enqueuer,
        body,
        &Caller::Anonymous,
        Some("flow-key"),
        "corr-flow",
    )
    .await
    .unwrap();
    assert_eq!(record.status, RequestStatus::Queued);

    let received = receive(&sqs, &url).await;
    let message = &received[0];
    let config = PeopleConfig {
        seed_people: 2_000,
        ..PeopleConfig::from_lookup(|_| None).unwrap()
    };
    let worker = Worker {
        people: open_people(
            &people_aws::sdk::Aws::from_env(),
            &config,
            None,
            Refresh::Inline,
        )
        .await
        .unwrap(),
        requests: Arc::clone(&requests),
        max_receives: 3,
        pusher: people_aws::wiring::open_pusher(
            &people_aws::sdk::Aws::from_env(),
            &people_app::config::JobsConfig::from_lookup(|_| None).unwrap(),
            None,
        )
        .await
        .unwrap(),
    };
    let body = message.body().unwrap();
    assert_eq!(
        process(&worker, body, 1, None).await.unwrap(),
        Processed::Completed
    );
    let done = requests.get(&record.id).await.unwrap().unwrap();
    assert_eq!(done.status, RequestStatus::Completed);
    assert!(done.result.as_ref().unwrap()["total"].as_u64().unwrap() > 0);
    // A redelivery of the same message.
    assert_eq!(
        process(&worker, body, 2, None).await.unwrap(),
        Processed::Duplicate
    );
    assert_eq!(requests.get(&record.id).await.unwrap().unwrap(), done);

    // The queue is gone: the client is told, the record says failed, and
    // its key is freed, so that the same key submits the request again.
    let broken = Enqueuer {
        requests: Arc::clone(&requests),
        queue: Arc::new(SqsQueue::new(sqs.clone(), format!("{url}-missing"))),
        anonymous_writes: true,
    };
    let err = submit(
        &broken,
        br#"{"kind":"report"}"#,
        &Caller::Anonymous,
        Some("broken-key"),
        "corr-2",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SubmitError::Queue(_)), "{err:?}");
    let again = submit(
        &enqueuer,
        br#"{"kind":"report"}"#,
        &Caller::Anonymous,
        Some("broken-key"),
        "corr-3",
    )
    .await
    .unwrap();
    assert_eq!(again.status, RequestStatus::Queued);
    let received = receive(&sqs, &url).await;
    let message: JobMessage = serde_json::from_str(received[0].body().unwrap()).unwrap();
    assert_eq!(message.request_id, again.id);
}
