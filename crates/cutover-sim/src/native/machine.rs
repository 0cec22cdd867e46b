//! How ECS moves a service deployment through its lifecycle stages
//! (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-lifecycle-hooks.html):
//! RECONCILE_SERVICE, PRE_SCALE_UP, SCALE_UP, POST_SCALE_UP,
//! TEST_TRAFFIC_SHIFT, POST_TEST_TRAFFIC_SHIFT, then for each production
//! traffic step PRE_PRODUCTION_TRAFFIC_SHIFT and PRODUCTION_TRAFFIC_SHIFT
//! (a canary's or linear step's bake between two steps:
//! https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CanaryConfiguration.html,
//! https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_LinearConfiguration.html),
//! then POST_PRODUCTION_TRAFFIC_SHIFT, BAKE_TIME (blue and green both run)
//! and CLEAN_UP (blue goes). Each stage takes `native_stage_time`.
//!
//! Where the docs are silent the model takes the worst case for the
//! controller:
//! - SCALE_UP ends when the new revision's tasks run, not when its targets
//!   are healthy: nothing in the docs says ECS waits for the load balancer's
//!   health checks before shifting traffic, and the deployment circuit
//!   breaker applies to rolling updates only
//!   (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-ecs-service-deploymentcircuitbreaker.html),
//!   so a bad version goes as far as the pauses let it.
//! - A pause that times out is TIMED_OUT and rolls back (the timeout
//!   action's default,
//!   https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentLifecycleHookTimeoutConfiguration.html).
//! - A pause still waiting when the deployment is stopped or superseded
//!   stays AWAITING_ACTION: nothing says it changes, and answering it then
//!   is refused because the deployment is no longer IN_PROGRESS.

use std::time::Duration;

use super::super::ecs::{SimTaskSet, TaskState};
use super::super::world::{Event, World};
use crate::rollout::service_deployment::{
    LifecycleStage as Stage, NativeStrategy, Pause, PauseStatus, ServiceDeploymentStatus as Status,
};
use crate::rollout::spec::Placement;
use crate::rollout::{Route, ServiceKey, TaskSetStatus, Weights};

/// How often SCALE_UP looks whether the new revision's tasks run.
const SCALE_UP_POLL: Duration = Duration::from_secs(5);

fn minutes(m: u32) -> Duration {
    Duration::from_secs(60 * u64::from(m))
}

/// The bake between two production traffic steps.
fn step_bake(strategy: NativeStrategy) -> Duration {
    match strategy {
        NativeStrategy::BlueGreen => Duration::ZERO,
        NativeStrategy::Canary { bake_minutes, .. }
        | NativeStrategy::Linear { bake_minutes, .. } => minutes(bake_minutes),
    }
}

/// The stage after `stage` where there is no choice to make.
fn next(stage: Stage) -> Option<Stage> {
    Some(match stage {
        Stage::ReconcileService => Stage::PreScaleUp,
        Stage::PreScaleUp => Stage::ScaleUp,
        Stage::ScaleUp => Stage::PostScaleUp,
        Stage::PostScaleUp => Stage::TestTrafficShift,
        Stage::TestTrafficShift => Stage::PostTestTrafficShift,
        Stage::PostTestTrafficShift => Stage::PreProductionTrafficShift,
        Stage::PreProductionTrafficShift => Stage::ProductionTrafficShift,
        Stage::PostProductionTrafficShift => Stage::BakeTime,
        Stage::BakeTime => Stage::CleanUp,
        Stage::ProductionTrafficShift | Stage::CleanUp | Stage::Other => return None,
    })
}

impl World {
    /// Runs what is due for the deployment, unless it was superseded by a
    /// later plan (a rollback, an answer).
    pub(crate) fn native_step(&mut self, key: &ServiceKey, arn: &str, generation: u64) {
        let Some(d) = self.deployment(key, arn) else {
            return;
        };
        if d.generation != generation {
            return;
        }
        match d.status {
            Status::Pending => self.begin_deployment(key, arn),
            Status::InProgress => self.finish_stage(key, arn),
            Status::RollbackRequested => self.shift_back(key, arn),
            Status::RollbackInProgress => self.finish_rollback(key, arn),
            _ => {}
        }
    }

