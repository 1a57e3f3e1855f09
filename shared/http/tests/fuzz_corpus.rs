//! Replays every seed and regression input of the fuzz targets
//! (`fuzz/corpus/<target>/`) through the same code paths and checks as the
//! targets (`fuzz/fuzz_targets/`), so the ordinary test suite guards them
//! without cargo-fuzz. A few seeds also have a known outcome, checked here
//! by file name.

use std::path::PathBuf;
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
use people_app::people::open_memory as open_people;
use people_app::ports::{Outcome, RequestStore};
use people_app::ws::{ClientFrame, MAX_MESSAGE_BYTES, ServerMessage, parse_frame};
use people_core::domain::{HobbiesMatch, PeopleFilter, SortKey, validate_fields};
use people_core::jsonl::parse_person;
use people_core::text::fold;
use people_http::params::{MAX_FILTER_LIMIT, MAX_PAGE_SIZE, MAX_SEARCH_WORDS, MAX_VALUES};
use people_http::{ApiError, Cursor, PeopleQuery, params, parse_query};
use serde_json::json;

/// The files of `fuzz/corpus/<target>/`, by name, in name order.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
}

fn text(name: &str, data: &[u8]) -> String {
    String::from_utf8(data.to_vec()).unwrap_or_else(|_| panic!("{name} is not UTF-8"))
}

fn bad_parameter(result: Result<impl std::fmt::Debug, ApiError>) -> String {
    match result {
        Err(ApiError::InvalidParameter { parameter, .. }) => parameter,
        other => panic!("expected a bad parameter, got {other:?}"),
    }
}

#[test]
fn query_params() {
    for (name, data) in corpus("query_params") {
        let raw = text(&name, &data);
        let query = parse_query(Some(&raw)).and_then(|pairs| {
            if let Ok(limit) = params::filter_limit(&pairs) {
                assert!((1..=MAX_FILTER_LIMIT).contains(&limit), "{name}");
            }
            PeopleQuery::from_pairs(&pairs)
        });
        if let Ok(q) = &query {
            assert!((1..=MAX_PAGE_SIZE).contains(&q.page_size), "{name}");
            assert!(q.filter.words.len() <= MAX_SEARCH_WORDS, "{name}");
            for list in [&q.filter.nationalities, &q.filter.hobbies] {
                assert!(list.len() <= MAX_VALUES, "{name}");
                assert!(list.iter().all(|v| !v.is_empty()), "{name}");
            }
        }
        match name.as_str() {
            "search" | "filters" | "cursor" | "empty" => assert!(query.is_ok(), "{name}"),
            "bad-page" | "huge-page" => assert_eq!(bad_parameter(query), "page"),
            "cursor-and-page" | "cursor-other-filter" => {
                assert_eq!(bad_parameter(query), "cursor")
            }
            "long-search" | "eleven-words" => assert_eq!(bad_parameter(query), "search"),
            _ => {}
        }
    }
}

#[test]
fn cursor() {
    for (name, data) in corpus("cursor") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let mut lines = text.splitn(3, '\n');
        let token = lines.next().unwrap_or("");
        let filter = cursor_filter(lines.next().unwrap_or(""));
        let decoded = Cursor::decode(token, &filter);
        if let Ok(cursor) = &decoded {
            let again = Cursor::encode(&cursor.after, &filter);
            assert_eq!(
                Cursor::decode(&again, &filter).as_ref(),
                Ok(cursor),
                "{name}"
            );
        }
        assert_eq!(
            decoded.is_ok(),
            name.starts_with("valid-"),
            "{name}: {decoded:?}"
        );
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
                let back = Cursor::decode(&token, &filter);
                assert_eq!(
                    back.map(|c| c.after).as_ref(),
                    Ok(&after),
                    "{name}: the cursor issued after a valid person ({} bytes) is refused",
                    token.len()
                );
            }
        }
    }
}

/// `search TAB nationalities TAB hobbies TAB any|all`, as the target reads it.
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

#[test]
fn request_body() {
    for (name, data) in corpus("request_body") {
        let parsed = parse_job(&data);
        match &parsed {
            Ok(job) => {
                let message = JobMessage {
                    request_id: "00000000-0000-4000-8000-000000000000".into(),
                    correlation_id: "fuzz".into(),
                    id_seed: None,
                    job: job.clone(),
                };
                let text = serde_json::to_string(&message).unwrap();
                let back: JobMessage = serde_json::from_str(&text).unwrap();
                assert_eq!(back.job.kind(), job.kind(), "{name}");
                if let (Job::Report { filter: a }, Job::Report { filter: b }) = (&back.job, job) {
                    assert_eq!(a, b, "{name}");
                }
            }
            Err(SubmitError::TooLarge) => assert!(data.len() > MAX_BODY_BYTES, "{name}"),
            Err(_) => assert!(data.len() <= MAX_BODY_BYTES, "{name}"),
        }
        match name.as_str() {
            "report" | "report-no-filter" | "report-null-filter" | "report-full-filter"
            | "import" => assert!(parsed.is_ok(), "{name}: {parsed:?}"),
            "too-large" => assert!(matches!(parsed, Err(SubmitError::TooLarge)), "{name}"),
            "import-too-many" | "import-empty" | "bad-kind" | "unknown-field" => {
                assert!(
                    matches!(parsed, Err(SubmitError::Invalid { .. })),
                    "{name}: {parsed:?}"
                )
            }
            _ => {}
        }
    }
}

