//! The `admin` binary end to end, against a moto server (the DynamoDB wire
//! protocol): the binary finds it through `AWS_ENDPOINT_URL`, as it would
//! find any endpoint, and each test uses a table of its own.

use people_testkit::moto;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use people_app::ports::PeopleStore;
use people_aws::dynamodb::DynamoPeopleStore;
use people_core::domain::Person;

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

/// Each table `create-tables` makes has the keys, attributes, indexes and
/// TTL that template.yaml gives the table of the same role.
#[tokio::test(flavor = "multi_thread")]
async fn create_tables_makes_the_tables_the_template_declares() {
    let table = unique("as-template");
    let created = tokio::task::block_in_place(|| admin(&table, &["create-tables"], &[]));
    assert_eq!(created.status.code(), Some(0), "{}", text(&created.stderr));
    let template = people_aws::template::Template::built_in();
    let client = tokio::task::block_in_place(moto::client);
    for (name, logical_id) in [
        (table.clone(), "PeopleTable"),
        (requests_table(&table), "RequestsTable"),
        (connections_table(&table), "ConnectionsTable"),
    ] {
        let want = template.table(logical_id).unwrap();
        let got = client
            .describe_table()
            .table_name(&name)
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        let key = |k: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> Vec<(String, String)> {
            k.iter()
                .map(|e| {
                    (
                        e.attribute_name().to_owned(),
                        e.key_type().as_str().to_owned(),
                    )
                })
                .collect()
        };
        assert_eq!(key(got.key_schema()), want.key, "{logical_id}");
        let mut attributes: Vec<(String, String)> = got
            .attribute_definitions()
            .iter()
            .map(|a| {
                (
                    a.attribute_name().to_owned(),
                    a.attribute_type().as_str().to_owned(),
                )
            })
            .collect();
        attributes.sort();
        assert_eq!(attributes, want.attributes, "{logical_id}");
        let indexes: Vec<(String, Vec<(String, String)>)> = got
            .global_secondary_indexes()
            .iter()
            .map(|i| {
                (
                    i.index_name().unwrap_or_default().to_owned(),
                    key(i.key_schema()),
                )
            })
            .collect();
        assert_eq!(indexes, want.indexes, "{logical_id}");
        let projections: Vec<(String, String, Vec<String>)> = got
            .global_secondary_indexes()
            .iter()
            .map(|i| {
                let p = i.projection();
                (
                    i.index_name().unwrap_or_default().to_owned(),
                    p.and_then(|p| p.projection_type())
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                    p.map(|p| p.non_key_attributes().to_vec())
                        .unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(projections, want.projections, "{logical_id}");
        let ttl = client
            .describe_time_to_live()
            .table_name(&name)
            .send()
            .await
            .unwrap()
            .time_to_live_description
            .and_then(|t| t.attribute_name().map(str::to_owned));
        assert_eq!(ttl, want.ttl_attribute, "{logical_id}");
    }
}

/// `create-queues` makes the jobs queue with the template's visibility
/// timeout and redrive policy, and its dead-letter queue; again, it is
/// harmless; an override changes only the visibility timeout.
#[tokio::test(flavor = "multi_thread")]
async fn create_queues_makes_the_templates_queues() {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let name = unique("q");
    let run = |extra: &[&str]| {
        let mut args = vec!["create-queues", "--name", name.as_str()];
        args.extend_from_slice(extra);
        tokio::task::block_in_place(|| admin("unused", &args, &[]))
    };
    let first = run(&[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let stdout = text(&first.stdout);
    let url = stdout
        .lines()
        .find_map(|l| l.strip_prefix("QUEUE_URL="))
        .unwrap_or_else(|| panic!("no QUEUE_URL= line in {stdout}"))
        .to_owned();
    let sqs = tokio::task::block_in_place(moto::sqs_client);
    let attributes = |url: String| {
        let sqs = sqs.clone();
        async move {
            sqs.get_queue_attributes()
                .queue_url(url)
                .attribute_names(A::All)
                .send()
                .await
                .unwrap()
                .attributes
                .unwrap()
        }
    };
    let got = attributes(url.clone()).await;
    assert_eq!(got[&A::VisibilityTimeout], "360");
    let redrive: serde_json::Value = serde_json::from_str(&got[&A::RedrivePolicy]).unwrap();
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "3"
    );
    let dlq_arn = redrive["deadLetterTargetArn"].as_str().unwrap().to_owned();
    assert!(dlq_arn.ends_with(&format!(":{name}-dlq")), "{dlq_arn}");
    let dlq_url = sqs
        .get_queue_url()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    assert_eq!(
        attributes(dlq_url).await[&A::MessageRetentionPeriod],
        "1209600"
    );

    let again = run(&["--visibility-timeout", "2"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains(&format!("QUEUE_URL={url}\n")));
    let got = attributes(url).await;
    assert_eq!(got[&A::VisibilityTimeout], "2");
    assert!(got.contains_key(&A::RedrivePolicy));
}

/// `create-bucket` makes the index-image bucket as template.yaml declares
/// IndexBucket: its lifecycle rule, default encryption and public-access
/// block; again, it is harmless and says so.
#[tokio::test(flavor = "multi_thread")]
async fn create_bucket_makes_the_templates_bucket() {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    // Bucket names: lower case, at most 63 characters.
    let name = format!(
        "admin-bucket-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    let run = || {
        tokio::task::block_in_place(|| admin("unused", &["create-bucket", "--name", &name], &[]))
    };
    let first = run();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let stdout = text(&first.stdout);
    assert!(
        stdout.contains(&format!("INDEX_BUCKET={name}\n")),
        "{stdout}"
    );
    assert!(stdout.contains("created"), "{stdout}");

    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(tokio::task::block_in_place(moto::endpoint))
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
            .force_path_style(true)
            .build(),
    );
    let want = people_aws::template::Template::built_in()
        .bucket("IndexBucket")
        .unwrap();
    let rules = s3
        .get_bucket_lifecycle_configuration()
        .bucket(&name)
        .send()
        .await
        .unwrap()
        .rules
        .unwrap_or_default();
    assert_eq!(rules.len(), want.lifecycle.len());
    for (got, want) in rules.iter().zip(&want.lifecycle) {
        assert_eq!(got.id.as_deref(), Some(want.id.as_str()));
        assert_eq!(got.status.as_str(), "Enabled");
        let prefix = got.filter.as_ref().and_then(|f| f.prefix.as_deref());
        assert_eq!(prefix, Some(want.prefix.as_str()));
        let days = got.expiration.as_ref().and_then(|e| e.days);
        assert_eq!(days, want.expiration_days.map(|d| d as i32));
        let abort = got
            .abort_incomplete_multipart_upload
            .as_ref()
            .and_then(|a| a.days_after_initiation);
        assert_eq!(abort, want.abort_incomplete_upload_days.map(|d| d as i32));
    }
    let encryption = s3
        .get_bucket_encryption()
        .bucket(&name)
        .send()
        .await
        .unwrap();
    let algorithm = encryption
        .server_side_encryption_configuration
        .and_then(|c| c.rules.into_iter().next())
        .and_then(|r| r.apply_server_side_encryption_by_default)
        .map(|d| d.sse_algorithm.as_str().to_owned());
    assert_eq!(algorithm, want.encryption);
    let block = s3
        .get_public_access_block()
        .bucket(&name)
        .send()
        .await
        .unwrap()
        .public_access_block_configuration
        .unwrap();
    assert_eq!(
        (
            block.block_public_acls,
            block.block_public_policy,
            block.ignore_public_acls,
            block.restrict_public_buckets
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );

    let again = run();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("exists already"));
}
