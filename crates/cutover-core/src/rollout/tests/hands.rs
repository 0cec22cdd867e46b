//! Hands on the console mid-rollout: weights moved by hand pause the
//! rollout and are not undone; a third target group holds it until the
//! deadline; a deleted old task set sends production to a healthy
//! candidate; an overdue rollback is alerted.

use std::time::Duration;

use serde_json::json;

use super::fixture::{BLUE, GREEN, World, record};
use crate::rollout::{AlertKind, Event, Phase, Weights};

const S5: Duration = Duration::from_secs(5);
const THIRD: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-spare/3";

fn at_ten_percent() -> World {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "10m"}),
    ));
    for _ in 0..200 {
        w.step();
        if w.production.percent(GREEN) == 10 {
            return w;
        }
        w.advance(S5);
    }
    panic!("never reached 10%: {:?}", w.status);
}

/// Steps `n` times, `S5` apart, returning the alerts raised.
fn run(w: &mut World, n: usize) -> Vec<AlertKind> {
    let mut alerts = Vec::new();
    for _ in 0..n {
        w.advance(S5);
        let d = w.step();
        for e in &d.events {
            if let Event::Alert { kind, .. } = e {
                alerts.push(*kind);
            }
        }
    }
    alerts
}

#[test]
fn weights_moved_by_hand_pause_the_rollout_and_stay_as_they_were_set() {
    let mut w = at_ten_percent();
    w.production = Weights::pair(BLUE, 73, GREEN, 27);
    let alerts = run(&mut w, 60);
    assert_eq!(w.status.phase(), Phase::Paused);
    assert_eq!(
        w.production,
        Weights::pair(BLUE, 73, GREEN, 27),
        "not undone"
    );
    assert_eq!(
        alerts,
        vec![AlertKind::WeightsChangedByHand],
        "alerted once"
    );
    let change = w
        .status
        .rollout
        .as_ref()
        .unwrap()
        .hand_change
        .clone()
        .unwrap();
    assert!(change.seen.contains("web-green=27"), "{change:?}");
    assert!(
        w.status.message.contains("changed outside cutover"),
        "{}",
        w.status.message
    );
    assert!(
        w.status
            .message
            .contains("paused = true, then paused = false")
    );
}

#[test]
fn pausing_and_resuming_acknowledges_the_change_and_the_rollout_goes_on() {
    let mut w = at_ten_percent();
    w.production = Weights::pair(BLUE, 73, GREEN, 27);
    run(&mut w, 3);
    w.set("paused", json!(true));
    run(&mut w, 3);
    assert_eq!(w.status.phase(), Phase::Paused);
    w.set("paused", json!(false));
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.production.percent(GREEN), 100);
}

/// Seed 192: the person paused and resumed while one of the candidate's
/// tasks was being replaced; the acknowledgment waited behind the health
/// gate's grace and was lost, and the rollout stayed paused by hand.
#[test]
fn an_acknowledgment_during_a_task_replacement_still_counts() {
    let mut w = at_ten_percent();
    w.production = Weights::pair(BLUE, 73, GREEN, 27);
    run(&mut w, 3);
    w.healthy.insert(GREEN.into(), 2);
    w.replacing.insert(GREEN.into(), 1);
    w.set("paused", json!(true));
    run(&mut w, 2);
    w.set("paused", json!(false));
    run(&mut w, 2);
    w.healthy.insert(GREEN.into(), 3);
    w.replacing.remove(GREEN);
    assert_eq!(w.settle(), Phase::Steady, "{}", w.status.message);
    assert_eq!(w.production.percent(GREEN), 100);
}

#[test]
fn a_failing_candidate_still_rolls_back_while_paused_by_hand() {
    let mut w = at_ten_percent();
    w.production = Weights::pair(BLUE, 73, GREEN, 27);
    run(&mut w, 3);
    w.healthy.insert(GREEN.into(), 0);
    assert_eq!(w.settle(), Phase::Failed);
    assert_eq!(w.production.percent(BLUE), 100);
}

#[test]
fn a_weight_cutover_itself_may_have_written_does_not_pause() {
    // A step's weight written by an earlier holder, or by a write whose
    // status was lost, is cutover's own.
    let mut w = at_ten_percent();
    w.production = Weights::pair(BLUE, 100, GREEN, 0);
    let alerts = run(&mut w, 5);
    assert!(alerts.is_empty(), "{alerts:?}");
    assert_ne!(w.status.phase(), Phase::Paused);
    assert_eq!(w.settle(), Phase::Steady);
}

#[test]
fn a_third_target_group_holds_the_rollout_then_the_deadline_rolls_back_around_it() {
    let mut w = at_ten_percent();
    w.production.0.insert(THIRD.into(), 10);
    w.healthy.insert(THIRD.into(), 2);
    let held = w.production.clone();
    let alerts = run(&mut w, 50);
    assert_eq!(w.production, held, "held for 4 minutes");
    assert_eq!(alerts, vec![AlertKind::ForeignTargetGroup]);
    assert!(
        w.status.message.contains("web-spare"),
        "{}",
        w.status.message
    );

    assert_eq!(w.settle(), Phase::Failed, "rolled back at the 5m deadline");
    assert_eq!(w.production.get(GREEN), 0);
    assert_eq!(w.production.get(BLUE), 100);
    assert_eq!(w.production.get(THIRD), 10, "the third group is left alone");
}

#[test]
fn a_deleted_old_task_set_sends_production_to_a_healthy_candidate() {
    let mut w = at_ten_percent();
    let blue = w.svc.task_sets[0].arn.clone();
    w.svc.task_sets.retain(|t| t.arn != blue);
    w.healthy.insert(BLUE.into(), 0);
    let alerts = run(&mut w, 3);
    assert_eq!(w.production.percent(GREEN), 100);
    assert_eq!(alerts, vec![AlertKind::PreviousTaskSetDeleted]);
    assert_eq!(w.settle(), Phase::Steady);
}

#[test]
fn a_rollback_past_the_deadline_is_alerted_once_and_goes_on() {
    let mut w = at_ten_percent();
    // The old side cannot serve, so the rollback holds.
    w.healthy.insert(BLUE.into(), 0);
    w.healthy.insert(GREEN.into(), 0);
    let alerts = run(&mut w, 120);
    assert_eq!(w.status.phase(), Phase::RollingBack);
    assert_eq!(
        alerts
            .iter()
            .filter(|k| **k == AlertKind::RollbackOverdue)
            .count(),
        1,
        "{alerts:?}"
    );
    w.healthy.insert(BLUE.into(), 3);
    assert_eq!(w.settle(), Phase::Failed);
    assert_eq!(w.production.percent(BLUE), 100);
}
