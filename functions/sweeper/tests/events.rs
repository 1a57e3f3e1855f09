//! The sweeper Lambda's handler on the scheduled event of `events/`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lambda_runtime::{Context, LambdaEvent};
use people_app::config::JobsConfig;
use people_app::jobs::{JobKind, RequestRecord, RequestStatus, Sweeper};
use people_app::memory::MemoryRequestStore;
use people_app::ports::{RequestStore, Started};

const SCHEDULED: &str = include_str!("../../../events/scheduled.json");

#[tokio::test]
async fn a_scheduled_run_fails_the_stuck_requests_only() {
    let requests = Arc::new(MemoryRequestStore::new());
    let hour_ago = Utc::now() - chrono::Duration::hours(1);
    for (id, started) in [
        ("stuck", Some(hour_ago)),
        ("running", Some(Utc::now())),
        ("queued", None),
    ] {
        let record = RequestRecord::queued(id.into(), JobKind::Report, hour_ago);
        requests.create(&record, None).await.unwrap();
        if let Some(at) = started {
            assert!(matches!(
                requests.start(id, at).await.unwrap(),
                Started::Started(_)
            ));
        }
    }
    let sweeper = Sweeper {
        requests: requests.clone(),
        pusher: people_aws::wiring::open_pusher(
            &people_aws::sdk::Aws::from_env(),
            &JobsConfig::from_lookup(|_| None).unwrap(),
            None,
        )
        .await
        .unwrap(),
        stuck_after: Duration::from_secs(3 * 360),
    };
    let event = LambdaEvent::new(serde_json::from_str(SCHEDULED).unwrap(), Context::default());
    let answer = sweeper::handler(&sweeper, event).await.unwrap();
    assert_eq!(answer["failed"], 1);
    let status = async |id: &str| requests.get(id).await.unwrap().unwrap().status;
    assert_eq!(status("stuck").await, RequestStatus::Failed);
    assert_eq!(status("running").await, RequestStatus::Processing);
    assert_eq!(status("queued").await, RequestStatus::Queued);
}
