//! Health on both sides: a candidate's routine churn is waited out, a
//! failing one rolls back, and a rollback never sends production to a side
//! without a healthy target.

use std::time::Duration;

use serde_json::json;

use super::fixture::{BLUE, GREEN, World, record};
use crate::rollout::{Event, Phase};

const S5: Duration = Duration::from_secs(5);

/// Linear 20% a minute: at 20% on the candidate once it returns.
fn shifting() -> World {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "linear", "percent": 20, "interval": "1m"}),
    ));
    assert!(w.run_until(Phase::Shifting, S5, 10));
    w.step();
    assert_eq!(w.production.percent(GREEN), 20);
    w
}

fn steps(w: &mut World, n: usize) {
    for _ in 0..n {
        w.advance(S5);
        w.step();
    }
}

fn held(w: &World) -> Vec<bool> {
    w.last
        .iter()
        .flat_map(|d| &d.events)
        .filter_map(|e| match e {
            Event::TrafficHeld { neither_serves, .. } => Some(*neither_serves),
            _ => None,
        })
        .collect()
}

#[test]
fn a_routine_task_replacement_mid_shift_holds_the_weight_and_does_not_roll_back() {
    let mut w = shifting();
    // One of the candidate's three tasks is replaced: its target is gone,
    // then `initial`, for 40 s.
    w.healthy.insert(GREEN.into(), 2);
    w.replacing.insert(GREEN.into(), 1);
    let at = w.production.percent(GREEN);
    steps(&mut w, 8);
    assert_eq!(w.status.phase(), Phase::Shifting, "{}", w.status.message);
    assert_eq!(w.production.percent(GREEN), at, "no weight moves meanwhile");
    w.healthy.insert(GREEN.into(), 3);
    w.replacing.remove(GREEN);
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.production.percent(GREEN), 100);
}

#[test]
fn auto_scaling_mid_rollout_does_not_roll_it_back() {
    let mut w = shifting();
    w.svc.desired_count = 5;
    for t in &mut w.svc.task_sets {
        t.computed_desired = Some(5);
        t.running = Some(3);
        t.pending = Some(2);
    }
    w.replacing.insert(GREEN.into(), 2);
    steps(&mut w, 12);
    assert_eq!(w.status.phase(), Phase::Shifting, "{}", w.status.message);
    w.healthy.insert(GREEN.into(), 5);
    w.replacing.remove(GREEN);
    for t in &mut w.svc.task_sets {
        t.running = Some(5);
        t.pending = Some(0);
    }
    assert_eq!(w.settle(), Phase::Steady);
}

#[test]
fn a_candidate_that_loses_half_its_targets_rolls_back() {
    let mut w = shifting();
    w.healthy.insert(GREEN.into(), 1);
    steps(&mut w, 2);
    assert_eq!(w.status.phase(), Phase::RollingBack, "{}", w.status.message);
    assert_eq!(w.settle(), Phase::Failed);
    assert_eq!(w.production.percent(BLUE), 100);
}

#[test]
fn a_shortfall_that_outlasts_the_grace_rolls_back() {
    let mut w = shifting();
    // Tasks that keep being replaced and never all pass their checks.
    w.healthy.insert(GREEN.into(), 2);
    w.replacing.insert(GREEN.into(), 1);
    steps(&mut w, 55);
    assert_eq!(w.status.phase(), Phase::Shifting, "within the 5m grace");
    steps(&mut w, 8);
    assert_eq!(w.status.phase(), Phase::RollingBack, "{}", w.status.message);
}

#[test]
fn a_task_that_keeps_crashing_and_coming_back_is_one_shortfall() {
    let mut w = shifting();
    w.body["gates"] = json!({"target_health": {"grace": "2m"}});
    let mut rolled_back = false;
    // Short 30 s, back 30 s, again and again: never back for the grace,
    // and short for longer than the grace in all.
    for round in 0..40 {
        let short = round % 2 == 0;
        w.healthy.insert(GREEN.into(), if short { 2 } else { 3 });
        w.replacing.insert(GREEN.into(), u32::from(short));
        steps(&mut w, 6);
        if matches!(w.status.phase(), Phase::RollingBack | Phase::Failed) {
            rolled_back = true;
            break;
        }
    }
    assert!(rolled_back, "{}", w.status.message);
}

