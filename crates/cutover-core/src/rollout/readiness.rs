//! When a candidate is ready for traffic, and the target health gate that
//! keeps checking it while it serves.

use super::observed::{EcsService, Stability, TargetCounts, TaskSet};
use super::spec::TargetHealthGate;

/// The candidate's desired task count: what ECS computed, or, where ECS does
/// not report it, ceil(desiredCount × scale%).
pub fn desired_tasks(task_set: &TaskSet, service: &EcsService) -> u32 {
    task_set.computed_desired.unwrap_or_else(|| {
        (service.desired_count as f64 * task_set.scale_percent / 100.0).ceil() as u32
    })
}

/// Healthy targets the candidate needs. Never less than one: traffic must not
/// go to an empty target group.
pub fn required_healthy(task_set: &TaskSet, service: &EcsService, gate: &TargetHealthGate) -> u32 {
    let desired = desired_tasks(task_set, service) as u64;
    let needed = (desired * gate.min_healthy_percent as u64).div_ceil(100);
    needed.max(1) as u32
}

/// Whether the candidate may take traffic; the error says what it waits for.
pub fn ready(
    task_set: &TaskSet,
    service: &EcsService,
    targets: Option<&TargetCounts>,
    gate: &TargetHealthGate,
) -> Result<(), String> {
    if task_set.stability != Stability::SteadyState {
        return Err(format!(
            "task set is {:?}, waiting for STEADY_STATE",
            task_set.stability
        ));
    }
    if let (Some(running), Some(desired)) = (task_set.running, task_set.computed_desired)
        && running < desired
    {
        return Err(format!("{running}/{desired} tasks running"));
    }
    target_health(task_set, service, targets, gate)
}

/// The target health gate: enough healthy targets in the candidate's group.
pub fn target_health(
    task_set: &TaskSet,
    service: &EcsService,
    targets: Option<&TargetCounts>,
    gate: &TargetHealthGate,
) -> Result<(), String> {
    let need = required_healthy(task_set, service, gate);
    match targets {
        None => Err("target health not read yet".into()),
        Some(t) if t.healthy >= need => Ok(()),
        Some(t) => Err(format!(
            "{}/{} healthy targets ({} unhealthy, {} initial)",
            t.healthy, need, t.unhealthy, t.initial
        )),
    }
}

/// One look at a candidate that serves traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// At the bar.
    Enough,
    /// Short of the bar, but no target fails its checks: ECS is starting or
    /// replacing tasks, or their targets are still `initial`.
    Replacing(String),
    /// Short of the bar with targets that fail their checks.
    Failing(String),
    NotRead,
}

/// The target health gate's reading of the candidate.
pub fn health(
    task_set: &TaskSet,
    service: &EcsService,
    targets: Option<&TargetCounts>,
    gate: &TargetHealthGate,
) -> Health {
    let Some(t) = targets else {
        return Health::NotRead;
    };
    match target_health(task_set, service, targets, gate) {
        Ok(()) => Health::Enough,
        Err(why) if lost_half(t, desired_tasks(task_set, service)) => Health::Failing(format!(
            "{why}: half or more of its targets fail their checks"
        )),
        Err(why) => Health::Replacing(why),
    }
}

