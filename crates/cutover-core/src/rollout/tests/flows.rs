//! Strategies, phases, gates, deadlines, supersede and human controls.

use std::time::Duration;

use serde_json::json;

use super::fixture::{BLUE, GREEN, TEST, World, record};
use crate::rollout::{
    Command, Desired, Event, Observed, Outcome, Phase, Revision, ServiceState, Wake, decide,
};

const S5: Duration = Duration::from_secs(5);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_record_that_matches_the_running_task_definition_is_steady_without_load_balancer_reads() {
    let mut w = World::new(record("web:1", json!("all_at_once")));
    let spec = w.spec().unwrap();
    let observed = w.observe(&Ok(spec));
    assert!(observed.production.is_none() && observed.targets.is_empty());
    let d = w.step();
    assert!(d.commands.is_empty());
    assert_eq!(d.wake, Wake::Idle);
    assert_eq!(w.status.phase(), Phase::Steady);
}

#[test]
fn all_at_once_moves_everything_in_one_step_then_bakes_and_removes_blue() {
    let mut w = World::new(record("web:2", json!("all_at_once")));
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.weight_log, vec![100]);
    assert_eq!(w.created, 1);
    assert_eq!(w.svc.task_sets.len(), 1, "blue was removed");
    assert_eq!(w.svc.task_sets[0].target_group.as_deref(), Some(GREEN));
    assert_eq!(w.status.active.as_ref().unwrap().target_group, GREEN);
    assert_eq!(
        w.phases(),
        vec![
            Phase::Steady,
            Phase::Provisioning,
            Phase::Shifting,
            Phase::Baking,
            Phase::Finalizing,
            Phase::Steady
        ]
    );
}

#[test]
fn finalizing_reads_target_health_until_the_old_task_set_is_gone_and_rolling_back_reads_both_sides()
{
    let mut w = World::new(record("web:2", json!("all_at_once")));
    let blue = w.svc.task_sets[0].arn.clone();
    let mut phases_read = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let spec = w.spec();
        if !w.observe(&spec).targets.is_empty() {
            phases_read.insert(w.status.phase());
            if w.status.phase() == Phase::Finalizing {
                // The old task set is the way back until it is removed;
                // after that, there is nothing left to decide by health.
                assert!(!w.deleted.contains(&blue), "read after the delete");
            }
        }
        w.step();
        w.now = w.now + S5;
        if w.status.phase() == Phase::Steady && w.created == 1 {
            break;
        }
    }
    assert_eq!(w.status.phase(), Phase::Steady);
    assert!(
        phases_read.contains(&Phase::Provisioning),
        "{phases_read:?}"
    );
    assert!(w.deleted.contains(&blue));

    // A candidate that turns unhealthy is rolled back reading the health
    // of the side production returns to, and the candidate's.
    let mut w = World::new(record(
        "web:2",
        json!({"type": "linear", "percent": 50, "interval": "1m"}),
    ));
    assert!(w.run_until(Phase::Shifting, S5, 20));
    w.healthy.insert(GREEN.to_string(), 0);
    assert!(w.run_until(Phase::RollingBack, S5, 20));
    let spec = w.spec();
    let read: Vec<String> = w.observe(&spec).targets.into_keys().collect();
    assert_eq!(read, vec![BLUE.to_string(), GREEN.to_string()]);
}

#[test]
fn canary_holds_at_ten_percent_until_interval_passes() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "5m"}),
    ));
    assert!(w.run_until(Phase::Shifting, S5, 10));
    w.step();
    assert_eq!(w.production.percent(GREEN), 10);
    let reached = w.now;
    for _ in 0..80 {
        w.advance(S5);
        w.step();
        if w.now < reached + secs(300) {
            assert_eq!(
                w.production.percent(GREEN),
                10,
                "still holding at {:?}",
                w.now
            );
        }
    }
    assert_eq!(w.production.percent(GREEN), 100);
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.weight_log, vec![10, 100]);
}

#[test]
fn linear_adds_its_percentage_every_interval() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "linear", "percent": 25, "interval": "1m"}),
    ));
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.weight_log, vec![25, 50, 75, 100]);
}

#[test]
fn codedeploy_names_run_their_configuration() {
    let mut w = World::new(record(
        "web:2",
        json!("CodeDeployDefault.ECSLinear10PercentEvery1Minutes"),
    ));
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.weight_log, (1..=10).map(|i| i * 10).collect::<Vec<_>>());
}

#[test]
fn explicit_steps_set_weights_and_pause() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "steps", "steps": [{"set_weight": 5}, {"pause": "1m"}, {"set_weight": 50}, {"pause": 60}]}),
    ));
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.weight_log, vec![5, 50, 100]);
}

