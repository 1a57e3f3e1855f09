//! Replays every seed and regression input of the fuzz targets
//! (`fuzz/corpus/<target>/`) through the same checks as the targets
//! (`people_testkit::fuzz`, which each target calls), so the ordinary test
//! suite guards them without cargo-fuzz. A few seeds also have a known
//! outcome, checked here by file name.

use std::path::PathBuf;

use people_app::jobs::{ProcessError, Processed, SubmitError};
use people_app::ws::ClientFrame;
use people_http::ApiError;
use people_testkit::fuzz;

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

/// Runs `check` on one input, naming the input when a property fails.
fn checked<T>(name: &str, check: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)) {
        Ok(t) => t,
        Err(e) => {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{name}: {why}")
        }
    }
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
        let query = checked(&name, || fuzz::query_params(&data))
            .unwrap_or_else(|| panic!("{name} is not UTF-8"));
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
        let Some(decoded) = checked(&name, || fuzz::cursor(&data)) else {
            continue;
        };
        assert_eq!(
            decoded.is_ok(),
            name.starts_with("valid-"),
            "{name}: {decoded:?}"
        );
    }
}

#[test]
fn request_body() {
    for (name, data) in corpus("request_body") {
        let parsed = checked(&name, || fuzz::request_body(&data));
        match name.as_str() {
            "report" | "report-no-filter" | "report-null-filter" | "report-full-filter"
            | "import" | "delete" => assert!(parsed.is_ok(), "{name}: {parsed:?}"),
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
        let Some(frame) = checked(&name, || fuzz::ws_frame(&data)) else {
            continue;
        };
        let code = frame.as_ref().err().map(|e| e.code);
        match name.as_str() {
            "subscribe" | "process" | "process-import" => assert_eq!(code, None, "{name}"),
            "too-large" => assert_eq!(code, Some("too_large")),
            "not-json" | "array" | "empty" => assert_eq!(code, Some("invalid_json"), "{name}"),
            "missing-request" => assert_eq!(code, Some("missing_field")),
            "unknown-action" => assert_eq!(code, Some("unknown_action")),
            _ => {}
        }
        if let Ok(ClientFrame::Subscribe { request_id }) = &frame {
            assert!(!request_id.is_empty(), "{name}");
        }
    }
}

#[tokio::test]
async fn sqs_message() {
    let processor = fuzz::Processor::new().await;
    for (name, data) in corpus("sqs_message") {
        let run = std::panic::AssertUnwindSafe(processor.sqs_message(&data));
        let result = match futures::FutureExt::catch_unwind(run).await {
            Ok(Some(result)) => result,
            Ok(None) => continue,
            Err(e) => std::panic::resume_unwind(Box::new(format!(
                "{name}: {}",
                e.downcast_ref::<String>().cloned().unwrap_or_default()
            ))),
        };
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
        let parsed = checked(&name, || fuzz::import_line(&data));
        let valid = name.starts_with("person-") || name == "no-hobbies" || name == "escapes";
        assert_eq!(parsed.is_ok(), valid, "{name}: {parsed:?}");
    }
}
