use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use super::*;
use crate::cloud::{DesiredStore, ErrorKind, StatusWrite};
use crate::rollout::{Phase, Status};

fn status(phase: Phase) -> Status {
    Status {
        ..Status::default()
    }
    .with_phase(phase)
}

#[tokio::test(start_paused = true)]
async fn status_writes_are_conditional_on_the_version() {
    let sim = sim(30);
    let arns = web(&sim);
    let written = sim.now();
    sim.put_spec(&arns.key, arns.record("web:2", json!("all_at_once")));
    let rec = sim.get(&arns.key).await.unwrap().unwrap();
    assert_eq!(rec.status, None);
    assert_eq!(rec.written_at, Some(written));

    let v1 = match sim
        .write_status(&arns.key, rec.status_version, &status(Phase::Provisioning))
        .await
    {
        Ok(StatusWrite::Written { version }) => version,
        other => panic!("{other:?}"),
    };
    let stale = sim
        .write_status(&arns.key, rec.status_version, &status(Phase::Shifting))
        .await
        .unwrap();
    assert_eq!(stale, StatusWrite::Conflict);
    let rec = sim.get(&arns.key).await.unwrap().unwrap();
    assert_eq!(
        (rec.status_version, rec.status.map(|s| s.phase())),
        (v1, Some(Phase::Provisioning))
    );

    // A spec update keeps the status; a whole-item put wipes it.
    sim.put_spec(&arns.key, arns.record("web:3", json!("all_at_once")));
    let rec = sim.get(&arns.key).await.unwrap().unwrap();
    assert_eq!(
        (rec.status_version, rec.body["task_definition"].clone()),
        (v1, json!("web:3"))
    );
    assert!(rec.status.is_some());
    sim.put_item(&arns.key, arns.record("web:4", json!("all_at_once")));
    let rec = sim.get(&arns.key).await.unwrap().unwrap();
    assert_eq!(rec.status, None);
    assert_ne!(rec.status_version, v1);
    assert_eq!(
        sim.write_status(&arns.key, v1, &status(Phase::Shifting))
            .await
            .unwrap(),
        StatusWrite::Conflict
    );

    assert!(sim.delete(&arns.key));
    assert_eq!(
        sim.write_status(&arns.key, rec.status_version, &status(Phase::Steady))
            .await
            .unwrap(),
        StatusWrite::Gone
    );
}

#[tokio::test(start_paused = true)]
async fn an_undecodable_status_reads_as_none() {
    let sim = sim(31);
    let arns = web(&sim);
    let mut body = arns.record("web:2", json!("all_at_once"));
    body["status"] = json!({"phase": "NoSuchPhase"});
    sim.put_item(&arns.key, body);
    let rec = sim.get(&arns.key).await.unwrap().unwrap();
    assert_eq!(rec.status, None);
    assert!(rec.body.get("status").is_none());
}

#[tokio::test(start_paused = true)]
async fn list_returns_every_record_sorted_by_key() {
    let sim = sim(32);
    for name in ["zeta", "alpha", "mid"] {
        sim.put_spec(
            &ServiceKey::new("prod", name),
            json!({"service": format!("prod/{name}")}),
        );
    }
    sim.put_spec(&ServiceKey::new("dev", "zeta"), json!({}));
    let keys: Vec<String> = sim
        .list()
        .await
        .unwrap()
        .iter()
        .map(|r| r.key.to_string())
        .collect();
    assert_eq!(keys, ["dev/zeta", "prod/alpha", "prod/mid", "prod/zeta"]);
}

