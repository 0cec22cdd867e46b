//! ECS's own service deployments, for services on the ECS deployment
//! controller (`driver = "ecs_native"`): UpdateService starts one, ECS runs
//! it through its lifecycle stages (`machine`), pauses at the stages that
//! hold a PAUSE hook, and weighs the production and test routes between
//! the service's two target groups itself.
//!
//! A service revision's tasks run as a task set the API never shows (a
//! service on the ECS controller has no task sets), so the scheduler, the
//! health checks and the bad versions work on them as on any task set.
//!
//! The API's shapes: https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeployment.html

mod machine;

use std::time::Duration;

use super::arn;
use super::registry::{self, Registry};
use super::world::World;
// At most 20 ARNs per DescribeServiceDeployments (the port's limit, from
// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServiceDeployments.html).
use crate::cloud::service_deployments::DESCRIBE_LIMIT as DESCRIBE_DEPLOYMENTS_LIMIT;
use crate::cloud::{CloudError, ErrorKind};
use crate::rollout::command::StartServiceDeployment;
use crate::rollout::service_deployment::{
    BAKE_MINUTES, LINEAR_PERCENT, LifecycleStage, NativeStrategy, PAUSE_TIMEOUT_MINUTES, Pause,
    PauseAction, PauseStatus, ServiceDeployment, ServiceDeploymentStatus, ServiceRevision,
    TargetRevision,
};
use crate::rollout::{Route, Scope, ServiceKey, Version};
use crate::time::Timestamp;

const UPDATE: &str = "ecs:UpdateService";
const DESCRIBE: &str = "ecs:DescribeServiceDeployments";
const LIST: &str = "ecs:ListServiceDeployments";
const CONTINUE: &str = "ecs:ContinueServiceDeployment";
const STOP: &str = "ecs:StopServiceDeployment";

/// A service on the ECS deployment controller.
#[derive(Debug)]
pub(crate) struct NativeService {
    pub production: Route,
    pub test: Option<Route>,
    pub target_groups: [String; 2],
    /// Which of `target_groups` production is on between deployments: the
    /// green one of a successful deployment serves from then on.
    pub serving: usize,
    pub container: String,
    pub container_port: u16,
    /// `family:revision` the service is set to run: the newest
    /// UpdateService's at once, the previous one's again after a rollback.
    pub task_definition: String,
    /// The revision (hidden task set id) that serves between deployments.
    pub revision: Option<String>,
    /// In creation order.
    pub deployments: Vec<Deployment>,
    /// `currentServiceDeployment`.
    pub current: Option<String>,
}

impl NativeService {
    pub fn new(
        production: &Route,
        test: Option<&Route>,
        target_groups: [String; 2],
        container: &str,
        container_port: u16,
        task_definition: &str,
        revision: Option<String>,
    ) -> NativeService {
        NativeService {
            production: production.clone(),
            test: test.cloned(),
            target_groups,
            serving: 0,
            container: container.to_string(),
            container_port,
            task_definition: task_definition.to_string(),
            revision,
            deployments: Vec::new(),
            current: None,
        }
    }

    /// What DescribeServices shows of it.
    pub fn revision(&self, scope: &Scope, registry: &Registry) -> ServiceRevision {
        let images = registry::parse(&self.task_definition)
            .and_then(|(family, rev)| registry.containers(&family, rev))
            .cloned()
            .unwrap_or_default();
        ServiceRevision {
            task_definition: arn::task_definition_in(scope, &self.task_definition),
            images,
            current_deployment: self.current.clone(),
        }
    }

    pub fn deployment(&self, arn: &str) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.arn == arn)
    }
}

