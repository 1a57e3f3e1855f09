//! The checks of the fuzz targets, written once: each target in
//! `fuzz/fuzz_targets/` is one call of a function here, and the corpus
//! replay (`tests/fuzz_corpus.rs`) calls the same function for every seed
//! and regression input, then checks the known outcome of some seeds by
//! file name. Each function panics when a property fails and returns what
//! it parsed, for those outcome checks.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use people_app::config::PeopleConfig;
use people_app::index::Refresh;
use people_app::jobs::{
    Job, JobMessage, MAX_BODY_BYTES, ProcessError, Processed, RequestRecord, RequestStatus,
    SubmitError, Worker, parse_job, process,
};
use people_app::memory::MemoryRequestStore;
use people_app::people::{People, open_memory};
use people_app::ports::{Outcome, RequestStore};
use people_app::ws::{
    ClientFrame, FrameError, MAX_MESSAGE_BYTES, Pusher, ServerMessage, parse_frame,
};
use people_core::domain::{HobbiesMatch, PeopleFilter, Person, SortKey, validate_fields};
use people_core::jsonl::parse_person;
use people_core::text::fold;
use people_http::params::{MAX_FILTER_LIMIT, MAX_PAGE_SIZE, MAX_SEARCH_WORDS, MAX_VALUES};
use people_http::{ApiError, Cursor, PeopleQuery, params, parse_query};
use serde_json::{Value, json};

/// `GET /people` and `GET /filters` query strings (what follows `?`):
/// `parse_query`, then `PeopleQuery::from_pairs` (which also decodes a
/// `cursor`) and `filter_limit`. `None`: not UTF-8.
pub fn query_params(data: &[u8]) -> Option<Result<PeopleQuery, ApiError>> {
    let raw = std::str::from_utf8(data).ok()?;
    Some(parse_query(Some(raw)).and_then(|pairs| {
        if let Ok(limit) = params::filter_limit(&pairs) {
            assert!((1..=MAX_FILTER_LIMIT).contains(&limit));
        }
        let query = PeopleQuery::from_pairs(&pairs);
        if let Ok(q) = &query {
            // A PeopleQuery can only exist valid.
            assert!((1..=MAX_PAGE_SIZE).contains(&q.page_size));
            assert!(q.filter.words.len() <= MAX_SEARCH_WORDS);
            for list in [&q.filter.nationalities, &q.filter.hobbies] {
                assert!(list.len() <= MAX_VALUES);
                assert!(list.iter().all(|v| !v.is_empty()));
            }
        }
        query
    }))
}

/// A cursor token, then (line 2) the filter it is decoded against as
/// `search TAB nationalities TAB hobbies TAB any|all`, then (line 3) an
/// optional person `last TAB first TAB id`: a decoded cursor re-encodes to
/// itself, and the cursor issued after a valid person always decodes.
/// Returns the decoded cursor of line 1 (`None`: not UTF-8).
pub fn cursor(data: &[u8]) -> Option<Result<Cursor, ApiError>> {
    let text = std::str::from_utf8(data).ok()?;
    let mut lines = text.splitn(3, '\n');
    let token = lines.next().unwrap_or("");
    let filter = cursor_filter(lines.next().unwrap_or(""));
    let decoded = Cursor::decode(token, &filter);
    if let Ok(cursor) = &decoded {
        let again = Cursor::encode(&cursor.after, &filter);
        let back = Cursor::decode(&again, &filter).expect("a re-encoded cursor decodes");
        assert_eq!(&back, cursor);
    }
    if let Some(person) = lines.next() {
        let mut fields = person.split('\t');
        let (last, first, id) = (
            fields.next().unwrap_or(""),
            fields.next().unwrap_or(""),
            fields.next().unwrap_or(""),
        );
        if validate_fields(id, first, last, "Nationality", &[] as &[&str]).is_ok() {
            let after = SortKey {
                last: fold(last),
                first: fold(first),
                id: id.to_owned(),
            };
            let token = Cursor::encode(&after, &filter);
            match Cursor::decode(&token, &filter) {
                Ok(c) => assert_eq!(c.after, after),
                Err(e) => panic!(
                    "the cursor issued after a valid person ({} bytes) is refused: {e:?}",
                    token.len()
                ),
            }
        }
    }
    Some(decoded)
}

