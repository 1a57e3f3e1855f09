//! The job queue on SQS: queue setup, message shape, error mapping, redrive
//! to the dead-letter queue; and the memory queue's dead-lettering.

use crate::support::*;
use people_testkit::moto;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use people_app::jobs::wire::VISIBILITY_TIMEOUT;
use people_app::jobs::{FilterSpec, Job, JobMessage};
use people_app::ports::{JobQueue, QueueError};
use people_aws::sqs::{SqsQueue, create_queues};
use serde_json::json;

// ----------------------------------------------------------- SQS

fn message(request_id: &str) -> JobMessage {
    JobMessage {
        request_id: request_id.into(),
        correlation_id: format!("corr-{request_id}"),
        id_seed: None,
        job: Job::Report {
            filter: FilterSpec {
                search: "Zoë \"quoted\"".into(),
                nationality: vec!["Irish".into()],
                ..FilterSpec::default()
            },
        },
    }
}

async fn queue_attributes(
    client: &aws_sdk_sqs::Client,
    url: &str,
) -> HashMap<QueueAttributeName, String> {
    client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default()
}

/// Receives at most one message, making it visible again at once (so that
/// the next receive gets it again, as after a failed processing).
async fn receive_one(
    client: &aws_sdk_sqs::Client,
    url: &str,
) -> Option<aws_sdk_sqs::types::Message> {
    let mut messages = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(1)
        .visibility_timeout(0)
        // A message made visible again "now" is visible from the next
        // millisecond: wait for it rather than race it.
        .wait_time_seconds(1)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert!(messages.len() <= 1);
    messages.pop()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_the_queues_twice_is_fine_and_sets_the_redrive() {
    let client = moto_sqs_client();
    let name = unique("jobs", "twice");

    let (url, dlq_url) = create_queues(&client, &name).await.unwrap();
    let again = create_queues(&client, &name).await.unwrap();

    assert_eq!(again, (url.clone(), dlq_url.clone()));
    assert!(dlq_url.ends_with(&format!("/{name}-dlq")), "{dlq_url}");
    let main = queue_attributes(&client, &url).await;
    let dlq = queue_attributes(&client, &dlq_url).await;
    assert_eq!(
        main[&QueueAttributeName::VisibilityTimeout],
        VISIBILITY_TIMEOUT.as_secs().to_string()
    );
    let redrive: serde_json::Value =
        serde_json::from_str(&main[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(
        redrive["deadLetterTargetArn"].as_str(),
        Some(dlq[&QueueAttributeName::QueueArn].as_str())
    );
    // SQS writes the count as a number; some emulators keep a string.
    let count = &redrive["maxReceiveCount"];
    assert!(count == &json!(3) || count == &json!("3"), "{redrive}");
    assert_eq!(
        dlq[&QueueAttributeName::MessageRetentionPeriod],
        (14 * 24 * 3600).to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_the_queues_fixes_a_queue_made_otherwise() {
    // GIVEN a queue of that name made by hand, with a short visibility
    let client = moto_sqs_client();
    let name = unique("jobs", "by-hand");
    client
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .send()
        .await
        .unwrap();

    let (url, _) = create_queues(&client, &name).await.unwrap();

    let main = queue_attributes(&client, &url).await;
    assert_eq!(main[&QueueAttributeName::VisibilityTimeout], "360");
    assert!(main.contains_key(&QueueAttributeName::RedrivePolicy));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_message_is_received_with_its_json_body_and_attributes() {
    let client = moto_sqs_client();
    let (url, _) = create_queues(&client, &unique("jobs", "send"))
        .await
        .unwrap();
    let queue = SqsQueue::new(client.clone(), &url);
    let sent = message("r-1");

    queue.send(&sent).await.unwrap();

    let received = receive_one(&client, &url).await.expect("a message");
    let body = received.body().unwrap();
    assert_eq!(body, serde_json::to_string(&sent).unwrap());
    assert_eq!(serde_json::from_str::<JobMessage>(body).unwrap(), sent);
    let attributes = received.message_attributes().unwrap();
    for (name, value) in [("correlation_id", "corr-r-1"), ("request_id", "r-1")] {
        let attribute = &attributes[name];
        assert_eq!(attribute.data_type(), "String", "{name}");
        assert_eq!(attribute.string_value(), Some(value), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_message_is_visible_again_at_once() {
    use people_app::ports::Redelivery;
    let client = moto_sqs_client();
    let (url, _) = create_queues(&client, &unique("jobs", "release"))
        .await
        .unwrap();
    let queue = SqsQueue::new(client.clone(), &url);
    queue.send(&message("r-rel")).await.unwrap();
    // Received with the queue's visibility timeout (6 minutes).
    let received = receive(&client, &url).await;
    assert_eq!(received.len(), 1);
    let again = || receive(&client, &url);
    assert!(again().await.is_empty(), "hidden until released");

    queue
        .release(&[received[0].receipt_handle().unwrap().to_owned()])
        .await
        .unwrap();

    let back = again().await;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].message_id(), received[0].message_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_errors_are_mapped_to_permanent_or_unavailable() {
    // A queue that does not exist: retrying will not help.
    let client = moto_sqs_client();
    let missing = format!("{}/123456789012/no-such-queue", moto::endpoint());
    let err = SqsQueue::new(client, missing)
        .send(&message("r-2"))
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::Permanent(_)), "{err:?}");

    // Nobody answering: worth retrying.
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{}", closed_port()))
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
        .build();
    let err = SqsQueue::new(
        aws_sdk_sqs::Client::from_conf(config),
        "http://127.0.0.1/1/q",
    )
    .send(&message("r-3"))
    .await
    .unwrap_err();
    assert!(matches!(err, QueueError::Unavailable(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_received_three_times_moves_to_the_dead_letter_queue() {
    // GIVEN a job message on the queue
    let client = moto_sqs_client();
    let (url, dlq_url) = create_queues(&client, &unique("jobs", "redrive"))
        .await
        .unwrap();
    let sent = message("r-4");
    SqsQueue::new(client.clone(), &url)
        .send(&sent)
        .await
        .unwrap();

    // WHEN it is received three times and never deleted (processing failed)
    for receive in 1..=3 {
        let got = receive_one(&client, &url)
            .await
            .unwrap_or_else(|| panic!("receive {receive} got nothing"));
        let count = got
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .cloned();
        assert_eq!(count, Some(receive.to_string()));
    }

    // THEN the next receive does not get it: it is in the dead-letter queue
    assert!(receive_one(&client, &url).await.is_none());
    let dead = receive_one(&client, &dlq_url)
        .await
        .expect("the message in the dead-letter queue");
    assert_eq!(
        dead.body(),
        Some(serde_json::to_string(&sent).unwrap().as_str())
    );
    let attributes = dead.message_attributes().unwrap();
    assert_eq!(attributes["request_id"].string_value(), Some("r-4"));
}

/// A memory double and SQS agree on where a message ends up; the memory
/// queue is only a double if its dead-letter rule is SQS's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_queue_dead_letters_after_as_many_receives() {
    let queue = Arc::new(people_app::memory::MemoryQueue::new());
    let receives = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&receives);
    queue.run_workers(
        1,
        people_app::jobs::wire::MAX_RECEIVE_COUNT,
        std::time::Duration::from_millis(1),
        move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>("failed".to_owned()) }
        },
    );
    let sent = message("r-5");
    queue.send(&sent).await.unwrap();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while queue.dead_letters().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    assert_eq!(
        queue.dead_letters(),
        vec![serde_json::to_string(&sent).unwrap()]
    );
    assert_eq!(receives.load(Ordering::SeqCst), 3);
}
