//! The commands: configuration and clients built once, the work handed to
//! `tables` and `import`, and what they did printed.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use aws_sdk_dynamodb::Client;
use people_app::config::PeopleConfig;
use people_aws::dynamodb::DynamoPeopleStore;
use people_aws::sdk::Aws;

use people_aws::sqs::create_queues_with;
use people_aws::template::Template;

use crate::bucket;
use crate::import::{self, Options};
use crate::progress::{Counters, Screen};
use crate::queues;
use crate::tables::{self, Created};

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Complete,
    /// Some lines were rejected or some people not written.
    Partial,
}

async fn setup() -> anyhow::Result<(PeopleConfig, Client)> {
    let config = PeopleConfig::from_env()?;
    Ok((config, Aws::from_env().dynamodb().await))
}

pub(crate) async fn create_tables() -> anyhow::Result<Outcome> {
    let (config, client) = setup().await?;
    for (table, name, created) in tables::create_tables(&client, &config).await? {
        let what = match created {
            Created::Created => "created",
            Created::Existed => "exists already, left as it is",
        };
        println!("{} table {name:?}: {what}", table.role);
    }
    Ok(Outcome::Complete)
}

/// The jobs queue and its dead-letter queue, as template.yaml's event
/// source mapping's queue is declared.
pub(crate) async fn create_queues(
    name: &str,
    visibility_timeout: Option<u64>,
) -> anyhow::Result<Outcome> {
    let settings = queues::settings_from_template(&Template::built_in(), visibility_timeout)?;
    let client = Aws::from_env().sqs().await;
    let (url, dlq_url) = create_queues_with(&client, name, &settings)
        .await
        .with_context(|| format!("creating the queues {name:?} and {name:?}-dlq"))?;
    println!(
        "queue {name:?}: {url} (visibility timeout {} s, to the dead-letter queue after {} receives)",
        settings.visibility_timeout.as_secs(),
        settings.max_receive_count
    );
    println!(
        "dead-letter queue {:?}: {dlq_url} (retention {} s)",
        format!("{name}-dlq"),
        settings.dlq_retention.as_secs()
    );
    println!("QUEUE_URL={url}");
    Ok(Outcome::Complete)
}

/// The index-image bucket, as template.yaml declares `IndexBucket`.
pub(crate) async fn create_bucket(name: &str) -> anyhow::Result<Outcome> {
    let spec = Template::built_in().bucket("IndexBucket")?;
    let client = Aws::from_env().s3().await;
    let made = bucket::create_bucket(&client, name, &spec).await?;
    let what = match made {
        bucket::Made::Created => "created",
        bucket::Made::Existed => "exists already; its settings set again",
    };
    let rules: Vec<String> = spec
        .lifecycle
        .iter()
        .map(|r| {
            format!(
                "{} ({}*: expire after {} days)",
                r.id,
                r.prefix,
                r.expiration_days.map_or("no".into(), |d| d.to_string())
            )
        })
        .collect();
    println!("bucket {name:?}: {what}; lifecycle {}", rules.join(", "));
    println!("INDEX_BUCKET={name}");
    Ok(Outcome::Complete)
}

pub(crate) async fn import(
    file: &Path,
    options: Options,
    screen: &Screen,
) -> anyhow::Result<Outcome> {
    let (config, client) = setup().await?;
    let table = config.people_table.clone();
    let size = std::fs::metadata(file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    // A missing table would otherwise show up as the first batch's error.
    if !tables::table_exists(&client, &table).await? {
        bail!(
            "the people table {table:?} (PEOPLE_TABLE) does not exist; create it with `admin create-tables`"
        );
    }
    let store = DynamoPeopleStore::new(client, table.as_str()).with_feed_shards(config.feed_shards);
    let counters = Arc::new(Counters::new(size));
    let display = screen.show(counters.clone());
    let result = import::import(Arc::new(store), file, &options, counters.clone()).await;
    display.finish().await;

    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!(
                "written before the import stopped: {} people",
                Counters::get(&counters.written)
            );
            return Err(e.into());
        }
    };
    let secs = counters.elapsed().as_secs_f64();
    let written = Counters::get(&counters.written) + Counters::get(&counters.unchanged);
    let rejected = Counters::get(&counters.rejected);
    let failed = Counters::get(&counters.failed);
    println!("imported {} into table {table:?}", file.display());
    println!("  lines:     {}", Counters::get(&counters.lines));
    println!("  written:   {written}");
    println!("  rejected:  {rejected}");
    println!("  failed:    {failed}");
    println!("  seconds:   {secs:.1}");
    println!("  people/s:  {:.0}", counters.people_per_sec());
    if rejected > 0 {
        let all = match &options.rejects {
            Some(path) => format!("; all in {}", path.display()),
            None => "; --rejects FILE writes them all".to_owned(),
        };
        eprintln!(
            "rejected lines (the first {} of {rejected}{all}):",
            summary.first_rejects.len()
        );
        for r in &summary.first_rejects {
            eprintln!("  line {}: {}", r.line, r.reason);
        }
    }
    if failed > 0 {
        eprintln!(
            "ids not written (the first {} of {failed}; importing the file again retries them):",
            summary.first_failed.len()
        );
        for id in &summary.first_failed {
            eprintln!("  {id}");
        }
    }
    Ok(if rejected == 0 && failed == 0 {
        Outcome::Complete
    } else {
        Outcome::Partial
    })
}
