//! Analysis gates and lifecycle hooks, through the decision.

use std::time::Duration;

use serde_json::{Value, json};

use super::fixture::{BLUE, GREEN, TEST, World, record};
use crate::rollout::gate::{Reading, Verdict};
use crate::rollout::hook::HookPoint;
use crate::rollout::{Event, Outcome, Phase};

const S5: Duration = Duration::from_secs(5);

fn prometheus(threshold: u32) -> Value {
    json!({
        "name": "error-ratio",
        "address": "http://prometheus:9090",
        "query": "sum(rate(errors[1m])) / sum(rate(requests[1m]))",
        "max": 0.01,
        "interval": "5s",
        "failure_threshold": threshold,
    })
}

fn with_gate(strategy: Value, threshold: u32) -> World {
    let mut body = record("web:2", strategy);
    body["gates"] = json!({"prometheus": [prometheus(threshold)]});
    World::new(body)
}

fn read(w: &mut World, verdict: Verdict) {
    w.readings.insert(
        "error-ratio".into(),
        Reading {
            at: w.now,
            verdict,
            detail: format!(
                "error ratio {}",
                if verdict == Verdict::Pass {
                    "0.001"
                } else {
                    "0.2"
                }
            ),
        },
    );
}

fn outcome(
    w: &mut World,
    steps: usize,
    verdict: impl Fn(usize) -> Option<Verdict>,
) -> Option<Outcome> {
    for i in 0..steps {
        match verdict(i) {
            Some(v) => read(w, v),
            None => {
                w.readings.clear();
            }
        }
        let d = w.step();
        for e in d.events {
            if let Event::RolloutFinished { outcome, .. } = e {
                return Some(outcome);
            }
        }
        w.advance(S5);
    }
    None
}

#[test]
fn a_gate_that_keeps_passing_lets_the_rollout_through() {
    let mut w = with_gate(
        json!({"type": "canary", "percent": 10, "interval": "1m"}),
        2,
    );
    assert_eq!(
        outcome(&mut w, 200, |_| Some(Verdict::Pass)),
        Some(Outcome::Promoted)
    );
    assert_eq!(w.weight_log, vec![10, 100]);
}

#[test]
fn a_gate_failing_its_threshold_in_a_row_rolls_back_and_names_the_gate() {
    let mut w = with_gate(
        json!({"type": "canary", "percent": 10, "interval": "10m"}),
        2,
    );
    assert!(w.run_until(Phase::Shifting, S5, 20));
    let o = outcome(&mut w, 50, |i| {
        Some(if i < 3 { Verdict::Pass } else { Verdict::Fail })
    });
    assert_eq!(o, Some(Outcome::RolledBack));
    assert_eq!(w.production.percent(BLUE), 100);
    let reason = &w.status.failed.as_ref().unwrap().reason;
    assert!(
        reason.contains("error-ratio") && reason.contains("0.2"),
        "{reason}"
    );
}

#[test]
fn a_flapping_gate_below_its_threshold_does_not_roll_back() {
    let mut w = with_gate(
        json!({"type": "canary", "percent": 10, "interval": "1m"}),
        2,
    );
    let o = outcome(&mut w, 300, |i| {
        Some(if i % 2 == 0 {
            Verdict::Fail
        } else {
            Verdict::Pass
        })
    });
    assert_eq!(o, Some(Outcome::Promoted));
}

#[test]
fn a_step_waits_for_a_passing_reading_and_the_deadline_ends_the_wait() {
    let mut w = with_gate(json!("all_at_once"), 2);
    // Readings come, but say nothing (an empty query with on_empty = wait).
    let o = outcome(&mut w, 400, |_| Some(Verdict::Inconclusive));
    assert_eq!(o, Some(Outcome::RolledBack));
    let reason = &w.status.failed.as_ref().unwrap().reason;
    assert!(
        reason.contains("deadline") && reason.contains("error-ratio"),
        "{reason}"
    );
}

#[test]
fn a_gate_reading_is_counted_once() {
    let mut w = with_gate(
        json!({"type": "canary", "percent": 10, "interval": "10m"}),
        2,
    );
    assert!(w.run_until(Phase::Shifting, S5, 20));
    read(&mut w, Verdict::Fail);
    // The same failing reading seen on many passes is still one failure.
    for _ in 0..10 {
        w.step();
    }
    assert_eq!(w.status.phase(), Phase::Shifting);
    assert_eq!(
        w.status.rollout.as_ref().unwrap().gates["error-ratio"].consecutive_failures,
        1
    );
}

