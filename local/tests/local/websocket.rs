//! The WebSocket API of the local server, with a real WebSocket client:
//! the same handler code as the WebSocket Lambda behind an emulation of
//! API Gateway, and the processor pushing to subscribers.

use std::time::Duration;

use crate::support::{Options, Server};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest wait for one message before a test fails.
const WAIT: Duration = Duration::from_secs(20);

async fn connect(server: &Server) -> Socket {
    let (socket, response) = connect_async(server.ws_url()).await.expect("upgrade");
    assert_eq!(response.status(), 101);
    socket
}

async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// Sends `text` as one message in frames of at most `frame` bytes.
async fn send_fragmented(socket: &mut Socket, text: &str, frame: usize) {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(frame).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let opcode = if i == 0 { Data::Text } else { Data::Continue };
        let last = i + 1 == chunks.len();
        socket
            .send(Message::Frame(Frame::message(
                chunk.to_vec(),
                OpCode::Data(opcode),
                last,
            )))
            .await
            .unwrap();
    }
}

/// The code of the close frame the server sends next.
async fn close_code(socket: &mut Socket) -> u16 {
    let close = loop {
        match tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("an answer in time")
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    u16::from(close.expect("a close code").code)
}

/// The next JSON message.
async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a message in time")
            .expect("the connection is open")
            .expect("a valid frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON message"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Messages up to and including the `process-result` of `id`.
async fn until_result(socket: &mut Socket, id: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let message = next(socket).await;
        let done = message["type"] == "process-result" && message["id"] == id;
        seen.push(message);
        if done {
            return seen;
        }
    }
}

fn report(nationality: &str) -> Value {
    json!({"kind": "report", "filter": {"nationality": nationality}})
}

#[tokio::test]
async fn process_is_accepted_then_processing_then_its_result() {
    // No workers yet, so the order of events is the one a slow job has.
    let server = Server::start_with(Options {
        workers: 0,
        ..Options::default()
    })
    .await;
    let mut socket = connect(&server).await;
    send(
        &mut socket,
        json!({"action": "process", "client_ref": "r-1", "request": report("German")}),
    )
    .await;
    let accepted = next(&mut socket).await;
    assert_eq!(accepted["type"], "accepted", "{accepted}");
    assert_eq!(accepted["client_ref"], "r-1");
    assert_eq!(accepted["status"], "queued");
    let id = accepted["id"].as_str().unwrap().to_owned();

    server.start_workers(1);
    let messages = until_result(&mut socket, &id).await;
    let types: Vec<&str> = messages
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["process-status", "process-result"], "{messages:?}");
    assert_eq!(messages[0]["status"], "processing");
    let result = &messages[1];
    assert_eq!(result["status"], "completed");
    assert!(result["error"].is_null());
    // The push is the stored result.
    let stored = server.finished(&id).await;
    assert_eq!(result["result"], stored["result"]);
    assert!(stored["result"]["total"].as_u64().unwrap() > 0);
    server.shutdown().await;
}

#[tokio::test]
async fn subscribing_after_completion_pushes_the_result_at_once() {
    let server = Server::start().await;
    let (status, body) = server
        .post("/requests", &report("French").to_string(), None)
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let stored = server.finished(&id).await;

    let mut socket = connect(&server).await;
    send(
        &mut socket,
        json!({"action": "subscribe", "request_id": id}),
    )
    .await;
    let subscribed = next(&mut socket).await;
    assert_eq!(
        subscribed,
        json!({"type": "subscribed", "request_id": id, "status": "completed"})
    );
    let result = next(&mut socket).await;
    assert_eq!(result["type"], "process-result");
    assert_eq!(result["result"], stored["result"]);
    server.shutdown().await;
}

