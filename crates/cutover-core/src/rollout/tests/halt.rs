//! The fleet-wide halt, as each rollout sees it: no step forward and no
//! start while it is on, its reason in the status, no deadline running,
//! and a rollback that still runs.

use std::time::Duration;

use serde_json::json;

use super::fixture::{BLUE, GREEN, World, record};
use crate::rollout::Phase;
use crate::rollout::halt::Halt;

const S5: Duration = Duration::from_secs(5);

fn halt() -> Option<Halt> {
    Some(Halt {
        reason: "INC-4411: checkout errors".into(),
        by: Some("oncall".into()),
        since: None,
    })
}

fn shifting() -> World {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "linear", "percent": 10, "interval": "1m"}),
    ));
    assert!(w.run_until(Phase::Shifting, S5, 20));
    for _ in 0..15 {
        w.step();
        w.advance(S5);
    }
    assert!(w.production.percent(GREEN) > 0);
    w
}

#[test]
fn a_halt_holds_a_rollout_mid_shift_with_its_reason_past_its_deadline() {
    let mut w = shifting();
    w.halt = halt();
    w.step();
    assert_eq!(w.status.phase(), Phase::Paused);
    let held = w.production.percent(GREEN);
    // 100 looks, 5 s apart: past the record's 5m progress deadline.
    for _ in 0..100 {
        w.advance(S5);
        w.step();
        assert!(
            w.status.message.contains("INC-4411: checkout errors"),
            "{}",
            w.status.message
        );
        assert!(w.status.message.contains("cutover unhalt"));
    }
    assert_eq!(w.production.percent(GREEN), held, "no step while halted");
    assert_eq!(w.status.phase(), Phase::Paused, "no deadline while halted");
    let entered = w
        .status
        .history
        .iter()
        .rev()
        .find(|t| t.to == Phase::Paused)
        .expect("a transition into the hold");
    assert!(
        entered.reason.contains("halted fleet-wide: INC-4411"),
        "{}",
        entered.reason
    );
}

#[test]
fn lifting_the_halt_resumes_where_the_rollout_stood() {
    let mut w = shifting();
    w.halt = halt();
    for _ in 0..100 {
        w.advance(S5);
        w.step();
    }
    w.halt = None;
    w.step();
    assert_eq!(w.status.phase(), Phase::Shifting);
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.production.percent(GREEN), 100);
    assert_eq!(w.created, 1);
}

#[test]
fn a_revision_written_while_halted_is_not_started_until_lifted() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "1m"}),
    ));
    w.halt = halt();
    for _ in 0..50 {
        w.step();
        w.advance(S5);
    }
    assert_eq!(w.created, 0, "no candidate while halted");
    assert_eq!(w.production.percent(BLUE), 100);
    assert!(
        w.status.message.contains("INC-4411"),
        "{}",
        w.status.message
    );
    w.halt = None;
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.created, 1);
}

#[test]
fn a_failing_candidate_still_rolls_back_while_halted() {
    let mut w = shifting();
    w.halt = halt();
    w.step();
    w.healthy.insert(GREEN.into(), 0);
    assert_eq!(w.settle(), Phase::Failed, "{}", w.status.message);
    assert_eq!(w.production.percent(BLUE), 100);
}

#[test]
fn a_halt_does_not_pass_for_someone_seeing_weights_changed_by_hand() {
    let mut w = shifting();
    // Someone moved production by hand: the rollout holds for a person.
    w.production = crate::rollout::Weights::pair(BLUE, 73, GREEN, 27);
    for _ in 0..3 {
        w.step();
        w.advance(S5);
    }
    assert_eq!(w.status.phase(), Phase::Paused);
    // A halt and its lifting say nothing about that move.
    w.halt = halt();
    for _ in 0..3 {
        w.step();
        w.advance(S5);
    }
    w.halt = None;
    for _ in 0..3 {
        w.step();
        w.advance(S5);
    }
    assert_eq!(w.status.phase(), Phase::Paused, "{}", w.status.message);
    assert_eq!(w.production.percent(GREEN), 27);
}

/// Simulation seed 5: someone saw weights moved by hand and paused and
/// resumed the record while the fleet was halted; once the halt was
/// lifted the rollout stayed paused by hand for good.
#[test]
fn a_person_pausing_during_a_halt_still_acknowledges_weights_changed_by_hand() {
    let mut w = shifting();
    w.production = crate::rollout::Weights::pair(BLUE, 73, GREEN, 27);
    for _ in 0..3 {
        w.step();
        w.advance(S5);
    }
    assert_eq!(w.status.phase(), Phase::Paused);
    w.halt = halt();
    w.step();
    w.set("paused", json!(true));
    w.step();
    w.advance(S5);
    w.set("paused", json!(false));
    w.step();
    w.advance(S5);
    w.halt = None;
    assert_eq!(w.settle(), Phase::Steady, "{}", w.status.message);
    assert_eq!(w.production.percent(GREEN), 100);
}

/// A person deletes the old task set; six looks later production is all
/// on the candidate.
fn blue_deleted_by_a_person(w: &mut World) {
    let blue = w.svc.task_sets[0].arn.clone();
    w.svc.task_sets.retain(|t| t.arn != blue);
    w.healthy.insert(BLUE.into(), 0);
    for _ in 0..6 {
        w.advance(S5);
        w.step();
    }
    assert_eq!(w.production.percent(GREEN), 100, "{}", w.status.message);
}

/// Soak seed 1581: a person deleted the task set production was shifting
/// from just as a halt came, and the halt kept 90% of production on its
/// emptied target group for 127 s. A hold stops steps forward, never the
/// rescue: production goes to the candidate, which can serve; the
/// candidate bakes once the halt is lifted.
#[test]
fn a_halt_still_moves_production_off_a_deleted_old_task_set() {
    let mut w = shifting();
    w.halt = halt();
    w.step();
    assert_eq!(w.status.phase(), Phase::Paused);
    assert!(w.production.percent(BLUE) > 0);
    blue_deleted_by_a_person(&mut w);
    assert_eq!(w.status.phase(), Phase::Paused, "still held");
    assert!(
        w.status.message.contains("INC-4411"),
        "{}",
        w.status.message
    );
    w.halt = None;
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.production.percent(GREEN), 100);
}

/// The same rescue under the record's own `paused`.
#[test]
fn a_paused_rollout_still_moves_production_off_a_deleted_old_task_set() {
    let mut w = shifting();
    w.set("paused", json!(true));
    w.step();
    assert_eq!(w.status.phase(), Phase::Paused);
    blue_deleted_by_a_person(&mut w);
    assert_eq!(w.status.phase(), Phase::Paused);
    w.set("paused", json!(false));
    assert_eq!(w.settle(), Phase::Steady);
}
