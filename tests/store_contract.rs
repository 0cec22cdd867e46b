//! The DynamoDB desired store against the emulator: what the controller
//! relies on from the table, written from the point of view of a team that
//! writes records with the plain SDK at the same time.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, StreamSpecification, StreamViewType, WriteRequest,
};
use cutover::aws::DynamoStore;
use cutover::cloud::{Change, DesiredStore, Leases, StatusWrite};
use cutover::rollout::{Phase, ServiceKey, Status};
use cutover::time::Timestamp;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

use support::emulator::{Exclusive, exclusive};

const TABLE: &str = "cutover-desired";

struct Fixture {
    // Holds the emulator for this test alone until the test ends.
    emulator: Exclusive,
    store: DynamoStore,
    /// What a team uses to write records: the raw SDK, not cutover.
    team: Client,
}

async fn fixture() -> Fixture {
    let emulator = exclusive().await;
    let config = support::aws::config(&emulator).await;
    let store = DynamoStore::new(&config, TABLE);
    store.create_table().await.unwrap();
    Fixture {
        emulator,
        store,
        team: Client::new(&config),
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn key(name: &str) -> ServiceKey {
    ServiceKey::new("prod", name)
}

fn spec_item(key: &ServiceKey, task_definition: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("service".to_string(), s(&key.to_string())),
        ("task_definition".to_string(), s(task_definition)),
        ("container".to_string(), s("app")),
        (
            "container_port".to_string(),
            AttributeValue::N("8080".into()),
        ),
    ])
}

fn status(phase: Phase, message: &str) -> Status {
    Status {
        message: message.to_string(),
        phase_since: Timestamp(1_700_000_000_000),
        ..Status::default()
    }
    .with_phase(phase)
}