#[tokio::test(start_paused = true)]
async fn the_change_feed_delivers_writer_changes_but_not_status_writes() {
    let sim = sim(33);
    let (tx, mut rx) = mpsc::channel(4);
    let feed = tokio::spawn({
        let sim = sim.clone();
        async move { sim.watch(tx, tokio::sync::oneshot::channel().0).await }
    });
    sim.run_for(Duration::from_secs(1)).await;
    let a = ServiceKey::new("prod", "a");
    let b = ServiceKey::new("prod", "b");
    sim.put_spec(&a, json!({}));
    sim.put_item(&b, json!({}));
    let v = sim.get(&a).await.unwrap().unwrap().status_version;
    sim.write_status(&a, v, &status(Phase::Steady))
        .await
        .unwrap();
    sim.delete(&a);
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(rx.recv().await.expect("a change").key);
    }
    assert_eq!(seen, [a.clone(), b, a]);
    let quiet = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await;
    assert!(quiet.is_err(), "the status write is not a change");

    drop(rx);
    assert_eq!(feed.await.unwrap(), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn a_broken_change_feed_ends_with_a_retryable_error() {
    let sim = sim(34);
    let (tx, _rx) = mpsc::channel(4);
    let feed = tokio::spawn({
        let sim = sim.clone();
        async move { sim.watch(tx, tokio::sync::oneshot::channel().0).await }
    });
    sim.run_for(Duration::from_secs(1)).await;
    sim.break_change_feeds();
    let err = feed.await.unwrap().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient);
}

/// A status of about `bytes` bytes.
fn status_of(bytes: usize) -> Status {
    Status {
        message: "m".repeat(bytes),
        ..Status::default()
    }
}

#[tokio::test(start_paused = true)]
async fn the_item_limit_counts_the_record_and_its_status_together() {
    let sim = sim(31);
    let arns = web(&sim);
    let mut body = arns.record("web:2", json!("all_at_once"));
    body["strategy"] = json!("s".repeat(300_000));
    sim.put_spec(&arns.key, body);
    let rec = sim.get(&arns.key).await.unwrap().unwrap();

    // 300 KB of record leaves under 100 KB for the status.
    let refused = sim
        .write_status(&arns.key, rec.status_version, &status_of(110_000))
        .await
        .unwrap();
    assert_eq!(refused, StatusWrite::TooLarge);
    let after = sim.get(&arns.key).await.unwrap().unwrap();
    assert_eq!(
        (after.status, after.status_version),
        (None, rec.status_version),
        "nothing was written"
    );
    let fits = sim
        .write_status(&arns.key, rec.status_version, &status_of(90_000))
        .await
        .unwrap();
    assert!(matches!(fits, StatusWrite::Written { .. }), "{fits:?}");

    // A writer's change that would outgrow the item is refused too, naming why.
    let grow: crate::cloud::SpecChanges =
        [("notes".to_string(), Some(json!("n".repeat(50_000))))].into();
    let e = sim
        .write_spec(&arns.key, &grow, crate::cloud::Precondition::Exists)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("Item size"), "{e}");
    assert!(
        sim.get(&arns.key)
            .await
            .unwrap()
            .unwrap()
            .body
            .get("notes")
            .is_none()
    );
}

