//! A healthy fleet misbehaving on its own: tasks of good versions stop and
//! are replaced, a whole task set fails its health checks, and service auto
//! scaling changes `desiredCount`. Each knob of `SimConfig::churn` schedules
//! its own next occurrence; all of them draw from the world's churn
//! generator, never from the one the rest of a seed draws from.
//!
//! How AWS behaves here, and what the model follows:
//! - A replacement target is `initial` while the load balancer "is still
//!   sending the target the minimum number of health checks required to
//!   determine its health status" (`Elb.InitialHealthChecking`,
//!   https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html).
//!   The ALB guide says a newly registered target needs one passing check
//!   (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html),
//!   while HealthyThresholdCount is "the number of consecutive health checks
//!   successes required before considering a target healthy"
//!   (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html).
//!   The model takes the longer of the two: `initial` for
//!   HealthyThresholdCount × interval (see `targets::timeline`).
//! - Application Auto Scaling scales an EXTERNAL service through
//!   `ecs:service:DesiredCount` only; each task set derives its
//!   computedDesiredCount from it
//!   (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-external.html),
//!   so a rollout's candidate and the old task set both grow and shrink.
//! - ECS stops a task whose target fails the load balancer's health checks
//!   and starts another (`SimConfig::replace_unhealthy`); a task set whose
//!   every target fails at once leaves its target group with no healthy
//!   target until the replacements pass their checks.

use std::time::Duration;

use rand::RngExt;

use super::ecs::TaskState;
use super::faults::between;
use super::world::{Event, TaskRef, World};
use crate::rollout::{ServiceKey, TaskSetStatus};
use crate::time::Timestamp;

/// Mixed into the seed for the churn generator.
pub(crate) const CHURN_SEED: u64 = 0xc4_0e_a1_7d;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChurnKind {
    TaskReplacement,
    OldSideOutage,
    Autoscaling,
}

impl World {
    /// Schedules the first occurrence of every knob that is on.
    pub(crate) fn start_churn(&mut self) {
        for kind in [
            ChurnKind::TaskReplacement,
            ChurnKind::OldSideOutage,
            ChurnKind::Autoscaling,
        ] {
            self.schedule_churn(kind);
        }
    }

    fn schedule_churn(&mut self, kind: ChurnKind) {
        let churn = &self.config.churn;
        let range = match kind {
            ChurnKind::TaskReplacement => churn.task_replacement,
            ChurnKind::OldSideOutage => churn.old_side_outage,
            ChurnKind::Autoscaling => churn.autoscaling,
        };
        if let Some(range) = range {
            let at = self.now + between(&mut self.churn_rng, range);
            self.schedule(at, Event::Churn(kind));
        }
    }

    pub(crate) fn churn(&mut self, kind: ChurnKind) {
        match kind {
            ChurnKind::TaskReplacement => self.replace_a_healthy_task(),
            ChurnKind::OldSideOutage => self.old_side_outage(),
            ChurnKind::Autoscaling => self.autoscale(),
        }
        self.schedule_churn(kind);
    }

    fn pick_service(&mut self) -> Option<ServiceKey> {
        let keys: Vec<ServiceKey> = self
            .services
            .by_key
            .iter()
            .filter(|(_, s)| s.deployment_controller == "EXTERNAL")
            .map(|(k, _)| k.clone())
            .collect();
        if keys.is_empty() {
            return None;
        }
        let i = self.churn_rng.random_range(0..keys.len());
        Some(keys[i].clone())
    }

    /// One running task of a version that is not marked bad stops, as on a
    /// host retirement, and the scheduler starts its replacement.
    fn replace_a_healthy_task(&mut self) {
        let Some(key) = self.pick_service() else {
            return;
        };
        let Some(service) = self.services.by_key.get(&key) else {
            return;
        };
        let tasks: Vec<(TaskRef, Option<String>)> = service
            .task_sets
            .iter()
            .filter(|ts| {
                ts.status != TaskSetStatus::Draining
                    && self.registry.badness(&ts.task_definition).is_none()
            })
            .flat_map(|ts| {
                ts.tasks
                    .iter()
                    .filter(|(_, t)| t.state == TaskState::Running)
                    .map(|(id, _)| {
                        (
                            TaskRef {
                                key: key.clone(),
                                task_set: ts.id.clone(),
                                task: *id,
                            },
                            ts.target_group.clone(),
                        )
                    })
            })
            .collect();
        if tasks.is_empty() {
            return;
        }
        let (task, target_group) = tasks[self.churn_rng.random_range(0..tasks.len())].clone();
        if let Some(tg) = target_group {
            // Until the replacement can have passed its checks.
            let check = self.config.health_check;
            let until = self.now
                + self.config.task_start.0.max(self.config.task_start.1)
                + check.interval * (check.healthy_threshold + 1);
            self.excuse(&tg, until);
        }
        self.replace_task(&task, "host retired (routine replacement)");
    }

    /// Every target of the service's oldest live task set fails its checks
    /// from now on; ECS replaces those tasks as they turn unhealthy.
    fn old_side_outage(&mut self) {
        let Some(key) = self.pick_service() else {
            return;
        };
        let Some(service) = self.services.by_key.get(&key) else {
            return;
        };
        let Some(old) = service
            .task_sets
            .iter()
            .filter(|t| t.status != TaskSetStatus::Draining && !t.tasks.is_empty())
            .min_by_key(|t| t.created_at)
        else {
            return;
        };
        let Some(tg) = old.target_group.clone() else {
            return;
        };
        let targets: Vec<String> = old
            .tasks
            .values()
            .filter_map(|t| t.target.clone())
            .collect();
        let id = old.id.clone();
        let check = self.config.health_check;
        let until = self.now
            + check.interval * (check.unhealthy_threshold + 2)
            + self.config.task_start.0.max(self.config.task_start.1)
            + check.interval * (check.healthy_threshold + 1);
        self.log(format!(
            "{key}: every task of {id} fails its health checks (outage of the old side)"
        ));
        self.excuse(&tg, until);
        let now = self.now;
        for target in targets {
            self.fail_target_from(&tg, &target, now);
        }
    }

    fn autoscale(&mut self) {
        let Some(key) = self.pick_service() else {
            return;
        };
        let (lo, hi) = self.config.churn.autoscaling_counts;
        let (lo, hi) = (lo.min(hi), lo.max(hi));
        let count = self.churn_rng.random_range(lo..=hi);
        self.log(format!(
            "{key}: service auto scaling sets desiredCount {count}"
        ));
        // The service exists: it was just picked.
        let _ = self.set_desired_count(&key, count);
    }

    /// Exposure of production on `target_group` is the world's doing, not
    /// the controller's, until `until`.
    fn excuse(&mut self, target_group: &str, until: Timestamp) {
        let until = self
            .checks
            .excused
            .get(target_group)
            .map_or(until, |u| (*u).max(until));
        self.checks.excused.insert(target_group.to_string(), until);
        self.schedule(
            until + Duration::from_millis(1),
            Event::ExcuseEnds {
                target_group: target_group.to_string(),
            },
        );
    }
}
