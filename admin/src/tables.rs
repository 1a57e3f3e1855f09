//! The application's DynamoDB tables: which there are and how each is
//! created. `TABLES` is the one place to add a table (requests,
//! connections, ...).

use anyhow::Context;
use aws_sdk_dynamodb::Client;
use futures::future::BoxFuture;
use shared::adapters::dynamodb::create_people_table;
use shared::config::PeopleConfig;
use shared::ports::StoreError;

/// One table of the application.
pub(crate) struct Table {
    /// What it holds, for messages.
    pub role: &'static str,
    /// Its name, taken from the configuration.
    pub name: fn(&PeopleConfig) -> &str,
    /// Creates it with its indexes and waits until it can be used; a table
    /// that exists already is checked, not an error.
    pub create: for<'a> fn(&'a Client, &'a str) -> BoxFuture<'a, Result<(), StoreError>>,
}

/// Every table, in the order they are created.
pub(crate) const TABLES: &[Table] = &[Table {
    role: "people",
    name: |config| &config.people_table,
    create: |client, name| Box::pin(create_people_table(client, name)),
}];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Created {
    Created,
    /// It was there already (and has what it needs).
    Existed,
}

/// Creates every table that does not exist yet; running it again is
/// harmless. Returns what it did per table, in `TABLES` order.
pub(crate) async fn create_tables(
    client: &Client,
    config: &PeopleConfig,
) -> anyhow::Result<Vec<(&'static Table, String, Created)>> {
    let mut done = Vec::new();
    for table in TABLES {
        let name = (table.name)(config);
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
