//! Index images in S3: written in parts, read by ranges, and a cold start
//! that reads the newest image and then the feed.

use crate::people::dynamo_store;
use people_testkit::moto;
use people_testkit::scenarios::people::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use people_app::ports::PeopleStore;
use people_core::domain::Person;

// --- Index images in S3 (moto) -------------------------------------------

static BUCKETS: AtomicUsize = AtomicUsize::new(0);

/// An S3 client for the moto server (path-style: no bucket host names on
/// 127.0.0.1), configured as `moto::config` is.
fn s3_client() -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let endpoint = tokio::task::block_in_place(moto::endpoint);
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn fresh_bucket(name: &str) -> (aws_sdk_s3::Client, String) {
    let client = s3_client();
    let bucket = format!(
        "images-{}-{}",
        name.replace('_', "-"),
        BUCKETS.fetch_add(1, Ordering::Relaxed)
    );
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    (client, bucket)
}

fn everyone(snapshot: &people_core::search::Snapshot) -> Vec<Person> {
    use people_core::search::PageStart;
    snapshot
        .search(&Default::default(), &PageStart::Offset(0), 100_000)
        .items
}

/// An image larger than one upload part goes up as a multipart upload and
/// comes back through many ranged GETs, equal to what was written; the
/// newest of several is the one with the greatest feed position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_goes_through_s3_in_parts_and_ranges() {
    use people_aws::s3::{MIN_PART, S3ImageStore};
    use people_core::search::{FeedPosition, SearchEngine};
    let (client, bucket) = fresh_bucket("parts").await;
    let images = S3ImageStore::new(client, &bucket).with_parts(64 * 1024, MIN_PART);
    assert_eq!(images.newest().await.unwrap(), None);

    // GIVEN about 7 MB of people (long ids), some deleted, some in the delta
    let mut people = numbered("x", 6_000);
    for p in &mut people {
        p.id = format!("{}-{}", p.id, "i".repeat(1_100));
    }
    let engine = SearchEngine::from_people(&people).with_merge_at(0);
    engine.delete(&[people[7].id.clone()]);
    engine.upsert(&[person("late", "Late", "Comer", &["Go"])]);
    let at = |version| FeedPosition {
        version,
        caught_up_ms: 1_700_000_000_000,
    };
    let (small, _) = images
        .save(SearchEngine::from_people(&people[..3]).snapshot(), at(5))
        .await
        .unwrap();
    // WHEN the big one is written with a later position
    let (stored, header) = images.save(engine.snapshot(), at(9)).await.unwrap();
    assert!(stored.size > MIN_PART as u64, "{} bytes", stored.size);
    assert!(small.size < 1_000_000);
    assert_eq!(header.people, 6_000);
    // THEN it is the newest, and reads back equal
    assert_eq!(images.newest().await.unwrap(), Some(stored.clone()));
    let image = images.load(&stored).await.unwrap();
    assert_eq!(image.header.position, at(9));
    let (loaded, _) = image.into_engine();
    assert_eq!(everyone(&loaded.snapshot()), everyone(&engine.snapshot()));
    // An object listed larger than it is (replaced meanwhile) is an error.
    let wrong = people_aws::s3::StoredImage {
        size: stored.size + 10,
        ..stored
    };
    assert!(images.load(&wrong).await.is_err());
}

/// The cold start of production, end to end on moto: no image yet, so the
/// writer's index comes from a Scan and it writes the first image; the
/// table changes; a function starting then reads the image and catches up
/// from the feed after its position before it returns, equal to the table
/// with no refresh asked for; a corrupt
/// newest image is refused and the index built from a Scan instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_reads_the_newest_image_then_the_feed() {
    use people_app::config::PeopleConfig;
    use people_app::index::Refresh;
    use people_aws::image_writer::{ImageWriter, Run, WritePolicy};
    use people_aws::s3::S3ImageStore;
    use people_aws::wiring::{Origin, open_people_on};

    let store: Arc<dyn PeopleStore> = Arc::new(dynamo_store("cold_image").await);
    let (client, bucket) = fresh_bucket("cold").await;
    let images = S3ImageStore::new(client.clone(), &bucket).with_parts(4 * 1024, 0);
    let config = PeopleConfig::from_lookup(|_| None).unwrap();
    let first = numbered("a", 400);
    store.put_batch(&first).await.unwrap();

    // GIVEN the writer, started with no image: it writes one at once
    let policy = WritePolicy {
        changes: 10,
        ..WritePolicy::default()
    };
    let writer = ImageWriter::open(Arc::clone(&store), images.clone(), &config, policy)
        .await
        .unwrap();
    let Run::Wrote { image, people, .. } = writer.run().await.unwrap() else {
        panic!("an index from a Scan writes its image");
    };
    assert_eq!(people, 400);
    // and then not again until the feed moved far enough
    assert!(matches!(
        writer.run().await.unwrap(),
        Run::NotDue { changes: 0, .. }
    ));

    // WHEN the table changes after the image
    let mut later = numbered("b", 30);
    let mut renamed = first[0].clone();
    renamed.last_name = "Zzyzx".into();
    later.push(renamed.clone());
    store.put_batch(&later).await.unwrap();
    let gone: Vec<String> = first[100..105].iter().map(|p| p.id.clone()).collect();
    store.delete_batch(&gone).await.unwrap();

    // THEN a cold start reads the image, and the feed brings the rest
    // before it answers anything
    let (people, origin) = open_people_on(
        Arc::clone(&store),
        Some(&images),
        None,
        &config,
        Refresh::Inline,
    )
    .await
    .unwrap();
    assert!(
        matches!(&origin, Origin::Image { key: Some(k), .. } if *k == image.key),
        "{origin:?}"
    );
    let snapshot = people.index.engine().snapshot();
    let (mut scanned, _) = scan_all(store.as_ref(), 2).await;
    scanned.sort_by(|a, b| a.id.cmp(&b.id));
    let mut indexed = everyone(&snapshot);
    indexed.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(indexed.len(), 425);
    assert_eq!(indexed, scanned);
    assert_eq!(snapshot.get(&renamed.id), Some(renamed));

    // AND the writer, having seen 36 changes (> 10), writes the next image
    let Run::Wrote {
        image: second,
        changes,
        ..
    } = writer.run().await.unwrap()
    else {
        panic!("36 changes are past the policy's 10");
    };
    assert_eq!(changes, 36);
    assert!(second.key > image.key);

    // WHEN the newest image is corrupt THEN a cold start Scans instead
    let mut bytes = client
        .get_object()
        .bucket(&bucket)
        .key(&second.key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    let corrupt = format!("index/{:020}-9999999999999.img", u64::MAX / 2);
    client
        .put_object()
        .bucket(&bucket)
        .key(&corrupt)
        .body(bytes.into())
        .send()
        .await
        .unwrap();
    let (people, origin) = open_people_on(
        Arc::clone(&store),
        Some(&images),
        None,
        &config,
        Refresh::Inline,
    )
    .await
    .unwrap();
    assert_eq!(origin, Origin::Scan);
    assert_eq!(people.index.engine().snapshot().len(), 425);
}