#[test]
fn ws_frame() {
    for (name, data) in corpus("ws_frame") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let binary = parse_frame(Some(text), true).expect_err("binary frames are refused");
        assert_eq!(binary.code, "invalid_frame", "{name}");
        let frame = parse_frame(Some(text), false);
        match &frame {
            Ok(ClientFrame::Subscribe { request_id }) => {
                assert!(!request_id.is_empty() && request_id.chars().count() <= 128);
            }
            Ok(ClientFrame::Process { request, .. }) => {
                let _ = parse_job(&serde_json::to_vec(request).unwrap());
            }
            Err(e) => {
                if text.len() > MAX_MESSAGE_BYTES {
                    assert_eq!(e.code, "too_large", "{name}");
                }
                let reply = ServerMessage::frame_error(e).to_bytes();
                assert!(
                    reply.len() <= MAX_MESSAGE_BYTES,
                    "{name}: {} bytes",
                    reply.len()
                );
            }
        }
        let code = frame.as_ref().err().map(|e| e.code);
        match name.as_str() {
            "subscribe" | "process" | "process-import" => assert_eq!(code, None, "{name}"),
            "too-large" => assert_eq!(code, Some("too_large")),
            "not-json" | "array" | "empty" => assert_eq!(code, Some("invalid_json"), "{name}"),
            "missing-request" => assert_eq!(code, Some("missing_field")),
            "unknown-action" => assert_eq!(code, Some("unknown_action")),
            _ => {}
        }
    }
}

#[tokio::test]
async fn sqs_message() {
    let config = PeopleConfig {
        seed_people: 300,
        ..PeopleConfig::from_lookup(|_| None).unwrap()
    };
    let people = open_people(&config, None, Refresh::Inline).await.unwrap();
    let pusher = people_app::memory::pusher(None);
    for (name, data) in corpus("sqs_message") {
        let Some((&control, body)) = data.split_first() else {
            continue;
        };
        let Ok(body) = std::str::from_utf8(body) else {
            continue;
        };
        // The control byte, as the target reads it: receive count, no
        // record, an already finished record, a passed deadline.
        let requests = Arc::new(MemoryRequestStore::new());
        let worker = Worker {
            people: people.clone(),
            requests: requests.clone(),
            max_receives: 3,
            pusher: pusher.clone(),
        };
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
        let result = process(&worker, body, u32::from(control & 3) + 1, deadline).await;
        match (&parsed, &result) {
            (None, r) => assert!(
                matches!(r, Err(ProcessError::Malformed(_))),
                "{name}: {r:?}"
            ),
            (Some(_), Err(ProcessError::Malformed(e))) => panic!("{name}: malformed: {e}"),
            (Some(m), Ok(_)) if control & 4 == 0 => {
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
                    "{name}: {record:?}"
                );
            }
            (Some(_), _) => {}
        }
        let expected = match name.as_str() {
            "report" | "report-all" | "import" | "import-people" | "import-duplicate-ids" => {
                Some(Processed::Completed)
            }
            "report-invalid-filter" | "deadline-gives-up" => Some(Processed::Failed),
            "duplicate" => Some(Processed::Duplicate),
            _ => None,
        };
        if let Some(expected) = expected {
            assert_eq!(result.as_ref().ok(), Some(&expected), "{name}: {result:?}");
        }
        match name.as_str() {
            "unknown-request" => assert!(
                matches!(result, Err(ProcessError::UnknownRequest(_))),
                "{name}: {result:?}"
            ),
            "deadline-retry" => assert!(
                matches!(result, Err(ProcessError::Retry { .. })),
                "{name}: {result:?}"
            ),
            _ => {}
        }
    }
}

#[test]
fn import_line() {
    for (name, data) in corpus("import_line") {
        let parsed = parse_person(&data);
        if let Ok(person) = &parsed {
            assert_eq!(person.validate(), Ok(()), "{name}");
            let line = serde_json::to_vec(person).unwrap();
            assert_eq!(parse_person(&line).as_ref(), Ok(person), "{name}");
        }
        let valid = name.starts_with("person-") || name == "no-hobbies" || name == "escapes";
        assert_eq!(parsed.is_ok(), valid, "{name}: {parsed:?}");
        if let Err(reason) = &parsed {
            assert!(!reason.is_empty(), "{name}");
        }
    }
}