#[test]
fn the_test_route_gets_the_candidate_before_production_does() {
    let mut body = record("web:2", json!("all_at_once"));
    body["test_listener"] = json!(TEST);
    let mut w = World::new(body);
    assert!(w.run_until(Phase::Testing, S5, 10));
    assert_eq!(w.test.percent(GREEN), 100);
    assert_eq!(
        w.production.percent(GREEN),
        0,
        "production untouched while testing"
    );
    assert_eq!(w.settle(), Phase::Steady);
    assert!(w.phases().contains(&Phase::Testing));
}

#[test]
fn a_step_counts_only_when_the_load_balancer_shows_the_weights() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "canary", "percent": 20, "interval": "1m"}),
    ));
    assert!(w.run_until(Phase::Shifting, S5, 10));
    // The load balancer accepted the change but does not show it yet.
    w.production = crate::rollout::Weights::pair(BLUE, 100, GREEN, 0);
    let spec = w.spec().unwrap();
    let desired = crate::rollout::Desired::Valid(&spec);
    let observed = w.observe(&Ok(spec.clone()));
    let d = crate::rollout::decide(&desired, &observed, &w.status, w.now + secs(3));
    assert!(d.commands.is_empty(), "not resent within the grace");
    assert_eq!(d.wake, Wake::Poll);
    assert_eq!(
        d.status.rollout.as_ref().unwrap().step,
        0,
        "not done before it is visible"
    );
    let d = crate::rollout::decide(&desired, &observed, &w.status, w.now + secs(11));
    assert!(
        matches!(d.commands[..], [Command::SetWeights { .. }]),
        "resent after the grace"
    );
    assert_eq!(d.status.rollout.as_ref().unwrap().step, 0);
}

#[test]
fn a_candidate_that_never_gets_healthy_is_rolled_back_at_the_deadline() {
    let mut w = World::new(record("web:2", json!("all_at_once")));
    w.candidate_healthy = false;
    assert!(w.run_until(Phase::Provisioning, S5, 3));
    let started = w.now;
    assert_eq!(w.settle(), Phase::Failed);
    assert!(w.now >= started + secs(300), "not before the deadline");
    // Production may be written back to blue once (a lost status could hide
    // a write on its way), but the candidate never gets any of it.
    assert!(
        w.weight_log.iter().all(|share| *share == 0),
        "production never moved: {:?}",
        w.weight_log
    );
    assert_eq!(w.svc.task_sets.len(), 1, "candidate deleted");
    assert_eq!(w.svc.task_sets[0].target_group.as_deref(), Some(BLUE));
    assert!(
        w.status.message.contains("deadline"),
        "{}",
        w.status.message
    );
    assert!(
        w.status.message.contains("healthy targets"),
        "{}",
        w.status.message
    );
    let finished = w.last.as_ref().unwrap();
    let _ = finished;
}

#[test]
fn a_candidate_that_turns_unhealthy_mid_shift_is_rolled_back_and_reported() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "linear", "percent": 20, "interval": "1m"}),
    ));
    assert!(w.run_until(Phase::Shifting, S5, 10));
    for _ in 0..20 {
        w.step();
        w.advance(S5);
    }
    assert!(w.production.percent(GREEN) >= 20);
    w.healthy.insert(GREEN.into(), 1);
    let mut outcome = None;
    for _ in 0..20 {
        let d = w.step();
        for e in d.events {
            if let Event::RolloutFinished { outcome: o, .. } = e {
                outcome = Some(o);
            }
        }
        w.advance(S5);
    }
    assert_eq!(outcome, Some(Outcome::RolledBack));
    assert_eq!(w.status.phase(), Phase::Failed);
    assert_eq!(w.production.percent(BLUE), 100);
    assert_eq!(w.svc.task_sets.len(), 1);
    assert!(
        w.status
            .failed
            .as_ref()
            .unwrap()
            .reason
            .contains("target_health")
    );
    // The failed revision is not tried again by itself.
    let created = w.created;
    for _ in 0..10 {
        w.step();
        w.advance(secs(60));
    }
    assert_eq!(w.created, created);
}

#[test]
fn a_failure_during_bake_rolls_back_and_restores_the_old_primary() {
    let mut w = World::new(record("web:2", json!("all_at_once")));
    assert!(w.run_until(Phase::Baking, S5, 20));
    w.step();
    w.advance(S5);
    w.step();
    assert_eq!(
        w.svc.primary().unwrap().target_group.as_deref(),
        Some(GREEN)
    );
    w.healthy.insert(GREEN.into(), 0);
    assert_eq!(w.settle(), Phase::Failed);
    assert_eq!(w.production.percent(BLUE), 100);
    assert_eq!(w.svc.primary().unwrap().target_group.as_deref(), Some(BLUE));
    assert_eq!(w.svc.task_sets.len(), 1);
}

