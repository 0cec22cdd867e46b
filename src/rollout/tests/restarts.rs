//! A controller restart at any point resumes the rollout: no second task set
//! and no jump in weights, whether the status survived or was wiped.

use std::time::Duration;

use serde_json::json;

use super::fixture::{GREEN, World, record};
use crate::rollout::{Phase, Status};

const S5: Duration = Duration::from_secs(5);

fn body() -> serde_json::Value {
    let mut b = record(
        "web:2",
        json!({"type": "steps", "steps": [{"set_weight": 10}, {"pause": "1m"}, {"set_weight": 40}, {"pause": "1m"}]}),
    );
    b["test_listener"] = json!(super::fixture::TEST);
    b
}

/// Runs a rollout and, before every step, simulates a restart by handing the
/// next decision a status from `restart`. Returns the finished world.
fn run_with_restarts(restart: impl Fn(&Status) -> Status) -> World {
    let mut w = World::new(body());
    let mut last_share = 0;
    for _ in 0..400 {
        w.status = restart(&w.status);
        w.step();
        let share = w.production.percent(GREEN);
        if w.status.phase != Phase::RollingBack && w.status.rollout.is_some() {
            assert!(
                share >= last_share,
                "weights went back from {last_share} to {share} in {:?}",
                w.status.phase
            );
        }
        last_share = share;
        if w.status.phase == Phase::Steady && w.status.rollout.is_none() && w.created == 1 {
            break;
        }
        w.advance(S5);
    }
    w
}

#[test]
fn a_restart_with_the_stored_status_resumes_exactly() {
    let w = run_with_restarts(|s| s.clone());
    assert_eq!(w.status.phase, Phase::Steady);
    assert_eq!(w.created, 1);
    assert_eq!(w.weight_log, vec![10, 40, 100]);
}

#[test]
fn a_restart_in_every_phase_creates_no_second_task_set() {
    // Record the status at each phase of a clean run, then restart from each.
    let mut w = World::new(body());
    let mut snapshots: Vec<(Phase, World)> = vec![];
    for _ in 0..200 {
        w.step();
        let phase = w.status.phase;
        if !snapshots.iter().any(|(p, _)| *p == phase) {
            let mut copy = World::new(body());
            copy.svc = w.svc.clone();
            copy.production = w.production.clone();
            copy.test = w.test.clone();
            copy.healthy = w.healthy.clone();
            copy.status = w.status.clone();
            copy.now = w.now;
            copy.created = w.created;
            copy.next_id = w.next_id;
            snapshots.push((phase, copy));
        }
        if phase == Phase::Steady && w.status.rollout.is_none() && w.created == 1 {
            break;
        }
        w.advance(S5);
    }
    let seen: Vec<Phase> = snapshots.iter().map(|(p, _)| *p).collect();
    for p in [
        Phase::Provisioning,
        Phase::Testing,
        Phase::Shifting,
        Phase::Baking,
        Phase::Finalizing,
    ] {
        assert!(seen.contains(&p), "the run never reached {p}: {seen:?}");
    }
    for (phase, mut copy) in snapshots {
        let before = copy.production.percent(GREEN);
        copy.step();
        assert!(
            copy.production.percent(GREEN) >= before || copy.status.phase == Phase::Steady,
            "restart in {phase} moved weights back"
        );
        assert_eq!(copy.settle(), Phase::Steady, "restart in {phase}");
        assert_eq!(
            copy.created, 1,
            "restart in {phase} created a second task set"
        );
    }
}

#[test]
fn a_wiped_status_mid_shift_is_rebuilt_from_the_live_service() {
    let mut w = World::new(body());
    for _ in 0..200 {
        w.step();
        if w.production.percent(GREEN) == 40 {
            break;
        }
        w.advance(S5);
    }
    assert_eq!(w.production.percent(GREEN), 40);
    // A writer replaced the whole item (PutItem), so the status is gone.
    w.status = Status::default();
    w.step();
    assert_eq!(w.status.phase, Phase::Shifting);
    assert_eq!(w.production.percent(GREEN), 40, "no jump");
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.created, 1);
}
