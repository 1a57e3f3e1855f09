//! A local server on 127.0.0.1 (port chosen by the OS) for the tests, with
//! a small generated data set and in-memory backends.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use people_app::config::{JobsConfig, PeopleConfig};
use people_app::memory::connections::MemoryConnectionStore;
use people_app::memory::hub::ConnectionHub;
use people_app::ports::Notifier;
use people_app::ws::Pusher;
use people_aws::apigw::ManagementApiNotifier;
use people_aws::wiring::{Jobs, People, open_jobs, open_people};
use serde_json::Value;
use tokio::sync::oneshot;

pub(crate) const PEOPLE: usize = 2_000;

pub(crate) struct Options {
    /// Worker tasks started with the server (more can start later).
    pub workers: usize,
    /// Push through the Management API that the server itself serves,
    /// with the AWS SDK client production uses, instead of in process.
    pub through_management_api: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: 2,
            through_management_api: false,
        }
    }
}

pub(crate) struct Server {
    pub base: String,
    pub addr: SocketAddr,
    pub people: People,
    pub jobs: Jobs,
    pub pusher: Pusher,
    pub connections: Arc<MemoryConnectionStore>,
    pub hub: Arc<ConnectionHub>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub(crate) async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub(crate) async fn start_with(options: Options) -> Self {
        let table = people_core::jsonl::generated(PEOPLE, 9, &mut |_| {});
        let people = open_people(
            &people_aws::sdk::Aws::from_env(),
            &PeopleConfig::from_lookup(|_| None).unwrap(),
            Some(table),
            people_app::index::Refresh::Background,
        )
        .await
        .unwrap();
        let jobs = open_jobs(
            &people_aws::sdk::Aws::from_env(),
            &JobsConfig::from_lookup(|_| None).unwrap(),
        )
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let hub = Arc::new(ConnectionHub::new());
        let connections = Arc::new(MemoryConnectionStore::new());
        let notifier: Arc<dyn Notifier> = if options.through_management_api {
            Arc::new(ManagementApiNotifier::new(management_client(addr)))
        } else {
            hub.clone()
        };
        let pusher = Pusher {
            connections: connections.clone(),
            notifier,
        };
        let app = Arc::new(
            local::App::new(&people, &jobs, pusher.clone(), hub.clone()).with_metrics(metrics()),
        );
        let server = {
            let (stop, stopped) = oneshot::channel::<()>();
            let done = tokio::spawn(local::serve(listener, local::router(app), async {
                let _ = stopped.await;
            }));
            Server {
                base: format!("http://{addr}"),
                addr,
                people,
                jobs,
                pusher,
                connections,
                hub,
                stop: Some(stop),
                done,
            }
        };
        server.start_workers(options.workers);
        server
    }

    /// More workers on the server's queue.
    pub(crate) fn start_workers(&self, workers: usize) {
        if workers > 0 {
            local::start_workers(
                &self.people,
                &self.jobs,
                &self.pusher,
                workers,
                Duration::from_millis(50),
            );
        }
    }

    pub(crate) fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub(crate) async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let response = reqwest::get(format!("{}{path_and_query}", self.base))
            .await
            .expect("server answers");
        let status = response.status().as_u16();
        let body = response.json().await.expect("JSON body");
        (status, body)
    }

    pub(crate) async fn post(&self, path: &str, body: &str, key: Option<&str>) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.expect("server answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// `PUT` or `DELETE` (`method`) on `path` with a JSON `body`; the
    /// status, and the JSON body if there is one (else null).
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &str,
    ) -> (u16, Value) {
        let response = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("server answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("JSON body")
        };
        (status, body)
    }

    /// Polls `GET /requests/{id}` until the request finishes.
    pub(crate) async fn finished(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = self.get(&format!("/requests/{id}")).await;
            assert_eq!(status, 200, "{body}");
            if body["status"] == "completed" || body["status"] == "failed" {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "request {id} never finished: {body}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub(crate) async fn shutdown(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.done.await.unwrap().unwrap();
    }
}

/// The process-wide Prometheus recorder, installed by the first server.
pub(crate) fn metrics() -> metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| local::install_metrics().expect("the first recorder installs"))
        .clone()
}

/// The AWS SDK's Management API client, pointed at the local server, with
/// throwaway credentials (the local server does not check signatures).
pub(crate) fn management_client(addr: SocketAddr) -> aws_sdk_apigatewaymanagement::Client {
    use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_apigatewaymanagement::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(format!("http://{addr}"))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "local"))
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

/// The status line the server at `addr` answers a `POST /requests` over
/// the 6 MiB body limit: declared by `content-length` (and no body sent),
/// or sent chunked, without a length, until the server answers. Over raw
/// TCP: a client that still sends would see its connection closed under
/// it, which an HTTP client reports as an error instead of the answer.
pub(crate) async fn oversized_post(addr: SocketAddr, chunked: bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let framing = if chunked {
        "transfer-encoding: chunked".to_owned()
    } else {
        format!("content-length: {}", 7 * 1024 * 1024)
    };
    let head = format!(
        "POST /requests HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{framing}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    if chunked {
        let chunk = vec![b' '; 64 * 1024];
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        // One chunk past the limit; the server may answer and stop
        // reading before the last ones are written.
        for _ in 0..=local::MAX_BODY_BYTES / chunk.len() {
            if stream.write_all(&frame).await.is_err() {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
    }
    let mut answer = vec![0; 512];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut answer))
        .await
        .expect("an answer in time")
        .expect("an answer");
    let answer = String::from_utf8_lossy(&answer[..n]);
    answer.lines().next().unwrap_or_default().to_owned()
}
