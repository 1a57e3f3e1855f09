//! The enqueue Lambda, the write path of the HTTP API: `POST /requests`,
//! and `PUT` / `DELETE /people/{id}` (the query function stays read-only).

use std::sync::Arc;

use people_app::jobs::Enqueuer;
use people_http::PeopleWriter;
use people_http::lambda::HttpService;

/// What the function's routes need.
pub struct Writes {
    pub enqueue: Enqueuer,
    pub people: PeopleWriter,
}

/// The function's routes of the route table, as lambda_http serves them.
pub fn service(deps: Writes) -> HttpService {
    people_http::lambda::service(people_http::router::enqueue(
        Arc::new(deps.enqueue),
        Arc::new(deps.people),
    ))
}