    /// A pause nobody answered in time: its timeout action, ROLLBACK.
    pub(crate) fn native_hook_timeout(&mut self, key: &ServiceKey, arn: &str, hook_id: &str) {
        let waiting = self.deployment(key, arn).is_some_and(|d| {
            d.status == Status::InProgress
                && d.hooks
                    .iter()
                    .any(|(_, p)| p.hook_id == hook_id && p.status == PauseStatus::AwaitingAction)
        });
        if !waiting {
            return;
        }
        let stage = self
            .update_deployment(key, arn, |d| {
                d.hook_mut(hook_id).map(|(stage, p)| {
                    p.status = PauseStatus::TimedOut;
                    *stage
                })
            })
            .flatten()
            .unwrap_or(Stage::Other);
        self.begin_rollback(
            key,
            arn,
            format!("the pause at {stage} timed out; its timeout action is ROLLBACK"),
        );
    }

    pub(super) fn after(&mut self, key: &ServiceKey, arn: &str, wait: Duration) {
        let Some(generation) = self.deployment(key, arn).map(|d| d.generation) else {
            return;
        };
        self.schedule(
            self.now + wait,
            Event::NativeStep {
                key: key.clone(),
                arn: arn.to_string(),
                generation,
            },
        );
    }

    pub(super) fn after_stage(&mut self, key: &ServiceKey, arn: &str) {
        let wait = self.draw(self.config.native_stage_time);
        self.after(key, arn, wait);
    }

    /// PENDING to IN_PROGRESS, once no other deployment of the service is
    /// ongoing (one it superseded rolls back first).
    fn begin_deployment(&mut self, key: &ServiceKey, arn: &str) {
        let others = self.native(key).is_some_and(|n| {
            n.deployments
                .iter()
                .any(|d| d.arn != arn && d.status.ongoing())
        });
        if others {
            self.after_stage(key, arn);
            return;
        }
        self.update_deployment(key, arn, |d| d.status = Status::InProgress);
        self.log(format!("{key}: deployment {} IN_PROGRESS", label(arn)));
        self.enter(key, arn, Stage::ReconcileService);
    }

    /// Enters a stage: a stage that holds a PAUSE hook waits for an answer
    /// under a new hook id each time
    /// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/pause-lifecycle-hooks.html);
    /// any other starts its work at once.
    fn enter(&mut self, key: &ServiceKey, arn: &str, stage: Stage) {
        let Some(d) = self.deployment(key, arn) else {
            return;
        };
        let timeout = minutes(d.request.pause_timeout_minutes);
        if !d.request.pauses.contains(&stage) {
            self.update_deployment(key, arn, |d| d.stage = Some(stage));
            self.work(key, arn, stage);
            return;
        }
        let hook_id = format!("ecs-pause-{}", self.hex_id(43));
        let expires_at = self.now + timeout;
        self.update_deployment(key, arn, |d| {
            d.stage = Some(stage);
            d.hooks.push((
                stage,
                Pause {
                    hook_id: hook_id.clone(),
                    status: PauseStatus::AwaitingAction,
                    expires_at: Some(expires_at),
                },
            ));
        });
        self.log(format!(
            "{key}: deployment {} paused at {stage}: {hook_id} AWAITING_ACTION until {expires_at}",
            label(arn)
        ));
        self.schedule(
            expires_at,
            Event::NativeHookTimeout {
                key: key.clone(),
                arn: arn.to_string(),
                hook_id,
            },
        );
    }

    /// Starts what a stage does, and schedules its end.
    pub(super) fn work(&mut self, key: &ServiceKey, arn: &str, stage: Stage) {
        match stage {
            Stage::ScaleUp => self.scale_up_green(key, arn),
            Stage::TestTrafficShift => self.shift_test(key, arn, true),
            Stage::ProductionTrafficShift => self.shift_production(key, arn),
            _ => {}
        }
        match (stage, self.deployment(key, arn)) {
            (Stage::BakeTime, Some(d)) => {
                let bake = minutes(d.request.bake_minutes);
                self.after(key, arn, bake);
            }
            _ => self.after_stage(key, arn),
        }
    }

