//! What clients send and what they receive.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{MAX_CLIENT_REF_CHARS, MAX_MESSAGE_BYTES};
use crate::jobs::{JobError, RequestRecord, RequestStatus};

/// A frame a client sent, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    /// `{"action": "subscribe", "request_id": "..."}`
    Subscribe { request_id: String },
    /// `{"action": "process", "request": {...}, "client_ref": "..."?,
    /// "idempotency_key": "..."?}`; `request` is a `POST /requests` body,
    /// checked when it is submitted; `idempotency_key` means what the
    /// `Idempotency-Key` header of `POST /requests` means.
    Process {
        request: Value,
        client_ref: Option<String>,
        idempotency_key: Option<String>,
    },
}

/// Why a frame was refused; sent back as an `error` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FrameError {
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Echoed when the frame carried one, so a client can match the error.
    pub client_ref: Option<String>,
}

impl FrameError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            client_ref: None,
        }
    }

    fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }
}

/// Reads a frame. `body` is what API Gateway passed on: text frames as they
/// are, binary frames base64-encoded (`is_base64`), which are refused.
pub fn parse_frame(body: Option<&str>, is_base64: bool) -> Result<ClientFrame, FrameError> {
    let body = body.unwrap_or("");
    if is_base64 {
        return Err(FrameError::new(
            "invalid_frame",
            "binary frames are not accepted; send JSON text",
        ));
    }
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(FrameError::new(
            "too_large",
            format!("a frame carries at most {MAX_MESSAGE_BYTES} bytes"),
        ));
    }
    let value: Value = serde_json::from_str(body).map_err(|e| {
        FrameError::new(
            "invalid_json",
            format!(
                "the frame is not JSON: {}",
                people_core::text::clip_quoted(&e.to_string(), 64)
            ),
        )
    })?;
    let Value::Object(mut object) = value else {
        return Err(FrameError::new(
            "invalid_json",
            "the frame must be a JSON object",
        ));
    };
    // Read first, so that any later error can carry it back.
    let client_ref = match object.remove("client_ref") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= MAX_CLIENT_REF_CHARS => Some(s),
        Some(_) => {
            return Err(FrameError::new(
                "invalid_field",
                format!("client_ref must be a string of at most {MAX_CLIENT_REF_CHARS} characters"),
            )
            .field("client_ref"));
        }
    };
    let with_ref = |e: FrameError| FrameError {
        client_ref: client_ref.clone(),
        ..e
    };
    let action = match object.remove("action") {
        Some(Value::String(a)) => a,
        Some(_) => {
            return Err(with_ref(
                FrameError::new("invalid_field", "action must be a string").field("action"),
            ));
        }
        None => {
            return Err(with_ref(
                FrameError::new("missing_field", "action is required: subscribe or process")
                    .field("action"),
            ));
        }
    };
    let frame = match action.as_str() {
        "subscribe" => {
            let request_id = required_string(&mut object, "request_id").map_err(with_ref)?;
            ClientFrame::Subscribe { request_id }
        }
        "process" => match object.remove("request") {
            Some(request @ Value::Object(_)) => {
                let idempotency_key = match object.remove("idempotency_key") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(key)) if crate::jobs::valid_key(&key) => Some(key),
                    Some(_) => {
                        return Err(with_ref(
                            FrameError::new("invalid_field", crate::jobs::KEY_RULE)
                                .field("idempotency_key"),
                        ));
                    }
                };
                ClientFrame::Process {
                    request,
                    client_ref: client_ref.clone(),
                    idempotency_key,
                }
            }
            Some(_) => {
                return Err(with_ref(
                    FrameError::new("invalid_field", "request must be a JSON object")
                        .field("request"),
                ));
            }
            None => {
                return Err(with_ref(
                    FrameError::new(
                        "missing_field",
                        "request is required: a POST /requests body",
                    )
                    .field("request"),
                ));
            }
        },
        other => {
            return Err(with_ref(
                FrameError::new(
                    "unknown_action",
                    format!(
                        "action {:?} is not one of: subscribe, process",
                        quote(other)
                    ),
                )
                .field("action"),
            ));
        }
    };
    if let Some(extra) = object.keys().next() {
        return Err(with_ref(
            FrameError::new("invalid_field", format!("unknown field {:?}", quote(extra)))
                .field(&quote(extra)),
        ));
    }
    if let ClientFrame::Subscribe { .. } = frame
        && client_ref.is_some()
    {
        return Err(with_ref(
            FrameError::new("invalid_field", "client_ref belongs to process frames")
                .field("client_ref"),
        ));
    }
    Ok(frame)
}

