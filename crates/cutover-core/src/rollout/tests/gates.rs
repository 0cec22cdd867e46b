//! What decisions report about gates, for metrics and logs.

use std::time::Duration;

use serde_json::json;

use super::fixture::{GREEN, World, record};
use crate::rollout::{Decision, Event, Phase, TARGET_HEALTH};

const S5: Duration = Duration::from_secs(5);

fn gate_events(d: &Decision) -> Vec<(&'static str, bool)> {
    d.events
        .iter()
        .filter_map(|e| match e {
            Event::GateEvaluated { gate, passed } => Some((*gate, *passed)),
            _ => None,
        })
        .collect()
}

fn shifting() -> World {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "5m"}),
    ));
    assert!(w.run_until(Phase::Shifting, S5, 10));
    w.advance(S5);
    w
}

#[test]
fn a_healthy_candidate_under_traffic_reports_one_passed_health_gate_per_decision() {
    let mut w = shifting();
    for _ in 0..5 {
        let d = w.step();
        assert_eq!(gate_events(&d), vec![(TARGET_HEALTH, true)]);
        w.advance(S5);
    }
}

#[test]
fn an_unhealthy_candidate_reports_a_failed_health_gate_and_rolls_back_at_the_second() {
    let mut w = shifting();
    w.step();
    w.advance(S5);
    w.healthy.insert(GREEN.into(), 0);
    let d = w.step();
    assert_eq!(gate_events(&d), vec![(TARGET_HEALTH, false)]);
    // The default failure_threshold is 2.
    assert_eq!(w.status.phase(), Phase::Shifting);
    w.advance(S5);
    let d = w.step();
    assert_eq!(gate_events(&d), vec![(TARGET_HEALTH, false)]);
    assert_eq!(w.status.phase(), Phase::RollingBack);
}

#[test]
fn a_steady_service_reports_no_gate() {
    let mut w = World::new(record("web:2", json!("all_at_once")));
    w.settle();
    let d = w.step();
    assert!(gate_events(&d).is_empty(), "{:?}", d.events);
}
