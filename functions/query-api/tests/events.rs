//! The query Lambda's router on the API Gateway events of `events/`, as
//! lambda_http delivers them and the runtime answers them.

use std::sync::Arc;

use lambda_http::{Body, Request, Response};
use people_app::config::{JobsConfig, PeopleConfig, StorageType};
use people_core::domain::Person;
use people_core::text::{fold, split_words};
use people_http::QueryApi;
use serde_json::Value;

const PEOPLE: usize = 3_000;

async fn api() -> Arc<QueryApi> {
    let config = PeopleConfig {
        storage: StorageType::Memory,
        seed_people: PEOPLE,
        ..PeopleConfig::from_lookup(|_| None).unwrap()
    };
    let jobs = JobsConfig::from_lookup(|_| None).unwrap();
    Arc::new(
        query_api::init(&people_aws::sdk::Aws::from_env(), &config, &jobs)
            .await
            .expect("memory config starts"),
    )
}

fn event(json: &str) -> Request {
    lambda_http::request::from_str(json).expect("fixture is an API Gateway v2 event")
}

async fn call(api: &Arc<QueryApi>, json: &str) -> (u16, Value, Response<Body>) {
    let service = query_api::service(Arc::clone(api));
    let response = people_http::lambda::invoke(&service, event(json)).await;
    let body: Value = match response.body() {
        Body::Text(t) => serde_json::from_str(t).expect("JSON body"),
        other => panic!("expected a text body, got {other:?}"),
    };
    (response.status().as_u16(), body, response)
}

fn people() -> Vec<Person> {
    people_core::jsonl::generated_people(PEOPLE, 42).collect()
}

