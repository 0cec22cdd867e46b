//! Churn: a healthy fleet misbehaving on its own, off unless asked for.

use super::*;
use crate::{BadVersion, Churn, TargetState};

fn churning(seed: u64, churn: Churn) -> SimCloud {
    SimCloud::builder(seed).clock(clock()).churn(churn).build()
}

fn every(s: u64) -> Option<(Duration, Duration)> {
    Some((secs(s), secs(s)))
}

#[tokio::test(start_paused = true)]
async fn without_churn_a_healthy_service_keeps_its_tasks_for_hours() {
    let sim = sim(11);
    let arns = web(&sim);
    sim.run_for(secs(4 * 3600)).await;
    let log = sim.event_log();
    assert!(
        !log.iter().any(|e| e.text.contains("stopped")),
        "no task stopped: {log:?}"
    );
    assert_eq!(sim.target_counts(arns.blue()).map(|c| c.healthy), Some(2));
}

#[tokio::test(start_paused = true)]
async fn a_replaced_healthy_task_comes_back_initial_then_healthy() {
    let sim = churning(
        12,
        Churn {
            task_replacement: every(100),
            ..Churn::default()
        },
    );
    let arns = web(&sim);
    sim.run_for(secs(101)).await;
    let counts = sim.target_counts(arns.blue()).expect("blue exists");
    assert_eq!(
        counts.healthy, 1,
        "one of two tasks was replaced: {counts:?}"
    );
    assert_eq!(counts.draining, 1);
    // The replacement starts within task_start (at most 30 s) and is
    // `initial` for HealthyThresholdCount × interval (2 × 5 s) after that.
    let mut saw_initial = false;
    for _ in 0..40 {
        sim.run_for(secs(1)).await;
        let c = sim.target_counts(arns.blue()).expect("blue exists");
        saw_initial |= c.initial == 1;
        if c.healthy == 2 {
            break;
        }
    }
    assert!(saw_initial, "the replacement target was initial first");
    assert_eq!(sim.target_counts(arns.blue()).map(|c| c.healthy), Some(2));
}

#[tokio::test(start_paused = true)]
async fn tasks_of_a_bad_version_are_not_churned_as_routine() {
    let sim = churning(
        13,
        Churn {
            task_replacement: every(10),
            ..Churn::default()
        },
    );
    web(&sim);
    sim.mark_task_definition_bad("web:1", BadVersion::FailsAfter(secs(100_000)));
    sim.run_for(secs(300)).await;
    assert!(
        !sim.event_log()
            .iter()
            .any(|e| e.text.contains("routine replacement")),
        "only healthy versions churn"
    );
}

#[tokio::test(start_paused = true)]
async fn an_outage_of_the_old_side_leaves_its_target_group_without_healthy_targets_for_a_while() {
    let sim = churning(
        14,
        Churn {
            old_side_outage: every(50),
            ..Churn::default()
        },
    );
    let arns = web(&sim);
    sim.run_for(secs(51)).await;
    let (mut lost, mut back) = (false, false);
    for _ in 0..120 {
        sim.run_for(secs(1)).await;
        let c = sim.target_counts(arns.blue()).expect("blue exists");
        lost |= c.healthy == 0;
        if lost && c.healthy == 2 {
            back = true;
            break;
        }
    }
    assert!(lost, "every blue target failed its checks");
    assert!(back, "ECS replaced the tasks and they passed their checks");
}

#[tokio::test(start_paused = true)]
async fn auto_scaling_changes_the_desired_count_and_task_sets_follow() {
    let sim = churning(
        15,
        Churn {
            autoscaling: every(60),
            autoscaling_counts: (4, 4),
            ..Churn::default()
        },
    );
    let arns = web(&sim);
    sim.run_for(secs(61)).await;
    let svc = service(&sim, &arns.key).await;
    assert_eq!(svc.desired_count, 4);
    let blue = svc.primary().expect("blue is primary");
    assert_eq!(blue.computed_desired, Some(4));
    sim.run_for(secs(45)).await;
    assert_eq!(sim.target_counts(arns.blue()).map(|c| c.healthy), Some(4));
}

#[test]
fn a_new_target_is_initial_for_the_healthy_threshold() {
    // The worst case of what the ELB documentation says (see `sim::churn`).
    let check = crate::HealthCheck {
        interval: secs(30),
        healthy_threshold: 5,
        unhealthy_threshold: 2,
    };
    let t0 = crate::time::Timestamp(0);
    let states = crate::targets::timeline(&check, t0, None);
    assert_eq!(
        states,
        vec![
            (t0, TargetState::Initial),
            (t0 + secs(150), TargetState::Healthy)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_outage_the_world_caused_is_not_timed_as_exposure_until_its_replacements_are_due() {
    // Without replacements the outage outlasts its excuse.
    let sim = SimCloud::builder(16)
        .clock(clock())
        .replace_unhealthy(false)
        .churn(Churn {
            old_side_outage: every(300),
            ..Churn::default()
        })
        .build();
    let arns = web(&sim);
    sim.run_for(secs(300 + 40)).await;
    assert_eq!(sim.target_counts(arns.blue()).map(|c| c.healthy), Some(0));
    assert_eq!(sim.max_exposure(), Duration::ZERO);
    // The next outage comes at 600 s.
    sim.run_for(secs(250)).await;
    assert!(
        sim.max_exposure() > secs(30),
        "after the excuse, exposure counts: {:?}",
        sim.max_exposure()
    );
}