/// One service deployment, with the sim's bookkeeping beside what the API
/// shows of it.
#[derive(Clone, Debug)]
pub(crate) struct Deployment {
    pub arn: String,
    pub request: StartServiceDeployment,
    /// `family:revision` of the new (green) revision.
    pub task_definition: String,
    pub status: ServiceDeploymentStatus,
    pub status_reason: Option<String>,
    pub stage: Option<LifecycleStage>,
    /// Every PAUSE hook so far, with the stage it held.
    pub hooks: Vec<(LifecycleStage, Pause)>,
    pub created_at: Timestamp,
    pub target_weight: Option<u32>,
    pub rollback_reason: Option<String>,
    /// Production traffic steps taken.
    pub steps_done: u32,
    /// Between two production traffic steps, baking the first.
    pub baking_step: bool,
    /// The revision serving when it was created, its task definition and
    /// its target group (an index into the service's `target_groups`).
    pub blue: Option<String>,
    pub blue_task_definition: String,
    pub blue_tg: usize,
    /// The new revision, once SCALE_UP started it.
    pub green: Option<String>,
    /// Bumped when what was scheduled for it no longer holds.
    pub generation: u64,
    /// The revision it deploys, as DescribeServiceRevisions shows it.
    pub target: TargetRevision,
    /// Views as they were, newest last, for reads that lag.
    history: Vec<(Timestamp, ServiceDeployment)>,
}

impl Deployment {
    pub fn green_tg(&self) -> usize {
        1 - self.blue_tg
    }

    /// As DescribeServiceDeployments shows it now.
    pub fn view(&self) -> ServiceDeployment {
        ServiceDeployment {
            arn: self.arn.clone(),
            status: self.status,
            status_reason: self.status_reason.clone(),
            stage: self.stage,
            pauses: self.hooks.iter().map(|(_, p)| p.clone()).collect(),
            created_at: Some(self.created_at),
            target_weight: self.target_weight,
            rollback_reason: self.rollback_reason.clone(),
            target: Some(self.target.clone()),
        }
    }

    /// Keeps the view as of `now`, and of the older views only those a
    /// read lagging by `lag` may still show.
    fn remember(&mut self, now: Timestamp, lag: Duration) {
        let view = self.view();
        if self.history.last().is_some_and(|(_, v)| *v == view) {
            return;
        }
        self.history.push((now, view));
        let cutoff = now.0 - lag.as_millis() as i64;
        let keep_from = self
            .history
            .iter()
            .rposition(|(at, _)| at.0 <= cutoff)
            .unwrap_or(0);
        self.history.drain(..keep_from);
    }

    /// As a read lagging by `lag` shows it: `None` if it did not exist yet.
    fn seen(&self, now: Timestamp, lag: Duration) -> Option<ServiceDeployment> {
        if lag.is_zero() {
            return Some(self.view());
        }
        let cutoff = now.0 - lag.as_millis() as i64;
        self.history
            .iter()
            .rev()
            .find(|(at, _)| at.0 <= cutoff)
            .map(|(_, v)| v.clone())
    }

    fn hook_mut(&mut self, hook_id: &str) -> Option<&mut (LifecycleStage, Pause)> {
        self.hooks.iter_mut().find(|(_, p)| p.hook_id == hook_id)
    }
}

/// What UpdateService accepts of a deployment configuration: ECS refuses
/// the rest with an InvalidParameterException.
fn check_request(req: &StartServiceDeployment) -> Result<(), String> {
    // PAUSE hooks sit at these stages only
    // (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/pause-lifecycle-hooks.html).
    if let Some(stage) = req.pauses.iter().find(|s| !s.takes_pause()) {
        return Err(format!("a PAUSE hook cannot be placed at {stage}"));
    }
    // https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentLifecycleHookTimeoutConfiguration.html
    if !req.pauses.is_empty() && !PAUSE_TIMEOUT_MINUTES.contains(&req.pause_timeout_minutes) {
        return Err(format!(
            "timeoutInMinutes {} is not within {PAUSE_TIMEOUT_MINUTES:?}",
            req.pause_timeout_minutes
        ));
    }
    if !BAKE_MINUTES.contains(&req.bake_minutes) {
        return Err(format!(
            "bakeTimeInMinutes {} is not within {BAKE_MINUTES:?}",
            req.bake_minutes
        ));
    }
    // https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CanaryConfiguration.html
    // and https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_LinearConfiguration.html
    match req.strategy {
        NativeStrategy::BlueGreen => Ok(()),
        NativeStrategy::Canary {
            percent,
            bake_minutes,
        } => {
            if !(1..=100).contains(&percent) {
                return Err(format!("canaryPercent {percent} is not within 0.1 to 100"));
            }
            step_bake(bake_minutes)
        }
        NativeStrategy::Linear {
            percent,
            bake_minutes,
        } => {
            if !LINEAR_PERCENT.contains(&percent) {
                return Err(format!(
                    "stepPercent {percent} is not within {LINEAR_PERCENT:?}"
                ));
            }
            step_bake(bake_minutes)
        }
    }
}