/// Seeds 166 and 199: one task replaced for 40 s, back at the bar for 90 s,
/// then another replaced. Only the time short spends the grace, so the two do not
/// add up to a failure.
#[test]
fn two_routine_replacements_apart_do_not_spend_one_grace() {
    let mut w = shifting();
    w.body["gates"] = json!({"target_health": {"grace": "2m"}});
    for _ in 0..2 {
        w.healthy.insert(GREEN.into(), 2);
        w.replacing.insert(GREEN.into(), 1);
        steps(&mut w, 8);
        w.healthy.insert(GREEN.into(), 3);
        w.replacing.insert(GREEN.into(), 0);
        steps(&mut w, 18);
    }
    assert!(
        !matches!(w.status.phase(), Phase::RollingBack | Phase::Failed),
        "{}",
        w.status.message
    );
    assert_eq!(w.settle(), Phase::Steady);
}

#[test]
fn a_rollback_holds_production_while_the_old_side_has_no_healthy_target() {
    let mut w = shifting();
    // The old side's tasks all fail at once while the candidate serves.
    w.healthy.insert(BLUE.into(), 0);
    w.set(
        "control",
        json!({"abort": w.status.rollout.as_ref().unwrap().id.to_string()}),
    );
    w.advance(S5);
    w.step();
    assert_eq!(w.status.phase(), Phase::RollingBack);
    assert_eq!(w.production.percent(GREEN), 20, "held where it was");
    assert_eq!(held(&w), vec![false], "told once, when the hold began");
    assert!(
        w.status.message.contains("has no healthy target"),
        "{}",
        w.status.message
    );
    steps(&mut w, 3);
    assert_eq!(w.production.percent(GREEN), 20);
    assert!(held(&w).is_empty(), "not told again on every look");
    // ECS replaced the old side's tasks: traffic returns to it.
    w.healthy.insert(BLUE.into(), 3);
    w.settle();
    assert_eq!(w.production.percent(BLUE), 100);
}

#[test]
fn when_neither_side_can_serve_the_weights_hold_and_it_says_so() {
    let mut w = shifting();
    w.healthy.insert(BLUE.into(), 0);
    w.healthy.insert(GREEN.into(), 0);
    steps(&mut w, 2);
    assert_eq!(w.status.phase(), Phase::RollingBack);
    assert_eq!(held(&w), vec![true]);
    assert!(
        w.status.message.contains("neither side can serve"),
        "{}",
        w.status.message
    );
    steps(&mut w, 4);
    assert_eq!(w.production.percent(GREEN), 20);
    w.healthy.insert(BLUE.into(), 3);
    w.settle();
    assert_eq!(w.production.percent(BLUE), 100);
    assert_eq!(w.status.phase(), Phase::Failed);
}

#[test]
fn the_health_gate_grace_and_threshold_are_set_in_the_record() {
    let mut body = record("web:2", json!("all_at_once"));
    body["gates"] = json!({"target_health": {"grace": "30s", "failure_threshold": 3}});
    let w = World::new(body.clone());
    let gate = w.spec().expect("valid").gates.target_health;
    assert_eq!(gate.grace, Duration::from_secs(30));
    assert_eq!(gate.failure_threshold, 3);

    body["gates"] = json!({"target_health": {"grace": "2h"}});
    let err = World::new(body.clone()).spec().unwrap_err().to_string();
    assert!(err.contains("gates.target_health.grace"), "{err}");
    assert!(err.contains("at most 30m"), "{err}");

    body["gates"] = json!({"target_health": {"grace": "soon"}});
    let err = World::new(body).spec().unwrap_err().to_string();
    assert!(err.contains("gates.target_health.grace"), "{err}");
}

#[test]
fn one_target_failing_its_checks_in_a_fleet_is_waited_out_like_churn() {
    let mut w = shifting();
    // One of three targets fails its checks (a task crashing before ECS
    // replaces it): short of the bar, but not half the candidate.
    w.healthy.insert(GREEN.into(), 2);
    let at = w.production.percent(GREEN);
    steps(&mut w, 8);
    assert_eq!(w.status.phase(), Phase::Shifting, "{}", w.status.message);
    assert_eq!(w.production.percent(GREEN), at, "no weight moves meanwhile");
    w.healthy.insert(GREEN.into(), 3);
    assert_eq!(w.settle(), Phase::Steady);
}