    fn finish_stage(&mut self, key: &ServiceKey, arn: &str) {
        let Some(d) = self.deployment(key, arn) else {
            return;
        };
        let (stage, steps_done, baking) = (d.stage, d.steps_done, d.baking_step);
        let (steps, bake) = (d.request.strategy.steps(), step_bake(d.request.strategy));
        match stage {
            Some(Stage::ScaleUp) if !self.green_running(key, arn) => {
                self.after(key, arn, SCALE_UP_POLL)
            }
            Some(Stage::ProductionTrafficShift) if steps_done < steps => {
                self.update_deployment(key, arn, |d| d.baking_step = !baking);
                if baking {
                    self.enter(key, arn, Stage::PreProductionTrafficShift);
                } else {
                    self.after(key, arn, bake);
                }
            }
            Some(Stage::ProductionTrafficShift) => {
                self.enter(key, arn, Stage::PostProductionTrafficShift)
            }
            Some(Stage::CleanUp) => self.succeed(key, arn),
            Some(stage) => {
                if let Some(next) = next(stage) {
                    self.enter(key, arn, next);
                }
            }
            None => {}
        }
    }

    /// The new revision's tasks, in the target group blue does not use.
    fn scale_up_green(&mut self, key: &ServiceKey, arn: &str) {
        let (Some(native), Some(d)) = (self.native(key), self.deployment(key, arn)) else {
            return;
        };
        if d.green.is_some() {
            return;
        }
        let target_group = native.target_groups[d.green_tg()].clone();
        let (task_definition, port) = (d.task_definition.clone(), native.container_port);
        let placement = d
            .blue
            .as_deref()
            .and_then(|b| self.services.by_key.get(key)?.task_set(b))
            .map_or_else(Placement::default, |t| t.placement.clone());
        let id = format!("ecs-svc/{}", self.digits(19));
        let revision = SimTaskSet {
            arn: super::super::arn::task_set_in(&key.scope, &key.cluster, &key.service, &id),
            id: id.clone(),
            task_definition: task_definition.clone(),
            external_id: None,
            status: TaskSetStatus::Active,
            scale_percent: 100.0,
            target_group: Some(target_group),
            container_port: port,
            placement,
            tasks: Default::default(),
            created_at: self.now,
        };
        if let Some(service) = self.services.by_key.get_mut(key) {
            service.task_sets.push(revision);
        }
        self.update_deployment(key, arn, |d| d.green = Some(id.clone()));
        self.log(format!(
            "{key}: deployment {} scales up {task_definition} as {id}",
            label(arn)
        ));
        self.reconcile_task_set(key, &id);
    }

    /// Whether every task the new revision wants runs.
    fn green_running(&self, key: &ServiceKey, arn: &str) -> bool {
        let Some(service) = self.services.by_key.get(key) else {
            return false;
        };
        let green = self.deployment(key, arn).and_then(|d| d.green.as_deref());
        green.and_then(|g| service.task_set(g)).is_some_and(|t| {
            let running = t
                .tasks
                .values()
                .filter(|task| task.state == TaskState::Running)
                .count() as u32;
            running >= t.computed_desired(service.desired_count)
        })
    }

    /// ECS weighs a route between blue's and green's target groups itself
    /// (the listener rules of the service's advancedConfiguration), visible
    /// after the load balancer's usual delay.
    fn weigh(&mut self, key: &ServiceKey, route: &Route, arn: &str, green_weight: u32) {
        let (Some(native), Some(d)) = (self.native(key), self.deployment(key, arn)) else {
            return;
        };
        let weights = Weights::pair(
            &native.target_groups[d.blue_tg],
            100 - green_weight.min(100),
            &native.target_groups[d.green_tg()],
            green_weight.min(100),
        );
        if let Err(e) = self.write_weights(route, &weights, false) {
            self.log(format!("{key}: ECS could not weigh {route}: {e}"));
        }
    }

    fn shift_test(&mut self, key: &ServiceKey, arn: &str, to_green: bool) {
        if let Some(test) = self.native(key).and_then(|n| n.test.clone()) {
            self.weigh(key, &test, arn, if to_green { 100 } else { 0 });
        }
    }