#[test]
fn a_new_revision_mid_rollout_supersedes_it_traffic_first() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "linear", "percent": 10, "interval": "1m"}),
    ));
    assert!(w.run_until(Phase::Shifting, S5, 10));
    for _ in 0..30 {
        w.step();
        w.advance(S5);
    }
    assert!(w.production.percent(GREEN) >= 20);
    let first = w.status.rollout.as_ref().unwrap().id.revision.clone();
    w.set("task_definition", json!("web:3"));
    w.step();
    assert_eq!(w.status.phase(), Phase::RollingBack);
    assert_eq!(w.production.percent(BLUE), 100, "traffic returns first");
    let mut outcomes = vec![];
    let mut starts = vec![];
    for _ in 0..400 {
        let d = w.step();
        for e in d.events {
            match e {
                Event::RolloutFinished {
                    outcome, rollout, ..
                } => outcomes.push((outcome, rollout.revision)),
                Event::RolloutStarted { rollout } => starts.push(rollout.revision),
                _ => {}
            }
        }
        if w.status.phase() == Phase::Steady
            && w.status.rollout.is_none()
            && !outcomes.is_empty()
            && outcomes.len() >= 2
        {
            break;
        }
        w.advance(S5);
    }
    assert_eq!(outcomes[0], (Outcome::Superseded, first.clone()));
    assert_ne!(starts[0], first);
    assert_eq!(outcomes[1].0, Outcome::Promoted);
    assert_eq!(w.svc.task_sets.len(), 1);
    assert_ne!(w.svc.task_sets[0].revision(), Some(first));
}

#[test]
fn writing_back_the_old_version_during_bake_switches_back_without_replaying_steps() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "linear", "percent": 50, "interval": "1m"}),
    ));
    assert!(w.run_until(Phase::Baking, S5, 100));
    w.step();
    let shifts = w.weight_log.len();
    w.set("task_definition", json!("web:1"));
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.weight_log.len(), shifts + 1, "one weight change back");
    assert_eq!(*w.weight_log.last().unwrap(), 0);
    assert_eq!(w.svc.primary().unwrap().target_group.as_deref(), Some(BLUE));
    assert_eq!(w.created, 1);
}

#[test]
fn pause_holds_the_rollout_and_resume_continues_it() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "linear", "percent": 10, "interval": "1m"}),
    ));
    assert!(w.run_until(Phase::Shifting, S5, 10));
    for _ in 0..15 {
        w.step();
        w.advance(S5);
    }
    w.set("paused", json!(true));
    w.step();
    assert_eq!(w.status.phase(), Phase::Paused);
    let held = w.production.percent(GREEN);
    for _ in 0..100 {
        w.advance(S5);
        w.step();
    }
    assert_eq!(
        w.production.percent(GREEN),
        held,
        "no movement while paused"
    );
    assert_eq!(w.status.phase(), Phase::Paused, "no deadline while paused");
    w.set("paused", json!(false));
    w.step();
    assert_eq!(w.status.phase(), Phase::Shifting);
    assert_eq!(w.settle(), Phase::Steady);
}

#[test]
fn without_auto_promote_the_rollout_waits_for_a_promotion_of_that_step() {
    let mut body = record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "1m"}),
    );
    body["auto_promote"] = json!(false);
    let mut w = World::new(body);
    assert!(w.run_until(Phase::AwaitingPromotion, S5, 100));
    for _ in 0..50 {
        w.advance(S5);
        w.step();
    }
    assert_eq!(w.status.phase(), Phase::AwaitingPromotion);
    assert_eq!(w.production.percent(GREEN), 10);
    let r = w.status.rollout.clone().unwrap();
    // A promotion for another step does nothing.
    w.set(
        "control",
        json!({"promote": {"rollout": r.id.to_string(), "step": r.step + 1}}),
    );
    w.step();
    assert_eq!(w.status.phase(), Phase::AwaitingPromotion);
    w.set(
        "control",
        json!({"promote": {"rollout": r.id.to_string(), "step": r.step}}),
    );
    w.step();
    assert_eq!(w.production.percent(GREEN), 100);
    assert_eq!(w.settle(), Phase::Steady);
}