fn step_bake(minutes: u32) -> Result<(), String> {
    if BAKE_MINUTES.contains(&minutes) {
        Ok(())
    } else {
        Err(format!(
            "step bake {minutes} min is not within {BAKE_MINUTES:?}"
        ))
    }
}

/// The service a deployment ARN names.
fn deployment_key(op: &'static str, arn: &str) -> Result<ServiceKey, CloudError> {
    arn::service_deployment_key(arn)
        .map(|(cluster, service)| ServiceKey::new(cluster, service).in_scope(arn::scope_of(arn)))
        .ok_or_else(|| {
            CloudError::new(
                ErrorKind::Invalid,
                op,
                format!("InvalidParameterException: {arn} is not a service deployment ARN"),
            )
        })
}

fn deployment_not_found(op: &'static str, arn: &str) -> CloudError {
    CloudError::new(
        ErrorKind::NotFound,
        op,
        format!("ServiceDeploymentNotFoundException: {arn} not found"),
    )
}

impl World {
    pub(crate) fn native(&self, key: &ServiceKey) -> Option<&NativeService> {
        self.services.by_key.get(key)?.native.as_ref()
    }

    pub(crate) fn native_mut(&mut self, key: &ServiceKey) -> Option<&mut NativeService> {
        self.services.by_key.get_mut(key)?.native.as_mut()
    }

    pub(crate) fn deployment(&self, key: &ServiceKey, arn: &str) -> Option<&Deployment> {
        self.native(key)?.deployment(arn)
    }

    /// Changes a deployment and keeps the view it now has for lagging reads.
    pub(crate) fn update_deployment<R>(
        &mut self,
        key: &ServiceKey,
        arn: &str,
        change: impl FnOnce(&mut Deployment) -> R,
    ) -> Option<R> {
        let (now, lag) = (self.now, self.config.native_read_lag);
        let d = self
            .native_mut(key)?
            .deployments
            .iter_mut()
            .find(|d| d.arn == arn)?;
        let out = change(d);
        d.remember(now, lag);
        Some(out)
    }

    /// The service on the ECS deployment controller, or why not.
    fn native_service(
        &self,
        key: &ServiceKey,
        op: &'static str,
    ) -> Result<&NativeService, CloudError> {
        let service = self.services.by_key.get(key).ok_or_else(|| {
            CloudError::new(
                ErrorKind::NotFound,
                op,
                format!("ServiceNotFoundException: service {key} not found"),
            )
        })?;
        service.native.as_ref().ok_or_else(|| {
            CloudError::new(
                ErrorKind::Invalid,
                op,
                format!(
                    "InvalidParameterException: service {key} uses the {} deployment controller; \
                     service deployments need ECS",
                    service.deployment_controller
                ),
            )
        })
    }

