//! The application's DynamoDB tables: which there are and how each is
//! created. `TABLES` is the one place to add a table (connections, ...).

use anyhow::Context;
use aws_sdk_dynamodb::Client;
use futures::future::BoxFuture;
use shared::adapters::dynamodb::create_people_table;
use shared::adapters::dynamodb_connections::create_connections_table;
use shared::adapters::dynamodb_requests::create_requests_table;
use shared::config::{JobsConfig, PeopleConfig};
use shared::ports::StoreError;

/// The configuration the tables are named by: the people table's
/// (`PEOPLE_TABLE`) and the jobs' (`REQUESTS_TABLE`, `CONNECTIONS_TABLE`).
pub(crate) struct Names<'a> {
    pub people: &'a PeopleConfig,
    pub jobs: &'a JobsConfig,
}

/// One table of the application.
pub(crate) struct Table {
    /// What it holds, for messages.
    pub role: &'static str,
    /// Its name, taken from the configuration.
    pub name: for<'a> fn(&Names<'a>) -> &'a str,
    /// Creates it with its indexes and waits until it can be used; a table
    /// that exists already is checked, not an error.
    pub create: for<'a> fn(&'a Client, &'a str) -> BoxFuture<'a, Result<(), StoreError>>,
}

/// Every table, in the order they are created.
pub(crate) const TABLES: &[Table] = &[
    Table {
        role: "people",
        name: |names| &names.people.people_table,
        create: |client, name| Box::pin(create_people_table(client, name)),
    },
    Table {
        role: "requests",
        name: |names| &names.jobs.requests_table,
        // Key `id`, on-demand, TTL on `expires_at` (docs/jobs-storage.md).
        create: |client, name| Box::pin(create_requests_table(client, name)),
    },
    Table {
        role: "connections",
        name: |names| &names.jobs.connections_table,
        // Keys `pk` + `sk`, on-demand, TTL on `expires_at` (docs/websocket.md).
        create: |client, name| Box::pin(create_connections_table(client, name)),
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Created {
    Created,
    /// It was there already (and has what it needs).
    Existed,
}

/// Creates every table that does not exist yet; running it again is
/// harmless. Returns what it did per table, in `TABLES` order.
///
/// The requests and connections tables' names come from `REQUESTS_TABLE`
/// and `CONNECTIONS_TABLE` (defaults `requests`, `connections`), read here
/// through `JobsConfig` so that admin and the functions agree on them.
pub(crate) async fn create_tables(
    client: &Client,
    config: &PeopleConfig,
) -> anyhow::Result<Vec<(&'static Table, String, Created)>> {
    let jobs = JobsConfig::from_env()?;
    let names = Names {
        people: config,
        jobs: &jobs,
    };
    let mut done = Vec::new();
    for table in TABLES {
        let name = (table.name)(&names);
        let existed = table_exists(client, name).await?;
        (table.create)(client, name)
            .await
            .with_context(|| format!("creating the {} table {name:?}", table.role))?;
        let created = if existed {
            Created::Existed
        } else {
            Created::Created
        };
        done.push((table, name.to_owned(), created));
    }
    Ok(done)
}

/// Whether `name` exists; an error if DynamoDB cannot tell.
pub(crate) async fn table_exists(client: &Client, name: &str) -> anyhow::Result<bool> {
    match client.describe_table().table_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("DescribeTable {name:?}"))),
    }
}
