//! The local server over real HTTP on 127.0.0.1, port chosen by the OS.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::Value;
use shared::api::QueryApi;
use shared::domain::Person;
use shared::search::{LiveIndex, SearchEngine};
use shared::text::{fold, split_words};
use tokio::sync::oneshot;

const PEOPLE: usize = 2_000;

struct Server {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start() -> Self {
        let people: Vec<Person> = shared::datagen::generate(PEOPLE, 9).collect();
        let api = Arc::new(QueryApi {
            index: Arc::new(LiveIndex::fixed(SearchEngine::from_people(&people))),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(local::serve(listener, local::router(api), async {
            let _ = stopped.await;
        }));
        Server {
            base: format!("http://{addr}"),
            stop: Some(stop),
            done,
        }
    }

    async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let response = reqwest::get(format!("{}{path_and_query}", self.base))
            .await
            .expect("server answers");
        let status = response.status().as_u16();
        let body = response.json().await.expect("JSON body");
        (status, body)
    }

    async fn shutdown(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.done.await.unwrap().unwrap();
    }
}

fn people() -> Vec<Person> {
    shared::datagen::generate(PEOPLE, 9).collect()
}

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn search_pages_and_cursors_agree_with_a_naive_filter() {
    let server = Server::start().await;
    let all = people();
    let mut expected: Vec<&Person> = all
        .iter()
        .filter(|p| {
            let name = fold(&format!("{} {}", p.first_name, p.last_name));
            split_words(&name).any(|w| w.starts_with('m'))
        })
        .filter(|p| p.hobbies.iter().any(|h| h == "Reading" || h == "Cooking"))
        .collect();
    expected.sort_by_key(|p| (fold(&p.last_name), fold(&p.first_name), p.id.clone()));
    let expected: Vec<String> = expected.iter().map(|p| p.id.clone()).collect();
    assert!(expected.len() > 60, "enough matches for several pages");

    let query = "search=M&hobbies=Reading,Cooking";
    let mut by_page = Vec::new();
    for page in 1.. {
        let (status, body) = server
            .get(&format!("/people?{query}&page={page}&page_size=25"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["total"], expected.len());
        assert_eq!(body["page"], page);
        let got = ids(&body);
        if got.is_empty() {
            assert!(body["next_cursor"].is_null());
            break;
        }
        by_page.extend(got);
    }
    assert_eq!(by_page, expected);

    let mut by_cursor = Vec::new();
    let mut path = format!("/people?{query}&page_size=25");
    loop {
        let (status, body) = server.get(&path).await;
        assert_eq!(status, 200, "{body}");
        by_cursor.extend(ids(&body));
        match body["next_cursor"].as_str() {
            Some(c) => path = format!("/people?{query}&page_size=25&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(by_cursor, expected);
    server.shutdown().await;
}

#[tokio::test]
async fn person_filters_and_not_found() {
    let server = Server::start().await;
    let first = &people()[0];
    let (status, body) = server.get(&format!("/people/{}", first.id)).await;
    assert_eq!(status, 200);
    assert_eq!(body, serde_json::to_value(first).unwrap());
    let (status, body) = server.get("/people/nobody").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = server.get("/nowhere").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = server.get("/filters?limit=3").await;
    assert_eq!(status, 200);
    assert_eq!(body["nationalities"].as_array().unwrap().len(), 3);
    assert_eq!(body["hobbies"].as_array().unwrap().len(), 3);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_requests_are_400s_that_name_the_parameter() {
    let server = Server::start().await;
    let long = "a".repeat(10_000);
    let cases = [
        ("/people?page=0", "page"),
        ("/people?page_size=1000", "page_size"),
        ("/people?hobbies_match=most", "hobbies_match"),
        (&format!("/people?search={long}"), "search"),
        ("/people?search=%FF", "search"),
        ("/people?cursor=Zm9yZ2Vk", "cursor"),
        ("/people?hobby=Chess", "hobby"),
        ("/filters?limit=0", "limit"),
        ("/filters?limit=101", "limit"),
    ];
    for (path, parameter) in cases {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{path}");
        assert_eq!(body["error"]["parameter"], parameter, "{path}");
        assert!(body["error"]["message"].as_str().unwrap().len() > 10);
    }
    // A cursor from one search is refused for another.
    let (_, body) = server.get("/people?search=a&page_size=1").await;
    let cursor = body["next_cursor"].as_str().unwrap().to_owned();
    let (status, body) = server
        .get(&format!("/people?search=b&cursor={cursor}"))
        .await;
    assert_eq!(
        (status, body["error"]["parameter"].as_str()),
        (400, Some("cursor"))
    );
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/people", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "GET");
    server.shutdown().await;
}

#[test]
fn a_bad_data_file_is_reported_with_its_line_number() {
    let dir = std::env::temp_dir().join(format!("local-bad-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("people.jsonl");
    std::fs::write(
        &path,
        "{\"id\":\"a\",\"first_name\":\"Ann\",\"last_name\":\"Lee\",\"nationality\":\"Irish\",\"hobbies\":[]}\n{\"id\":\"b\",\"first_name\":\"Bo\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_local"))
        .args(["--port", "0", "--data"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("people.jsonl:2:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_binary_serves_then_stops_on_a_signal() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_local"))
        .args(["--port", "0", "--people", "1000"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut summary = String::new();
    let base = loop {
        let line = lines
            .next()
            .expect("the server prints its address")
            .unwrap();
        if line.starts_with("loaded ") {
            summary = line.clone();
        }
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.to_owned();
        }
    };
    assert!(summary.contains("loaded 1000 people"), "{summary}");
    let body: Value = blocking_get(&format!("{base}/people?page_size=1"));
    assert_eq!(body["total"], 1000);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit}");
}

/// A GET from a plain thread (the test above is not async).
fn blocking_get(url: &str) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
}
