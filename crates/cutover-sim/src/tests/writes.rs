//! Writers' conditional changes through the `DesiredStore` port.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::*;
use crate::cloud::{DesiredStore, ErrorKind, Precondition, SpecChanges, SpecWrite, StatusWrite};
use crate::rollout::{Phase, Status, parse_record};

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

#[tokio::test(start_paused = true)]
async fn a_new_record_is_created_only_where_none_exists_and_the_feed_hears_it() {
    let sim = sim(40);
    let arns = web(&sim);
    let (tx, mut rx) = mpsc::channel(4);
    let feed = tokio::spawn({
        let sim = sim.clone();
        async move { sim.watch(tx, tokio::sync::oneshot::channel().0).await }
    });
    sim.run_for(Duration::from_secs(1)).await;

    let body = arns.record("web:2", json!("all_at_once"));
    let changes: SpecChanges = body
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.as_str() != "service")
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    let at = written(
        sim.write_spec(&arns.key, &changes, Precondition::Absent)
            .await
            .unwrap(),
    );
    assert_eq!(rx.recv().await.expect("a change").key, arns.key);
    let rec = sim.get(&arns.key).await.unwrap().unwrap();
    assert_eq!(rec.body["service"], json!(arns.key.to_string()));
    assert_eq!(rec.body["updated_at"], json!(at));
    assert_eq!(rec.written_at.map(|t| t.to_string()), Some(at));
    parse_record(&arns.key, &rec.body).expect("the written record is valid");

    let again = sim
        .write_spec(&arns.key, &changes, Precondition::Absent)
        .await
        .unwrap();
    assert_eq!(again, SpecWrite::PreconditionFailed);
    let missing = ServiceKey::new("prod", "nobody");
    for precondition in [
        Precondition::Exists,
        Precondition::Unchanged { updated_at: None },
    ] {
        let w = sim
            .write_spec(&missing, &set(&[("paused", json!(true))]), precondition)
            .await
            .unwrap();
        assert_eq!(w, SpecWrite::PreconditionFailed);
    }
    assert!(sim.get(&missing).await.unwrap().is_none());

    drop(rx);
    assert_eq!(feed.await.unwrap(), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn a_stale_read_is_refused_and_the_status_is_never_touched() {
    let sim = sim(41);
    let arns = web(&sim);
    sim.put_spec(&arns.key, arns.record("web:2", json!("all_at_once")));
    let read = sim.get(&arns.key).await.unwrap().unwrap();
    let status = Status {
        ..Status::default()
    }
    .with_phase(Phase::Shifting);
    let version = match sim
        .write_status(&arns.key, read.status_version, &status)
        .await
        .unwrap()
    {
        StatusWrite::Written { version } => version,
        other => panic!("{other:?}"),
    };

    // A status write is not a writer's change: the read is still current.
    let first = written(
        sim.write_spec(
            &arns.key,
            &set(&[("task_definition", json!("web:3"))]),
            Precondition::unchanged_since(&read),
        )
        .await
        .unwrap(),
    );
    // Same instant on the sim clock, yet the value moves on.
    let stale = sim
        .write_spec(
            &arns.key,
            &set(&[("task_definition", json!("web:4"))]),
            Precondition::unchanged_since(&read),
        )
        .await
        .unwrap();
    assert_eq!(stale, SpecWrite::PreconditionFailed);
    let second = written(
        sim.write_spec(
            &arns.key,
            &SpecChanges::from([("bake".to_string(), None)]),
            Precondition::Unchanged {
                updated_at: Some(json!(first.clone())),
            },
        )
        .await
        .unwrap(),
    );
    assert!(second > first, "{second} after {first}");

    let rec = sim.get(&arns.key).await.unwrap().unwrap();
    assert_eq!(rec.body["task_definition"], json!("web:3"));
    assert!(rec.body.get("bake").is_none());
    assert_eq!((rec.status, rec.status_version), (Some(status), version));
}

#[tokio::test(start_paused = true)]
async fn the_controllers_attributes_are_refused() {
    let sim = sim(42);
    let arns = web(&sim);
    sim.put_spec(&arns.key, arns.record("web:2", json!("all_at_once")));
    for name in ["status", "status_version", "service", "updated_at"] {
        let err = sim
            .write_spec(&arns.key, &set(&[(name, json!(1))]), Precondition::Exists)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid, "{name}");
    }
}
