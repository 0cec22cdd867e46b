//! A record that turns invalid mid-rollout holds the weights, but the
//! candidate stays under the target health gate and the progress deadline
//! of the last valid record.

use std::time::Duration;

use serde_json::json;

use super::fixture::{BLUE, GREEN, World, record};
use crate::rollout::Phase;

const S5: Duration = Duration::from_secs(5);

/// A rollout at 20% of production, waiting out a long pause; then someone
/// writes a record cutover cannot read.
fn shifting_then_invalid() -> World {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "steps", "steps": [{"set_weight": 20}, {"pause": "1h"}, {"set_weight": 60}]}),
    ));
    for _ in 0..100 {
        w.step();
        if w.production.percent(GREEN) == 20 {
            break;
        }
        w.advance(S5);
    }
    assert_eq!(w.production.percent(GREEN), 20, "{:?}", w.status);
    w.set("container_port", json!("eighty"));
    assert!(w.spec().is_err());
    w
}

#[test]
fn an_invalid_record_holds_a_healthy_candidate_where_it_is() {
    let mut w = shifting_then_invalid();
    for _ in 0..20 {
        w.step();
        w.advance(S5);
    }
    assert_eq!(w.status.phase(), Phase::Invalid);
    assert_eq!(w.production.percent(GREEN), 20, "the weights are held");
    assert_eq!(w.deleted, Vec::<String>::new());
    assert!(
        w.status.message.contains("container_port") && w.status.message.contains("watch"),
        "{}",
        w.status.message
    );
    // Fixed: the rollout goes on from where it was held.
    w.set("container_port", json!(8080));
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.created, 1);
    assert_eq!(w.weight_log, vec![20, 60, 100]);
}

#[test]
fn an_invalid_record_does_not_keep_a_failing_candidate_in_production() {
    let mut w = shifting_then_invalid();
    w.step();
    assert_eq!(w.status.phase(), Phase::Invalid);
    // Every candidate target fails its checks.
    w.healthy.insert(GREEN.to_string(), 0);
    for _ in 0..20 {
        w.step();
        w.advance(S5);
    }
    assert_eq!(
        w.production.percent(BLUE),
        100,
        "production is back on blue"
    );
    assert_eq!(w.svc.task_sets.len(), 1, "the candidate is removed");
    let failed = w.status.failed.as_ref().expect("the revision failed");
    assert!(failed.reason.contains("target_health"), "{}", failed.reason);
    assert_eq!(
        w.status.phase(),
        Phase::Invalid,
        "and the record is still invalid"
    );
    assert!(w.status.rollout.is_none());
}

#[test]
fn an_invalid_record_does_not_stop_the_progress_deadline() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "steps", "steps": [{"set_weight": 20}, {"set_weight": 60}]}),
    ));
    // The candidate never gets healthy: the rollout waits in Provisioning.
    w.candidate_healthy = false;
    for _ in 0..5 {
        w.step();
        w.advance(S5);
    }
    assert_eq!(w.status.phase(), Phase::Provisioning);
    assert_eq!(w.created, 1);
    w.set("container_port", json!("eighty"));
    let mut rolled_back = false;
    for _ in 0..100 {
        w.step();
        rolled_back |= w.status.phase() == Phase::RollingBack;
        w.advance(Duration::from_secs(30));
    }
    assert!(rolled_back, "the 5m deadline rolled it back");
    assert_eq!(w.svc.task_sets.len(), 1);
    assert_eq!(w.created, 1, "and nothing started again");
    let failed = w.status.failed.as_ref().expect("the revision failed");
    assert!(
        failed.reason.contains("progress deadline"),
        "{}",
        failed.reason
    );
}

#[test]
fn a_rollout_stored_before_it_kept_a_watch_is_held_as_before() {
    let mut w = shifting_then_invalid();
    if let Some(r) = w.status.rollout.as_mut() {
        r.watch = None;
    }
    w.healthy.insert(GREEN.to_string(), 0);
    for _ in 0..20 {
        w.step();
        w.advance(S5);
    }
    assert_eq!(w.status.phase(), Phase::Invalid);
    assert_eq!(w.production.percent(GREEN), 20);
}

#[test]
fn the_watch_keeps_no_endpoint_of_the_record() {
    let mut body = record("web:2", json!({"type": "all_at_once"}));
    body["gates"] =
        json!({"http": [{"name": "smoke", "url": "https://user:secret@checks.example.com/ok"}]});
    body["hooks"] = json!({"before_install": {"url": "https://user:secret@hooks.example.com/h"}});
    let mut w = World::new(body);
    w.step();
    let stored = serde_json::to_string(&w.status).expect("a status serializes");
    assert!(w.status.rollout.as_ref().is_some_and(|r| r.watch.is_some()));
    assert!(!stored.contains("secret"), "{stored}");
}
