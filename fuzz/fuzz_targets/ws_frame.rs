//! WebSocket frames: `parse_frame` as text and as a binary (base64) frame,
//! the error message sent back, and the `POST /requests` body a `process`
//! frame carries. Input: the frame's text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use people_app::jobs::parse_job;
use people_app::ws::{ClientFrame, MAX_MESSAGE_BYTES, ServerMessage, parse_frame};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let binary = parse_frame(Some(text), true).expect_err("binary frames are refused");
    assert_eq!(binary.code, "invalid_frame");
    match parse_frame(Some(text), false) {
        Ok(ClientFrame::Subscribe { request_id }) => {
            assert!(!request_id.is_empty() && request_id.chars().count() <= 128);
        }
        Ok(ClientFrame::Process { request, .. }) => {
            assert!(text.len() <= MAX_MESSAGE_BYTES);
            let body = serde_json::to_vec(&request).expect("a JSON value serializes");
            let _ = parse_job(&body);
        }
        Err(e) => {
            if text.len() > MAX_MESSAGE_BYTES {
                assert_eq!(e.code, "too_large");
            }
            let reply = ServerMessage::frame_error(&e).to_bytes();
            assert!(reply.len() <= MAX_MESSAGE_BYTES, "{} bytes", reply.len());
        }
    }
});