fn sorted_ids(mut hits: Vec<&Person>) -> Vec<String> {
    hits.sort_by_key(|p| (fold(&p.last_name), fold(&p.first_name), p.id.clone()));
    hits.into_iter().map(|p| p.id.clone()).collect()
}

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn search_event_returns_the_first_page_of_matches() {
    let api = api().await;
    let (status, body, response) = call(
        &api,
        include_str!("../../../events/query-people-search.json"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let all = people();
    let expected = sorted_ids(
        all.iter()
            .filter(|p| {
                let name = fold(&format!("{} {}", p.first_name, p.last_name));
                split_words(&name).any(|w| w.starts_with("jo"))
            })
            .collect(),
    );
    assert!(
        expected.len() > 5,
        "the fixture should match several people"
    );
    assert_eq!(body["total"], expected.len());
    assert_eq!(body["page"], 1);
    assert_eq!(body["page_size"], 5);
    assert_eq!(ids(&body), expected[..5]);
    assert!(body["next_cursor"].is_string());
}

#[tokio::test]
async fn filter_event_combines_nationality_and_all_hobbies() {
    let api = api().await;
    let (status, body, _) = call(
        &api,
        include_str!("../../../events/query-people-filters.json"),
    )
    .await;
    assert_eq!(status, 200);
    let all = people();
    let expected = sorted_ids(
        all.iter()
            .filter(|p| p.nationality == "German" || p.nationality == "Austrian")
            .filter(|p| {
                p.hobbies.iter().any(|h| h == "Reading") && p.hobbies.iter().any(|h| h == "Hiking")
            })
            .collect(),
    );
    assert!(expected.len() > 6, "the fixture should match two pages");
    assert_eq!(body["total"], expected.len());
    assert_eq!(body["page"], 2);
    let want: Vec<String> = expected.iter().skip(3).take(3).cloned().collect();
    assert_eq!(ids(&body), want);
}

#[tokio::test]
async fn bad_page_is_a_400_naming_the_parameter() {
    let api = api().await;
    let (status, body, _) = call(
        &api,
        include_str!("../../../events/query-people-bad-page.json"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_parameter");
    assert_eq!(body["error"]["parameter"], "page");
}

#[tokio::test]
async fn person_by_id_and_missing_person() {
    let api = api().await;
    let (status, body, _) = call(&api, include_str!("../../../events/query-person.json")).await;
    assert_eq!(status, 200);
    let first = &people()[0];
    assert_eq!(body, serde_json::to_value(first).unwrap());
    let (status, body, _) = call(
        &api,
        include_str!("../../../events/query-person-missing.json"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn filter_options_event() {
    let api = api().await;
    let (status, body, _) = call(&api, include_str!("../../../events/query-filters.json")).await;
    assert_eq!(status, 200);
    let nats = body["nationalities"].as_array().unwrap();
    assert_eq!(nats.len(), 5);
    let all = people();
    for n in nats {
        let value = n["value"].as_str().unwrap();
        let count = all.iter().filter(|p| p.nationality == value).count();
        assert_eq!(n["count"], count, "{value}");
    }
    assert_eq!(body["hobbies"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn wrong_method_is_a_405_with_allow() {
    let api = api().await;
    let (status, body, response) = call(
        &api,
        include_str!("../../../events/query-wrong-method.json"),
    )
    .await;
    assert_eq!(status, 405);
    assert_eq!(response.headers()["allow"], "GET");
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

/// GIVEN requests of two users WHEN each reads the other's THEN 404, the
/// same answer as for an id that does not exist; each reads its own.
#[tokio::test]
async fn a_request_is_readable_by_its_owner_only() {
    use people_app::jobs::{JobKind, RequestRecord};
    let api = api().await;
    let mine = RequestRecord::queued(
        "11111111-aaaa-4000-8000-000000000001".into(),
        JobKind::Import,
        chrono::Utc::now(),
    )
    .owned(Some("alice"), None);
    api.requests.create(&mine, None).await.unwrap();
    let get = |sub: Option<&str>| {
        let mut event: Value =
            serde_json::from_str(include_str!("../../../events/query-person.json")).unwrap();
        let path = format!("/requests/{}", mine.id);
        event["rawPath"] = path.clone().into();
        event["requestContext"]["http"]["path"] = path.into();
        event["routeKey"] = "GET /requests/{id}".into();
        event["requestContext"]["routeKey"] = "GET /requests/{id}".into();
        event["pathParameters"] = serde_json::json!({"id": mine.id});
        if let Some(sub) = sub {
            event["requestContext"]["authorizer"] = serde_json::json!({"jwt": {
                "claims": {"sub": sub, "scope": "people:read"}, "scopes": ["people:read"]}});
        }
        event.to_string()
    };
    let (status, body, _) = call(&api, &get(Some("alice"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], mine.id.as_str());
    assert!(
        body.get("owner").is_none(),
        "the owner is not shown: {body}"
    );
    let (status, body, _) = call(&api, &get(Some("mallory"))).await;
    assert_eq!(status, 404, "{body}");
    let (status, _, _) = call(&api, &get(None)).await;
    assert_eq!(status, 404);
}

/// The search fixture as API Gateway sends it on a named stage: `rawPath`
/// starts with the stage, and the route answers as on `$default`.
fn on_stage(json: &str, stage: &str) -> String {
    let mut event: Value = serde_json::from_str(json).unwrap();
    let path = format!("/{stage}{}", event["rawPath"].as_str().unwrap());
    event["rawPath"] = path.clone().into();
    event["requestContext"]["http"]["path"] = path.into();
    event["requestContext"]["stage"] = stage.into();
    event.to_string()
}

#[tokio::test]
async fn a_named_stage_answers_as_the_default_one() {
    let api = api().await;
    let fixture = include_str!("../../../events/query-people-search.json");
    let (_, on_default, _) = call(&api, fixture).await;
    let (status, on_prod, _) = call(&api, &on_stage(fixture, "prod")).await;
    assert_eq!(status, 200, "{on_prod}");
    assert_eq!(on_prod, on_default);
    let (status, body, _) = call(
        &api,
        &on_stage(include_str!("../../../events/query-person.json"), "prod"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