    /// UpdateService with a new version and deployment configuration: the
    /// service is set to run it at once, and a new deployment starts.
    pub fn start_deployment(
        &mut self,
        key: &ServiceKey,
        req: &StartServiceDeployment,
    ) -> Result<String, CloudError> {
        let invalid = |m: String| {
            CloudError::new(
                ErrorKind::Invalid,
                UPDATE,
                format!("InvalidParameterException: {m}"),
            )
        };
        check_request(req).map_err(invalid)?;
        let native = self.native_service(key, UPDATE)?;
        let container = native.container.clone();
        let current = native.task_definition.clone();
        let (blue, blue_tg) = (native.revision.clone(), native.serving);
        let ongoing: Vec<String> = native
            .deployments
            .iter()
            .filter(|d| d.status.ongoing())
            .map(|d| d.arn.clone())
            .collect();
        let previous = native
            .deployments
            .last()
            .map(|d| (d.task_definition.clone(), d.status));
        let green_target_group = native.target_groups[1 - blue_tg].clone();
        let service = &self.services.by_key[key];
        let requested_tasks = service.desired_count;
        let blue_task_definition = blue
            .as_deref()
            .and_then(|id| service.task_set(id))
            .map_or_else(
                || service.base_task_definition.clone(),
                |t| t.task_definition.clone(),
            );
        // An image goes into the task definition the service is set to
        // run, registered as its family's next revision.
        let task_definition = match &req.version {
            Version::TaskDefinition(td) => self.registry.resolve(td, &container),
            Version::Image { image, container } => {
                self.registry.with_image(&current, container, image)
            }
        }
        .map_err(invalid)?;

        let id = self.hex_id(22);
        let arn = arn::service_deployment_in(&key.scope, &key.cluster, &key.service, &id);
        self.check_native_start(key, &arn, &task_definition, &ongoing, previous);
        // What ECS does with an UpdateService while a deployment is ongoing
        // is not documented; the worst case is that the ongoing one rolls
        // back (production returns to blue) and the new one starts after.
        for old in &ongoing {
            self.begin_rollback(key, old, format!("superseded by service deployment {id}"));
        }
        let images = registry::parse(&task_definition)
            .and_then(|(family, rev)| self.registry.containers(&family, rev))
            .cloned()
            .unwrap_or_default();
        let target = TargetRevision {
            task_definition: arn::task_definition_in(&key.scope, &task_definition),
            images,
            target_groups: vec![green_target_group],
            requested_tasks: Some(requested_tasks),
        };
        let deployment = Deployment {
            target,
            arn: arn.clone(),
            request: req.clone(),
            task_definition: task_definition.clone(),
            status: ServiceDeploymentStatus::Pending,
            status_reason: None,
            stage: None,
            hooks: Vec::new(),
            created_at: self.now,
            target_weight: Some(0),
            rollback_reason: None,
            steps_done: 0,
            baking_step: false,
            blue,
            blue_task_definition,
            blue_tg,
            green: None,
            generation: 0,
            history: Vec::new(),
        };
        let (now, lag) = (self.now, self.config.native_read_lag);
        let Some(native) = self.native_mut(key) else {
            return Err(CloudError::not_found(UPDATE, format!("service {key}")));
        };
        native.task_definition = task_definition.clone();
        native.current = Some(arn.clone());
        native.deployments.push(deployment);
        if let Some(d) = native.deployments.last_mut() {
            d.remember(now, lag);
        }
        self.log(format!(
            "{key}: UpdateService to {task_definition} ({}, pauses at {:?}): deployment {id} PENDING",
            req.strategy, req.pauses
        ));
        self.after_stage(key, &arn);
        Ok(arn)
    }

    /// ContinueServiceDeployment. The answer must name the pause that
    /// waits, of a deployment IN_PROGRESS
    /// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/continue-service-deployment.html);
    /// what ECS answers otherwise is not documented beyond a ClientException
    /// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContinueServiceDeployment.html),
    /// so every refusal here is the same generic Invalid error.
    pub fn answer_pause(
        &mut self,
        arn: &str,
        hook_id: &str,
        action: PauseAction,
    ) -> Result<(), CloudError> {
        let key = deployment_key(CONTINUE, arn)?;
        let d = self
            .deployment(&key, arn)
            .ok_or_else(|| deployment_not_found(CONTINUE, arn))?;
        let why = match d.hooks.iter().find(|(_, p)| p.hook_id == hook_id) {
            _ if d.status != ServiceDeploymentStatus::InProgress => {
                Some(format!("is {}", d.status))
            }
            None => Some(format!("has no hook {hook_id}")),
            Some((_, p)) if p.status != PauseStatus::AwaitingAction => {
                Some(format!("hook {hook_id} is {:?}", p.status))
            }
            Some(_) => None,
        };
        if let Some(why) = why {
            self.log(format!(
                "{key}: {} {} refused: the deployment {why}",
                CONTINUE,
                action.as_str()
            ));
            return Err(CloudError::new(
                ErrorKind::Invalid,
                CONTINUE,
                "ClientException: The service deployment cannot be continued.",
            ));
        }
        let stage = self
            .update_deployment(&key, arn, |d| {
                d.hook_mut(hook_id).map(|(stage, p)| {
                    p.status = PauseStatus::Succeeded;
                    *stage
                })
            })
            .flatten()
            .unwrap_or(LifecycleStage::Other);
        self.log(format!(
            "{key}: {} answered {} at {stage}",
            hook_id,
            action.as_str()
        ));
        match action {
            PauseAction::Continue => {
                self.check_native_continue(&key, arn, stage, hook_id);
                self.work(&key, arn, stage);
            }
            PauseAction::Rollback => self.begin_rollback(
                &key,
                arn,
                format!("ROLLBACK answered to the pause at {stage}"),
            ),
        }
        Ok(())
    }