#[tokio::test(start_paused = true)]
async fn items_with_bad_keys_are_listed_apart_and_only_their_status_is_written() {
    let sim = sim(32);
    sim.put_unkeyed("prod", json!({"task_definition": "web:2"}));
    let listing = sim.scan().await.unwrap();
    assert!(listing.records.is_empty());
    let [item] = listing.unkeyed.as_slice() else {
        panic!("{listing:?}")
    };
    assert_eq!(item.given, "prod");
    assert_eq!(item.body["task_definition"], "web:2");

    let written = sim
        .write_unkeyed_status("prod", item.status_version, &status(Phase::Invalid))
        .await
        .unwrap();
    assert!(
        matches!(written, StatusWrite::Written { .. }),
        "{written:?}"
    );
    let stale = sim
        .write_unkeyed_status("prod", item.status_version, &status(Phase::Steady))
        .await
        .unwrap();
    assert_eq!(stale, StatusWrite::Conflict);
    let again = sim.scan().await.unwrap();
    assert_eq!(again.unkeyed[0].status, Some(status(Phase::Invalid)));
    assert_eq!(
        again.unkeyed[0].body, item.body,
        "the writer's attributes are kept"
    );
    assert_eq!(
        sim.write_unkeyed_status("elsewhere", 0, &status(Phase::Invalid))
            .await
            .unwrap(),
        StatusWrite::Gone
    );
    assert_eq!(sim.scan().await.unwrap().unkeyed.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_scan_may_return_a_record_older_than_a_consistent_get_for_up_to_its_staleness() {
    let sim = SimCloud::builder(32)
        .clock(clock())
        .scan_staleness(secs(1))
        .build();
    let arns = web(&sim);
    sim.put_spec(&arns.key, arns.record("web:2", json!("all_at_once")));
    sim.run_for(secs(5)).await;
    let v0 = sim.get(&arns.key).await.unwrap().unwrap().status_version;
    let written = sim
        .write_status(&arns.key, v0, &status(Phase::Shifting))
        .await
        .unwrap();
    let StatusWrite::Written { version } = written else {
        panic!("{written:?}")
    };

    // Within the second: GetItem always sees the write, a Scan sometimes not.
    let mut stale = 0;
    for _ in 0..20 {
        let got = sim.get(&arns.key).await.unwrap().unwrap();
        assert_eq!(got.status_version, version);
        let scanned = sim.scan().await.unwrap().records;
        assert_eq!(scanned.len(), 1);
        if scanned[0].status_version != version {
            assert_eq!(scanned[0].status_version, v0, "only an older version");
            stale += 1;
        }
        sim.run_for(Duration::from_millis(20)).await;
    }
    assert!(stale > 0, "some scans missed the write");

    // Past the staleness bound every scan has it.
    sim.run_for(Duration::from_millis(1_100)).await;
    for _ in 0..10 {
        let scanned = sim.list().await.unwrap();
        assert_eq!(scanned[0].status_version, version);
    }
}

#[tokio::test(start_paused = true)]
async fn scans_are_up_to_date_unless_staleness_is_asked_for() {
    let sim = sim(33);
    let arns = web(&sim);
    sim.put_spec(&arns.key, arns.record("web:2", json!("all_at_once")));
    let v0 = sim.get(&arns.key).await.unwrap().unwrap().status_version;
    let written = sim
        .write_status(&arns.key, v0, &status(Phase::Shifting))
        .await
        .unwrap();
    let StatusWrite::Written { version } = written else {
        panic!("{written:?}")
    };
    assert_eq!(sim.list().await.unwrap()[0].status_version, version);
}

fn release() -> serde_json::Value {
    json!({
        "services": ["prod/web"],
        "set": {"image": "registry.example/web:2", "container": "app"},
        "waves": [{"services": 1}],
    })
}

/// Soak seed 1995 of the release simulation: the reply to a release's
/// start was lost after the table applied it. The start reads the item
/// back and says it was written; a second start of the same name is still
/// refused as someone else's.
#[tokio::test(start_paused = true)]
async fn a_release_start_whose_reply_is_lost_is_known_by_its_item() {
    use crate::cloud::{SpecWrite, releases};
    use crate::{FaultProfile, Faults};
    let sim = sim(31);
    sim.set_faults(Faults {
        store: FaultProfile {
            lost_reply: 1.0,
            ..FaultProfile::NONE
        },
        ..Faults::none()
    });
    let started = releases::start(&sim, "patch", &release()).await.unwrap();
    assert!(matches!(started, SpecWrite::Written { .. }), "{started:?}");
    let stored = releases::get(&sim, "patch").await.unwrap().unwrap();
    assert_eq!(stored.body["waves"], json!([{"services": 1}]));

    sim.set_faults(Faults::none());
    let mut other = release();
    other["waves"] = json!([{"services": 1}, {"percent": 100}]);
    let again = releases::start(&sim, "patch", &other).await.unwrap();
    assert_eq!(again, SpecWrite::PreconditionFailed);
}