/// Seeds 29, 131, 144 and 183 (single-task candidates whose only task was
/// replaced) and 127 (one that kept failing): a candidate with a share of
/// production and no healthy target gives the share back at once, without
/// failing the version, and gets it again once it is back at its bar.
#[test]
fn a_candidate_with_no_healthy_target_gives_its_share_back_until_it_has_one() {
    let mut w = shifting();
    w.healthy.insert(GREEN.into(), 0);
    w.replacing.insert(GREEN.into(), 3);
    w.advance(S5);
    w.step();
    assert_eq!(w.production.percent(GREEN), 0, "{}", w.status.message);
    assert_eq!(w.status.phase(), Phase::Shifting, "not a failure");
    assert!(
        w.status
            .message
            .contains("goes back to the previous task set"),
        "{}",
        w.status.message
    );
    steps(&mut w, 6);
    assert_eq!(w.production.percent(GREEN), 0, "nothing sent meanwhile");
    assert_eq!(w.status.phase(), Phase::Shifting);
    w.healthy.insert(GREEN.into(), 3);
    w.replacing.remove(GREEN);
    w.advance(S5);
    w.step();
    assert_eq!(w.production.percent(GREEN), 20, "the step's share again");
    assert_eq!(w.settle(), Phase::Steady);
}

#[test]
fn a_candidate_that_never_serves_again_has_no_share_while_its_grace_runs_out() {
    let mut w = shifting();
    w.healthy.insert(GREEN.into(), 0);
    w.replacing.insert(GREEN.into(), 3);
    for _ in 0..80 {
        w.advance(S5);
        w.step();
        if w.status.phase() != Phase::Shifting {
            break;
        }
        assert_eq!(w.production.percent(GREEN), 0, "{}", w.status.message);
    }
    assert_eq!(w.status.phase(), Phase::RollingBack, "{}", w.status.message);
    assert_eq!(w.settle(), Phase::Failed);
    assert_eq!(w.production.percent(BLUE), 100);
}

#[test]
fn a_pause_step_gets_its_share_back_after_a_retreat() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "10m"}),
    ));
    for _ in 0..40 {
        w.advance(S5);
        w.step();
        if w.production.percent(GREEN) == 10 {
            break;
        }
    }
    assert_eq!(w.production.percent(GREEN), 10);
    w.healthy.insert(GREEN.into(), 0);
    w.replacing.insert(GREEN.into(), 3);
    steps(&mut w, 2);
    assert_eq!(w.production.percent(GREEN), 0);
    w.healthy.insert(GREEN.into(), 3);
    w.replacing.remove(GREEN);
    steps(&mut w, 2);
    assert_eq!(
        w.production.percent(GREEN),
        10,
        "the canary holds its 10%, not 0%: {}",
        w.status.message
    );
    assert_eq!(w.status.phase(), Phase::Shifting);
}

#[test]
fn no_share_moves_back_to_an_old_side_that_cannot_serve_either() {
    let mut w = shifting();
    w.healthy.insert(BLUE.into(), 0);
    w.healthy.insert(GREEN.into(), 0);
    w.replacing.insert(GREEN.into(), 3);
    w.advance(S5);
    w.step();
    assert_eq!(w.production.percent(GREEN), 20, "{}", w.status.message);
}

/// Seed 2705: a person moved the candidate to 17%, the rollout resumed at
/// its 10% step, and the old side's only task was being replaced just
/// then: the step would have given weight back to a group with no healthy
/// target.
#[test]
fn a_step_that_gives_weight_back_waits_for_that_side_to_have_a_healthy_target() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "10m"}),
    ));
    assert!(w.run_until(Phase::Shifting, S5, 10));
    // The canary's step is next; the load balancer shows more than it.
    w.production = crate::rollout::Weights::pair(BLUE, 83, GREEN, 17);
    w.status.production_written = Some(w.production.clone());
    w.healthy.insert(BLUE.into(), 0);
    w.replacing.insert(BLUE.into(), 3);
    steps(&mut w, 3);
    assert_eq!(w.production.percent(BLUE), 83, "{}", w.status.message);
    assert!(
        w.status.message.contains("no healthy target"),
        "{}",
        w.status.message
    );
    w.healthy.insert(BLUE.into(), 3);
    w.replacing.remove(BLUE);
    steps(&mut w, 1);
    assert_eq!(w.production.percent(GREEN), 10, "{}", w.status.message);
}

