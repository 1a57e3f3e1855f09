//! SQS message bodies through the real processor (`jobs::process`) on an
//! in-memory worker: 300 generated people, a memory request store, a pusher
//! with nobody subscribed.
//!
//! Input: one control byte, then the message body (UTF-8). The control byte
//! picks the delivery, so seeds stay readable ('0'..'3' is the common case):
//! - bits 0-1: receive count 1..4 (the worker gives up at 3);
//! - bit 2 ('4'..'7'): no record for the request (an unknown request);
//! - bit 3 ('8', '9'): the record is already completed (a duplicate);
//! - bit 6 ('@'..'C'): the deadline has passed (a retry; the last delivery
//!   gives up and fails the request).
//!
//! When the body names a request, a `queued` record of its kind is created
//! first so the real paths run. Each run gets a fresh request store; the
//! people are rebuilt when imports have grown them, so runs stay
//! independent enough to reproduce and memory stays bounded.
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use chrono::Utc;
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use people_app::memory::MemoryRequestStore;
use people_app::config::{JobsConfig, PeopleConfig};
use people_app::jobs::{JobMessage, ProcessError, RequestRecord, RequestStatus, Worker, process};
use people_app::ports::{Outcome, RequestStore};
use people_app::index::Refresh;
use people_aws::wiring::{People, open_people, open_pusher};
use people_app::ws::Pusher;

const SEED_PEOPLE: usize = 300;
/// Rebuild the people once imports have added this many.
const MAX_PEOPLE: usize = 5_000;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    people: Mutex<People>,
    pusher: Pusher,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let people = runtime.block_on(new_people());
        let pusher = runtime
            .block_on(open_pusher(
                &people_aws::sdk::Aws::from_env(),
                &JobsConfig::from_lookup(|_| None).unwrap(),
                None,
            ))
            .unwrap();
        Fixture {
            runtime,
            people: Mutex::new(people),
            pusher,
        }
    })
}

async fn new_people() -> People {
    let config = PeopleConfig {
        seed_people: SEED_PEOPLE,
        ..PeopleConfig::from_lookup(|_| None).unwrap()
    };
    open_people(&people_aws::sdk::Aws::from_env(), &config, None, Refresh::Inline)
        .await
        .unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let Ok(body) = std::str::from_utf8(body) else {
        return;
    };
    let f = fixture();
    f.runtime.block_on(async {
        let mut people = f.people.lock().unwrap();
        if people.index.current().await.len() > MAX_PEOPLE {
            *people = new_people().await;
        }
        let requests = Arc::new(MemoryRequestStore::new());
        let worker = Worker {
            people: people.clone(),
            requests: requests.clone(),
            max_receives: 3,
            pusher: f.pusher.clone(),
        };
        let receive_count = u32::from(control & 3) + 1;
        let parsed = serde_json::from_str::<JobMessage>(body).ok();
        if let Some(message) = &parsed
            && control & 4 == 0
        {
            let now = Utc::now();
            let record = RequestRecord::queued(message.request_id.clone(), message.job.kind(), now);
            requests.create(&record, None).await.unwrap();
            if control & 8 != 0 {
                let done = Outcome::Completed(json!({"earlier": true}));
                assert!(
                    requests
                        .finish(&message.request_id, done, now)
                        .await
                        .unwrap()
                );
            }
        }
        let deadline = (control & 0x40 != 0).then(Instant::now);
        let result = process(&worker, body, receive_count, deadline).await;
        match (&parsed, &result) {
            (None, r) => assert!(matches!(r, Err(ProcessError::Malformed(_))), "{r:?}"),
            (Some(_), Err(ProcessError::Malformed(e))) => panic!("parsed, yet malformed: {e}"),
            (Some(m), Ok(_)) if control & 4 == 0 => {
                // Whatever happened, the request is finished now.
                let record = requests
                    .get(&m.request_id)
                    .await
                    .unwrap()
                    .expect("a record");
                assert!(
                    matches!(
                        record.status,
                        RequestStatus::Completed | RequestStatus::Failed
                    ),
                    "{record:?}"
                );
            }
            (Some(_), _) => {}
        }
    });
});
