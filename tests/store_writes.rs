//! Writers' conditional changes to records (`DesiredStore::write_spec`)
//! against the emulator, next to a team writing with the plain SDK and the
//! controller writing its status.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use cutover::aws::DynamoStore;
use cutover::cloud::{DesiredStore, ErrorKind, Precondition, SpecChanges, SpecWrite, StatusWrite};
use cutover::rollout::{Phase, ServiceKey, Status};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

use support::emulator::{Exclusive, exclusive};

const TABLE: &str = "cutover-desired";

struct Fixture {
    // Holds the emulator for this test alone until the test ends.
    _emulator: Exclusive,
    store: DynamoStore,
    team: Client,
}

async fn fixture() -> Fixture {
    let emulator = exclusive().await;
    let config = support::aws::config(&emulator).await;
    let store = DynamoStore::new(&config, TABLE).with_poll_interval(Duration::from_millis(100));
    store.create_table().await.unwrap();
    Fixture {
        _emulator: emulator,
        store,
        team: Client::new(&config),
    }
}

fn key(name: &str) -> ServiceKey {
    ServiceKey::new("prod", name)
}

fn set(pairs: &[(&str, Value)]) -> SpecChanges {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Some(v.clone())))
        .collect()
}

fn written(w: SpecWrite) -> String {
    match w {
        SpecWrite::Written { updated_at } => updated_at,
        other => panic!("expected a write, got {other:?}"),
    }
}

async fn raw_item(team: &Client, key: &ServiceKey) -> Option<HashMap<String, AttributeValue>> {
    team.get_item()
        .table_name(TABLE)
        .key("service", AttributeValue::S(key.to_string()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

#[tokio::test]
async fn a_new_record_is_created_once_with_its_values_and_a_time() {
    let f = fixture().await;
    let k = key("web");
    let changes = set(&[
        ("task_definition", json!("web:1")),
        ("container_port", json!(8080)),
        ("target_groups", json!(["arn:a", "arn:b"])),
        (
            "strategy",
            json!({"type": "canary", "percent": 10, "interval": "5m"}),
        ),
        ("paused", json!(false)),
        // A DynamoDB reserved word, to show names are never spliced in.
        ("comment", json!("first release")),
    ]);
    let before = std::time::SystemTime::now();
    let at = written(
        f.store
            .write_spec(&k, &changes, Precondition::Absent)
            .await
            .unwrap(),
    );
    let record = f.store.get(&k).await.unwrap().expect("created");
    for (name, value) in &changes {
        assert_eq!(record.body.get(name), value.as_ref(), "{name}");
    }
    assert_eq!(record.body["service"], json!("prod/web"));
    assert_eq!(record.body["updated_at"], json!(at));
    let written_at = record.written_at.expect("updated_at reads as a time");
    assert!(written_at.to_system() + Duration::from_secs(5) > before);
    assert_eq!(record.status, None);

    let again = f
        .store
        .write_spec(
            &k,
            &set(&[("task_definition", json!("web:2"))]),
            Precondition::Absent,
        )
        .await
        .unwrap();
    assert_eq!(again, SpecWrite::PreconditionFailed);
    let record = f.store.get(&k).await.unwrap().unwrap();
    assert_eq!(record.body["task_definition"], json!("web:1"));
}

#[tokio::test]
async fn nothing_is_created_for_a_record_that_does_not_exist() {
    let f = fixture().await;
    let k = key("ghost");
    for precondition in [
        Precondition::Exists,
        Precondition::Unchanged { updated_at: None },
        Precondition::Unchanged {
            updated_at: Some(json!("2026-01-01T00:00:00Z")),
        },
    ] {
        let w = f
            .store
            .write_spec(&k, &set(&[("paused", json!(true))]), precondition)
            .await
            .unwrap();
        assert_eq!(w, SpecWrite::PreconditionFailed);
    }
    assert_eq!(raw_item(&f.team, &k).await, None);
}

#[tokio::test]
async fn a_change_made_since_the_read_is_refused_and_the_status_is_kept() {
    let f = fixture().await;
    let k = key("web");
    // A team's record without `updated_at`, as plain `aws dynamodb` writes it.
    f.team
        .put_item()
        .table_name(TABLE)
        .item("service", AttributeValue::S(k.to_string()))
        .item("task_definition", AttributeValue::S("web:1".into()))
        .item("bake", AttributeValue::S("5m".into()))
        .send()
        .await
        .unwrap();
    let read = f.store.get(&k).await.unwrap().unwrap();
    let status = Status {
        message: "shifting".into(),
        ..Status::default()
    }
    .with_phase(Phase::Shifting);
    let w = f.store.write_status(&k, 0, &status).await.unwrap();
    assert_eq!(w, StatusWrite::Written { version: 1 });

    // The controller's status write does not make the read stale.
    let mut changes = set(&[("task_definition", json!("web:2"))]);
    changes.insert("bake".into(), None);
    let first = written(
        f.store
            .write_spec(&k, &changes, Precondition::unchanged_since(&read))
            .await
            .unwrap(),
    );
    let stale = f
        .store
        .write_spec(
            &k,
            &set(&[("task_definition", json!("web:3"))]),
            Precondition::unchanged_since(&read),
        )
        .await
        .unwrap();
    assert_eq!(stale, SpecWrite::PreconditionFailed);

    let record = f.store.get(&k).await.unwrap().unwrap();
    assert_eq!(record.body["task_definition"], json!("web:2"));
    assert!(record.body.get("bake").is_none(), "removed");
    assert_eq!(record.status, Some(status));
    assert_eq!(record.status_version, 1);

    // Exists does not care what changed in between.
    let second = written(
        f.store
            .write_spec(&k, &set(&[("paused", json!(true))]), Precondition::Exists)
            .await
            .unwrap(),
    );
    assert_ne!(second, first);
    let stale = f
        .store
        .write_spec(
            &k,
            &set(&[("paused", json!(false))]),
            Precondition::Unchanged {
                updated_at: Some(json!(first)),
            },
        )
        .await
        .unwrap();
    assert_eq!(stale, SpecWrite::PreconditionFailed);
}

#[tokio::test]
async fn the_controllers_attributes_and_the_key_are_refused_before_any_call() {
    let f = fixture().await;
    let k = key("web");
    for name in ["status", "status_version", "service", "updated_at"] {
        let err = f
            .store
            .write_spec(&k, &set(&[(name, json!("x"))]), Precondition::Absent)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid, "{name}: {err}");
    }
    assert_eq!(raw_item(&f.team, &k).await, None);
}

#[tokio::test]
async fn the_change_feed_reports_a_writers_change() {
    let f = fixture().await;
    let k = key("web");
    let (tx, mut changes) = mpsc::channel(64);
    let store = f.store.clone();
    let feed =
        tokio::spawn(async move { store.watch(tx, tokio::sync::oneshot::channel().0).await });
    // The feed starts at the stream's tail: write until it reports.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut attempt = 0;
    let change = loop {
        assert!(Instant::now() < deadline, "the feed never reported a write");
        attempt += 1;
        f.store
            .write_spec(
                &k,
                &set(&[("task_definition", json!(format!("web:{attempt}")))]),
                if attempt == 1 {
                    Precondition::Absent
                } else {
                    Precondition::Exists
                },
            )
            .await
            .unwrap();
        if let Ok(Some(change)) = timeout(Duration::from_secs(2), changes.recv()).await {
            break change;
        }
    };
    assert_eq!(change.key, k);
    assert!(change.at.is_some(), "the change carries the writer's time");
    drop(changes);
    let ended = timeout(Duration::from_secs(5), feed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended, Ok(()));
}