#[tokio::test]
async fn two_clients_subscribed_to_one_request_both_get_it() {
    let server = Server::start_with(Options {
        workers: 0,
        ..Options::default()
    })
    .await;
    let (_, body) = server
        .post("/requests", &report("Italian").to_string(), None)
        .await;
    let id = body["id"].as_str().unwrap().to_owned();
    let mut first = connect(&server).await;
    let mut second = connect(&server).await;
    for socket in [&mut first, &mut second] {
        send(socket, json!({"action": "subscribe", "request_id": id})).await;
        assert_eq!(next(socket).await["status"], "queued");
    }
    server.start_workers(1);
    let a = until_result(&mut first, &id).await;
    let b = until_result(&mut second, &id).await;
    assert_eq!(a, b);
    assert_eq!(a.last().unwrap()["status"], "completed");
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_leaves_before_its_result_is_cleaned_up() {
    let server = Server::start_with(Options {
        workers: 0,
        ..Options::default()
    })
    .await;
    let mut socket = connect(&server).await;
    send(
        &mut socket,
        json!({"action": "process", "request": report("Spanish")}),
    )
    .await;
    let id = next(&mut socket).await["id"].as_str().unwrap().to_owned();
    assert_eq!(server.connections.subscriptions(), 1);
    socket.close(None).await.unwrap();
    // `$disconnect` removes the connection and its subscription.
    let deadline = std::time::Instant::now() + WAIT;
    while server.connections.connections() > 0 || !server.hub.is_empty() {
        assert!(std::time::Instant::now() < deadline, "never cleaned up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.connections.subscriptions(), 0);
    server.start_workers(1);
    assert_eq!(server.finished(&id).await["status"], "completed");
    server.shutdown().await;
}

/// API Gateway's 32 KB frame limit: one larger frame closes the
/// connection with 1009, in a close frame.
#[tokio::test]
async fn a_frame_over_32_kb_closes_the_connection_with_1009() {
    let server = Server::start().await;
    let mut socket = connect(&server).await;
    let big = json!({"action": "subscribe", "request_id": "x".repeat(40 * 1024)});
    socket
        .send(Message::Text(big.to_string().into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut socket).await, 1009);
    server.shutdown().await;
}

/// GIVEN a connection WHEN a message past 1 MiB arrives in frames each
/// under the frame limit THEN the server closes the connection with 1009
/// rather than buffer it (docs/websocket.md, "Limits").
#[tokio::test]
async fn a_message_past_1_mib_closes_the_connection_with_1009() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let server = Server::start().await;
    let mut socket = connect(&server).await;
    let chunk = vec![b'x'; 16 * 1024];
    let frames = local::websocket::MAX_TRANSPORT_BYTES / chunk.len() + 8;
    for i in 0..frames {
        let opcode = if i == 0 { Data::Text } else { Data::Continue };
        let frame = Frame::message(chunk.clone(), OpCode::Data(opcode), false);
        // The server may close while frames are still going out.
        if socket.send(Message::Frame(frame)).await.is_err() {
            break;
        }
    }
    assert_eq!(close_code(&mut socket).await, 1009);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_frames_get_an_error_and_the_connection_stays_open() {
    let server = Server::start().await;
    let mut socket = connect(&server).await;
    let too_large = json!({"action": "subscribe", "request_id": "x".repeat(130 * 1024)});
    let cases = [
        (Message::Text("not json at all".into()), "invalid_json"),
        (
            Message::Text(json!({"action": "dance"}).to_string().into()),
            "unknown_action",
        ),
        (
            Message::Text(json!({"request_id": "r"}).to_string().into()),
            "missing_field",
        ),
        (
            Message::Text(json!({"action": "subscribe"}).to_string().into()),
            "missing_field",
        ),
        (
            Message::Text(
                json!({"action": "process", "client_ref": "c9", "request": {"kind": "paint"}})
                    .to_string()
                    .into(),
            ),
            "invalid_request",
        ),
        (Message::Binary(vec![1, 2, 3].into()), "invalid_frame"),
        (
            Message::Text(
                json!({"action": "subscribe", "request_id": "no-such-request"})
                    .to_string()
                    .into(),
            ),
            "not_found",
        ),
    ];
    // A message over 128 KiB, in frames of 16 KiB (each under the 32 KB
    // frame limit), reaches the handler and is refused there.
    send_fragmented(&mut socket, &too_large.to_string(), 16 * 1024).await;
    let error = next(&mut socket).await;
    assert_eq!(error["code"], "too_large", "{error}");
    for (frame, code) in cases {
        socket.send(frame).await.unwrap();
        let error = next(&mut socket).await;
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["code"], code, "{error}");
        assert!(!error["message"].as_str().unwrap().is_empty());
        if code == "invalid_request" {
            assert_eq!(error["client_ref"], "c9");
            assert_eq!(error["field"], "request.kind");
        }
    }
    // Still open, and still working.
    send(
        &mut socket,
        json!({"action": "process", "request": report("Polish")}),
    )
    .await;
    let accepted = next(&mut socket).await;
    assert_eq!(accepted["type"], "accepted", "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    let messages = until_result(&mut socket, &id).await;
    assert_eq!(messages.last().unwrap()["status"], "completed");
    server.shutdown().await;
}

#[tokio::test]
async fn a_result_too_large_for_one_message_is_replaced_by_where_to_fetch_it() {
    let server = Server::start_with(Options {
        workers: 0,
        ..Options::default()
    })
    .await;
    // 1,000 people whose hobbies are a string, not a list: each rejection
    // quotes it, and the result is over the 128 KiB of one message.
    let people: Vec<Value> = (0..1000)
        .map(|i| json!({"first_name": "Ann", "last_name": "Lee", "nationality": "DE", "hobbies": format!("{i:04}{}", "h".repeat(140))}))
        .collect();
    let body = json!({"kind": "import", "people": people}).to_string();
    let (status, accepted) = server.post("/requests", &body, None).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    let mut socket = connect(&server).await;
    send(
        &mut socket,
        json!({"action": "subscribe", "request_id": id}),
    )
    .await;
    assert_eq!(next(&mut socket).await["type"], "subscribed");
    server.start_workers(1);
    let result = until_result(&mut socket, &id).await.pop().unwrap();
    assert_eq!(result["status"], "completed");
    assert!(result["result"].is_null(), "{result}");
    assert_eq!(result["result_url"], format!("/requests/{id}"));
    let stored = server.finished(&id).await;
    assert_eq!(stored["result"]["rejected"].as_array().unwrap().len(), 1000);
    assert!(stored["result"].to_string().len() > people_app::ws::MAX_MESSAGE_BYTES);
    server.shutdown().await;
}

#[tokio::test]
async fn pushes_go_through_the_management_api_the_server_serves() {
    let server = Server::start_with(Options {
        workers: 0,
        through_management_api: true,
    })
    .await;
    let mut socket = connect(&server).await;
    send(
        &mut socket,
        json!({"action": "process", "request": report("Dutch")}),
    )
    .await;
    let accepted = next(&mut socket).await;
    assert_eq!(accepted["type"], "accepted", "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    server.start_workers(1);
    let messages = until_result(&mut socket, &id).await;
    assert_eq!(messages.last().unwrap()["status"], "completed");
    server.shutdown().await;
}

#[tokio::test]
async fn the_management_api_answers_like_api_gateway() {
    let server = Server::start().await;
    let client = crate::support::management_client(server.addr);
    let mut socket = connect(&server).await;
    // The connection's id, as the server knows it.
    let deadline = std::time::Instant::now() + WAIT;
    while server.hub.is_empty() {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let id = server.hub.ids().pop().unwrap();

    let info = client
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        info.identity().and_then(|i| i.source_ip()),
        Some("127.0.0.1")
    );
    assert!(info.connected_at().is_some());

    client
        .post_to_connection()
        .connection_id(&id)
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(
            r#"{"hello":"there"}"#,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(next(&mut socket).await, json!({"hello": "there"}));

    let too_large = client
        .post_to_connection()
        .connection_id(&id)
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(
            vec![b'x'; people_app::ws::MAX_MESSAGE_BYTES + 1],
        ))
        .send()
        .await
        .unwrap_err();
    assert!(
        too_large
            .as_service_error()
            .is_some_and(|e| e.is_payload_too_large_exception()),
        "{too_large:?}"
    );

    let gone = client
        .post_to_connection()
        .connection_id("no-such-connection")
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert!(
        gone.as_service_error()
            .is_some_and(|e| e.is_gone_exception()),
        "{gone:?}"
    );

    client
        .delete_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    let closed = tokio::time::timeout(WAIT, socket.next()).await.unwrap();
    assert!(
        matches!(closed, Some(Ok(Message::Close(_))) | None),
        "{closed:?}"
    );
    let after = client
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap_err();
    assert!(
        after
            .as_service_error()
            .is_some_and(|e| e.is_gone_exception())
    );
    server.shutdown().await;
}

/// The value of the Prometheus sample `name{labels}` in `text` (0 if absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_requests_jobs_and_pushes() {
    let server = Server::start().await;
    let mut socket = connect(&server).await;
    send(
        &mut socket,
        json!({"action": "process", "request": report("Greek")}),
    )
    .await;
    let id = next(&mut socket).await["id"].as_str().unwrap().to_owned();
    until_result(&mut socket, &id).await;
    send(&mut socket, json!({"action": "dance"})).await;
    assert_eq!(next(&mut socket).await["code"], "unknown_action");
    let (status, _) = server.get("/people?search=a").await;
    assert_eq!(status, 200);

    let response = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    // Other tests of this binary count too: at least this test's events.
    for (series, at_least) in [
        (
            r#"http_request_duration_ms_count{route="people",status="2xx"}"#,
            1.0,
        ),
        (r#"ws_events_total{route="process"}"#, 1.0),
        (r#"ws_bad_frames_total{code="unknown_action"}"#, 1.0),
        (r#"jobs_total{outcome="completed"}"#, 1.0),
        (r#"ws_pushes_total{outcome="delivered"}"#, 3.0),
        (r#"job_queue_age_ms_count{kind="report"}"#, 1.0),
        (r#"job_duration_ms_count{outcome="completed"}"#, 1.0),
    ] {
        assert!(sample(&text, series) >= at_least, "{series} in\n{text}");
    }
    assert!(text.contains("# HELP http_request_duration_ms"), "{text}");
    server.shutdown().await;
}

/// A graceful stop: no more requests taken, the queue drained within the
/// grace period, what is left failed with the reason and pushed, and every
/// socket closed with 1001.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_fails_what_is_left_and_closes_every_socket() {
    // No workers: what is queued stays queued through the grace period.
    let server = Server::start_with(Options {
        workers: 0,
        ..Options::default()
    })
    .await;
    let mut socket = connect(&server).await;
    send(
        &mut socket,
        json!({"action": "process", "request": report("Danish")}),
    )
    .await;
    let accepted = next(&mut socket).await;
    assert_eq!(accepted["type"], "accepted", "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();

    let stopped = local::stop(
        &server.jobs,
        &server.pusher,
        &server.hub,
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(
        stopped,
        local::Stopped {
            never_started: 1,
            cut_off: 0,
            closed: 1
        }
    );
    // The client is told, then the socket is closed properly.
    let result = next(&mut socket).await;
    assert_eq!(result["type"], "process-result", "{result}");
    assert_eq!(result["status"], "failed");
    assert_eq!(result["error"]["code"], "shutdown");
    assert_eq!(close_code(&mut socket).await, 1001);
    // The record says so too, and no new request is taken.
    let (_, record) = server.get(&format!("/requests/{id}")).await;
    assert_eq!(record["error"]["code"], "shutdown");
    let (status, _) = server
        .post("/requests", &json!(report("Danish")).to_string(), None)
        .await;
    assert_eq!(status, 503);
    server.shutdown().await;
}