fn cursor_filter(line: &str) -> PeopleFilter {
    let mut fields = line.split('\t');
    let search = fields.next().unwrap_or("");
    let list = |s: Option<&str>| -> Vec<String> {
        s.unwrap_or("")
            .split(',')
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let nationalities = list(fields.next());
    let hobbies = list(fields.next());
    let hobbies_match = match fields.next() {
        Some("all") => HobbiesMatch::All,
        _ => HobbiesMatch::Any,
    };
    PeopleFilter::new(search, nationalities, hobbies, hobbies_match)
}

/// A `POST /requests` body: `parse_job`; an accepted job queues as a
/// message that reads back as the same job.
pub fn request_body(data: &[u8]) -> Result<Job, SubmitError> {
    let parsed = parse_job(data);
    match &parsed {
        Ok(job) => {
            assert!(data.len() <= MAX_BODY_BYTES);
            if let Job::Report { filter } = job {
                let _ = filter.to_filter();
            }
            let message = JobMessage {
                request_id: "00000000-0000-4000-8000-000000000000".into(),
                correlation_id: "fuzz".into(),
                id_seed: None,
                job: job.clone(),
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
                (Job::Delete { ids: a }, Job::Delete { ids: b }) => assert_eq!(a, b),
                (a, b) => panic!("{a:?} read back as {b:?}"),
            }
        }
        Err(SubmitError::TooLarge) => assert!(data.len() > MAX_BODY_BYTES),
        Err(_) => assert!(data.len() <= MAX_BODY_BYTES),
    }
    parsed
}

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

/// A WebSocket text frame: binary frames are refused; a subscribe names a
/// request; a process frame's request goes through `parse_job`; an error's
/// reply fits in one message. `None`: not UTF-8.
pub fn ws_frame(data: &[u8]) -> Option<Result<ClientFrame, FrameError>> {
    let text = std::str::from_utf8(data).ok()?;
    let binary = parse_frame(Some(text), true).expect_err("binary frames are refused");
    assert_eq!(binary.code, "invalid_frame");
    let frame = parse_frame(Some(text), false);
    match &frame {
        Ok(ClientFrame::Subscribe { request_id }) => {
            assert!(!request_id.is_empty() && request_id.chars().count() <= 128);
        }
        Ok(ClientFrame::Process { request, .. }) => {
            assert!(text.len() <= MAX_MESSAGE_BYTES);
            let body = serde_json::to_vec(request).expect("a JSON value serializes");
            let _ = parse_job(&body);
        }
        Err(e) => {
            if text.len() > MAX_MESSAGE_BYTES {
                assert_eq!(e.code, "too_large");
            }
            let reply = ServerMessage::frame_error(e).to_bytes();
            assert!(reply.len() <= MAX_MESSAGE_BYTES, "{} bytes", reply.len());
        }
    }
    Some(frame)
}

/// A line of an import file: a parsed person is valid, and what the API
/// sends back reads back as the same person. An error says why.
pub fn import_line(data: &[u8]) -> Result<Person, String> {
    let parsed = parse_person(data);
    match &parsed {
        Ok(person) => {
            // parse_person checks exactly what validate checks.
            person.validate().expect("a parsed person is valid");
            let line = serde_json::to_vec(person).expect("a person serializes");
            assert_eq!(parse_person(&line).as_ref(), Ok(person));
        }
        Err(reason) => assert!(!reason.is_empty()),
    }
    parsed
}

/// The in-memory worker the SQS message check runs on: generated people,
/// a pusher with nobody subscribed.
pub struct Processor {
    pub people: People,
    pusher: Pusher,
}

impl Processor {
    pub const SEED_PEOPLE: usize = 300;

    pub async fn new() -> Self {
        let config = PeopleConfig {
            seed_people: Self::SEED_PEOPLE,
            ..PeopleConfig::from_lookup(|_| None).expect("the default configuration")
        };
        Self {
            people: open_memory(&config, None, Refresh::Inline)
                .await
                .expect("memory storage opens"),
            pusher: people_app::memory::pusher(None),
        }
    }

    /// One control byte, then an SQS message body, through the real
    /// processor (`jobs::process`) with a fresh request store. The control
    /// byte picks the delivery, so seeds stay readable ('0'..'3' is the
    /// common case):
    /// - bits 0-1: receive count 1..4 (the worker gives up at 3);
    /// - bit 2 ('4'..'7'): no record for the request (an unknown request);
    /// - bit 3 ('8', '9'): the record is already completed (a duplicate);
    /// - bit 6 ('@'..'C'): the deadline has passed (a retry; the last
    ///   delivery gives up and fails the request).
    ///
    /// When the body names a request, a `queued` record of its kind is
    /// created first so the real paths run; whatever happens then, the
    /// request ends finished. `None`: no control byte, or not UTF-8.
    pub async fn sqs_message(&self, data: &[u8]) -> Option<Result<Processed, ProcessError>> {
        let (&control, body) = data.split_first()?;
        let body = std::str::from_utf8(body).ok()?;
        let requests = Arc::new(MemoryRequestStore::new());
        let worker = Worker {
            people: self.people.clone(),
            requests: requests.clone(),
            max_receives: 3,
            pusher: self.pusher.clone(),
        };
        let parsed = serde_json::from_str::<JobMessage>(body).ok();
        if let Some(message) = &parsed
            && control & 4 == 0
        {
            let now = Utc::now();
            let record = RequestRecord::queued(message.request_id.clone(), message.job.kind(), now);
            requests
                .create(&record, None)
                .await
                .expect("a memory store creates");
            if control & 8 != 0 {
                let done = Outcome::Completed(json!({"earlier": true}));
                assert!(
                    requests
                        .finish(&message.request_id, done, now)
                        .await
                        .expect("a memory store finishes")
                );
            }
        }
        let deadline = (control & 0x40 != 0).then(Instant::now);
        let result = process(&worker, body, u32::from(control & 3) + 1, deadline).await;
        match (&parsed, &result) {
            (None, r) => assert!(matches!(r, Err(ProcessError::Malformed(_))), "{r:?}"),
            (Some(_), Err(ProcessError::Malformed(e))) => panic!("parsed, yet malformed: {e}"),
            (Some(m), Ok(_)) if control & 4 == 0 => {
                let record = requests
                    .get(&m.request_id)
                    .await
                    .expect("a memory store reads")
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
        Some(result)
    }
}