    /// The next production traffic step: green gets the strategy's weight
    /// after it.
    fn shift_production(&mut self, key: &ServiceKey, arn: &str) {
        let Some(weight) = self.update_deployment(key, arn, |d| {
            d.steps_done += 1;
            let weight = d.request.strategy.weight_after(d.steps_done);
            d.target_weight = Some(weight);
            weight
        }) else {
            return;
        };
        let Some(production) = self.native(key).map(|n| n.production.clone()) else {
            return;
        };
        self.log(format!(
            "{key}: deployment {} shifts {weight}% of production to green",
            label(arn)
        ));
        self.weigh(key, &production, arn, weight);
    }

    /// The end of CLEAN_UP: blue goes, green serves from now on.
    fn succeed(&mut self, key: &ServiceKey, arn: &str) {
        let Some(d) = self.deployment(key, arn).cloned() else {
            return;
        };
        if let Some(blue) = &d.blue {
            let now = self.now;
            if let Some(service) = self.services.by_key.get_mut(key) {
                service.removed.push((blue.clone(), now));
            }
            let _ = self.delete_task_set_as(key, blue, true);
        }
        if let Some(service) = self.services.by_key.get_mut(key) {
            if let Some(green) = d
                .green
                .as_deref()
                .and_then(|g| service.task_sets.iter_mut().find(|t| t.id == g))
            {
                green.status = TaskSetStatus::Primary;
            }
            if let Some(native) = service.native.as_mut() {
                native.serving = d.green_tg();
                native.revision = d.green.clone();
            }
        }
        self.update_deployment(key, arn, |d| {
            d.status = Status::Successful;
            d.status_reason = Some("the service deployment completed".into());
        });
        self.log(format!(
            "{key}: deployment {} SUCCESSFUL: {} serves",
            label(arn),
            d.task_definition
        ));
    }

    /// ROLLBACK_REQUESTED, from a ROLLBACK answer, a pause's timeout, a
    /// stop, or a later UpdateService.
    pub(super) fn begin_rollback(&mut self, key: &ServiceKey, arn: &str, reason: String) {
        let started = self.update_deployment(key, arn, |d| {
            if !matches!(d.status, Status::Pending | Status::InProgress) {
                return false;
            }
            d.status = Status::RollbackRequested;
            d.rollback_reason = Some(reason.clone());
            d.baking_step = false;
            d.generation += 1;
            true
        });
        if started == Some(true) {
            self.log(format!(
                "{key}: deployment {} ROLLBACK_REQUESTED: {reason}",
                label(arn)
            ));
            self.after_stage(key, arn);
        }
    }

    /// ROLLBACK_IN_PROGRESS: production and test traffic back to blue.
    fn shift_back(&mut self, key: &ServiceKey, arn: &str) {
        let Some(d) = self.deployment(key, arn) else {
            return;
        };
        let (shifted, tested) = (d.steps_done > 0, d.green.is_some());
        self.update_deployment(key, arn, |d| {
            d.status = Status::RollbackInProgress;
            d.target_weight = Some(0);
        });
        if shifted && let Some(production) = self.native(key).map(|n| n.production.clone()) {
            self.weigh(key, &production, arn, 0);
        }
        if tested {
            self.shift_test(key, arn, false);
        }
        self.log(format!(
            "{key}: deployment {} ROLLBACK_IN_PROGRESS: traffic back to blue",
            label(arn)
        ));
        self.after_stage(key, arn);
    }

    /// ROLLBACK_SUCCESSFUL: green goes, and the service runs blue's task
    /// definition again unless a later UpdateService set another.
    fn finish_rollback(&mut self, key: &ServiceKey, arn: &str) {
        let Some(d) = self.deployment(key, arn).cloned() else {
            return;
        };
        if let Some(green) = &d.green {
            let _ = self.delete_task_set_as(key, green, true);
        }
        if let Some(native) = self.native_mut(key)
            && native.current.as_deref() == Some(arn)
        {
            native.task_definition = d.blue_task_definition.clone();
        }
        self.update_deployment(key, arn, |d| {
            d.status = Status::RollbackSuccessful;
            d.status_reason = Some("the service deployment rolled back".into());
        });
        self.log(format!(
            "{key}: deployment {} ROLLBACK_SUCCESSFUL: {} serves",
            label(arn),
            d.blue_task_definition
        ));
    }
}

/// A deployment's id, for the log.
pub(super) fn label(arn: &str) -> &str {
    crate::rollout::service_deployment::deployment_id(arn)
}
