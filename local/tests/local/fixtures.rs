//! The fixtures in events/ have the shape of the events the local server
//! generates (front mode, the WebSocket emulation, the SQS event source),
//! so neither can drift from the other: the same fields, at every level
//! (values and the names inside headers and parameters may differ).

#[allow(dead_code)] // the DynamoDB helpers: only SQS is used here
use people_testkit::moto;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use axum::http::{HeaderMap, Request};
use people_app::jobs::{Job, JobMessage};
use people_app::memory::hub::ConnectionInfo;
use people_app::ports::JobQueue;
use people_aws::sqs::{SqsQueue, create_queues};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Every field path of `value`; maps whose names are data (headers,
/// parameters, attributes) count as one field, and a null or an empty map is no field (the
/// event types serialize absent fields as null; the functions read both
/// the same).
fn fields(value: &Value) -> BTreeSet<String> {
    const DATA: &[&str] = &[
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "messageAttributes",
    ];
    fn walk(value: &Value, path: &str, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    if v.is_null() || v.as_object().is_some_and(|o| o.is_empty()) {
                        continue;
                    }
                    let p = format!("{path}.{k}");
                    out.insert(p.clone());
                    if !DATA.contains(&k.as_str()) {
                        walk(v, &p, out);
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    walk(item, &format!("{path}[]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(value, "", &mut out);
    out
}

fn assert_same_fields(generated: &Value, fixture_name: &str) {
    let want = fields(&fixture(fixture_name));
    let got = fields(generated);
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{fixture_name}: the local server's event lacks {missing:?} and adds {extra:?}\n{generated:#}"
    );
}

fn http(method: &str, uri: &str, body: &str, route_key: &str, params: &[(&str, &str)]) -> Value {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1:3000")
        .header("user-agent", "curl/8.5.0")
        .header("accept", "application/json")
        .body(())
        .unwrap();
    let (parts, ()) = request.into_parts();
    let params: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    local::front::http_event(
        &parts,
        body.as_bytes(),
        route_key,
        params,
        Some("127.0.0.1:40000".parse().unwrap()),
    )
}

#[test]
fn http_api_events_have_the_fixtures_shape() {
    let person = http(
        "GET",
        "/people/p0000001",
        "",
        "GET /people/{id}",
        &[("id", "p0000001")],
    );
    assert_same_fields(&person, "query-person.json");
    assert_eq!(person["pathParameters"]["id"], "p0000001");
    let search = http(
        "GET",
        "/people?search=jo&nationality=German",
        "",
        "GET /people",
        &[],
    );
    assert_same_fields(&search, "query-people-search.json");
    assert_eq!(search["rawQueryString"], "search=jo&nationality=German");
    assert_eq!(search["queryStringParameters"]["nationality"], "German");
    let enqueue = http(
        "POST",
        "/requests",
        r#"{"kind":"report","filter":{}}"#,
        "POST /requests",
        &[],
    );
    assert_same_fields(&enqueue, "enqueue-report.json");
    // And lambda_http reads them as the fixtures.
    for event in [person, search, enqueue] {
        serde_json::from_value::<aws_lambda_events::apigw::ApiGatewayV2httpRequest>(event).unwrap();
    }
}

#[test]
fn websocket_events_have_the_fixtures_shape() {
    let now = chrono::Utc::now();
    let info = ConnectionInfo {
        connected_at: now,
        last_active_at: now,
        source_ip: "127.0.0.1".into(),
        user_agent: Some("test".into()),
    };
    let mut headers = HeaderMap::new();
    headers.insert("host", "127.0.0.1:3000".parse().unwrap());
    let to_json = |e| serde_json::to_value(e).unwrap();
    use local::websocket::{Route, event};
    assert_same_fields(
        &to_json(event("c1", &info, Route::Connect { headers: &headers })),
        "ws-connect.json",
    );
    let body = r#"{"action":"process","request":{"kind":"report","filter":{}}}"#;
    let process = to_json(event(
        "c1",
        &info,
        Route::Message {
            body,
            is_base64: false,
        },
    ));
    assert_same_fields(&process, "ws-process.json");
    assert_eq!(process["requestContext"]["routeKey"], "process");
    assert_same_fields(
        &to_json(event(
            "c1",
            &info,
            Route::Disconnect {
                code: 1000,
                reason: "bye",
            },
        )),
        "ws-disconnect.json",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sqs_events_have_the_fixtures_shape() {
    let sqs = tokio::task::block_in_place(moto::sqs_client);
    let name = format!("fixtures-{}", std::process::id());
    let (url, _) = create_queues(&sqs, &name).await.unwrap();
    let message = JobMessage {
        request_id: "r-1".into(),
        correlation_id: "c-1".into(),
        job: serde_json::from_value::<Job>(
            serde_json::json!({"kind": "report", "filter": {"search": "jo"}}),
        )
        .unwrap(),
        id_seed: None,
    };
    SqsQueue::new(sqs.clone(), url.clone())
        .send(&message)
        .await
        .unwrap();
    let received = sqs
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(5)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap()
        .messages
        .unwrap();
    let arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}");
    let event = local::event_source::sqs_event(&received, &arn, "us-east-1").unwrap();
    let event = serde_json::to_value(&event).unwrap();
    assert_same_fields(&event, "sqs-report.json");
    let record = &event["Records"][0];
    assert_eq!(record["attributes"]["ApproximateReceiveCount"], "1");
    assert_eq!(
        record["messageAttributes"]["request_id"]["stringValue"],
        "r-1"
    );
    assert_eq!(record["eventSourceARN"], arn.as_str());
}

/// The routes the WebSocket emulation selects on are template.yaml's.
#[test]
fn the_websocket_routes_are_the_templates() {
    let ws = people_aws::template::Template::built_in()
        .websocket()
        .unwrap();
    let mut declared: Vec<&str> = ws
        .routes
        .iter()
        .map(String::as_str)
        .filter(|r| !r.starts_with('$'))
        .collect();
    declared.sort();
    let mut emulated = local::websocket::ROUTES.to_vec();
    emulated.sort();
    assert_eq!(declared, emulated);
    assert_eq!(ws.route_selection, "$request.body.action");
}

/// The routes `GET /openapi.json` describes are template.yaml's HttpApi
/// events, each once, and the document lists exactly those paths and methods.
#[test]
fn the_openapi_routes_are_the_templates() {
    let template = people_aws::template::Template::built_in();
    let mut declared: Vec<String> = template
        .http_routes()
        .unwrap()
        .iter()
        .map(|r| r.route_key())
        .collect();
    declared.sort();
    let mut described: Vec<String> = people_http::routes::ROUTES
        .iter()
        .map(people_http::routes::Route::route_key)
        .collect();
    described.sort();
    assert_eq!(declared, described);
    let doc = people_http::openapi::document();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut in_doc: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            in_doc.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    in_doc.sort();
    assert_eq!(in_doc, described);
}

/// The event the emulated schedules send is the fixture's shape, and
/// reads as the EventBridge event type the scheduled functions take.
#[test]
fn scheduled_events_have_the_fixtures_shape() {
    let event = local::schedule::scheduled_event(
        "SweeperFunction-Every5Minutes",
        "us-east-1",
        chrono::Utc::now(),
    );
    assert_same_fields(&event, "scheduled.json");
    assert_eq!(event["detail-type"], "Scheduled Event");
    assert_eq!(
        event["resources"][0],
        "arn:aws:events:us-east-1:123456789012:rule/SweeperFunction-Every5Minutes"
    );
    serde_json::from_value::<aws_lambda_events::event::eventbridge::EventBridgeEvent>(event)
        .unwrap();
}

/// The routes of the HTTP API, each with the function that serves it, are
/// the same in the three places that name them: the code's route table
/// (`people_http::routes::ROUTES`, which the routers are built from),
/// template.yaml's HttpApi events, and `cargo lambda watch`'s router
/// (`[workspace.metadata.lambda.watch.router]` in Cargo.toml).
#[test]
fn the_route_table_is_the_templates_and_the_watch_routers() {
    let manifest: toml::Table =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
    let router = manifest["workspace"]["metadata"]["lambda"]["watch"]["router"]
        .as_table()
        .expect("a [workspace.metadata.lambda.watch.router] table");
    let mut watched: Vec<(String, String)> = Vec::new();
    for (path, entries) in router {
        for entry in entries.as_array().expect("a list of routes per path") {
            watched.push((
                format!("{} {path}", entry["method"].as_str().unwrap()),
                entry["function"].as_str().unwrap().to_owned(),
            ));
        }
    }
    watched.sort();
    let mut declared: Vec<(String, String)> = people_aws::template::Template::built_in()
        .http_routes()
        .unwrap()
        .into_iter()
        .map(|r| (r.route_key(), r.function.binary))
        .collect();
    declared.sort();
    let mut coded: Vec<(String, String)> = people_http::routes::ROUTES
        .iter()
        .map(|r| (r.route_key(), r.function.binary().to_owned()))
        .collect();
    coded.sort();
    assert_eq!(
        coded, declared,
        "the route table (shared/http/src/routes.rs) against template.yaml"
    );
    assert_eq!(
        watched, declared,
        "Cargo.toml's watch router against template.yaml"
    );
}
