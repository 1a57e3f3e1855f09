//! The people store's scenarios.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use people_app::ports::{PeopleStore, StoreError};
use people_core::domain::{Change, Person};

pub fn person(id: &str, first: &str, last: &str, hobbies: &[&str]) -> Person {
    Person {
        id: id.into(),
        first_name: first.into(),
        last_name: last.into(),
        nationality: "Irish".into(),
        hobbies: hobbies.iter().map(|h| h.to_string()).collect(),
    }
}

pub fn numbered(prefix: &str, n: usize) -> Vec<Person> {
    (0..n)
        .map(|i| {
            person(
                &format!("{prefix}{i:05}"),
                &format!("First{i}"),
                &format!("Last{}", i % 97),
                &["Chess", "Go", "Reading"][..i % 4],
            )
        })
        .collect()
}

/// The people of a page of changes, which must hold no deletes.
pub fn puts(changes: &people_app::ports::Changes) -> Vec<Person> {
    changes
        .changes
        .iter()
        .map(|c| match c {
            Change::Put(p) => p.clone(),
            Change::Delete(id) => panic!("unexpected delete of {id}"),
        })
        .collect()
}

pub fn ids(people: &[Person]) -> Vec<&str> {
    people.iter().map(|p| p.id.as_str()).collect()
}