async fn team_puts(team: &Client, item: HashMap<String, AttributeValue>) {
    team.put_item()
        .table_name(TABLE)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

async fn team_updates_task_definition(team: &Client, key: &ServiceKey, task_definition: &str) {
    team.update_item()
        .table_name(TABLE)
        .key("service", s(&key.to_string()))
        .update_expression("SET task_definition = :td")
        .expression_attribute_values(":td", s(task_definition))
        .send()
        .await
        .unwrap();
}

async fn raw_item(team: &Client, key: &ServiceKey) -> Option<HashMap<String, AttributeValue>> {
    team.get_item()
        .table_name(TABLE)
        .key("service", s(&key.to_string()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

#[tokio::test]
async fn init_table_creates_the_table_once_with_a_stream_of_both_images() {
    let emulator = exclusive().await;
    let config = support::aws::config(&emulator).await;
    let store = DynamoStore::new(&config, TABLE);
    let first = store.create_table().await.unwrap();
    assert!(first.created);
    assert_eq!(first.stream_view.as_deref(), Some("NEW_AND_OLD_IMAGES"));
    let again = store.create_table().await.unwrap();
    assert!(!again.created);
    assert_eq!(again.stream_view.as_deref(), Some("NEW_AND_OLD_IMAGES"));
}

#[tokio::test]
async fn init_table_refuses_a_table_with_another_key() {
    let emulator = exclusive().await;
    let config = support::aws::config(&emulator).await;
    Client::new(&config)
        .create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let err = DynamoStore::new(&config, TABLE)
        .create_table()
        .await
        .unwrap_err();
    assert!(err.message.contains("partition key `service`"), "{err}");
}

#[tokio::test]
async fn list_reads_every_record_across_scan_pages() {
    let f = fixture().await;
    // About 1.5 kB each: 2,000 of them fill three 1 MB Scan pages.
    let padding = "x".repeat(1500);
    let keys: Vec<ServiceKey> = (0..2000)
        .map(|i| ServiceKey::new(format!("cluster-{}", i % 7), format!("svc-{i}")))
        .collect();
    for chunk in keys.chunks(25) {
        let mut requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|k| {
                let mut item = spec_item(k, "web:1");
                item.insert("note".into(), s(&padding));
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                    .build()
            })
            .collect();
        while !requests.is_empty() {
            let out = f
                .team
                .batch_write_item()
                .request_items(TABLE, requests)
                .send()
                .await
                .unwrap();
            requests = out
                .unprocessed_items
                .and_then(|mut u| u.remove(TABLE))
                .unwrap_or_default();
        }
    }
    let first_page = f.team.scan().table_name(TABLE).send().await.unwrap();
    assert!(
        first_page.last_evaluated_key.is_some(),
        "the seed must span more than one Scan page"
    );

    let records = f.store.list().await.unwrap();
    assert_eq!(records.len(), 2000);
    let listed: HashSet<ServiceKey> = records.iter().map(|r| r.key.clone()).collect();
    assert_eq!(listed, keys.into_iter().collect());
    let one = &records[0];
    assert_eq!(one.body["note"], padding.as_str());
    assert_eq!((one.status.as_ref(), one.status_version), (None, 0));
}

#[tokio::test]
async fn a_status_write_keeps_a_concurrent_spec_update() {
    let f = fixture().await;
    let k = key("checkout");
    team_puts(&f.team, spec_item(&k, "web:1")).await;
    let read = f.store.get(&k).await.unwrap().unwrap();
    assert_eq!(read.status_version, 0);

    // The team updates the spec between the controller's read and its write.
    team_updates_task_definition(&f.team, &k, "web:2").await;
    let written = f
        .store
        .write_status(&k, read.status_version, &status(Phase::Provisioning, "go"))
        .await
        .unwrap();
    assert_eq!(written, StatusWrite::Written { version: 1 });

    let record = f.store.get(&k).await.unwrap().unwrap();
    assert_eq!(record.body["task_definition"], "web:2");
    assert_eq!(record.status, Some(status(Phase::Provisioning, "go")));
    assert_eq!(record.status_version, 1);
}

#[tokio::test]
async fn a_stale_status_write_conflicts_with_a_spec_rewrite_and_the_spec_survives() {
    let f = fixture().await;
    let k = key("checkout");
    team_puts(&f.team, spec_item(&k, "web:1")).await;
    let v1 = f
        .store
        .write_status(&k, 0, &status(Phase::Steady, "steady"))
        .await
        .unwrap();
    assert_eq!(v1, StatusWrite::Written { version: 1 });

    // The team replaces the whole item, as infrastructure-as-code tools do:
    // the status and its version go with it.
    team_puts(&f.team, spec_item(&k, "web:2")).await;
    let stale = f
        .store
        .write_status(&k, 1, &status(Phase::Shifting, "stale"))
        .await
        .unwrap();
    assert_eq!(stale, StatusWrite::Conflict);
    let item = raw_item(&f.team, &k).await.unwrap();
    assert_eq!(item["task_definition"], s("web:2"));
    assert!(!item.contains_key("status"));

    // Re-read and decide again: the write goes through on top of the new spec.
    let fresh = f.store.get(&k).await.unwrap().unwrap();
    assert_eq!((fresh.status.as_ref(), fresh.status_version), (None, 0));
    let retried = f
        .store
        .write_status(
            &k,
            fresh.status_version,
            &status(Phase::Provisioning, "new"),
        )
        .await
        .unwrap();
    assert_eq!(retried, StatusWrite::Written { version: 1 });
    let record = f.store.get(&k).await.unwrap().unwrap();
    assert_eq!(record.body["task_definition"], "web:2");
    assert_eq!(record.status, Some(status(Phase::Provisioning, "new")));
}

#[tokio::test]
async fn of_two_status_writers_with_the_same_version_only_the_first_wins() {
    let f = fixture().await;
    let k = key("checkout");
    team_puts(&f.team, spec_item(&k, "web:1")).await;
    let first = f
        .store
        .write_status(&k, 0, &status(Phase::Provisioning, "first"))
        .await
        .unwrap();
    let second = f
        .store
        .write_status(&k, 0, &status(Phase::Failed, "second"))
        .await
        .unwrap();
    assert_eq!(first, StatusWrite::Written { version: 1 });
    assert_eq!(second, StatusWrite::Conflict);
    let record = f.store.get(&k).await.unwrap().unwrap();
    assert_eq!(record.status, Some(status(Phase::Provisioning, "first")));
}

#[tokio::test]
async fn a_status_write_to_a_deleted_record_is_gone_and_creates_nothing() {
    let f = fixture().await;
    let k = key("checkout");
    team_puts(&f.team, spec_item(&k, "web:1")).await;
    f.team
        .delete_item()
        .table_name(TABLE)
        .key("service", s(&k.to_string()))
        .send()
        .await
        .unwrap();
    let write = f
        .store
        .write_status(&k, 0, &status(Phase::Steady, "late"))
        .await
        .unwrap();
    assert_eq!(write, StatusWrite::Gone);
    assert_eq!(raw_item(&f.team, &k).await, None);
    assert_eq!(f.store.get(&k).await.unwrap(), None);
}

#[tokio::test]
async fn a_record_whose_status_does_not_decode_comes_back_without_status() {
    let f = fixture().await;
    let k = key("checkout");
    let mut item = spec_item(&k, "web:1");
    item.insert(
        "status".into(),
        AttributeValue::M(HashMap::from([("phase".to_string(), s("Exploding"))])),
    );
    item.insert("status_version".into(), AttributeValue::N("4".into()));
    team_puts(&f.team, item).await;

    let record = f.store.get(&k).await.unwrap().unwrap();
    assert_eq!(record.status, None);
    assert_eq!(record.status_version, 4);
    assert_eq!(record.body["task_definition"], "web:1");
    assert!(record.body.get("status").is_none());
    let listed = f.store.list().await.unwrap();
    assert_eq!(listed, vec![record.clone()]);

    // The controller can replace it with a status it understands.
    let write = f
        .store
        .write_status(&k, record.status_version, &status(Phase::Steady, "rebuilt"))
        .await
        .unwrap();
    assert_eq!(write, StatusWrite::Written { version: 5 });
}

/// Writes `warmup` to a record until the feed reports it: from then on the
/// feed is reading the stream's tail.
async fn wait_until_feed_is_live(f: &Fixture, changes: &mut mpsc::Receiver<Change>) {
    let warmup = key("warmup");
    let deadline = Instant::now() + Duration::from_secs(15);
    for attempt in 0.. {
        assert!(
            Instant::now() < deadline,
            "the feed never reported a change"
        );
        team_puts(
            &f.team,
            spec_item(&warmup, &format!("warmup:{}", attempt + 1)),
        )
        .await;
        if let Ok(Some(change)) = timeout(Duration::from_secs(2), changes.recv()).await {
            assert_eq!(change.key, warmup);
            // Drain what earlier attempts may still deliver.
            while let Ok(Some(_)) = timeout(Duration::from_millis(700), changes.recv()).await {}
            return;
        }
    }
}

#[tokio::test]
async fn the_feed_reports_spec_changes_within_seconds_and_not_status_writes() {
    let f = fixture().await;
    let quiet = key("quiet");
    let busy = key("busy");
    team_puts(&f.team, spec_item(&quiet, "web:1")).await;
    team_puts(&f.team, spec_item(&busy, "web:1")).await;

    let (tx, mut changes) = mpsc::channel(64);
    let store = f.store.clone();
    let feed =
        tokio::spawn(async move { store.watch(tx, tokio::sync::oneshot::channel().0).await });
    wait_until_feed_is_live(&f, &mut changes).await;

    // The stream has one shard here, so a status write's record would arrive
    // before the spec change that follows it.
    let written = f
        .store
        .write_status(&quiet, 0, &status(Phase::Steady, "steady"))
        .await
        .unwrap();
    assert_eq!(written, StatusWrite::Written { version: 1 });
    let sent = Instant::now();
    let before = Timestamp::from_system(std::time::SystemTime::now());
    team_updates_task_definition(&f.team, &busy, "web:2").await;

    let change = timeout(Duration::from_secs(2), changes.recv())
        .await
        .expect("no change within 2 s of the spec write")
        .unwrap();
    assert_eq!(change.key, busy, "a status-only write was reported");
    assert!(sent.elapsed() < Duration::from_secs(2));
    let at = change.at.expect("the change carries its time");
    assert!(at.since(before) < Duration::from_secs(5) && before.since(at) < Duration::from_secs(5));

    // Deleting a record is a change too: the controller must notice.
    f.team
        .delete_item()
        .table_name(TABLE)
        .key("service", s(&busy.to_string()))
        .send()
        .await
        .unwrap();
    let change = timeout(Duration::from_secs(2), changes.recv())
        .await
        .expect("no change for a deletion")
        .unwrap();
    assert_eq!(change.key, busy);
    assert!(
        timeout(Duration::from_secs(1), changes.recv())
            .await
            .is_err(),
        "nothing else happened"
    );

    // The feed ends cleanly when nobody listens any more.
    drop(changes);
    let ended = timeout(Duration::from_secs(5), feed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended, Ok(()));
}

#[tokio::test]
async fn a_write_made_once_the_feed_says_it_is_positioned_is_delivered() {
    let f = fixture().await;
    // GetShardIterator reaches the emulator two seconds late: a feed that
    // said it was positioned before holding its iterators would miss a
    // write made in between.
    let proxy = support::slow_proxy::start(
        f.emulator.endpoint(),
        "DynamoDBStreams_20120810.GetShardIterator",
        Duration::from_secs(2),
    )
    .await;
    let store = DynamoStore::new(&support::aws::config_at(proxy).await, TABLE);
    let (tx, mut changes) = mpsc::channel(64);
    let (positioned_tx, positioned) = tokio::sync::oneshot::channel();
    let feed = tokio::spawn(async move { store.watch(tx, positioned_tx).await });
    timeout(Duration::from_secs(10), positioned)
        .await
        .expect("the feed took its position within 10 s")
        .expect("the feed said so before failing");
    // One write, at once: no warm-up, no retry.
    let k = key("first");
    team_puts(&f.team, spec_item(&k, "web:1")).await;
    let change = timeout(Duration::from_secs(8), changes.recv())
        .await
        .expect("the write right after positioning was delivered within 8 s")
        .expect("the feed is still running");
    assert_eq!(change.key, k);
    feed.abort();
}

#[tokio::test]
async fn watching_a_table_without_a_stream_fails_so_the_controller_can_resync() {
    let emulator = exclusive().await;
    let config = support::aws::config(&emulator).await;
    Client::new(&config)
        .create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("service")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("service")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let store = DynamoStore::new(&config, TABLE);
    let (tx, _changes) = mpsc::channel(1);
    let err = timeout(
        Duration::from_secs(10),
        store.watch(tx, tokio::sync::oneshot::channel().0),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(err.message.contains("no stream"), "{err}");
    assert_eq!(err.operation, "dynamodb:DescribeTable");
}

async fn set_stream(team: &Client, enabled: bool) {
    let spec = StreamSpecification::builder().stream_enabled(enabled);
    let spec = if enabled {
        spec.stream_view_type(StreamViewType::NewAndOldImages)
    } else {
        spec
    };
    team.update_table()
        .table_name(TABLE)
        .stream_specification(spec.build().unwrap())
        .send()
        .await
        .unwrap();
}

/// A stream that is disabled never gets another record, and one enabled
/// again is a new stream with a new ARN (the table's LatestStreamArn). Either
/// way the feed must end, so the controller opens it again on what the table
/// has now and lists every record for the writes in between.
/// The emulator refuses to enable a stream on a table that had one
/// ("Cannot enable stream"), which AWS allows; so this disables it, and
/// replaces the table to give it a new stream.
#[tokio::test]
async fn a_disabled_stream_ends_the_feed() {
    let f = fixture().await;
    let (tx, mut changes) = mpsc::channel(64);
    let store = f.store.clone();
    let feed =
        tokio::spawn(async move { store.watch(tx, tokio::sync::oneshot::channel().0).await });
    wait_until_feed_is_live(&f, &mut changes).await;

    set_stream(&f.team, false).await;
    let ended = timeout(Duration::from_secs(30), feed)
        .await
        .expect("the feed on the disabled stream ended within 30 s")
        .unwrap();
    let err = ended.expect_err("the feed ends with an error, so it is opened again");
    assert!(err.message.contains("no stream"), "{err}");
}

#[tokio::test]
async fn a_table_created_again_gets_a_feed_on_its_new_stream() {
    let f = fixture().await;
    let (tx, mut changes) = mpsc::channel(64);
    let store = f.store.clone();
    let feed =
        tokio::spawn(async move { store.watch(tx, tokio::sync::oneshot::channel().0).await });
    wait_until_feed_is_live(&f, &mut changes).await;

    f.team
        .delete_table()
        .table_name(TABLE)
        .send()
        .await
        .unwrap();
    f.store.create_table().await.unwrap();
    let ended = timeout(Duration::from_secs(30), feed)
        .await
        .expect("the feed on the old stream ended within 30 s")
        .unwrap();
    ended.expect_err("the feed ends with an error, so it is opened again");

    let (tx, mut changes) = mpsc::channel(64);
    let store = f.store.clone();
    let feed =
        tokio::spawn(async move { store.watch(tx, tokio::sync::oneshot::channel().0).await });
    wait_until_feed_is_live(&f, &mut changes).await;
    feed.abort();
}

#[tokio::test]
async fn a_missing_table_is_not_found() {
    let emulator = exclusive().await;
    let config = support::aws::config(&emulator).await;
    let store = DynamoStore::new(&config, "no-such-table");
    let err = store.list().await.unwrap_err();
    assert_eq!(err.kind, cutover::cloud::ErrorKind::NotFound, "{err}");
    assert_eq!(err.operation, "dynamodb:Scan");
    assert!(err.request_id.is_some(), "{err:?}");
}

async fn raw_item_at(team: &Client, given: &str) -> Option<HashMap<String, AttributeValue>> {
    team.get_item()
        .table_name(TABLE)
        .key("service", s(given))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

#[tokio::test]
async fn items_whose_key_is_not_a_service_are_listed_apart_and_only_their_status_written() {
    let f = fixture().await;
    let bad = ["prod", "a/b/c", "/web", "prod/we\u{7}b"];
    for given in bad {
        team_puts(
            &f.team,
            HashMap::from([
                ("service".to_string(), s(given)),
                ("task_definition".to_string(), s("web:2")),
            ]),
        )
        .await;
    }
    team_puts(&f.team, spec_item(&key("web"), "web:1")).await;

    let listing = f.store.scan().await.unwrap();
    assert_eq!(listing.records.len(), 1);
    let mut given: Vec<&str> = listing.unkeyed.iter().map(|u| u.given.as_str()).collect();
    given.sort_unstable();
    let mut expected = bad.to_vec();
    expected.sort_unstable();
    assert_eq!(given, expected);
    assert_eq!(f.store.list().await.unwrap().len(), 1);

    for item in &listing.unkeyed {
        let written = f
            .store
            .write_unkeyed_status(
                &item.given,
                item.status_version,
                &status(Phase::Invalid, "bad key"),
            )
            .await
            .unwrap();
        assert_eq!(
            written,
            StatusWrite::Written { version: 1 },
            "{:?}",
            item.given
        );
        let raw = raw_item_at(&f.team, &item.given).await.expect("the item");
        assert_eq!(raw.get("task_definition"), Some(&s("web:2")), "kept");
    }
    let again = f.store.scan().await.unwrap();
    for item in &again.unkeyed {
        let status = item.status.as_ref().expect("the status is read back");
        assert_eq!(status.phase(), Phase::Invalid);
        assert_eq!(item.status_version, 1);
    }
    let stale = f
        .store
        .write_unkeyed_status("prod", 0, &status(Phase::Invalid, "stale"))
        .await
        .unwrap();
    assert_eq!(stale, StatusWrite::Conflict);

    // Never a new item: only the status of one that exists.
    let gone = f
        .store
        .write_unkeyed_status("nothing-here", 0, &status(Phase::Invalid, "late"))
        .await
        .unwrap();
    assert_eq!(gone, StatusWrite::Gone);
    assert_eq!(raw_item_at(&f.team, "nothing-here").await, None);
}

#[tokio::test]
async fn a_status_that_would_pass_400_kb_beside_a_300_kb_record_is_refused_as_too_large() {
    let f = fixture().await;
    let k = key("web");
    let mut item = spec_item(&k, "web:1");
    item.insert("strategy".into(), s(&"s".repeat(300_000)));
    team_puts(&f.team, item).await;

    let refused = f
        .store
        .write_status(&k, 0, &status(Phase::Invalid, &"m".repeat(110_000)))
        .await
        .unwrap();
    assert_eq!(refused, StatusWrite::TooLarge);
    let raw = raw_item(&f.team, &k).await.expect("the record");
    assert!(!raw.contains_key("status"), "nothing was written");

    let fits = f
        .store
        .write_status(&k, 0, &status(Phase::Invalid, &"m".repeat(50_000)))
        .await
        .unwrap();
    assert_eq!(fits, StatusWrite::Written { version: 1 });
}

#[tokio::test]
async fn a_fenced_status_that_would_pass_400_kb_is_refused_as_too_large() {
    let f = fixture().await;
    let config = support::aws::config(&f.emulator).await;
    let leases = cutover::aws::DynamoLeases::new(&config, "cutover-leases");
    leases.create_table().await.unwrap();
    let fence = leases
        .acquire(0, 1, "a", None)
        .await
        .unwrap()
        .expect("a free shard is taken");
    let store = DynamoStore::new(&config, TABLE).with_leases(leases);
    let k = key("web");
    let mut item = spec_item(&k, "web:1");
    item.insert("strategy".into(), s(&"s".repeat(300_000)));
    team_puts(&f.team, item).await;

    let refused = store
        .write_status_fenced(&k, 0, &status(Phase::Invalid, &"m".repeat(110_000)), &fence)
        .await
        .unwrap();
    assert_eq!(refused, StatusWrite::TooLarge);
    let fits = store
        .write_status_fenced(&k, 0, &status(Phase::Invalid, "short"), &fence)
        .await
        .unwrap();
    assert_eq!(fits, StatusWrite::Written { version: 1 });
}
