//! End to end on the shipped function binaries: a moto server (DynamoDB,
//! SQS and S3), cargo lambda's Lambda runtime and invoke APIs (`cargo lambda
//! watch --only-lambda-apis`) with the query-api, enqueue, processor,
//! websocket, sweeper and index-writer binaries running under it, and the
//! local server in front of them (`local --functions`): API Gateway's HTTP
//! and WebSocket APIs, the Management API the functions push through, the
//! SQS event source mapping that feeds the processor, and EventBridge's
//! schedules.
//!
//! The binaries are the ones `cargo build --workspace --bins` leaves next
//! to this test (scripts/test.sh builds them first); cargo-lambda is the
//! one scripts/python-tools.sh installs into .venv.

#[allow(dead_code)] // the DynamoDB client helpers: admin makes the tables here
use people_testkit::moto;

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest wait for one step before the test fails.
const WAIT: Duration = Duration::from_secs(60);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// target/debug (or whichever profile built this test).
fn binaries() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

fn binary(name: &str) -> PathBuf {
    let path = binaries().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the functions first with `cargo build --workspace --bins` \
         (scripts/test.sh does)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The processes of one test, killed (by PID) and reaped when it ends.
#[derive(Default)]
struct Processes {
    children: Vec<(String, Child)>,
    logs: PathBuf,
}

impl Processes {
    fn spawn(&mut self, name: &str, command: &mut Command) {
        let log = std::fs::File::create(self.logs.join(format!("{name}.log"))).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.children.push((name.to_owned(), child));
    }

    /// Ends the process `name` (by its PID) and waits for it; its log stays.
    fn stop(&mut self, name: &str) {
        for (n, child) in &mut self.children {
            if n == name {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.children.retain(|(n, _)| n != name);
    }

    /// The last lines of every log, for a failure message.
    fn tails(&self) -> String {
        let mut out = String::new();
        for (name, _) in &self.children {
            let text =
                std::fs::read_to_string(self.logs.join(format!("{name}.log"))).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(15);
            out.push_str(&format!("--- {name}\n{}\n", lines[start..].join("\n")));
        }
        out
    }

    fn assert_running(&mut self) {
        for (name, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{name} exited ({status})");
            }
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.tails());
        }
        let _ = std::fs::remove_dir_all(&self.logs);
    }
}

fn aws_env(command: &mut Command) -> &mut Command {
    command
        .env("AWS_ENDPOINT_URL", moto::endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
}

fn admin(args: &[&str], tables: &[(&str, String)]) -> String {
    let mut command = Command::new(binary("admin"));
    aws_env(&mut command).args(args);
    for (k, v) in tables {
        command.env(k, v);
    }
    let out = command.output().expect("admin runs");
    assert!(
        out.status.success(),
        "admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `text` without the terminal colour codes tracing writes around fields.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... m
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

async fn wait_for_http(url: &str, processes: &mut Processes) {
    let deadline = Instant::now() + WAIT;
    loop {
        if reqwest::get(url).await.is_ok() {
            return;
        }
        processes.assert_running();
        assert!(
            Instant::now() < deadline,
            "{url} did not answer\n{}",
            processes.tails()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_port(port: u16, processes: &mut Processes) {
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .is_err()
    {
        processes.assert_running();
        assert!(
            Instant::now() < deadline,
            "nothing listens on {port}\n{}",
            processes.tails()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

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
async fn until_result(socket: &mut Socket, id: &str) -> Value {
    loop {
        let message = next(socket).await;
        if message["type"] == "process-result" && message["id"] == id {
            return message;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_binaries_run_together_behind_the_local_server() {
    let cargo_lambda = workspace_root().join(".venv/bin/cargo-lambda");
    assert!(
        cargo_lambda.is_file(),
        "{} is missing: run scripts/python-tools.sh",
        cargo_lambda.display()
    );
    let run = format!("e2e-{}-{}", std::process::id(), free_port());
    let logs = std::env::temp_dir().join(&run);
    std::fs::create_dir_all(&logs).unwrap();
    let mut processes = Processes {
        children: Vec::new(),
        logs,
    };

    // The tables and queues, as template.yaml declares them (a short
    // visibility timeout, so that the poison message's retries take seconds).
    let tables = vec![
        ("PEOPLE_TABLE", format!("{run}-people")),
        ("REQUESTS_TABLE", format!("{run}-requests")),
        ("CONNECTIONS_TABLE", format!("{run}-connections")),
    ];
    let bucket = format!("{run}-index");
    let created = tokio::task::spawn_blocking({
        let tables = tables.clone();
        let run = run.clone();
        let bucket = bucket.clone();
        move || {
            admin(&["create-tables"], &tables);
            admin(&["create-bucket", "--name", &bucket], &tables);
            admin(
                &[
                    "create-queues",
                    "--name",
                    &format!("{run}-jobs"),
                    "--visibility-timeout",
                    "2",
                ],
                &tables,
            )
        }
    })
    .await
    .unwrap();
    let queue_url = created
        .lines()
        .find_map(|l| l.strip_prefix("QUEUE_URL="))
        .expect("admin prints QUEUE_URL=")
        .to_owned();

    // cargo lambda's runtime and invoke APIs, and the functions under them.
    let lambda_port = free_port();
    let local_port = free_port();
    let lambda = format!("http://127.0.0.1:{lambda_port}");
    let local = format!("http://127.0.0.1:{local_port}");
    processes.spawn(
        "cargo-lambda",
        Command::new(&cargo_lambda)
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(lambda_port.to_string())
            .current_dir(workspace_root()),
    );
    wait_for_port(lambda_port, &mut processes).await;
    // A function's process under the runtime API, named `name` there.
    let function_command = |function: &str, name: &str| {
        let mut command = Command::new(binary(function));
        aws_env(&mut command)
            .env("AWS_LAMBDA_RUNTIME_API", format!("{lambda}/.rt/{name}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("STORAGE_TYPE", "dynamodb")
            .env("QUEUE_TYPE", "sqs")
            .env("QUEUE_URL", &queue_url)
            .env("MAX_RECEIVES", "3")
            // No authorizer in front: the anonymous caller imports, as on a
            // stack deployed with AllowAnonymousWrites=true.
            .env("ALLOW_ANONYMOUS_WRITES", "true")
            .env("INDEX_REFRESH_MS", "0")
            .env("WEBSOCKET_ENDPOINT", &local)
            .env("INDEX_BUCKET", &bucket)
            // An image as soon as anything changed (the writer's default
            // waits for 100,000 changes or 15 minutes).
            .env("INDEX_IMAGE_CHANGES", "1")
            .env("INDEX_IMAGE_EVERY_S", "1")
            .env("RUST_LOG", "info");
        for (k, v) in &tables {
            command.env(k, v);
        }
        command
    };
    for function in [
        "query-api",
        "enqueue",
        "processor",
        "websocket",
        "sweeper",
        "index-writer",
    ] {
        processes.spawn(function, &mut function_command(function, function));
    }
    // The schedules every 2 s, not the template's 5 minutes.
    let mut command = Command::new(binary("local"));
    aws_env(&mut command)
        .args(["--functions", &lambda, "--port", &local_port.to_string()])
        .args(["--schedule-every", "2"])
        .env("QUEUE_URL", &queue_url)
        .env("RUST_LOG", "info");
    processes.spawn("local", &mut command);
    wait_for_http(&format!("{local}/metrics"), &mut processes).await;

    let http = reqwest::Client::new();
    // An unknown route is API Gateway's 404; a known one reaches query-api.
    let response = http.get(format!("{local}/nowhere")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let response = http
        .get(format!("{local}/people/nobody"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "query-api answers");
    let body: Value = response.json().await.unwrap();
    assert!(
        body.get("error").is_some() || body.get("code").is_some() || body.get("message").is_some(),
        "{body}"
    );

    // A body over 6 MiB is the local front's 413, declared or read, as API
    // Gateway's payload limit refuses it before a function runs.
    for chunked in [false, true] {
        let addr = std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, local_port));
        let status = crate::support::oversized_post(addr, chunked).await;
        assert_eq!(
            status, "HTTP/1.1 413 Payload Too Large",
            "chunked: {chunked}"
        );
    }

    // A real WebSocket client: $connect through the websocket function.
    let (mut socket, response) = connect_async(format!("ws://127.0.0.1:{local_port}/ws"))
        .await
        .unwrap_or_else(|e| panic!("upgrade: {e}\n{}", processes.tails()));
    assert_eq!(response.status(), 101);

    // An import over HTTP (enqueue), run by the processor binary from the
    // queue, its result pushed; its people searchable through query-api.
    let import = json!({"kind": "import", "people": [
        {"id": "e2e-1", "first_name": "Zébulon", "last_name": "Quixotl", "nationality": "Chilean", "hobbies": ["Chess"]},
        {"id": "e2e-2", "first_name": "Ærwyn", "last_name": "Quixotl", "nationality": "Welsh", "hobbies": []}
    ]});
    let response = http
        .post(format!("{local}/requests"))
        .header("content-type", "application/json")
        .body(import.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    let import_id = accepted["id"].as_str().expect("an id").to_owned();
    send(
        &mut socket,
        json!({"action": "subscribe", "request_id": import_id}),
    )
    .await;
    let result = until_result(&mut socket, &import_id).await;
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["result"]["accepted"], 2, "{result}");
    let found: Value = http
        .get(format!("{local}/people?search=quixotl"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["total"], 2, "{found}");
    let person: Value = http
        .get(format!("{local}/people/e2e-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(person["first_name"], "Zébulon");

    // The schedules: the sweeper runs, and the index writer writes an
    // image holding the imported people; a new query function (a cold
    // start) starts from that image, not from a Scan, and answers with them.
    let local_log = processes.logs.join("local.log");
    let deadline = Instant::now() + WAIT;
    let written = loop {
        let log = plain(&std::fs::read_to_string(&local_log).unwrap_or_default());
        let swept = log
            .lines()
            .any(|l| l.contains("scheduled run") && l.contains("function=sweeper"));
        let image = log.lines().find(|l| {
            l.contains("scheduled run")
                && l.contains("function=index-writer")
                && l.contains("\"people\":2")
        });
        if let (true, Some(line)) = (swept, image) {
            break line.to_owned();
        }
        processes.assert_running();
        assert!(
            Instant::now() < deadline,
            "no scheduled sweep and image of 2 people\n{}",
            processes.tails()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(written.contains("\"written\":\"index/"), "{written}");
    // The query function's process ends (as Lambda recycles it), and a new
    // one takes its place under the same name.
    processes.stop("query-api");
    processes.spawn(
        "query-api-cold",
        &mut function_command("query-api", "query-api"),
    );
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("events/query-people-search.json")).unwrap(),
    )
    .unwrap();
    event["rawQueryString"] = json!("search=quixotl");
    event["queryStringParameters"] = json!({"search": "quixotl"});
    let answer: Value = http
        .post(format!(
            "{lambda}/2015-03-31/functions/query-api/invocations"
        ))
        .json(&event)
        .timeout(WAIT)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let page: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(page["total"], 2, "{page}");
    let cold_log = plain(
        &std::fs::read_to_string(processes.logs.join("query-api-cold.log")).unwrap_or_default(),
    );
    assert!(
        cold_log.contains("index image read") && cold_log.contains("from=Image"),
        "the cold start read the image:\n{cold_log}"
    );
    assert!(!cold_log.contains("from a Scan"), "{cold_log}");

    // A report over HTTP, its result pushed to the subscribed socket and
    // readable through query-api.
    let response = http
        .post(format!("{local}/requests"))
        .header("content-type", "application/json")
        .body(json!({"kind": "report", "filter": {"nationality": "Chilean"}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let report_id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    send(
        &mut socket,
        json!({"action": "subscribe", "request_id": report_id}),
    )
    .await;
    let result = until_result(&mut socket, &report_id).await;
    assert_eq!(result["status"], "completed", "{result}");
    let status: Value = http
        .get(format!("{local}/requests/{report_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["result"], result["result"]);

    // A report over the WebSocket (the websocket function enqueues it).
    send(
        &mut socket,
        json!({"action": "process", "client_ref": "e2e", "request": {"kind": "report", "filter": {"nationality": "Welsh"}}}),
    )
    .await;
    let accepted = loop {
        let message = next(&mut socket).await;
        if message["type"] == "accepted" {
            break message;
        }
    };
    assert_eq!(accepted["client_ref"], "e2e", "{accepted}");
    let ws_id = accepted["id"].as_str().unwrap().to_owned();
    let result = until_result(&mut socket, &ws_id).await;
    assert_eq!(result["status"], "completed", "{result}");

    // A poison message (a job for a request no store has): the event
    // source keeps it on the queue each time the processor names it in
    // batchItemFailures, and SQS moves it to the dead-letter queue after
    // the redrive policy's maxReceiveCount (3) receives.
    let sqs = moto::sqs_client();
    let poison = json!({"request_id": format!("{run}-ghost"), "correlation_id": "e2e-poison", "kind": "report", "filter": {}}).to_string();
    sqs.send_message()
        .queue_url(&queue_url)
        .message_body(&poison)
        .send()
        .await
        .unwrap();
    let dlq_url = sqs
        .get_queue_url()
        .queue_name(format!("{run}-jobs-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let dead = loop {
        let out = sqs
            .receive_message()
            .queue_url(&dlq_url)
            .wait_time_seconds(1)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        if let Some(m) = out.messages.unwrap_or_default().into_iter().next() {
            break m;
        }
        processes.assert_running();
        assert!(
            Instant::now() < deadline,
            "the poison message never reached the dead-letter queue\n{}",
            processes.tails()
        );
    };
    assert_eq!(dead.body(), Some(poison.as_str()));
    let processor_log =
        std::fs::read_to_string(processes.logs.join("processor.log")).unwrap_or_default();
    let tries = processor_log
        .lines()
        .filter(|l| l.contains(&format!("{run}-ghost")) && l.contains("SQS will redeliver"))
        .count();
    assert_eq!(tries, 3, "the processor saw it on each of the 3 receives");

    // A poison message that names a request: a job of a kind this
    // processor does not know (as a newer enqueue would send during a
    // deploy). It reaches the dead-letter queue like the other, and on its
    // last receive the processor fails the request and pushes that, so its
    // subscriber learns and the request does not stay queued.
    let requests = people_aws::dynamodb_requests::DynamoRequestStore::new(
        moto::client(),
        format!("{run}-requests"),
    );
    // Request ids are UUIDs (the HTTP API answers 404 for anything else).
    let unreadable_id = format!(
        "{:08x}-0000-4000-8000-{:012x}",
        std::process::id(),
        free_port()
    );
    let record = people_app::jobs::RequestRecord::queued(
        unreadable_id.clone(),
        people_app::jobs::JobKind::Report,
        chrono::Utc::now(),
    );
    people_app::ports::RequestStore::create(&requests, &record, None)
        .await
        .unwrap();
    send(
        &mut socket,
        json!({"action": "subscribe", "request_id": unreadable_id}),
    )
    .await;
    let subscribed = next(&mut socket).await;
    assert_eq!(subscribed["status"], "queued", "{subscribed}");
    let unreadable = json!({"request_id": unreadable_id, "correlation_id": "e2e-unreadable", "kind": "a_kind_from_the_future"}).to_string();
    sqs.send_message()
        .queue_url(&queue_url)
        .message_body(&unreadable)
        .send()
        .await
        .unwrap();
    let result = until_result(&mut socket, &unreadable_id).await;
    assert_eq!(result["status"], "failed", "{result}");
    assert_eq!(result["error"]["code"], "unreadable_job", "{result}");
    let response = http
        .get(format!("{local}/requests/{unreadable_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let stored: Value = response.json().await.unwrap();
    assert_eq!(stored["status"], "failed", "{stored}");
    let deadline = Instant::now() + WAIT;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&dlq_url)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if out
            .messages
            .unwrap_or_default()
            .iter()
            .any(|m| m.body() == Some(unreadable.as_str()))
        {
            break;
        }
        processes.assert_running();
        assert!(
            Instant::now() < deadline,
            "the unreadable message never reached the dead-letter queue\n{}",
            processes.tails()
        );
    }

    drop(socket);
    processes.assert_running();
}

/// The plain local server with `QUEUE_TYPE=sqs`: the emulated event source
/// hands the queue to the processor's handler in the same process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_server_consumes_an_sqs_queue_in_process() {
    let run = format!("inproc-{}-{}", std::process::id(), free_port());
    let logs = std::env::temp_dir().join(&run);
    std::fs::create_dir_all(&logs).unwrap();
    let mut processes = Processes {
        children: Vec::new(),
        logs,
    };
    let created = tokio::task::spawn_blocking({
        let run = run.clone();
        move || admin(&["create-queues", "--name", &format!("{run}-jobs")], &[])
    })
    .await
    .unwrap();
    let queue_url = created
        .lines()
        .find_map(|l| l.strip_prefix("QUEUE_URL="))
        .expect("admin prints QUEUE_URL=")
        .to_owned();
    let port = free_port();
    let local = format!("http://127.0.0.1:{port}");
    let mut command = Command::new(binary("local"));
    aws_env(&mut command)
        .args(["--people", "1000", "--port", &port.to_string()])
        .env("QUEUE_TYPE", "sqs")
        .env("QUEUE_URL", &queue_url)
        .env("RUST_LOG", "info");
    processes.spawn("local", &mut command);
    wait_for_http(&format!("{local}/metrics"), &mut processes).await;

    let http = reqwest::Client::new();
    let response = http
        .post(format!("{local}/requests"))
        .header("content-type", "application/json")
        .body(json!({"kind": "report", "filter": {}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + WAIT;
    let done = loop {
        let status: Value = http
            .get(format!("{local}/requests/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["status"] == "completed" || status["status"] == "failed" {
            break status;
        }
        processes.assert_running();
        assert!(Instant::now() < deadline, "{status}\n{}", processes.tails());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["total"], 1000, "{done}");
    // The message was deleted once done: the queue is empty.
    let sqs = moto::sqs_client();
    let left = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(
            aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        )
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    for (name, count) in &left {
        assert_eq!(count, "0", "{name:?}");
    }
}

/// A batch target that hands each message body to the test.
struct Collect(tokio::sync::mpsc::UnboundedSender<String>);

#[async_trait::async_trait]
impl local::event_source::BatchTarget for Collect {
    async fn invoke(
        &self,
        event: aws_lambda_events::event::sqs::SqsEvent,
    ) -> Result<aws_lambda_events::event::sqs::SqsBatchResponse, String> {
        for record in event.records {
            let _ = self.0.send(record.body.unwrap_or_default());
        }
        Ok(Default::default())
    }
}

/// The event source's long polls run their course: a message sent after
/// the source has been idle for longer than the SDK's usual 3 s attempt
/// timeout is handed over at once, not after the queue's visibility
/// timeout (here 300 s, like the jobs queue's 360 s). With the usual
/// timeouts each idle poll was given up on after 3 s while moto held it
/// open, and such a poll took the message and answered nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_event_source_hands_over_a_new_message_at_once() {
    use aws_config::BehaviorVersion;
    use aws_sdk_sqs::config::{Credentials, Region};
    let sqs = moto::sqs_client();
    let name = format!("idle-{}-{}", std::process::id(), free_port());
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "300",
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto::endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handles = local::event_source::EventSource {
        sqs: local::event_source::client(&sdk),
        queue_url: url.clone(),
        batch_size: 10,
        batching_window: Duration::from_secs(1),
        concurrency: 1,
        target: std::sync::Arc::new(Collect(tx)),
    }
    .spawn()
    .await
    .unwrap();
    // Idle for two of the usual attempt timeouts.
    tokio::time::sleep(Duration::from_secs(7)).await;
    sqs.send_message()
        .queue_url(&url)
        .message_body("wake up")
        .send()
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("the message is handed over within a long poll, not after the visibility timeout");
    assert_eq!(got.as_deref(), Some("wake up"));
    for handle in handles {
        handle.abort();
    }
}
