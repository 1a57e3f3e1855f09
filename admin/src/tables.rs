//! The application's DynamoDB tables: which there are and how each is
//! created. `TABLES` is the one place to add a table (connections, ...).
//!
//! A table is created as template.yaml declares the resource of its role
//! (`TableSpec`: attributes, key, indexes with their projections, billing
//! mode, TTL), not from a second copy of those here; then the adapter that
//! uses it checks that it has what the code reads (its key, its indexes),
//! so that a template and code that disagree fail here, not at the first
//! query.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
    TimeToLiveStatus,
};
use futures::future::BoxFuture;
use people_app::config::{JobsConfig, PeopleConfig};
use people_app::ports::StoreError;
use people_aws::dynamodb::create_people_table;
use people_aws::dynamodb_connections::create_connections_table;
use people_aws::dynamodb_requests::create_requests_table;
use people_aws::template::{TableSpec, Template};

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
    /// Its resource in template.yaml, which says how it is made.
    pub logical_id: &'static str,
    /// Its name, taken from the configuration.
    pub name: for<'a> fn(&Names<'a>) -> &'a str,
    /// The adapter's own set-up of the table: on a table that exists, it
    /// checks the key and indexes the code uses and waits until they are
    /// active (and turns TTL on if it is off).
    pub check: for<'a> fn(&'a Client, &'a str) -> BoxFuture<'a, Result<(), StoreError>>,
}

/// Every table, in the order they are created.
pub(crate) const TABLES: &[Table] = &[
    Table {
        role: "people",
        logical_id: "PeopleTable",
        name: |names| &names.people.people_table,
        check: |client, name| Box::pin(create_people_table(client, name)),
    },
    Table {
        role: "requests",
        logical_id: "RequestsTable",
        name: |names| &names.jobs.requests_table,
        check: |client, name| Box::pin(create_requests_table(client, name)),
    },
    Table {
        role: "connections",
        logical_id: "ConnectionsTable",
        name: |names| &names.jobs.connections_table,
        check: |client, name| Box::pin(create_connections_table(client, name)),
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
    let template = Template::built_in();
    let mut done = Vec::new();
    for table in TABLES {
        let name = (table.name)(&names);
        let existed = table_exists(client, name).await?;
        if !existed {
            let spec = template.table(table.logical_id)?;
            create_as_declared(client, name, &spec)
                .await
                .with_context(|| {
                    format!(
                        "creating the {} table {name:?} as template.yaml's {}",
                        table.role, table.logical_id
                    )
                })?;
        }
        (table.check)(client, name)
            .await
            .with_context(|| format!("checking the {} table {name:?}", table.role))?;
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

/// How long a new table may take to become active.
const ACTIVE_WITHIN: Duration = Duration::from_secs(120);

/// Creates `name` as `spec` declares it, waits until it and its indexes
/// are active, and turns on its TTL.
async fn create_as_declared(client: &Client, name: &str, spec: &TableSpec) -> anyhow::Result<()> {
    if spec.billing_mode != "PAY_PER_REQUEST" {
        bail!(
            "{} has BillingMode {}: only PAY_PER_REQUEST tables can be created here",
            spec.logical_id,
            spec.billing_mode
        );
    }
    let mut create = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for (attribute, kind) in &spec.attributes {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()?,
        );
    }
    let key = |key: &[(String, String)]| -> anyhow::Result<Vec<KeySchemaElement>> {
        key.iter()
            .map(|(attribute, kind)| {
                Ok(KeySchemaElement::builder()
                    .attribute_name(attribute)
                    .key_type(KeyType::from(kind.as_str()))
                    .build()?)
            })
            .collect()
    };
    create = create.set_key_schema(Some(key(&spec.key)?));
    for (index, index_key) in &spec.indexes {
        let (_, kind, non_key) = spec
            .projections
            .iter()
            .find(|(i, _, _)| i == index)
            .with_context(|| format!("index {index} of {} has no Projection", spec.logical_id))?;
        let projection = Projection::builder()
            .projection_type(ProjectionType::from(kind.as_str()))
            .set_non_key_attributes((!non_key.is_empty()).then(|| non_key.clone()))
            .build();
        create = create.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index)
                .set_key_schema(Some(key(index_key)?))
                .projection(projection)
                .build()?,
        );
    }
    create
        .send()
        .await
        .with_context(|| format!("CreateTable {name:?}"))?;
    let deadline = Instant::now() + ACTIVE_WITHIN;
    loop {
        let table = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .with_context(|| format!("DescribeTable {name:?}"))?
            .table;
        let active = table.as_ref().is_some_and(|t| {
            t.table_status() == Some(&TableStatus::Active)
                && t.global_secondary_indexes()
                    .iter()
                    .all(|i| i.index_status() == Some(&IndexStatus::Active))
        });
        if active {
            break;
        }
        if Instant::now() >= deadline {
            bail!("table {name:?} not active after {ACTIVE_WITHIN:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if let Some(attribute) = &spec.ttl_attribute {
        let status = client
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .with_context(|| format!("DescribeTimeToLive {name:?}"))?
            .time_to_live_description
            .and_then(|d| d.time_to_live_status);
        if !matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) {
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(attribute)
                        .enabled(true)
                        .build()?,
                )
                .send()
                .await
                .with_context(|| format!("UpdateTimeToLive {name:?}"))?;
        }
    }
    Ok(())
}