    /// StopServiceDeployment with stopType ROLLBACK
    /// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stop-service-deployment.html):
    /// a PENDING or IN_PROGRESS deployment rolls back; one already stopping
    /// or rolling back carries on; a completed one cannot be stopped, which
    /// ECS answers with a ConflictException
    /// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopServiceDeployment.html).
    pub fn stop_deployment(&mut self, arn: &str) -> Result<(), CloudError> {
        let key = deployment_key(STOP, arn)?;
        let status = self
            .deployment(&key, arn)
            .ok_or_else(|| deployment_not_found(STOP, arn))?
            .status;
        match status {
            ServiceDeploymentStatus::Pending | ServiceDeploymentStatus::InProgress => {
                self.begin_rollback(&key, arn, "StopServiceDeployment (ROLLBACK)".into());
                Ok(())
            }
            s if s.rolling_back() => {
                self.log(format!("{key}: {STOP} of a deployment already {s}"));
                Ok(())
            }
            s => Err(CloudError::new(
                ErrorKind::Other,
                STOP,
                format!("ConflictException: The service deployment is {s} and cannot be stopped."),
            )),
        }
    }

    /// DescribeServiceDeployments: the deployments with these ARNs that
    /// exist, as a read lagging by `native_read_lag` shows them.
    pub fn describe_deployments(
        &self,
        arns: &[String],
    ) -> Result<Vec<ServiceDeployment>, CloudError> {
        if arns.len() > DESCRIBE_DEPLOYMENTS_LIMIT {
            return Err(CloudError::new(
                ErrorKind::Invalid,
                DESCRIBE,
                format!(
                    "InvalidParameterException: {} service deployments requested; at most \
                     {DESCRIBE_DEPLOYMENTS_LIMIT} per call",
                    arns.len()
                ),
            ));
        }
        let lag = self.config.native_read_lag;
        // Unknown ARNs are reported as failures beside the answer; the
        // port's callers see them as absent.
        Ok(arns
            .iter()
            .filter_map(|arn| {
                let key = deployment_key(DESCRIBE, arn).ok()?;
                self.deployment(&key, arn)?.seen(self.now, lag)
            })
            .collect())
    }

    /// ListServiceDeployments with the ongoing statuses, created at or
    /// after `since` (AWS says "after"; whether the bound is inclusive is
    /// not documented, and the sim's millisecond clock makes an exclusive
    /// one miss a deployment created at the instant a caller remembers).
    pub fn ongoing_deployments(
        &self,
        key: &ServiceKey,
        since: Option<Timestamp>,
    ) -> Result<Vec<String>, CloudError> {
        let service = self.services.by_key.get(key).ok_or_else(|| {
            CloudError::new(
                ErrorKind::NotFound,
                LIST,
                format!("ServiceNotFoundException: service {key} not found"),
            )
        })?;
        let lag = self.config.native_read_lag;
        Ok(service
            .native
            .iter()
            .flat_map(|n| &n.deployments)
            .filter_map(|d| d.seen(self.now, lag))
            .filter(|d| {
                d.status.ongoing() && since.is_none_or(|s| d.created_at.is_some_and(|c| c >= s))
            })
            .map(|d| d.arn)
            .collect())
    }

    /// Every deployment of the service as it is now, oldest first.
    pub fn service_deployments(&self, key: &ServiceKey) -> Vec<ServiceDeployment> {
        self.native(key)
            .map(|n| n.deployments.iter().map(Deployment::view).collect())
            .unwrap_or_default()
    }
}
