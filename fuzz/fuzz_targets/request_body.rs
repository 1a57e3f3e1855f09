//! `POST /requests` bodies: `parse_job`, and the message an accepted body
//! becomes survives the queue (serialized by the enqueuer, read back by the
//! worker). Input: the request body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use people_app::jobs::{Job, JobMessage, MAX_BODY_BYTES, SubmitError, parse_job};

fuzz_target!(|data: &[u8]| {
    match parse_job(data) {
        Ok(job) => {
            assert!(data.len() <= MAX_BODY_BYTES);
            if let Job::Report { filter } = &job {
                let _ = filter.to_filter();
            }
            let message = JobMessage {
                request_id: "00000000-0000-4000-8000-000000000000".into(),
                correlation_id: "fuzz".into(),
                id_seed: None,
                job,
            };
            let text = serde_json::to_string(&message).expect("a job message serializes");
            let back: JobMessage =
                serde_json::from_str(&text).expect("a queued message reads back");
            assert_eq!(back.request_id, message.request_id);
            assert_eq!(back.correlation_id, message.correlation_id);
            match (&back.job, &message.job) {
                (Job::Report { filter: a }, Job::Report { filter: b }) => assert_eq!(a, b),
                (Job::Import { people: a }, Job::Import { people: b }) => {
                    assert_eq!(a.len(), b.len());
                    for (a, b) in a.iter().zip(b) {
                        assert!(same(a, b), "{a} read back as {b}");
                    }
                }
                (a, b) => panic!("{a:?} read back as {b:?}"),
            }
        }
        Err(SubmitError::TooLarge) => assert!(data.len() > MAX_BODY_BYTES),
        Err(_) => assert!(data.len() <= MAX_BODY_BYTES),
    }
});

/// Equal, except that a float may come back one unit in the last place
/// off: serde_json (without `float_roundtrip`) does not always read back
/// the shortest representation it wrote. Numbers are never a valid person
/// field, so they only ever appear in a rejection.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) if x.is_finite() && y.is_finite() => {
                x == y || ((x - y) / x).abs() < 1e-15
            }
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, a)| y.get(k).is_some_and(|b| same(a, b)))
        }
        _ => a == b,
    }
}