/// Every person, by reading all pages of every segment; also the number of
/// pages it took.
pub async fn scan_all(store: &dyn PeopleStore, segments: u32) -> (Vec<Person>, usize) {
    let mut people = Vec::new();
    let mut pages = 0;
    for segment in 0..segments {
        let mut start = None;
        loop {
            let page = store.scan(segment, segments, start).await.unwrap();
            pages += 1;
            people.extend(page.people);
            match page.next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
    }
    (people, pages)
}

pub fn assert_all_written(report: &people_app::ports::WriteReport, given: usize) {
    assert!(report.failed.is_empty(), "failed: {:?}", report.failed);
    assert_eq!(report.written + report.unchanged, given, "{report:?}");
}

// ---------------------------------------------------------------- scenarios

pub async fn scenario_put_then_get(store: &dyn PeopleStore) {
    // GIVEN two people, one without hobbies, one with hobbies out of order
    let ann = person("p1", "Ann", "Lee", &[]);
    let zoe = person(
        "p2",
        "Zoë",
        "Ó Néill",
        &["Wine Tasting", "Chess", "Archery"],
    );

    // WHEN they are put
    let report = store.put_batch(&[ann.clone(), zoe.clone()]).await.unwrap();

    // THEN each reads back exactly, and an unknown id is absent
    assert_all_written(&report, 2);
    assert_eq!(store.get("p1").await.unwrap(), Some(ann));
    assert_eq!(store.get("p2").await.unwrap(), Some(zoe));
    assert_eq!(store.get("p3").await.unwrap(), None);
}

pub async fn scenario_upsert_replaces_by_id(store: &dyn PeopleStore) {
    let before = person("p1", "Ann", "Lee", &["Chess"]);
    let after = person("p1", "Anna", "Lee-Smith", &["Go", "Reading"]);
    store.put_batch(&[before]).await.unwrap();

    let report = store.put_batch(std::slice::from_ref(&after)).await.unwrap();

    assert_all_written(&report, 1);
    assert_eq!(store.get("p1").await.unwrap(), Some(after.clone()));
    let (everyone, _) = scan_all(store, 1).await;
    assert_eq!(everyone, vec![after]);
}

pub async fn scenario_duplicate_ids_in_one_batch_last_wins(store: &dyn PeopleStore) {
    // GIVEN 60 people over 20 ids: every id three times, spread over what
    // DynamoDB sends as three chunks
    let batch: Vec<Person> = (0..60)
        .map(|i| person(&format!("d{:02}", i % 20), &format!("Take{i}"), "Dup", &[]))
        .collect();

    let report = store.put_batch(&batch).await.unwrap();

    assert_all_written(&report, 60);
    for id in 0..20 {
        let got = store.get(&format!("d{id:02}")).await.unwrap().unwrap();
        assert_eq!(got.first_name, format!("Take{}", id + 40), "last one wins");
    }
    let (everyone, _) = scan_all(store, 2).await;
    assert_eq!(everyone.len(), 20);
}

/// Returns the number of pages the scan took.
pub async fn scenario_segmented_scan_returns_everyone_once(store: &dyn PeopleStore) -> usize {
    let written = numbered("s", 2_500);
    for batch in written.chunks(500) {
        assert_all_written(&store.put_batch(batch).await.unwrap(), batch.len());
    }

    let (scanned, pages) = scan_all(store, 3).await;

    let mut seen = HashMap::new();
    for p in &scanned {
        assert!(
            seen.insert(p.id.clone(), p.clone()).is_none(),
            "{} twice",
            p.id
        );
    }
    assert_eq!(scanned.len(), written.len());
    for p in &written {
        assert_eq!(seen.get(&p.id), Some(p));
    }
    assert!(matches!(
        store.scan(3, 3, None).await,
        Err(StoreError::Permanent(_))
    ));
    pages
}

pub async fn scenario_changes_since(store: &dyn PeopleStore) {
    // GIVEN a version taken before anything was written
    let v0 = store.latest_version().await.unwrap();
    let a = person("a", "Ann", "A", &[]);
    let b = person("b", "Bob", "B", &["Go"]);
    let c = person("c", "Cat", "C", &[]);
    store.put_batch(&[a.clone(), b.clone()]).await.unwrap();
    store.put_batch(std::slice::from_ref(&c)).await.unwrap();

    // THEN everything since then, oldest first
    let all = store.changes_since(v0, 100).await.unwrap();
    assert_eq!(ids(&puts(&all)), ["a", "b", "c"]);
    assert!(!all.more);
    assert!(store.latest_version().await.unwrap() >= all.up_to);

    // WHEN `a` is written again and `d` is new
    let v1 = all.up_to;
    let a2 = person("a", "Ann", "A-Again", &["Chess"]);
    let d = person("d", "Dan", "D", &[]);
    store.put_batch(std::slice::from_ref(&a2)).await.unwrap();
    store.put_batch(std::slice::from_ref(&d)).await.unwrap();

    // THEN only later writes come after v1
    let later = store.changes_since(v1, 100).await.unwrap();
    assert_eq!(puts(&later), [a2.clone(), d.clone()]);
    // and from the start, `a` appears once, where it was last written
    let all = store.changes_since(v0, 100).await.unwrap();
    assert_eq!(puts(&all), [b.clone(), c.clone(), a2.clone(), d.clone()]);
    assert!(!all.more);
    // and nothing follows the end
    let end = store.changes_since(all.up_to, 100).await.unwrap();
    assert!(puts(&end).is_empty() && !end.more, "{end:?}");

    // THEN `limit` pages through the same changes, `more` telling the rest
    let first = store.changes_since(v0, 2).await.unwrap();
    assert_eq!(puts(&first), [b, c]);
    assert!(first.more);
    let second = store.changes_since(first.up_to, 2).await.unwrap();
    assert_eq!(puts(&second), [a2, d]);
    assert!(!second.more);
    let third = store.changes_since(second.up_to, 2).await.unwrap();
    assert!(puts(&third).is_empty() && !third.more, "{third:?}");
}

/// A delete removes the person from reads and leaves a tombstone in the
/// feed, at the delete's place; a person written again after a delete is
/// back.
pub async fn scenario_delete_leaves_a_tombstone(store: &dyn PeopleStore) {
    // GIVEN three people
    let v0 = store.latest_version().await.unwrap();
    let a = person("a", "Ann", "A", &[]);
    let b = person("b", "Bob", "B", &["Go"]);
    let c = person("c", "Cat", "C", &[]);
    store
        .put_batch(&[a.clone(), b.clone(), c.clone()])
        .await
        .unwrap();
    let v1 = store.latest_version().await.unwrap();

    // WHEN `a` and an id nobody has are deleted
    let report = store
        .delete_batch(&["a".into(), "nobody".into()])
        .await
        .unwrap();

    // THEN both are deleted (a delete is idempotent) and none failed
    assert_eq!(report.written + report.unchanged, 2, "{report:?}");
    assert!(report.failed.is_empty());
    // and `a` is gone from reads and scans
    assert_eq!(store.get("a").await.unwrap(), None);
    assert_eq!(store.get("nobody").await.unwrap(), None);
    let (mut scanned, _) = scan_all(store, 2).await;
    scanned.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(scanned, [b.clone(), c.clone()]);
    // and the feed carries the tombstone after the writes before it
    let since_v1 = store.changes_since(v1, 100).await.unwrap();
    assert!(
        since_v1.changes.contains(&Change::Delete("a".into())),
        "{since_v1:?}"
    );
    assert!(
        since_v1
            .changes
            .iter()
            .all(|c| matches!(c, Change::Delete(_)))
    );
    let all = store.changes_since(v0, 100).await.unwrap();
    let a_at = all.changes.iter().position(|c| c.id() == "a").unwrap();
    assert_eq!(all.changes[a_at], Change::Delete("a".into()));
    assert!(all.changes[..a_at].contains(&Change::Put(b.clone())));

    // WHEN `a` is written again
    let a2 = person("a", "Ann", "Again", &[]);
    store.put_batch(std::slice::from_ref(&a2)).await.unwrap();

    // THEN `a` is back, and the feed's last word on `a` is the write
    assert_eq!(store.get("a").await.unwrap(), Some(a2.clone()));
    let all = store.changes_since(v0, 100).await.unwrap();
    let last_a = all.changes.iter().rev().find(|c| c.id() == "a").unwrap();
    assert_eq!(last_a, &Change::Put(a2));
}

pub async fn scenario_big_batch_is_fully_written(store: &dyn PeopleStore) {
    let v0 = store.latest_version().await.unwrap();
    let people = numbered("big", 1_000);

    let report = store.put_batch(&people).await.unwrap();

    assert_all_written(&report, 1_000);
    let (mut scanned, _) = scan_all(store, 4).await;
    scanned.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(scanned, people);
    let changes = store.changes_since(v0, 5_000).await.unwrap();
    let put = puts(&changes);
    let changed: HashSet<&str> = ids(&put).into_iter().collect();
    assert_eq!(puts(&changes).len(), 1_000);
    assert_eq!(changed, ids(&people).into_iter().collect());
    // and paging through them in small steps gives the same, in order
    let mut paged = Vec::new();
    let mut since = v0;
    loop {
        let page = store.changes_since(since, 37).await.unwrap();
        assert!(puts(&page).len() <= 37);
        paged.extend(puts(&page));
        since = page.up_to;
        if !page.more {
            break;
        }
    }
    assert_eq!(paged, puts(&changes));
}

/// GIVEN an index built from the store WHEN people are added and changed in
/// the store THEN one refresh brings exactly those changes into the index,
/// and a second refresh (re-reading the overlap window) changes nothing.
pub async fn scenario_index_follows_the_store(store: Arc<dyn PeopleStore>) {
    use people_app::index::{LiveIndex, build_from_store};
    use people_core::domain::PeopleFilter;
    use people_core::search::PageStart;

    let first = numbered("a", 300);
    store.put_batch(&first).await.unwrap();
    let (engine, version) = build_from_store(store.as_ref(), 3, &|_| {}).await.unwrap();
    assert_eq!(engine.snapshot().len(), 300);
    let index = Arc::new(LiveIndex::following(
        engine,
        Arc::clone(&store),
        version,
        Duration::ZERO,
        people_app::index::Refresh::Background,
    ));

    let mut later = numbered("b", 50);
    for p in first.iter().take(10) {
        let mut changed = p.clone();
        changed.last_name = "Zzyzx".into();
        later.push(changed);
    }
    store.put_batch(&later).await.unwrap();
    assert_eq!(index.refresh().await.unwrap(), 60);
    let snapshot = index.engine().snapshot();
    assert_eq!(snapshot.len(), 350);
    let zzyzx = PeopleFilter::new("zzy", vec![], vec![], Default::default());
    let page = snapshot.search(&zzyzx, &PageStart::Offset(0), 100);
    assert_eq!(page.total, 10);
    assert_eq!(index.refresh().await.unwrap(), 0, "re-reading is harmless");

    // WHEN people are deleted in the store
    let gone: Vec<String> = first
        .iter()
        .skip(100)
        .take(20)
        .map(|p| p.id.clone())
        .collect();
    store.delete_batch(&gone).await.unwrap();
    // THEN a refresh applies the tombstones
    assert_eq!(index.refresh().await.unwrap(), 20);
    let snapshot = index.engine().snapshot();
    assert_eq!(snapshot.len(), 330);
    assert_eq!(snapshot.get(&gone[0]), None);
    let everyone = PeopleFilter::default();
    let page = snapshot.search(&everyone, &PageStart::Offset(0), 1000);
    assert_eq!(page.total, 330);
    assert!(page.items.iter().all(|p| !gone.contains(&p.id)));
    assert_eq!(
        index.refresh().await.unwrap(),
        0,
        "re-reading tombstones is harmless"
    );

    // A request path: `current()` starts the refresh in the background.
    store.put_batch(&numbered("c", 5)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while index.current().await.len() < 335 {
        assert!(
            Instant::now() < deadline,
            "the background refresh never landed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