/// Whether half or more of the candidate's targets (at least two, or the
/// one of a single-task candidate) fail their checks at once (`unhealthy`):
/// a version that does not work, not churn. One task replaced in a fleet,
/// auto scaling adding tasks (not registered yet, or `initial`) or removing
/// them is not. A task ECS stops (a crash, a retired host) leaves its group
/// as `draining`: ECS deregisters it from the load balancer as it stops
/// (https://docs.aws.amazon.com/AmazonECS/latest/bestpracticesguide/load-balancer-connection-draining.html),
/// while `unhealthy` takes UnhealthyThresholdCount failed checks of a task
/// that still runs. So the one target of a single-task candidate that is
/// `unhealthy` is the version failing its checks.
///
/// Targets that are `draining` are not counted. The two target groups are
/// shared by every candidate that used them, and a deleted task set's
/// targets drain for the group's deregistration delay (300 s unless set
/// otherwise,
/// https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#deregistration-delay);
/// target counts cannot tell those from the candidate's own, nor tasks
/// stopped for a failure from tasks auto scaling removed. A candidate whose
/// tasks keep stopping is short of its bar for longer than the grace, and
/// the `task_failures` gate, which reads why each task stopped, rolls it
/// back sooner.
fn lost_half(t: &TargetCounts, desired: u32) -> bool {
    t.unhealthy >= desired.clamp(1, 2) && t.unhealthy * 2 >= desired
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::observed::TaskSetStatus;

    fn ts(computed: Option<u32>, running: Option<u32>, stability: Stability) -> TaskSet {
        TaskSet {
            id: "ts".into(),
            arn: "arn:ts".into(),
            task_definition: "web:2".into(),
            external_id: None,
            status: TaskSetStatus::Active,
            stability,
            scale_percent: 100.0,
            computed_desired: computed,
            running,
            pending: None,
            target_group: Some("tg".into()),
            created_at: None,
        }
    }

    fn svc(desired: u32) -> EcsService {
        EcsService {
            desired_count: desired,
            deployment_controller: "EXTERNAL".into(),
            native: None,
            task_sets: vec![],
        }
    }

    fn healthy(n: u32) -> TargetCounts {
        TargetCounts {
            healthy: n,
            ..TargetCounts::default()
        }
    }

    #[test]
    fn ready_needs_steady_state_running_tasks_and_healthy_targets() {
        let gate = TargetHealthGate::default();
        let s = svc(3);
        assert!(
            ready(
                &ts(Some(3), Some(3), Stability::SteadyState),
                &s,
                Some(&healthy(3)),
                &gate
            )
            .is_ok()
        );
        assert!(
            ready(
                &ts(Some(3), Some(3), Stability::Stabilizing),
                &s,
                Some(&healthy(3)),
                &gate
            )
            .is_err()
        );
        assert!(
            ready(
                &ts(Some(3), Some(2), Stability::SteadyState),
                &s,
                Some(&healthy(3)),
                &gate
            )
            .is_err()
        );
        assert!(
            ready(
                &ts(Some(3), Some(3), Stability::SteadyState),
                &s,
                Some(&healthy(2)),
                &gate
            )
            .is_err()
        );
    }

    #[test]
    fn a_missing_count_is_unknown_not_zero() {
        let gate = TargetHealthGate::default();
        // ECS reported no counts: the bar comes from the service's desired count.
        let t = ts(None, None, Stability::SteadyState);
        assert_eq!(required_healthy(&t, &svc(4), &gate), 4);
        assert!(ready(&t, &svc(4), Some(&healthy(3)), &gate).is_err());
        assert!(ready(&t, &svc(4), Some(&healthy(4)), &gate).is_ok());
    }

    #[test]
    fn an_empty_service_still_needs_one_healthy_target() {
        let t = ts(Some(0), Some(0), Stability::SteadyState);
        assert_eq!(
            required_healthy(&t, &svc(0), &TargetHealthGate::default()),
            1
        );
    }

    #[test]
    fn draining_targets_are_not_counted_as_the_candidates_losses() {
        let gate = TargetHealthGate::default();
        let t = ts(Some(4), Some(4), Stability::SteadyState);
        // One task replaced, and an earlier candidate's four targets still
        // draining from the shared group: churn, not a broken version.
        let churn = TargetCounts {
            healthy: 3,
            draining: 5,
            ..TargetCounts::default()
        };
        assert!(matches!(
            health(&t, &svc(4), Some(&churn), &gate),
            Health::Replacing(_)
        ));
        // Auto scaling adds three tasks not registered yet, while an earlier
        // candidate's targets still drain: churn too.
        let scaled_out = TargetCounts {
            healthy: 1,
            draining: 2,
            ..TargetCounts::default()
        };
        assert!(matches!(
            health(&t, &svc(4), Some(&scaled_out), &gate),
            Health::Replacing(_)
        ));
        // Half of the candidate's targets fail their checks: a broken version.
        let broken = TargetCounts {
            healthy: 2,
            unhealthy: 2,
            ..TargetCounts::default()
        };
        assert!(matches!(
            health(&t, &svc(4), Some(&broken), &gate),
            Health::Failing(_)
        ));
    }

    #[test]
    fn the_one_target_of_a_single_task_candidate_failing_its_checks_is_a_failure() {
        let gate = TargetHealthGate::default();
        let one = ts(Some(1), Some(1), Stability::SteadyState);
        let failing = TargetCounts {
            unhealthy: 1,
            ..TargetCounts::default()
        };
        assert!(matches!(
            health(&one, &svc(1), Some(&failing), &gate),
            Health::Failing(_)
        ));
        // Its task stopped and a replacement is on its way: churn.
        let replaced = TargetCounts {
            initial: 1,
            draining: 1,
            ..TargetCounts::default()
        };
        assert!(matches!(
            health(&one, &svc(1), Some(&replaced), &gate),
            Health::Replacing(_)
        ));
        // In a fleet of four, one target failing is still not half.
        let four = ts(Some(4), Some(4), Stability::SteadyState);
        let one_of_four = TargetCounts {
            healthy: 3,
            unhealthy: 1,
            ..TargetCounts::default()
        };
        assert!(matches!(
            health(&four, &svc(4), Some(&one_of_four), &gate),
            Health::Replacing(_)
        ));
    }

    #[test]
    fn min_healthy_percent_lowers_the_bar() {
        let gate = TargetHealthGate {
            min_healthy_percent: 50,
            ..TargetHealthGate::default()
        };
        assert_eq!(
            required_healthy(&ts(Some(5), None, Stability::SteadyState), &svc(5), &gate),
            3
        );
    }
}