#[test]
fn abort_rolls_back_and_the_revision_stays_failed_until_retried() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "10m"}),
    ));
    assert!(w.run_until(Phase::Shifting, S5, 10));
    w.step();
    let id = w.status.rollout.as_ref().unwrap().id.clone();
    w.set("control", json!({"abort": id.to_string()}));
    assert_eq!(w.settle(), Phase::Failed);
    assert_eq!(w.production.percent(BLUE), 100);
    assert!(w.status.message.contains("aborted"));
    w.set("control", json!({"retry": id.to_string()}));
    w.step();
    assert_eq!(w.status.phase(), Phase::Provisioning);
    assert_eq!(w.status.rollout.as_ref().unwrap().id.attempt, 2);
    assert_eq!(w.settle(), Phase::Steady);
}

#[test]
fn an_invalid_record_mid_rollout_holds_it_and_fixing_the_record_resumes_it() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "linear", "percent": 10, "interval": "1m"}),
    ));
    assert!(w.run_until(Phase::Shifting, S5, 10));
    for _ in 0..15 {
        w.step();
        w.advance(S5);
    }
    let held = w.production.percent(GREEN);
    let good = w.body.clone();
    w.set("container_port", json!("eighty"));
    let d = w.step();
    assert!(d.commands.is_empty());
    assert_eq!(w.status.phase(), Phase::Invalid);
    assert!(
        w.status.message.contains("container_port"),
        "{}",
        w.status.message
    );
    assert_eq!(w.production.percent(GREEN), held);
    w.body = good;
    w.step();
    assert_eq!(w.status.phase(), Phase::Shifting);
    assert_eq!(w.settle(), Phase::Steady);
}

#[test]
fn a_service_that_is_not_external_is_reported_not_touched() {
    let mut w = World::new(record("web:2", json!("all_at_once")));
    w.svc.deployment_controller = "ECS".into();
    let d = w.step();
    assert!(d.commands.is_empty());
    assert_eq!(w.status.phase(), Phase::Invalid);
    assert!(w.status.message.contains("EXTERNAL"));
}

#[test]
fn a_cluster_that_does_not_exist_is_invalid_and_waits_for_a_change() {
    let w = World::new(record("web:2", json!("all_at_once")));
    let spec = w.spec().unwrap();
    let observed = Observed {
        service: Some(ServiceState::ClusterMissing),
        ..Observed::default()
    };
    let d = decide(&Desired::Valid(&spec), &observed, &w.status, w.now);
    assert!(d.commands.is_empty());
    assert_eq!(d.status.phase(), Phase::Invalid);
    assert!(
        d.status.message.starts_with("ECS cluster prod not found"),
        "{}",
        d.status.message
    );
    // Not every poll: the record's next change or the next resync.
    assert_eq!(d.wake, Wake::Idle);
    let again = decide(&Desired::Valid(&spec), &observed, &d.status, w.now);
    assert_eq!(again.status, d.status);
}

#[test]
fn a_first_release_creates_a_primary_and_points_production_at_it() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "5m"}),
    ));
    w.svc.task_sets.clear();
    w.production = crate::rollout::Weights::default();
    w.healthy.insert(BLUE.into(), 0);
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.svc.task_sets.len(), 1);
    assert_eq!(w.svc.primary().unwrap().target_group.as_deref(), Some(BLUE));
    assert_eq!(w.production.percent(BLUE), 100);
    assert_eq!(w.status.stable_revision, Some(w.spec().unwrap().revision));
}

#[test]
fn revision_is_unchanged_by_policy_fields() {
    let a = World::new(record("web:2", json!("all_at_once")))
        .spec()
        .unwrap()
        .revision;
    let mut w = World::new(record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "5m"}),
    ));
    w.set("paused", json!(true));
    w.set("bake", json!("30m"));
    let b: Revision = w.spec().unwrap().revision;
    assert_eq!(a, b);
    let c = World::new(record("web:3", json!("all_at_once")))
        .spec()
        .unwrap()
        .revision;
    assert_ne!(a, c);
}

#[test]
fn every_transition_in_the_history_names_the_revision_it_concerns() {
    let mut w = World::new(record("web:2", json!("all_at_once")));
    assert_eq!(w.settle(), Phase::Steady);
    let promoted = w.spec().unwrap().revision;
    assert!(
        w.status
            .history
            .iter()
            .any(|t| (t.from, t.to) == (Phase::Finalizing, Phase::Steady))
    );
    for t in &w.status.history {
        assert_eq!(
            t.revision.as_ref(),
            Some(&promoted),
            "{} → {}",
            t.from,
            t.to
        );
    }

    let mut w = World::new(record("web:2", json!("all_at_once")));
    w.candidate_healthy = false;
    assert_eq!(w.settle(), Phase::Failed);
    let failed = w.spec().unwrap().revision;
    assert!(
        w.status
            .history
            .iter()
            .any(|t| (t.from, t.to) == (Phase::RollingBack, Phase::Failed))
    );
    for t in &w.status.history {
        assert_eq!(t.revision.as_ref(), Some(&failed), "{} → {}", t.from, t.to);
    }
}

