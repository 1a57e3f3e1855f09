//! The `admin` binary end to end, against a moto server (the DynamoDB wire
//! protocol): the binary finds it through `AWS_ENDPOINT_URL`, as it would
//! find any endpoint, and each test uses a table of its own.

#[path = "../../shared/tests/support/moto.rs"]
mod moto;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use shared::adapters::dynamodb::DynamoPeopleStore;
use shared::domain::Person;
use shared::ports::PeopleStore;

/// A table name no other test (or earlier run) uses.
fn unique(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "admin-{name}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The requests table of a test whose people table is `table`.
fn requests_table(table: &str) -> String {
    format!("{table}-requests")
}

/// The connections table of a test whose people table is `table`.
fn connections_table(table: &str) -> String {
    format!("{table}-connections")
}

/// Runs the binary against the moto server with `table` as PEOPLE_TABLE
/// (and `requests_table(table)`, `connections_table(table)` as
/// REQUESTS_TABLE, CONNECTIONS_TABLE).
fn admin(table: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let endpoint = moto::endpoint();
    let mut command = Command::new(env!("CARGO_BIN_EXE_admin"));
    command
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PEOPLE_TABLE", table)
        .env("REQUESTS_TABLE", requests_table(table))
        .env("CONNECTIONS_TABLE", connections_table(table))
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("PEOPLE_FEED_SHARDS")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("the admin binary runs");
    eprintln!(
        "admin {args:?} -> {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A temporary file, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        Self(std::env::temp_dir().join(unique(name)))
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp dir")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn people(n: usize) -> Vec<Person> {
    let firsts = ["Ann", "Zoë", "José", "Łukasz", "Siobhán"];
    let lasts = ["Lee", "O'Brien", "Müller", "van der Berg", "\"Q\" Smith"];
    let hobbies = ["Chess", "Go", "Archery", "Reading"];
    (0..n)
        .map(|i| Person {
            id: format!("p{i:05}"),
            first_name: firsts[i % firsts.len()].into(),
            last_name: format!("{}{}", lasts[i % lasts.len()], i / 25),
            nationality: ["Irish", "German", "Brazilian"][i % 3].into(),
            hobbies: hobbies[..i % 5].iter().map(|h| h.to_string()).collect(),
        })
        .collect()
}

fn store(table: &str) -> DynamoPeopleStore {
    DynamoPeopleStore::new(tokio::task::block_in_place(moto::client), table)
}

async fn scan_all(store: &DynamoPeopleStore) -> Vec<Person> {
    let mut all = Vec::new();
    let mut start = None;
    loop {
        let page = store.scan(0, 1, start).await.expect("scan");
        all.extend(page.people);
        match page.next {
            Some(next) => start = Some(next),
            None => return all,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn create_tables_twice_creates_once() {
    let table = unique("create");

    let requests = requests_table(&table);
    let connections = connections_table(&table);

    let first = tokio::task::block_in_place(|| admin(&table, &["create-tables"], &[]));
    assert_eq!(first.status.code(), Some(0));
    assert_eq!(
        text(&first.stdout),
        format!(
            "people table {table:?}: created\nrequests table {requests:?}: created\n\
             connections table {connections:?}: created\n"
        )
    );

    let second = tokio::task::block_in_place(|| admin(&table, &["create-tables"], &[]));
    assert_eq!(second.status.code(), Some(0));
    assert_eq!(
        text(&second.stdout),
        format!(
            "people table {table:?}: exists already, left as it is\n\
             requests table {requests:?}: exists already, left as it is\n\
             connections table {connections:?}: exists already, left as it is\n"
        )
    );

    // The tables are usable, and requests expire through TTL on `expires_at`.
    assert_eq!(store(&table).get("nobody").await.unwrap(), None);
    let client = tokio::task::block_in_place(moto::client);
    let ttl = client
        .describe_time_to_live()
        .table_name(&requests)
        .send()
        .await
        .expect("the requests table exists")
        .time_to_live_description
        .expect("a TTL description");
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(
        ttl.time_to_live_status(),
        Some(&aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn import_writes_the_valid_lines_and_reports_the_bad_ones() {
    // GIVEN a table and a file of 1,200 people with two bad lines: line 7
    // is not JSON, line 900 has an empty first name
    let table = unique("import");
    let created = tokio::task::block_in_place(|| admin(&table, &["create-tables"], &[]));
    assert_eq!(created.status.code(), Some(0));
    let expected = people(1200);
    let mut lines: Vec<String> = expected
        .iter()
        .map(|p| serde_json::to_string(p).unwrap())
        .collect();
    lines.insert(6, "{\"id\": \"broken\", this is not JSON".to_owned());
    lines.insert(
        899,
        r#"{"id":"empty","first_name":"","last_name":"Lee","nationality":"Irish","hobbies":[]}"#
            .to_owned(),
    );
    let file = TempFile::new("people.jsonl");
    std::fs::write(&file.0, lines.join("\n") + "\n").unwrap();
    let rejects = TempFile::new("rejects.jsonl");

    // WHEN it is imported (small batches, so that several are in flight)
    let out = tokio::task::block_in_place(|| {
        admin(
            &table,
            &[
                "import",
                file.path(),
                "--batch-size",
                "100",
                "--concurrency",
                "4",
                "--rejects",
                rejects.path(),
            ],
            &[],
        )
    });

    // THEN it exits 2 and names both bad lines with their reasons
    assert_eq!(out.status.code(), Some(2));
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(stdout.contains("written:   1200"), "{stdout}");
    assert!(stdout.contains("rejected:  2"), "{stdout}");
    assert!(stdout.contains("failed:    0"), "{stdout}");
    assert!(stdout.contains("people/s"), "{stdout}");
    assert!(stderr.contains("line 7: "), "{stderr}");
    assert!(
        stderr.contains("line 900: first_name: must not be empty"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // AND the rejects file has both, as JSON lines
    let rejected: Vec<serde_json::Value> = std::fs::read_to_string(&rejects.0)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(rejected[0]["line"], 7);
    assert!(rejected[0]["reason"].as_str().unwrap().contains("column"));
    assert_eq!(rejected[1]["line"], 900);
    assert_eq!(rejected[1]["reason"], "first_name: must not be empty");

    // AND every valid person reads back as written
    let store = store(&table);
    for i in [0, 1, 6, 7, 599, 898, 899, 1199] {
        let want = &expected[i];
        assert_eq!(store.get(&want.id).await.unwrap().as_ref(), Some(want));
    }
    assert_eq!(store.get("empty").await.unwrap(), None);
    let mut stored = scan_all(&store).await;
    stored.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(stored.len(), expected.len());
    assert!(
        stored == expected,
        "the scanned people differ from the file"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn import_into_a_missing_table_fails_with_a_clear_message() {
    let table = unique("missing");
    let file = TempFile::new("people.jsonl");
    let lines: Vec<String> = people(10)
        .iter()
        .map(|p| serde_json::to_string(p).unwrap())
        .collect();
    std::fs::write(&file.0, lines.join("\n")).unwrap();

    let out = tokio::task::block_in_place(|| admin(&table, &["import", file.path()], &[]));

    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&table), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(stderr.contains("admin create-tables"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configuration_error_names_the_variable_and_exits_1() {
    let table = unique("config");
    let out = tokio::task::block_in_place(|| {
        admin(&table, &["create-tables"], &[("PEOPLE_FEED_SHARDS", "0")])
    });
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("PEOPLE_FEED_SHARDS: 0 is not from 1 to 1000"),
        "{stderr}"
    );

    // A usage error is a 1 too: 2 means "partly imported".
    let out = tokio::task::block_in_place(|| {
        admin(&table, &["import", "x.jsonl", "--batch-size", "0"], &[])
    });
    assert_eq!(out.status.code(), Some(1));

    let help = tokio::task::block_in_place(|| admin(&table, &["import", "--help"], &[]));
    assert_eq!(help.status.code(), Some(0));
    let help = text(&help.stdout);
    assert!(
        help.contains("Exit codes") && help.contains("2  the import finished"),
        "{help}"
    );
}