fn hooked(timeout: &str) -> World {
    let mut body = record("web:2", json!("all_at_once"));
    body["test_listener"] = json!(TEST);
    body["hooks"] =
        json!({"after_test_traffic": {"url": "http://hooks.internal/smoke", "timeout": timeout}});
    World::new(body)
}

fn verdict(w: &mut World, answer: &str) {
    let id = w.status.rollout.as_ref().unwrap().id.to_string();
    w.set("control", json!({"hooks": {"after_test_traffic": {"rollout": id, "verdict": answer, "detail": "smoke tests"}}}));
}

#[test]
fn the_after_test_traffic_hook_is_called_once_and_its_pass_lets_production_move() {
    let mut w = hooked("5m");
    assert!(w.run_until(Phase::Testing, S5, 20));
    for _ in 0..10 {
        w.step();
        w.advance(S5);
    }
    assert_eq!(
        w.hooks_called,
        vec![HookPoint::AfterTestTraffic],
        "called once"
    );
    assert_eq!(
        w.production.percent(GREEN),
        0,
        "no production traffic before the verdict"
    );
    assert_eq!(w.test.percent(GREEN), 100);
    verdict(&mut w, "pass");
    assert_eq!(w.settle(), Phase::Steady);
}

#[test]
fn a_hook_that_says_fail_rolls_back() {
    let mut w = hooked("5m");
    assert!(w.run_until(Phase::Testing, S5, 20));
    w.step();
    verdict(&mut w, "fail");
    assert_eq!(w.settle(), Phase::Failed);
    let reason = &w.status.failed.as_ref().unwrap().reason;
    assert!(
        reason.contains("after_test_traffic") && reason.contains("smoke tests"),
        "{reason}"
    );
    assert_eq!(
        w.test.percent(BLUE),
        100,
        "the test route returns to the active task set"
    );
}

#[test]
fn a_hook_without_a_verdict_in_time_rolls_back() {
    let mut w = hooked("1m");
    assert!(w.run_until(Phase::Testing, S5, 20));
    assert_eq!(w.settle(), Phase::Failed);
    assert!(
        w.status
            .failed
            .as_ref()
            .unwrap()
            .reason
            .contains("no verdict within 1m")
    );
}

#[test]
fn a_verdict_for_another_rollout_is_ignored() {
    let mut w = hooked("5m");
    assert!(w.run_until(Phase::Testing, S5, 20));
    w.set("control", json!({"hooks": {"after_test_traffic": {"rollout": "0000000000000000#1", "verdict": "pass"}}}));
    for _ in 0..5 {
        w.step();
        w.advance(S5);
    }
    assert_eq!(w.status.phase(), Phase::Testing);
}

#[test]
fn too_many_stopped_candidate_tasks_trip_the_circuit_breaker() {
    let mut body = record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "10m"}),
    );
    body["gates"] = json!({"task_failures": {"threshold": 3}});
    let mut w = World::new(body);
    assert!(w.run_until(Phase::Shifting, S5, 20));
    w.failed_tasks = 2;
    w.step();
    assert_eq!(w.status.phase(), Phase::Shifting);
    w.failed_tasks = 3;
    assert_eq!(w.settle(), Phase::Failed);
    assert!(
        w.status
            .failed
            .as_ref()
            .unwrap()
            .reason
            .contains("task_failures")
    );
}

#[test]
fn invalid_gate_and_hook_declarations_name_their_field() {
    let mut body = record("web:2", json!("all_at_once"));
    body["gates"] =
        json!({"prometheus": [{"name": "x", "address": "prometheus:9090", "query": "up"}]});
    body["hooks"] = json!({"after_install": {"url": "ftp://x"}});
    let e = World::new(body).spec().unwrap_err().to_string();
    for field in [
        "gates.prometheus[0].address",
        "gates.prometheus[0]",
        "hooks.after_install.url",
    ] {
        assert!(e.contains(field), "{field}: {e}");
    }
    assert!(e.contains("max"), "{e}");
}
