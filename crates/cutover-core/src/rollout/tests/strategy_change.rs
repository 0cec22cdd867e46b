//! A strategy changed mid-rollout: the rollout goes on from the weight the
//! candidate has, to the first step of the new strategy above it, never
//! back down and never straight to 100%.

use std::time::Duration;

use serde_json::{Value, json};

use super::fixture::{World, record};
use crate::rollout::Phase;

const S5: Duration = Duration::from_secs(5);

/// Runs `w` until the candidate has `share` percent of production.
fn until_share(w: &mut World, share: u32) {
    for _ in 0..2_000 {
        w.step();
        if w.candidate_share() == share {
            return;
        }
        w.advance(S5);
    }
    panic!("the candidate never reached {share}%: {:?}", w.status);
}

fn linear(percent: u32, interval: &str) -> Value {
    json!({"type": "linear", "percent": percent, "interval": interval})
}

#[test]
fn fewer_steps_continue_above_the_current_weight_instead_of_jumping_to_all() {
    let mut w = World::new(record("web:2", linear(10, "1m")));
    until_share(&mut w, 50);
    w.set(
        "strategy",
        json!({"type": "steps", "steps": [{"set_weight": 5}, {"pause": "1m"}, {"set_weight": 60}, {"pause": "1m"}]}),
    );
    w.step();
    assert_eq!(w.candidate_share(), 50, "no jump when the strategy changes");
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.weight_log, vec![10, 20, 30, 40, 50, 60, 100]);
}

#[test]
fn more_steps_take_the_first_one_above_the_current_weight() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "10m"}),
    ));
    until_share(&mut w, 10);
    w.set("strategy", linear(25, "1m"));
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.weight_log, vec![10, 25, 50, 75, 100]);
}

#[test]
fn a_strategy_with_no_step_above_holds_its_last_pause_before_all_traffic() {
    let mut w = World::new(record("web:2", linear(10, "1m")));
    until_share(&mut w, 30);
    w.set(
        "strategy",
        json!({"type": "canary", "percent": 20, "interval": "5m"}),
    );
    let changed = w.now;
    for _ in 0..50 {
        w.step();
        assert_eq!(w.candidate_share(), 30, "held at {:?}", w.now);
        w.advance(S5);
    }
    assert!(w.now < changed + Duration::from_secs(300));
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.weight_log, vec![10, 20, 30, 100]);
}

#[test]
fn an_unchanged_strategy_written_again_changes_nothing() {
    let mut w = World::new(record("web:2", linear(25, "1m")));
    until_share(&mut w, 50);
    w.set("strategy", linear(25, "1m"));
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.weight_log, vec![25, 50, 75, 100]);
}

/// Seeds 1460, 3901 and 18 more of a 5,000-seed soak: the status write that
/// carried cutover's last weights was lost, then the strategy changed. The
/// share the rollout went on from is no step of the new strategy, and was
/// taken for a change by hand: the rollout paused for good.
#[test]
fn a_strategy_change_after_a_lost_status_write_is_not_a_change_by_hand() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "canary", "percent": 42, "interval": "10m"}),
    ));
    until_share(&mut w, 42);
    w.status.production_written = None;
    w.set("strategy", linear(17, "1m"));
    w.step();
    assert_ne!(w.status.phase(), Phase::Paused, "{}", w.status.message);
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.weight_log, vec![42, 51, 68, 85, 100]);
}