/// What the controller would read for the world as it stands.
fn planned_reads(w: &World) -> crate::rollout::Reads {
    let spec = w.spec().expect("valid record");
    crate::rollout::reads(
        &crate::rollout::Desired::Valid(&spec),
        Some(&crate::rollout::ServiceState::Found(w.svc.clone())),
        &w.status,
        w.now,
    )
}

#[test]
fn without_a_task_failures_gate_the_circuit_breaker_rolls_back_a_candidate_whose_tasks_fail() {
    let mut w = shifting();
    // At its bar, the candidate's stopped tasks are not read at all.
    assert!(planned_reads(&w).failed_tasks.is_none());
    // Its three tasks fail ELB health checks, ECS stops them: their targets
    // drain before a look could see them unhealthy.
    w.healthy.insert(GREEN.into(), 0);
    w.replacing.insert(GREEN.into(), 3);
    w.failed_tasks = 1;
    w.advance(S5);
    w.step();
    assert_eq!(w.status.phase(), Phase::Shifting, "{}", w.status.message);
    assert!(planned_reads(&w).failed_tasks.is_some(), "read while short");
    // One failure of three tasks is churn; the second reaches ECS's
    // circuit breaker threshold for three tasks (half, at least two).
    w.advance(S5);
    w.step();
    assert_eq!(w.status.phase(), Phase::Shifting, "{}", w.status.message);
    w.failed_tasks = 2;
    w.advance(S5);
    w.step();
    assert_eq!(w.status.phase(), Phase::RollingBack, "{}", w.status.message);
    assert_eq!(w.settle(), Phase::Failed);
    let failed = w.status.failed.as_ref().expect("failed revision");
    assert!(failed.reason.contains("task_failures"), "{}", failed.reason);
    assert!(
        failed.reason.contains("circuit breaker"),
        "{}",
        failed.reason
    );
    assert_eq!(w.production.percent(BLUE), 100);
}

/// Seed 201: after web:2 -> web:3 -> web:2, the first web:2 task set still
/// drains with the failures of its own rollout when the second one starts.
/// Those stopped tasks are not the new candidate's, and counting them failed
/// a good version.
#[test]
fn stopped_tasks_are_read_from_the_candidate_not_a_draining_task_set_of_its_version() {
    let mut w = shifting();
    let candidate = w
        .svc
        .task_sets
        .iter()
        .find(|t| t.target_group.as_deref() == Some(GREEN))
        .expect("candidate")
        .clone();
    let mut earlier = candidate.clone();
    earlier.id = "ts-earlier".into();
    earlier.arn = "arn:aws:ecs:us-east-1:1:task-set/prod/web/ecs-svc/earlier".into();
    earlier.status = crate::rollout::TaskSetStatus::Draining;
    // Listed first, as ECS lists the older task set.
    w.svc.task_sets.insert(0, earlier);
    w.healthy.insert(GREEN.into(), 0);
    w.replacing.insert(GREEN.into(), 3);
    steps(&mut w, 1);
    assert_eq!(
        planned_reads(&w).failed_tasks.as_deref(),
        Some(candidate.arn.as_str()),
        "{}",
        w.status.message
    );
}

#[test]
fn the_old_task_set_stays_while_a_candidate_fails_as_its_bake_ends() {
    let mut w = World::new(record("web:2", json!("all_at_once")));
    let blue = w.svc.task_sets[0].arn.clone();
    assert!(
        w.run_until(Phase::Finalizing, S5, 400),
        "{}",
        w.status.message
    );
    assert!(w.deleted.is_empty(), "{:?}", w.deleted);
    // Every candidate target fails its checks just as the bake ends.
    w.healthy.insert(GREEN.into(), 0);
    let phase = w.settle();
    assert!(!w.deleted.contains(&blue), "{:?}", w.deleted);
    assert_eq!(phase, Phase::Failed, "{}", w.status.message);
    assert_eq!(w.production.percent(BLUE), 100);
}
