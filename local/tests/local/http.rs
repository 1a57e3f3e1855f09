//! The local server over real HTTP on 127.0.0.1, port chosen by the OS.

use std::process::{Command, Stdio};

use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{PEOPLE, Server};
use people_core::domain::Person;
use people_core::text::{fold, split_words};
use serde_json::Value;

fn people() -> Vec<Person> {
    people_core::jsonl::generated_people(PEOPLE, 9).collect()
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

/// A configuration error is reported before the people are loaded (which
/// takes a while for a large data set), not after.
#[test]
fn a_missing_queue_url_is_reported_before_the_people_are_loaded() {
    let output = Command::new(env!("CARGO_BIN_EXE_local"))
        .args(["--port", "0", "--people", "1000"])
        .env("QUEUE_TYPE", "sqs")
        .env_remove("QUEUE_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("QUEUE_URL"), "{stderr}");
    assert!(!stderr.contains("generating"), "{stderr}");
    assert!(!stderr.contains("loaded "), "{stderr}");
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
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.split(' ').next().unwrap().to_owned();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_job_agrees_with_the_search_api() {
    let server = Server::start().await;
    let (status, accepted) = server
        .post(
            "/requests",
            r#"{"kind":"report","filter":{"search":"m","hobbies":["Reading","Cooking"]}}"#,
            None,
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["status"], "queued");
    let id = accepted["id"].as_str().unwrap();
    let done = server.finished(id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["kind"], "report");
    assert!(done["error"].is_null());
    let (_, page) = server.get("/people?search=m&hobbies=Reading,Cooking").await;
    let result = &done["result"];
    assert_eq!(result["total"], page["total"]);
    // The histogram counts everybody once.
    let histogram: u64 = result["hobbies_per_person"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(Some(histogram), page["total"].as_u64());
    // Top nationalities agree with a filtered search.
    let top = &result["top_nationalities"][0];
    let (_, by_nat) = server
        .get(&format!(
            "/people?search=m&hobbies=Reading,Cooking&nationality={}",
            top["value"].as_str().unwrap()
        ))
        .await;
    assert_eq!(top["count"], by_nat["total"]);
    // Pairs: a report over a search alone, checked with "all" searches.
    let (_, accepted) = server
        .post(
            "/requests",
            r#"{"kind":"report","filter":{"search":"m"}}"#,
            None,
        )
        .await;
    let done = server.finished(accepted["id"].as_str().unwrap()).await;
    let pairs = done["result"]["top_hobby_pairs"].as_array().unwrap();
    assert!(!pairs.is_empty());
    for pair in pairs {
        let (a, b) = (
            pair["hobbies"][0].as_str().unwrap(),
            pair["hobbies"][1].as_str().unwrap(),
        );
        assert!(a < b, "pairs are ordered");
        let (_, both) = server
            .get(&format!(
                "/people?search=m&hobbies={a},{b}&hobbies_match=all"
            ))
            .await;
        assert_eq!(pair["count"], both["total"], "{a} + {b}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_job_makes_people_searchable_and_reports_rejects() {
    let server = Server::start().await;
    let body = r#"{"kind":"import","people":[
        {"id":"imp-1","first_name":"Zébulon","last_name":"Quixotl","nationality":"Chilean","hobbies":["Chess"]},
        {"first_name":"Ærwyn","last_name":"Quixotl","nationality":"Welsh","hobbies":[]},
        {"id":"imp-3","first_name":"","last_name":"Nobody","nationality":"Chilean","hobbies":[]},
        "not a person",
        {"id":"imp-5","first_name":"Too","last_name":"Many","nationality":"Chilean","hobbies":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q","r","s","t","u"]}
    ]}"#;
    let (status, accepted) = server.post("/requests", body, None).await;
    assert_eq!(status, 202, "{accepted}");
    let done = server.finished(accepted["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["accepted"], 2);
    let rejected: Vec<u64> = done["result"]["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(rejected, [2, 3, 4]);
    let (status, person) = server.get("/people/imp-1").await;
    assert_eq!(status, 200);
    assert_eq!(person["first_name"], "Zébulon");
    let (_, found) = server.get("/people?search=quixotl").await;
    assert_eq!(found["total"], 2);
    let (_, found) = server.get("/people?search=aerwyn").await;
    assert_eq!(found["total"], 1, "the person without an id got one");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_are_validated_and_idempotent() {
    let server = Server::start().await;
    let report = r#"{"kind":"report","filter":{"nationality":"German"}}"#;
    let (s1, first) = server.post("/requests", report, Some("key-1")).await;
    let (s2, second) = server.post("/requests", report, Some("key-1")).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(
        first["id"], second["id"],
        "the same key is the same request"
    );
    let (_, third) = server.post("/requests", report, Some("key-2")).await;
    assert_ne!(first["id"], third["id"]);

    let cases = [
        ("not json", "body"),
        ("[1]", "body"),
        (r#"{"filter":{}}"#, "kind"),
        (r#"{"kind":"dance"}"#, "kind"),
        (r#"{"kind":"report","filter":{"hobby":"Chess"}}"#, "filter"),
        (r#"{"kind":"report","extra":1}"#, "extra"),
        (r#"{"kind":"import"}"#, "people"),
        (r#"{"kind":"import","people":[]}"#, "people"),
    ];
    for (body, field) in cases {
        let (status, error) = server.post("/requests", body, None).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["error"]["parameter"], field, "{body}");
    }
    let too_many: Vec<String> = (0..1001)
        .map(|i| {
            format!(r#"{{"first_name":"A{i}","last_name":"B","nationality":"C","hobbies":[]}}"#)
        })
        .collect();
    let (status, error) = server
        .post(
            "/requests",
            &format!(r#"{{"kind":"import","people":[{}]}}"#, too_many.join(",")),
            None,
        )
        .await;
    assert_eq!(
        (status, error["error"]["parameter"].as_str()),
        (400, Some("people"))
    );
    let huge = format!(
        r#"{{"kind":"report","filter":{{"search":"{}"}}}}"#,
        "a".repeat(300_000)
    );
    let (status, error) = server.post("/requests", &huge, None).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    let (status, _) = server
        .post("/requests", report, Some("bad key with spaces"))
        .await;
    assert_eq!(status, 400);
    let (status, _) = server
        .get("/requests/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(status, 404);
    let (status, _) = server.get("/requests").await;
    assert_eq!(status, 405);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_racing_an_import_always_answer_and_never_go_back() {
    let server = Server::start().await;
    let people: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                r#"{{"id":"race-{i}","first_name":"Runner{i}","last_name":"Racer","nationality":"Racingland","hobbies":["Racing"]}}"#
            )
        })
        .collect();
    let body = format!(r#"{{"kind":"import","people":[{}]}}"#, people.join(","));
    let (status, accepted) = server.post("/requests", &body, None).await;
    assert_eq!(status, 202);
    let id = accepted["id"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    loop {
        let (status, page) = server
            .get("/people?nationality=Racingland&page_size=100")
            .await;
        assert_eq!(status, 200, "{page}");
        let total = page["total"].as_u64().unwrap();
        assert_eq!(
            page["items"].as_array().unwrap().len() as u64,
            total.min(100)
        );
        seen.push(total);
        let (_, record) = server.get(&format!("/requests/{id}")).await;
        if record["status"] == "completed" {
            break;
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "totals never go back: {seen:?}"
    );
    let (_, page) = server.get("/people?nationality=Racingland").await;
    assert_eq!(page["total"], 1000, "searchable once the import completed");
    server.shutdown().await;
}

/// With `LOG_FORMAT=json`, every log line of a request's way (HTTP, queue,
/// worker, push) carries the correlation id the client sent.
#[test]
fn json_logs_carry_the_correlation_id_from_http_to_the_push() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_local"))
        .args(["--port", "0", "--people", "1000"])
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("the server prints its address")
            .unwrap();
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.split(' ').next().unwrap().to_owned();
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = rt.block_on(async {
        let accepted: Value = reqwest::Client::new()
            .post(format!("{base}/requests"))
            .header("content-type", "application/json")
            .header("x-correlation-id", "corr-e2e-7")
            .body(r#"{"kind":"report","filter":{"nationality":"Swiss"}}"#)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = accepted["id"].as_str().unwrap().to_owned();
        loop {
            let record: Value = reqwest::get(format!("{base}/requests/{id}"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if record["status"] == "completed" {
                break id;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut messages = Vec::new();
    for line in lines {
        let line = line.unwrap();
        let Ok(entry) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if entry.to_string().contains("corr-e2e-7") {
            messages.push(entry["fields"]["message"].as_str().unwrap_or("").to_owned());
            // The request id travels with it.
            if entry["fields"]["message"] != "request queued" {
                assert!(entry.to_string().contains(&id), "{entry}");
            }
        }
    }
    child.wait().unwrap();
    for expected in ["request queued", "processing", "request finished", "pushed"] {
        assert!(
            messages.iter().any(|m| m == expected),
            "no {expected:?} line with the correlation id in {messages:?}"
        );
    }
}

/// `PUT /people/{id}` creates (201) then replaces (200), validated like an
/// import line; `DELETE` answers 204 then 404; each write is searchable
/// (or gone) when its response arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_and_delete_a_person_are_searchable_at_once() {
    use reqwest::Method;
    let server = Server::start().await;
    let ann =
        r#"{"first_name":"Annwyl","last_name":"Zyxwv","nationality":"Welsh","hobbies":["Harp"]}"#;

    // WHEN a new person is put THEN 201, and search finds them at once
    let (status, body) = server.send(Method::PUT, "/people/put-1", ann).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], "put-1");
    let (_, page) = server.get("/people?search=zyxwv").await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["first_name"], "Annwyl");
    let (_, options) = server.get("/filters?limit=100").await;
    assert!(
        options["nationalities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|vc| vc["value"] == "Welsh" && vc["count"] == 1),
        "{options}"
    );

    // WHEN the same id is put again with another name THEN 200, replaced
    let renamed = r#"{"id":"put-1","first_name":"Bethan","last_name":"Zyxwv","nationality":"Welsh","hobbies":[]}"#;
    let (status, body) = server.send(Method::PUT, "/people/put-1", renamed).await;
    assert_eq!(status, 200, "{body}");
    let (_, page) = server.get("/people?search=zyxwv").await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["first_name"], "Bethan");
    let (_, page) = server.get("/people?search=annwyl").await;
    assert_eq!(page["total"], 0);

    // Bad bodies are 400 with the field named, and change nothing
    for (body, field) in [
        (
            r#"{"id":"other","first_name":"A","last_name":"B","nationality":"C","hobbies":[]}"#,
            "id",
        ),
        (
            r#"{"first_name":"","last_name":"B","nationality":"C","hobbies":[]}"#,
            "first_name",
        ),
        (
            r#"{"first_name":"A","nationality":"C","hobbies":[]}"#,
            "body",
        ),
        ("not json", "body"),
        ("[1]", "body"),
    ] {
        let (status, reply) = server.send(Method::PUT, "/people/put-1", body).await;
        assert_eq!(status, 400, "{body}: {reply}");
        assert_eq!(reply["error"]["parameter"], field, "{body}: {reply}");
    }
    // A body over 64 KiB (MAX_PERSON_BYTES) is 413, and changes nothing
    let long = format!(
        r#"{{"first_name":"{}","last_name":"B","nationality":"C","hobbies":[]}}"#,
        "a".repeat(people_http::write::MAX_PERSON_BYTES)
    );
    let (status, reply) = server.send(Method::PUT, "/people/put-1", &long).await;
    assert_eq!(status, 413, "{reply}");
    assert_eq!(reply["error"]["code"], "payload_too_large", "{reply}");
    let (_, person) = server.get("/people/put-1").await;
    assert_eq!(person["first_name"], "Bethan");

    // WHEN the person is deleted THEN 204, gone from search and by id
    let total_before = server.get("/people").await.1["total"].as_u64().unwrap();
    let (status, body) = server.send(Method::DELETE, "/people/put-1", "").await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, _) = server.get("/people/put-1").await;
    assert_eq!(status, 404);
    let (_, page) = server.get("/people?search=zyxwv").await;
    assert_eq!(page["total"], 0);
    let (_, all) = server.get("/people").await;
    assert_eq!(all["total"].as_u64().unwrap(), total_before - 1);
    // and a second delete is 404
    let (status, body) = server.send(Method::DELETE, "/people/put-1", "").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    server.shutdown().await;
}

/// A `delete` job removes people in bulk; they are out of search when the
/// request is completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_job_removes_people_by_the_time_it_completes() {
    let server = Server::start().await;
    let all = people();
    let gone: Vec<&str> = all.iter().take(300).map(|p| p.id.as_str()).collect();
    let body = serde_json::json!({"kind": "delete", "ids": gone}).to_string();
    let (status, accepted) = server.post("/requests", &body, None).await;
    assert_eq!(status, 202, "{accepted}");
    let record = server.finished(accepted["id"].as_str().unwrap()).await;
    assert_eq!(record["status"], "completed", "{record}");
    assert_eq!(record["kind"], "delete");
    assert_eq!(record["result"]["deleted"], 300);
    let (_, page) = server.get("/people?page_size=1").await;
    assert_eq!(page["total"], (PEOPLE - 300) as u64);
    for id in gone.iter().step_by(37) {
        let (status, _) = server.get(&format!("/people/{id}")).await;
        assert_eq!(status, 404, "{id}");
    }
    // Bad delete bodies are refused up front.
    for (body, field) in [
        (r#"{"kind":"delete"}"#, "ids"),
        (r#"{"kind":"delete","ids":[]}"#, "ids"),
        (r#"{"kind":"delete","ids":[1]}"#, "ids"),
        (r#"{"kind":"delete","ids":"x"}"#, "ids"),
    ] {
        let (status, reply) = server.post("/requests", body, None).await;
        assert_eq!(status, 400, "{body}: {reply}");
        assert_eq!(reply["error"]["parameter"], field, "{body}: {reply}");
    }
    server.shutdown().await;
}

/// The local server has no authorizer: a web page on another site must not
/// write through the browser of a developer who runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_websocket_upgrades_come_only_from_loopback_origins() {
    let server = Server::start().await;
    let report = r#"{"kind":"report"}"#;
    let post = |origin: Option<&'static str>| {
        let mut request = reqwest::Client::new()
            .post(format!("{}/requests", server.base))
            .header("content-type", "application/json")
            .body(report);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    for origin in [
        None,
        Some("http://localhost:5173"),
        Some("http://127.0.0.1:3000"),
        Some("http://[::1]:8080"),
    ] {
        let response = post(origin).await.unwrap();
        assert_eq!(response.status(), 202, "{origin:?}");
    }
    for origin in [
        "https://evil.example",
        "null",
        "http://192.168.1.20:3000",
        "http://localhost.evil.example",
    ] {
        let response = post(Some(origin)).await.unwrap();
        assert_eq!(response.status(), 403, "{origin}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
    }
    // Reads are for anyone.
    let response = reqwest::Client::new()
        .get(format!("{}/people?page_size=1", server.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The WebSocket upgrade is refused before it happens.
    let mut upgrade = server.ws_url().into_client_request().unwrap();
    upgrade
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(upgrade).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected a 403, got {other:?}"),
    }
    let mut upgrade = server.ws_url().into_client_request().unwrap();
    upgrade
        .headers_mut()
        .insert("origin", "http://localhost:3000".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(upgrade).await.is_ok());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_of_writes_must_be_json() {
    let server = Server::start().await;
    let send = |content_type: Option<&'static str>| {
        let mut request = reqwest::Client::new()
            .post(format!("{}/requests", server.base))
            .body(r#"{"kind":"report"}"#);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    for ok in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
    ] {
        assert_eq!(send(Some(ok)).await.unwrap().status(), 202, "{ok}");
    }
    for refused in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let response = send(refused).await.unwrap();
        assert_eq!(response.status(), 415, "{refused:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unsupported_media_type");
    }
    server.shutdown().await;
}

#[test]
fn the_management_api_is_served_on_loopback_binds_or_when_asked() {
    use std::net::IpAddr;
    let any: IpAddr = "0.0.0.0".parse().unwrap();
    assert!(local::serves_management_api(
        "127.0.0.1".parse().unwrap(),
        false
    ));
    assert!(local::serves_management_api("::1".parse().unwrap(), false));
    assert!(!local::serves_management_api(any, false));
    assert!(!local::serves_management_api(
        "192.168.1.20".parse().unwrap(),
        false
    ));
    assert!(local::serves_management_api(any, true));
}

/// The binary itself: on a non-loopback bind it says it leaves the
/// Management API out, and refuses WEBSOCKET_ENDPOINT, which needs it.
#[test]
fn a_non_loopback_bind_without_the_flag_serves_no_management_api() {
    let output = Command::new(env!("CARGO_BIN_EXE_local"))
        .args(["--bind", "0.0.0.0", "--port", "0", "--people", "10"])
        .env("WEBSOCKET_ENDPOINT", "http://127.0.0.1:1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--expose-management-api"), "{stderr}");
}

/// The smaller fixes of the HTTP API, as a client sees them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_that_are_not_request_ids_bodies_over_the_limit_and_repeated_keys() {
    let server = Server::start().await;
    // Not a request id: 404 without a read, the id quoted briefly.
    for id in ["nope".to_owned(), "x".repeat(5000)] {
        let (status, body) = server.get(&format!("/requests/{id}")).await;
        assert_eq!(status, 404, "{body}");
        assert!(body.to_string().len() < 300, "{body}");
    }
    let client = reqwest::Client::new();
    // Over the limit is 413 at every size: over the route's limit...
    let response = client
        .post(format!("{}/requests", server.base))
        .header("content-type", "application/json")
        .body(vec![b' '; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    // ... and over the server's (6 MiB), answered from the declared length
    // before the body is sent, or once that much has been read.
    for chunked in [false, true] {
        let status = crate::support::oversized_post(server.addr, chunked).await;
        assert_eq!(
            status, "HTTP/1.1 413 Payload Too Large",
            "chunked: {chunked}"
        );
    }
    // A second Idempotency-Key is a 400, as a repeated parameter is.
    let response = client
        .post(format!("{}/requests", server.base))
        .header("content-type", "application/json")
        .header("idempotency-key", "a")
        .header("idempotency-key", "b")
        .body(r#"{"kind":"report"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["parameter"], "Idempotency-Key", "{body}");
    // A cursor answer names its page, or none between page boundaries.
    let (_, first) = server.get("/people?page_size=2").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (_, aligned) = server
        .get(&format!("/people?page_size=2&cursor={cursor}"))
        .await;
    assert_eq!(aligned["page"], 2, "{aligned}");
    let (_, between) = server
        .get(&format!("/people?page_size=3&cursor={cursor}"))
        .await;
    assert_eq!(
        between["page"],
        Value::Null,
        "rows 3-5 are no page of 3: {between}"
    );
    assert_eq!(between["items"].as_array().unwrap().len(), 3);
    server.shutdown().await;
}

#[tokio::test]
async fn the_page_and_the_openapi_document_are_served_with_their_types() {
    let server = Server::start().await;
    let client = reqwest::Client::new();
    for (path, content_type, needle) in [
        (
            "/",
            "text/html; charset=utf-8",
            "<title>People directory</title>",
        ),
        (
            "/web/app.js",
            "text/javascript; charset=utf-8",
            "new WebSocket",
        ),
        ("/web/style.css", "text/css; charset=utf-8", "@media"),
    ] {
        let r = client
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], content_type, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-cache", "{path}");
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        assert!(r.text().await.unwrap().contains(needle), "{path}");
        // Revalidation: the same ETag is a 304 with no body.
        let again = client
            .get(format!("{}{path}", server.base))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert!(again.bytes().await.unwrap().is_empty());
    }
    let (status, _) = server.get("/web/nothing.js").await;
    assert_eq!(status, 404);
    let (status, doc) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    // Every route the document lists answers something other than "no route".
    for route in people_http::routes::ROUTES {
        let (method, path) = (route.method.as_str(), route.path);
        let path = path.replace("{id}", "nobody").replace("{file}", "app.js");
        let r = client
            .request(method.parse().unwrap(), format!("{}{path}", server.base))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let body = r.text().await.unwrap();
        assert!(!body.contains("no route for"), "{method} {path}: {body}");
    }
}

#[tokio::test]
async fn facets_typos_and_highlights_over_http() {
    let server = Server::start().await;
    let all = people();
    // Drill sideways: with a nationality picked, the nationality counts
    // ignore it, the hobby counts do not.
    let pick = &all[0].nationality;
    let (status, body) = server
        .get(&format!(
            "/people?nationality={}&facets=nationality,hobbies&facet_limit=100",
            pick.replace(' ', "+")
        ))
        .await;
    assert_eq!(status, 200);
    let nats = body["facets"]["nationality"].as_array().unwrap();
    let count = |list: &[Value], v: &str| {
        list.iter()
            .find(|x| x["value"] == v)
            .map_or(0, |x| x["count"].as_u64().unwrap())
    };
    for vc in nats {
        let v = vc["value"].as_str().unwrap();
        let want = all.iter().filter(|p| p.nationality == v).count() as u64;
        assert_eq!(vc["count"].as_u64().unwrap(), want, "{v}");
    }
    assert!(nats.len() > 1, "other nationalities still counted");
    let hobbies = body["facets"]["hobbies"].as_array().unwrap();
    let reading = all
        .iter()
        .filter(|p| &p.nationality == pick && p.hobbies.iter().any(|h| h == "Reading"))
        .count() as u64;
    assert_eq!(count(hobbies, "Reading"), reading);
    assert_eq!(
        body["total"],
        all.iter().filter(|p| &p.nationality == pick).count()
    );

    // A misspelt surname: nobody exactly, somebody with typos=1, which says so.
    let target = all
        .iter()
        .find(|p| p.last_name.chars().count() >= 6 && p.last_name.is_ascii())
        .unwrap();
    let mut typo: Vec<char> = target.last_name.chars().collect();
    typo.swap(1, 2);
    let typo: String = typo.into_iter().collect();
    let (_, exact) = server.get(&format!("/people?search={typo}")).await;
    let (status, fuzzy) = server
        .get(&format!("/people?search={typo}&typos=1&highlight=1"))
        .await;
    assert_eq!(status, 200);
    assert!(fuzzy["total"].as_u64().unwrap() > exact["total"].as_u64().unwrap());
    let approx = fuzzy["approximate"].as_array().unwrap();
    assert_eq!(approx[0]["word"], typo.to_lowercase());
    assert!(
        approx[0]["matched"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap() == fold(&target.last_name))
    );
    assert!(exact.get("approximate").is_none());
    // Highlights: ranges into the names as sent.
    let (_, page) = server.get("/people?search=jo&highlight=1").await;
    for item in page["items"].as_array().unwrap() {
        let h = &item["highlight"];
        let mut found = 0;
        for field in ["first_name", "last_name"] {
            let name: Vec<u16> = item[field].as_str().unwrap().encode_utf16().collect();
            for r in h[field].as_array().unwrap() {
                let (s, e) = (
                    r[0].as_u64().unwrap() as usize,
                    r[1].as_u64().unwrap() as usize,
                );
                let part = String::from_utf16(&name[s..e]).unwrap();
                assert!(fold(&part).starts_with("jo"), "{part}");
                found += 1;
            }
        }
        assert!(found > 0, "{item}");
    }
    let (status, body) = server.get("/people?facets=height").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["parameter"], "facets");
}

/// The local binary with `--snapshot`, on a free port: its base URL, its
/// stderr lines up to the address, and a thread collecting the rest (the
/// pipe stays drained: a server writing into a closed pipe would fail).
fn spawn_with_snapshot(
    path: &std::path::Path,
    extra: &[&str],
) -> (
    std::process::Child,
    String,
    Vec<String>,
    std::thread::JoinHandle<Vec<String>>,
) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_local"))
        .args(["--port", "0", "--snapshot"])
        .arg(path)
        .args(extra)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut before = Vec::new();
    let base = loop {
        let line = lines
            .next()
            .expect("the server prints its address")
            .unwrap();
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.split(' ').next().unwrap().to_owned();
        }
        before.push(line);
    };
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect());
    (child, base, before, rest)
}

fn terminate(child: &mut std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit}");
}

async fn json(method: reqwest::Method, url: String, body: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Imports 3 people through a job, replaces one generated person and
/// deletes another; returns their ids (imported, edited, deleted).
async fn change_people(base: &str) -> (Vec<String>, String, String) {
    use reqwest::Method;
    let import = r#"{"kind":"import","people":[
        {"first_name":"Snapsy","last_name":"Qwertz","nationality":"Snapland","hobbies":["Naps"]},
        {"first_name":"Imagin","last_name":"Qwertz","nationality":"Snapland","hobbies":[]},
        {"first_name":"Restor","last_name":"Qwertz","nationality":"Snapland","hobbies":["Naps","Chess"]}]}"#;
    let (status, accepted) = json(Method::POST, format!("{base}/requests"), import).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    let done = loop {
        let (_, record) = json(Method::GET, format!("{base}/requests/{id}"), "").await;
        if record["status"] == "completed" || record["status"] == "failed" {
            break record;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done["result"]["accepted"], 3, "{done}");
    let (_, page) = json(Method::GET, format!("{base}/people?search=qwertz"), "").await;
    assert_eq!(page["total"], 3, "{page}");
    let imported = ids(&page);
    let (_, first) = json(Method::GET, format!("{base}/people?page_size=2"), "").await;
    let [edited, deleted] = [0, 1].map(|i| first["items"][i]["id"].as_str().unwrap().to_owned());
    let edit = format!(
        r#"{{"id":"{edited}","first_name":"Edita","last_name":"Qwertzova","nationality":"Snapland","hobbies":["Naps"]}}"#
    );
    let (status, body) = json(Method::PUT, format!("{base}/people/{edited}"), &edit).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = json(Method::DELETE, format!("{base}/people/{deleted}"), "").await;
    assert_eq!(status, 204);
    (imported, edited, deleted)
}

/// What `change_people` did is all there: the imports, the edit, not the
/// deleted person, and the total.
async fn assert_changes_kept(base: &str, changed: &(Vec<String>, String, String), total: u64) {
    use reqwest::Method;
    let (imported, edited, deleted) = changed;
    let (_, page) = json(Method::GET, format!("{base}/people?search=qwertz"), "").await;
    assert_eq!(page["total"], 4, "3 imported + 1 edited: {page}");
    for id in imported {
        let (status, _) = json(Method::GET, format!("{base}/people/{id}"), "").await;
        assert_eq!(status, 200, "imported {id} kept");
    }
    let (_, person) = json(Method::GET, format!("{base}/people/{edited}"), "").await;
    assert_eq!(person["first_name"], "Edita", "{person}");
    let (status, _) = json(Method::GET, format!("{base}/people/{deleted}"), "").await;
    assert_eq!(status, 404, "deleted {deleted} stays deleted");
    let (_, all) = json(Method::GET, format!("{base}/people?page_size=1"), "").await;
    assert_eq!(all["total"], total);
    let (_, by_nat) = json(
        Method::GET,
        format!("{base}/people?nationality=Snapland&hobbies=Naps"),
        "",
    )
    .await;
    assert_eq!(by_nat["total"], 3, "{by_nat}");
}

/// `--snapshot FILE`: a graceful stop writes it; a restart (with other
/// start-up flags, which the snapshot overrides) serves exactly what was
/// imported, edited and deleted before, and goes on from there.
#[test]
fn a_restart_with_a_snapshot_keeps_imports_edits_and_deletes() {
    let dir = std::env::temp_dir().join(format!("local-snapshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("index.img");
    let _ = std::fs::remove_file(&path);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // GIVEN a server without a snapshot file yet, and changes made to it
    let (mut child, base, before, lines) =
        spawn_with_snapshot(&path, &["--people", "1000", "--snapshot-every", "3600"]);
    assert!(
        !before.iter().any(|l| l.starts_with("loading snapshot")),
        "{before:?}"
    );
    let changed = rt.block_on(change_people(&base));
    // WHEN it stops THEN it writes the snapshot
    terminate(&mut child);
    let after = lines.join().unwrap();
    assert!(
        after
            .iter()
            .any(|l| l.starts_with("wrote snapshot") && l.contains("(1002 people)")),
        "{after:?}"
    );

    // WHEN it starts again with the snapshot (and another --people)
    let (mut child, base, before, _) =
        spawn_with_snapshot(&path, &["--people", "5", "--snapshot-every", "3600"]);
    assert!(
        before
            .iter()
            .any(|l| l.starts_with("loading snapshot") && l.contains("1002 people")),
        "{before:?}"
    );
    // THEN everything is as it was, and the store itself was restored: a
    // job over it sees the same people
    rt.block_on(assert_changes_kept(&base, &changed, 1002));
    let (status, _) = rt.block_on(json(
        reqwest::Method::PUT,
        format!("{base}/people/after-restart"),
        r#"{"first_name":"Later","last_name":"Qwertz","nationality":"Snapland","hobbies":[]}"#,
    ));
    assert_eq!(status, 201);
    terminate(&mut child);

    // AND a third start sees the write made after the restart
    let (mut child, base, _, _) = spawn_with_snapshot(&path, &["--snapshot-every", "3600"]);
    let (_, page) = rt.block_on(json(
        reqwest::Method::GET,
        format!("{base}/people?search=qwertz"),
        "",
    ));
    assert_eq!(page["total"], 5, "{page}");
    terminate(&mut child);

    // A file that is not a snapshot: the server refuses to start (it would
    // otherwise write over it), and says why.
    std::fs::write(&path, b"not an index image").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_local"))
        .args(["--port", "0", "--snapshot"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a usable snapshot"), "{stderr}");
    assert!(stderr.contains("not an index image"), "{stderr}");
    assert_eq!(std::fs::read(&path).unwrap(), b"not an index image");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The periodic write: a server killed without a chance to write (SIGKILL)
/// still restarts with what was changed a period before.
#[test]
fn a_periodic_snapshot_survives_a_kill() {
    let dir = std::env::temp_dir().join(format!("local-snapshot-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("index.img");
    let _ = std::fs::remove_file(&path);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut child, base, _, _) =
        spawn_with_snapshot(&path, &["--people", "500", "--snapshot-every", "1"]);
    let changed = rt.block_on(change_people(&base));
    // Two periods: the first write after the changes has ended by then.
    let written = std::time::Instant::now();
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut last = modified(&path);
    let mut settled = 0;
    while settled < 2 {
        std::thread::sleep(Duration::from_millis(1100));
        let now = modified(&path);
        if now.is_some() && now == last {
            settled += 1;
        } else {
            settled = 0;
        }
        last = now;
        assert!(
            written.elapsed() < Duration::from_secs(30),
            "the snapshot was not written within 30 s"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, base, before, _) = spawn_with_snapshot(&path, &["--snapshot-every", "3600"]);
    assert!(
        before.iter().any(|l| l.starts_with("loading snapshot")),
        "{before:?}"
    );
    rt.block_on(assert_changes_kept(&base, &changed, 502));
    terminate(&mut child);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The schemas of the served OpenAPI document, made strict for the check
/// below: `$ref`s inlined, an `allOf` of objects merged into one object,
/// and every object with `properties` closed (`additionalProperties:
/// false`), so that a field a response has and its schema lacks fails.
fn strict_schema(schema: &Value, doc: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    if let Some(Value::String(r)) = map.get("$ref") {
        let target = doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{r} is not in the document"));
        return strict_schema(target, doc);
    }
    let mut out = serde_json::Map::new();
    for (key, value) in map {
        let value = match key.as_str() {
            "properties" => Value::Object(
                value
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(name, s)| (name.clone(), strict_schema(s, doc)))
                    .collect(),
            ),
            "items" | "additionalProperties" | "not" if value.is_object() => {
                strict_schema(value, doc)
            }
            "allOf" | "oneOf" | "anyOf" | "prefixItems" => Value::Array(
                value
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| strict_schema(s, doc))
                    .collect(),
            ),
            _ => value.clone(),
        };
        out.insert(key.clone(), value);
    }
    if let Some(Value::Array(parts)) = out.get("allOf").cloned()
        && parts.iter().all(|p| p.get("properties").is_some())
    {
        out.remove("allOf");
        let mut properties = serde_json::Map::new();
        let mut required = Vec::new();
        for part in parts {
            properties.extend(part["properties"].as_object().unwrap().clone());
            required.extend(part["required"].as_array().cloned().unwrap_or_default());
        }
        out.insert("type".into(), "object".into());
        out.insert("properties".into(), Value::Object(properties));
        out.insert("required".into(), Value::Array(required));
    }
    if out.contains_key("properties") && !out.contains_key("additionalProperties") {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// `body` is what the document says `method path` answers with `status`.
fn assert_documented(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let response = &doc["paths"][path][method]["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which the document does not list: {body}"
    );
    if status == 204 {
        assert!(response.get("content").is_none(), "{method} {path} 204");
        assert!(body.is_null(), "{method} {path} 204 has a body: {body}");
        return;
    }
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status}: no JSON schema in the document"
    );
    let strict = strict_schema(schema, doc);
    let validator = jsonschema::validator_for(&strict)
        .unwrap_or_else(|e| panic!("{method} {path} {status}: {e}: {strict}"));
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {body} does not match {strict}: {errors:?}"
    );
}

/// Real responses of every route, a 200 (or 201, 202, 204) and an error
/// each, match the schemas of the document the server serves at
/// /openapi.json: the document is generated from the handlers' types, and
/// this holds it to what they send.
#[tokio::test]
async fn every_route_answers_as_the_served_openapi_document_says() {
    let server = Server::start().await;
    let (status, doc) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_documented(&doc, "get", "/openapi.json", status, &doc);
    let mut seen: Vec<(String, u16)> = Vec::new();
    let mut check = |method: &str, path: &str, status: u16, body: &Value| {
        assert_documented(&doc, method, path, status, body);
        seen.push((format!("{} {path}", method.to_uppercase()), status));
    };
    let someone = people()[0].clone();

    for query in [
        "search=jo&facets=nationality,hobbies&facet_limit=3&highlight=1",
        "search=joahnna&typos=1&nationality=Nowhere&facets=hobbies",
        "hobbies=Reading,Cooking&hobbies_match=all&page=9999",
        "page_size=2",
    ] {
        let (status, body) = server.get(&format!("/people?{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        check("get", "/people", status, &body);
    }
    let (_, first) = server.get("/people?page_size=2").await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (status, body) = server
        .get(&format!("/people?page_size=3&cursor={cursor}"))
        .await;
    assert_eq!(body["page"], Value::Null, "a cursor between page bounds");
    check("get", "/people", status, &body);
    let (status, body) = server.get("/people?page=0").await;
    assert_eq!(status, 400);
    check("get", "/people", status, &body);

    let (status, body) = server.get(&format!("/people/{}", someone.id)).await;
    assert_eq!(status, 200);
    check("get", "/people/{id}", status, &body);
    let (status, body) = server.get("/people/nobody").await;
    check("get", "/people/{id}", status, &body);

    let (status, body) = server.get("/filters?limit=3").await;
    check("get", "/filters", status, &body);
    let (status, body) = server.get("/filters?limit=0").await;
    assert_eq!(status, 400);
    check("get", "/filters", status, &body);

    let person = r#"{"first_name": "Schema", "last_name": "Checked", "nationality": "Testish", "hobbies": ["Chess"]}"#;
    let (status, body) = server
        .send(reqwest::Method::PUT, "/people/schema1", person)
        .await;
    assert_eq!(status, 201, "{body}");
    check("put", "/people/{id}", status, &body);
    let (status, body) = server
        .send(reqwest::Method::PUT, "/people/schema1", person)
        .await;
    assert_eq!(status, 200, "{body}");
    check("put", "/people/{id}", status, &body);
    let (status, body) = server
        .send(
            reqwest::Method::PUT,
            "/people/schema1",
            r#"{"first_name": ""}"#,
        )
        .await;
    assert_eq!(status, 400);
    check("put", "/people/{id}", status, &body);
    let (status, body) = server
        .send(reqwest::Method::DELETE, "/people/schema1", "")
        .await;
    assert_eq!(status, 204);
    check("delete", "/people/{id}", status, &body);
    let (status, body) = server
        .send(reqwest::Method::DELETE, "/people/schema1", "")
        .await;
    assert_eq!(status, 404);
    check("delete", "/people/{id}", status, &body);

    for job in [
        r#"{"kind": "report", "filter": {"search": "jo", "nationality": "German"}}"#.to_owned(),
        r#"{"kind": "import", "people": [{"first_name": "A", "last_name": "B", "nationality": "C", "hobbies": []}, {"first_name": ""}]}"#.to_owned(),
        format!(r#"{{"kind": "delete", "ids": ["{}"]}}"#, someone.id),
    ] {
        let (status, accepted) = server.post("/requests", &job, None).await;
        assert_eq!(status, 202, "{accepted}");
        check("post", "/requests", status, &accepted);
        let done = server.finished(accepted["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "completed", "{done}");
        check("get", "/requests/{id}", 200, &done);
    }
    let (status, body) = server.post("/requests", r#"{"kind": "nap"}"#, None).await;
    assert_eq!(status, 400);
    check("post", "/requests", status, &body);
    let (status, body) = server
        .get("/requests/00000000-0000-4000-8000-000000000000")
        .await;
    assert_eq!(status, 404);
    check("get", "/requests/{id}", status, &body);
    let (status, body) = server.get("/web/nothing.js").await;
    assert_eq!(status, 404);
    check("get", "/web/{file}", status, &body);

    // The page and its files: the documented content types.
    let client = reqwest::Client::new();
    for (path, route) in [("/", "/"), ("/web/app.js", "/web/{file}")] {
        let r = client
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        let essence = content_type.split(';').next().unwrap();
        let documented = doc["paths"][route]["get"]["responses"]["200"]["content"]
            .as_object()
            .unwrap();
        assert!(documented.contains_key(essence), "{path}: {content_type}");
    }
    // Every JSON route was seen answering a success and an error.
    for route in people_http::routes::ROUTES {
        let path = &route.path;
        let route = route.route_key();
        if matches!(*path, "/" | "/openapi.json") {
            continue;
        }
        let statuses: Vec<u16> = seen
            .iter()
            .filter(|(r, _)| *r == route)
            .map(|(_, s)| *s)
            .collect();
        if *path != "/web/{file}" {
            assert!(statuses.iter().any(|s| *s < 300), "{route}: {statuses:?}");
        }
        assert!(statuses.iter().any(|s| *s >= 400), "{route}: {statuses:?}");
    }
    server.shutdown().await;
}

/// `--jwt-issuer`: the API routes demand a valid Bearer token as API
/// Gateway's JWT authorizer does (401 with its body), the page, its files
/// and the OpenAPI document stay public, and `/ws` refuses a connect
/// without a token (401) and with a refused one (403), as API Gateway does
/// with the `$connect` authorizer. The issuer here has no server, so no
/// token is valid; valid ones (and their scopes) are the browser test's
/// (`scripts/browser-test.sh`, which serves an issuer).
#[test]
fn with_a_jwt_issuer_the_api_and_the_socket_demand_a_token() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_local"))
        .args(["--port", "0", "--people", "500"])
        .args(["--jwt-issuer", "http://127.0.0.1:9/"])
        .args(["--jwt-audience", "people-directory"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("the server prints its address")
            .unwrap();
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.split(' ').next().unwrap().to_owned();
        }
    };
    // Keep reading the log, so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let refused = |r: reqwest::Response| async move {
            let status = r.status().as_u16();
            let challenge = r.headers().get("www-authenticate").cloned();
            let body: Value = r.json().await.unwrap();
            (status, challenge.is_some(), body)
        };
        let unauthorized = (401, true, serde_json::json!({"message": "Unauthorized"}));
        for path in [
            "/people?search=jo",
            "/people/p0000001",
            "/filters",
            "/requests/00000000-0000-4000-8000-000000000000",
        ] {
            let r = client.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(refused(r).await, unauthorized, "{path}");
            let r = client
                .get(format!("{base}{path}"))
                .bearer_auth("not.a.jwt")
                .send()
                .await
                .unwrap();
            assert_eq!(refused(r).await, unauthorized, "{path} with a bad token");
        }
        let r = client
            .put(format!("{base}/people/x1"))
            .header("content-type", "application/json")
            .body(r#"{"first_name":"A","last_name":"B","nationality":"C","hobbies":[]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(refused(r).await, unauthorized, "PUT");
        let r = client
            .post(format!("{base}/requests"))
            .header("content-type", "application/json")
            .body(r#"{"kind":"report"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(refused(r).await, unauthorized, "POST /requests");
        for path in ["/", "/web/app.js", "/openapi.json"] {
            let r = client.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path} is public");
        }
        let ws = base.replace("http://", "ws://");
        for (url, want) in [
            (format!("{ws}/ws"), 401),
            (format!("{ws}/ws?token=not.a.jwt"), 403),
        ] {
            match tokio_tungstenite::connect_async(url.as_str()).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                    assert_eq!(response.status().as_u16(), want, "{url}");
                }
                other => panic!("{url}: {:?}", other.map(|(_, r)| r.status())),
            }
        }
    });
    terminate(&mut child);
}
