//! `admin`: sets up the people directory's DynamoDB tables, SQS queues and
//! S3 bucket as template.yaml declares them, and imports people.
//!
//! `cargo run --release --bin admin -- create-tables`
//! `cargo run --release --bin admin -- create-queues`
//! `cargo run --release --bin admin -- create-bucket`
//! `cargo run --release --bin admin -- import people.jsonl`

mod bucket;
mod commands;
mod import;
mod progress;
mod queues;
mod tables;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0  done (import: every line of the file was written)
  1  a fatal error: bad configuration or arguments, unreadable file, missing table,
     a write the store refused for good (the message says which)
  2  the import finished, but some lines were rejected or some people could not be written

Environment: PEOPLE_TABLE (default people), REQUESTS_TABLE (default requests),
CONNECTIONS_TABLE (default connections), PEOPLE_FEED_SHARDS (default 4, the same for every
writer and reader of a table), AWS_REGION, AWS credentials, AWS_ENDPOINT_URL (e.g. an
emulator), RUST_LOG (default warn).";

#[derive(Parser)]
#[command(
    name = "admin",
    about = "The people directory's tables, queues and index bucket, and imports into the people table",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates the tables that do not exist yet, as template.yaml declares
    /// them (people: PEOPLE_TABLE; requests: REQUESTS_TABLE; connections:
    /// CONNECTIONS_TABLE), and waits until they can be used; running it
    /// again is harmless.
    CreateTables,
    /// Creates the jobs queue and its dead-letter queue as template.yaml
    /// declares them (JobsQueue's visibility timeout and redrive policy,
    /// the dead-letter queue's retention), or sets those attributes on
    /// queues that exist; prints their URLs. For emulators and stacks
    /// without the template's queues.
    CreateQueues {
        /// The queue's name; the dead-letter queue is NAME-dlq.
        #[arg(long, default_value = "jobs")]
        name: String,
        /// Overrides the template's visibility timeout (seconds): local
        /// runs that want a failed message back in seconds, not minutes.
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=43_200))]
        visibility_timeout: Option<u32>,
    },
    /// Creates the index-image bucket as template.yaml declares IndexBucket
    /// (default encryption, public-access block, the lifecycle rule that
    /// expires old images), or sets those on a bucket that exists; prints
    /// INDEX_BUCKET=NAME. For emulators and stacks without the template's
    /// bucket.
    CreateBucket {
        /// The bucket's name.
        #[arg(long, default_value = "index")]
        name: String,
    },
    /// Imports people from a JSON-lines file, one person a line (as
    /// gen_people.py writes). Every line is checked as the local server
    /// checks it; bad lines are reported by number and skipped, the others
    /// written. A later line with a known id replaces the earlier one.
    #[command(after_help = EXIT_CODES)]
    Import {
        /// The people file; read as a stream, so its size does not matter.
        file: PathBuf,
        /// People per batch handed to the store.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        batch_size: u32,
        /// Batches written at once.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
        concurrency: u32,
        /// Writes every rejected line to this file as JSON lines:
        /// {"line": N, "reason": "..."}.
        #[arg(long)]
        rejects: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Exit 2 means "partly imported" here, so a usage error is a 1.
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let screen = progress::Screen::default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(screen.clone())
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::CreateTables => commands::create_tables().await,
        Command::CreateQueues {
            name,
            visibility_timeout,
        } => commands::create_queues(&name, visibility_timeout.map(u64::from)).await,
        Command::CreateBucket { name } => commands::create_bucket(&name).await,
        Command::Import {
            file,
            batch_size,
            concurrency,
            rejects,
        } => {
            let options = import::Options {
                batch_size: batch_size as usize,
                concurrency: concurrency as usize,
                retry: import::Retry::default(),
                rejects,
            };
            commands::import(&file, options, &screen).await
        }
    };
    match result {
        Ok(commands::Outcome::Complete) => ExitCode::SUCCESS,
        Ok(commands::Outcome::Partial) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