#[test]
fn the_task_set_serving_production_is_the_active_one_from_the_first_rollout_on() {
    // The service's first rollout under cutover: blue was not made by it.
    let mut w = World::new(record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "5m"}),
    ));
    for _ in 0..50 {
        w.step();
        if w.status.weights == Some((90, 10)) {
            break;
        }
        w.advance(S5);
    }
    assert_eq!(w.status.weights, Some((90, 10)));
    let blue = w.svc.task_sets[0].clone();
    let active = w.status.active.clone().expect("an active task set");
    assert_eq!(
        (active.arn.as_str(), active.target_group.as_str()),
        (blue.arn.as_str(), BLUE)
    );
    assert!(active.task_definition.ends_with("web:1"));
}

#[test]
fn commands_and_messages_name_task_sets_by_id_and_task_definition() {
    let mut w = World::new(record("web:2", json!("all_at_once")));
    let mut said = vec![];
    for _ in 0..100 {
        let d = w.step();
        said.extend(d.commands.iter().map(ToString::to_string));
        said.push(w.status.message.clone());
        if w.status.phase() == Phase::Steady && w.status.rollout.is_none() && w.created == 1 {
            break;
        }
        w.advance(S5);
    }
    for line in [
        "make task set ecs-svc/2 (web:2) primary",
        "delete task set ecs-svc/1 (web:1)",
        "removing the old task set ecs-svc/1 (web:1)",
    ] {
        assert!(said.iter().any(|s| s == line), "{line:?} in {said:#?}");
    }
    // Every task set of the service lives in cluster `prod`.
    assert!(
        !said.iter().any(|s| s.contains("task set prod")),
        "{said:#?}"
    );

    let mut w = World::new(record("web:2", json!("all_at_once")));
    assert!(w.run_until(Phase::Baking, S5, 20));
    w.set(
        "control",
        json!({"abort": w.status.rollout.as_ref().unwrap().id}),
    );
    let mut said = vec![];
    for _ in 0..20 {
        let d = w.step();
        said.extend(d.commands.iter().map(ToString::to_string));
        said.push(w.status.message.clone());
        w.advance(S5);
    }
    assert!(
        said.iter()
            .any(|s| s.ends_with("returning all production traffic to ecs-svc/1 (web:1)")),
        "{said:#?}"
    );
    assert!(
        said.iter()
            .any(|s| s == "make task set ecs-svc/1 (web:1) primary"),
        "{said:#?}"
    );
}

/// The pass that shifted production's first step lost its status write
/// (throttled): the stored status knows nothing of that weight change, which
/// may not be visible yet. When the candidate then fails, the rollback
/// writes the old weights itself, and removes the candidate only on a later
/// pass, once a stored status holds that write.
#[test]
fn a_rollback_rewrites_production_before_removing_the_candidate_after_a_lost_status() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "1m"}),
    ));
    let mut before = w.status.clone();
    for _ in 0..200 {
        before = w.status.clone();
        let d = w.step();
        if d.commands
            .iter()
            .any(|c| matches!(c, Command::SetWeights { route, .. } if route.arn() != TEST))
        {
            break;
        }
        w.advance(S5);
    }
    assert_eq!(w.candidate_share(), 10, "the first step was written");
    // Its status write was refused, and the load balancer does not show
    // the change yet.
    w.status = before;
    w.production = crate::rollout::Weights::pair(BLUE, 100, GREEN, 0);
    w.healthy.insert(GREEN.to_string(), 0);
    w.advance(S5);

    let mut rolled_back = false;
    for _ in 0..300 {
        let d = w.step();
        let deletes = d
            .commands
            .iter()
            .any(|c| matches!(c, Command::DeleteTaskSet { .. }));
        if w.status.phase() == Phase::RollingBack || deletes {
            assert!(
                rolled_back || !deletes,
                "the candidate was removed before the old weights were written again: {:?}",
                d.commands
            );
            rolled_back |= d.commands.iter().any(|c| {
                matches!(c, Command::SetWeights { route, weights }
                    if route.arn() != TEST && weights.percent(BLUE) == 100)
            });
        }
        if deletes {
            break;
        }
        w.advance(S5);
    }
    assert!(rolled_back, "production was written back: {:?}", w.status);
    assert_eq!(w.settle(), Phase::Failed);
}
