//! The HTTP API's route table, written once. The router is built from it
//! (each Lambda function gets the router of its own rows, the local server
//! all of them), metric labels are read from it, and a test holds it to
//! template.yaml's HttpApi events and to Cargo.toml's `cargo lambda watch`
//! router (`the_route_table_is_the_templates_and_the_watch_routers` in
//! `local/tests/local/fixtures.rs`).

use http::Method;

/// The Lambda function that serves a route on AWS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    /// The read path: searches, people, filter options, requests, the page.
    QueryApi,
    /// The write path: job submissions and direct writes of one person.
    Enqueue,
}

impl Function {
    /// The function's binary (its crate under `functions/`), as
    /// template.yaml's `BuildProperties: Binary` and the watch router name it.
    pub const fn binary(self) -> &'static str {
        match self {
            Function::QueryApi => "query-api",
            Function::Enqueue => "enqueue",
        }
    }
}

/// What a route does: the router binds each to its handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Page,
    Asset,
    OpenApi,
    SearchPeople,
    GetPerson,
    PutPerson,
    DeletePerson,
    Filters,
    Submit,
    GetRequest,
}

/// One route of the HTTP API.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// As API Gateway and axum 0.8 both write it: `/people/{id}`.
    pub path: &'static str,
    pub function: Function,
    /// The `route` label of the request metrics (never the path itself:
    /// ids would make every request its own series).
    pub label: &'static str,
    pub(crate) op: Op,
}

impl Route {
    /// `GET /people/{id}`: API Gateway's route key.
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

const fn route(
    method: Method,
    path: &'static str,
    function: Function,
    label: &'static str,
    op: Op,
) -> Route {
    Route {
        method,
        path,
        function,
        label,
        op,
    }
}

/// Every route of the HTTP API.
pub const ROUTES: &[Route] = {
    use Function::{Enqueue, QueryApi};
    &[
        // The page and the API's description are public: they hold no data.
        route(Method::GET, "/", QueryApi, "page", Op::Page),
        route(Method::GET, "/web/{file}", QueryApi, "asset", Op::Asset),
        route(
            Method::GET,
            "/openapi.json",
            QueryApi,
            "openapi",
            Op::OpenApi,
        ),
        route(Method::GET, "/people", QueryApi, "people", Op::SearchPeople),
        route(
            Method::GET,
            "/people/{id}",
            QueryApi,
            "person",
            Op::GetPerson,
        ),
        route(
            Method::PUT,
            "/people/{id}",
            Enqueue,
            "person_write",
            Op::PutPerson,
        ),
        route(
            Method::DELETE,
            "/people/{id}",
            Enqueue,
            "person_write",
            Op::DeletePerson,
        ),
        route(Method::GET, "/filters", QueryApi, "filters", Op::Filters),
        route(Method::POST, "/requests", Enqueue, "submit", Op::Submit),
        route(
            Method::GET,
            "/requests/{id}",
            QueryApi,
            "request",
            Op::GetRequest,
        ),
    ]
};

/// The metric label of a request the router matched to `path` (axum's
/// `MatchedPath`): its route's, or for a method the path does not serve
/// the path's first route's; `unknown` for a path of no route.
pub(crate) fn label(method: &Method, path: Option<&str>) -> &'static str {
    let Some(path) = path else {
        return "unknown";
    };
    let mut on_path = ROUTES.iter().filter(|r| r.path == path);
    let first = on_path.clone().next();
    on_path
        .find(|r| r.method == method)
        .or(first)
        .map_or("unknown", |r| r.label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_the_table() {
        assert_eq!(label(&Method::GET, Some("/people/{id}")), "person");
        assert_eq!(label(&Method::PUT, Some("/people/{id}")), "person_write");
        // A method the path does not serve: the path's label.
        assert_eq!(label(&Method::POST, Some("/people")), "people");
        assert_eq!(label(&Method::GET, Some("/requests")), "submit");
        assert_eq!(label(&Method::GET, None), "unknown");
    }

    #[test]
    fn each_route_is_in_the_table_once() {
        let mut keys: Vec<String> = ROUTES.iter().map(Route::route_key).collect();
        keys.sort();
        let before = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), before);
    }
}