/// What an error message quotes of the client's input: at most 64
/// characters, so that the reply always fits in one message (found by
/// fuzzing: an unknown field name of 100 KB came back twice, over 128 KiB).
fn quote(input: &str) -> String {
    const MAX: usize = 64;
    match input.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &input[..cut]),
        None => input.to_owned(),
    }
}

/// Longest request id accepted (ids are UUIDs; this only bounds the work).
const MAX_REQUEST_ID_CHARS: usize = 128;

fn required_string(object: &mut Map<String, Value>, field: &str) -> Result<String, FrameError> {
    match object.remove(field) {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_REQUEST_ID_CHARS => {
            Ok(s)
        }
        Some(_) => Err(FrameError::new(
            "invalid_field",
            format!(
                "{field} must be a non-empty string of at most {MAX_REQUEST_ID_CHARS} characters"
            ),
        )
        .field(field)),
        None => Err(FrameError::new("missing_field", format!("{field} is required")).field(field)),
    }
}

/// How far a request is: `done` of `total` items (people of an import).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// Every message the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMessage<'a> {
    Subscribed {
        request_id: &'a str,
        status: RequestStatus,
    },
    Accepted {
        id: &'a str,
        status: RequestStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_ref: Option<&'a str>,
    },
    ProcessStatus {
        id: &'a str,
        status: RequestStatus,
        /// Long work (imports): how far it is.
        #[serde(skip_serializing_if = "Option::is_none")]
        progress: Option<Progress>,
    },
    ProcessResult {
        id: &'a str,
        status: RequestStatus,
        /// When the request finished.
        finished_at: DateTime<Utc>,
        result: Option<&'a Value>,
        error: Option<&'a JobError>,
        /// Set, with `result` null, when the result is too large for one
        /// message: the client fetches it from here.
        #[serde(skip_serializing_if = "Option::is_none")]
        result_url: Option<String>,
    },
    Error {
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        field: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_ref: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<&'a str>,
        /// For errors on our side: the id to quote, found in the logs.
        #[serde(skip_serializing_if = "Option::is_none")]
        correlation_id: Option<&'a str>,
    },
}

impl<'a> ServerMessage<'a> {
    /// The final message of a finished request.
    pub fn result(record: &'a RequestRecord) -> Self {
        ServerMessage::ProcessResult {
            id: &record.id,
            status: record.status,
            finished_at: record.updated_at,
            result: record.result.as_ref(),
            error: record.error.as_ref(),
            result_url: None,
        }
    }

    /// In place of a result too large for one message.
    pub fn result_elsewhere(record: &'a RequestRecord) -> Self {
        ServerMessage::ProcessResult {
            id: &record.id,
            status: record.status,
            finished_at: record.updated_at,
            result: None,
            error: record.error.as_ref(),
            result_url: Some(format!("/requests/{}", record.id)),
        }
    }

    pub fn frame_error(e: &'a FrameError) -> Self {
        ServerMessage::Error {
            code: e.code,
            message: &e.message,
            field: e.field.as_deref(),
            client_ref: e.client_ref.as_deref(),
            request_id: None,
            correlation_id: None,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("server messages serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code(body: &str) -> &'static str {
        parse_frame(Some(body), false).unwrap_err().code
    }

    #[test]
    fn frames_that_are_accepted() {
        assert_eq!(
            parse_frame(Some(r#"{"action":"subscribe","request_id":"r1"}"#), false),
            Ok(ClientFrame::Subscribe {
                request_id: "r1".into()
            })
        );
        assert_eq!(
            parse_frame(
                Some(r#"{"action":"process","request":{"kind":"report"},"client_ref":"c-7"}"#),
                false
            ),
            Ok(ClientFrame::Process {
                request: json!({"kind": "report"}),
                client_ref: Some("c-7".into()),
                idempotency_key: None,
            })
        );
        assert_eq!(
            parse_frame(
                Some(r#"{"action":"process","request":{"kind":"report"},"idempotency_key":"k-1"}"#),
                false
            ),
            Ok(ClientFrame::Process {
                request: json!({"kind": "report"}),
                client_ref: None,
                idempotency_key: Some("k-1".into()),
            })
        );
    }

    #[test]
    fn frames_that_are_refused_say_why() {
        assert_eq!(code("hello"), "invalid_json");
        assert_eq!(code("[1,2]"), "invalid_json");
        assert_eq!(code(r#"{"request_id":"r"}"#), "missing_field");
        assert_eq!(code(r#"{"action":7}"#), "invalid_field");
        assert_eq!(code(r#"{"action":"dance"}"#), "unknown_action");
        assert_eq!(code(r#"{"action":"subscribe"}"#), "missing_field");
        assert_eq!(
            code(r#"{"action":"subscribe","request_id":""}"#),
            "invalid_field"
        );
        assert_eq!(
            code(r#"{"action":"subscribe","request_id":"r","x":1}"#),
            "invalid_field"
        );
        assert_eq!(code(r#"{"action":"process"}"#), "missing_field");
        assert_eq!(
            code(r#"{"action":"process","request":"report"}"#),
            "invalid_field"
        );
        assert_eq!(
            code(r#"{"action":"process","request":{},"client_ref":5}"#),
            "invalid_field"
        );
        assert_eq!(
            code(r#"{"action":"process","request":{},"idempotency_key":""}"#),
            "invalid_field"
        );
        assert_eq!(
            code(r#"{"action":"subscribe","request_id":"r","idempotency_key":"k"}"#),
            "invalid_field"
        );
        let big = format!(
            r#"{{"action":"subscribe","request_id":"{}"}}"#,
            "x".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(code(&big), "too_large");
        assert_eq!(
            parse_frame(Some("{}"), true).unwrap_err().code,
            "invalid_frame"
        );
    }

    #[test]
    fn an_error_quotes_little_of_the_input_and_fits_one_message() {
        let key = "k".repeat(100_000);
        let body = format!(r#"{{"action":"subscribe","request_id":"r","{key}":1}}"#);
        let e = parse_frame(Some(&body), false).unwrap_err();
        assert_eq!(e.code, "invalid_field");
        assert!(e.field.as_ref().unwrap().chars().count() <= 65);
        assert!(ServerMessage::frame_error(&e).to_bytes().len() < 1024);
        let body = format!(r#"{{"action":"{key}"}}"#);
        let e = parse_frame(Some(&body), false).unwrap_err();
        assert_eq!(e.code, "unknown_action");
        assert!(ServerMessage::frame_error(&e).to_bytes().len() < 1024);
    }

    #[test]
    fn errors_carry_the_client_ref_back() {
        let e =
            parse_frame(Some(r#"{"action":"process","client_ref":"mine"}"#), false).unwrap_err();
        assert_eq!(
            (e.code, e.client_ref.as_deref()),
            ("missing_field", Some("mine"))
        );
        let message: Value =
            serde_json::from_slice(&ServerMessage::frame_error(&e).to_bytes()).unwrap();
        assert_eq!(
            message,
            json!({"type": "error", "code": "missing_field", "message": e.message,
                   "field": "request", "client_ref": "mine"})
        );
    }
}
