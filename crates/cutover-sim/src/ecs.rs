//! ECS services with the EXTERNAL deployment controller and their task sets.
//! (Services on the ECS deployment controller, which ECS deploys itself,
//! are in `native`: their revisions run as task sets the API never shows.)

use std::collections::{BTreeMap, BTreeSet};

use super::arn;
use super::registry;
use super::world::World;
use crate::cloud::{CloudError, ErrorKind};
use crate::rollout::command::CreateTaskSet;
use crate::rollout::spec::Placement;
use crate::rollout::{
    EcsService, Scope, ServiceKey, ServiceState, Stability, TaskSet, TaskSetStatus, Version,
};
use crate::time::Timestamp;

/// ECS refuses a sixth task set in a service, and DRAINING ones count until
/// they are gone ("Task sets per service", 5, not adjustable:
/// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-quotas.html).
pub const TASK_SET_LIMIT: usize = 5;
/// A `CreateTaskSet` client token is up to 36 ASCII characters from 33 to
/// 126 (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/ECS_Idempotency.html).
pub const CLIENT_TOKEN_LIMIT: usize = 36;
/// DescribeServices takes at most this many services per call.
pub const DESCRIBE_LIMIT: usize = 10;

#[derive(Debug, Default)]
pub(crate) struct Services {
    /// By scope: two accounts or regions may each have a cluster `prod`.
    pub clusters: BTreeSet<(Scope, String)>,
    pub by_key: BTreeMap<ServiceKey, Service>,
    pub next_task: u64,
    /// Every `CreateTaskSet` client token used, by cluster (ECS's
    /// idempotency is per cluster, and a cluster is in one scope), with what it asked for and what it
    /// made. ECS does not say that a token is forgotten when its task set
    /// is deleted, so (the worst case) it never is.
    pub client_tokens: BTreeMap<(Scope, String, String), IssuedToken>,
}

impl Services {
    pub fn has_cluster(&self, scope: &Scope, cluster: &str) -> bool {
        self.clusters
            .contains(&(scope.clone(), cluster.to_string()))
    }
}

#[derive(Debug)]
pub(crate) struct Service {
    pub desired_count: u32,
    pub deployment_controller: String,
    /// In creation order, as ECS lists them.
    pub task_sets: Vec<SimTaskSet>,
    /// Tasks that stopped, as `ListTasks` with `desiredStatus = STOPPED`
    /// and `DescribeTasks` show them.
    pub stopped_tasks: Vec<StoppedTask>,
    /// When the controller removed each task set (DeleteTaskSet), by id.
    pub removed: Vec<(String, Timestamp)>,
    /// What `Version::Image` builds on when there is no task set to copy.
    pub base_task_definition: String,
    /// Under the ECS deployment controller: its service deployments.
    pub native: Option<super::native::NativeService>,
}

/// What a client token was first used for.
#[derive(Clone, Debug)]
pub(crate) struct IssuedToken {
    pub service: ServiceKey,
    pub request: CreateTaskSet,
    /// The task set as the first answer gave it: what a repeat returns
    /// once the task set itself is gone.
    pub created: TaskSet,
}

/// A task that stopped. ECS sets `startedBy` of a task set's tasks to the
/// task set's id, as it does for a service's deployment
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html).
#[derive(Clone, Debug)]
pub(crate) struct StoppedTask {
    pub arn: String,
    pub started_by: String,
    /// ECS's `stopCode` and `stoppedReason`.
    pub stop_code: &'static str,
    pub stopped_reason: String,
    pub stopped_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TaskState {
    Pending,
    Running,
}

#[derive(Clone, Debug)]
pub(crate) struct Task {
    pub state: TaskState,
    pub running_since: Option<Timestamp>,
    /// The target this task registered in the task set's target group.
    pub target: Option<String>,
    pub crash_at: Option<Timestamp>,
}

#[derive(Clone, Debug)]
pub(crate) struct SimTaskSet {
    pub id: String,
    pub arn: String,
    /// `family:revision`.
    pub task_definition: String,
    pub external_id: Option<String>,
    pub status: TaskSetStatus,
    pub scale_percent: f64,
    pub target_group: Option<String>,
    pub container_port: u16,
    pub placement: Placement,
    pub tasks: BTreeMap<u64, Task>,
    pub created_at: Timestamp,
}

impl SimTaskSet {
    pub fn computed_desired(&self, desired_count: u32) -> u32 {
        if self.status == TaskSetStatus::Draining {
            return 0;
        }
        (f64::from(desired_count) * self.scale_percent / 100.0).ceil() as u32
    }

    fn count(&self, state: TaskState) -> u32 {
        self.tasks.values().filter(|t| t.state == state).count() as u32
    }

    pub fn to_domain(&self, desired_count: u32, report_counts: bool) -> TaskSet {
        let computed = self.computed_desired(desired_count);
        let (running, pending) = (
            self.count(TaskState::Running),
            self.count(TaskState::Pending),
        );
        let steady = running == computed && pending == 0;
        let reported = |n: u32| report_counts.then_some(n);
        TaskSet {
            id: self.id.clone(),
            arn: self.arn.clone(),
            // In the task set's account and region.
            task_definition: arn::task_definition_in(
                &arn::scope_of(&self.arn),
                &self.task_definition,
            ),
            external_id: self.external_id.clone(),
            status: self.status,
            stability: if steady || !report_counts {
                Stability::SteadyState
            } else {
                Stability::Stabilizing
            },
            scale_percent: self.scale_percent,
            computed_desired: reported(computed),
            running: reported(running),
            pending: reported(pending),
            target_group: self.target_group.clone(),
            created_at: Some(self.created_at),
        }
    }

    /// ECS accepts a task set's id or its full ARN.
    pub fn is(&self, id_or_arn: &str) -> bool {
        self.arn == id_or_arn || self.id == id_or_arn
    }
}

impl Service {
    pub fn to_domain(&self, report_counts: bool) -> EcsService {
        // Services under another deployment controller have deployments,
        // not task sets.
        let external = self.deployment_controller == "EXTERNAL";
        EcsService {
            desired_count: self.desired_count,
            deployment_controller: self.deployment_controller.clone(),
            // Filled in by the world, which knows the task definitions.
            native: None,
            task_sets: self
                .task_sets
                .iter()
                .filter(|_| external)
                .map(|t| t.to_domain(self.desired_count, report_counts))
                .collect(),
        }
    }

    pub fn task_set(&self, id_or_arn: &str) -> Option<&SimTaskSet> {
        self.task_sets.iter().find(|t| t.is(id_or_arn))
    }
}

const DESCRIBE: &str = "ecs:DescribeServices";
const CREATE: &str = "ecs:CreateTaskSet";
const SET_PRIMARY: &str = "ecs:UpdateServicePrimaryTaskSet";
const DELETE: &str = "ecs:DeleteTaskSet";

impl World {
    pub fn service_state(&self, key: &ServiceKey) -> ServiceState {
        match self.services.by_key.get(key) {
            Some(s) => {
                let mut found = s.to_domain(self.config.report_counts);
                found.native = s
                    .native
                    .as_ref()
                    .map(|n| n.revision(&key.scope, &self.registry));
                ServiceState::Found(found)
            }
            None => ServiceState::Missing,
        }
    }

    /// DescribeServices at home.
    pub fn describe_services(
        &self,
        cluster: &str,
        names: &[String],
    ) -> Result<Vec<(String, ServiceState)>, CloudError> {
        self.describe_services_in(&Scope::Home, cluster, names)
    }

    /// DescribeServices in one account and region: a cluster there, and
    /// exactly the services of that scope (a service of the same names
    /// elsewhere is another service).
    pub fn describe_services_in(
        &self,
        scope: &Scope,
        cluster: &str,
        names: &[String],
    ) -> Result<Vec<(String, ServiceState)>, CloudError> {
        if names.len() > DESCRIBE_LIMIT {
            return Err(CloudError::new(
                ErrorKind::Invalid,
                DESCRIBE,
                format!(
                    "{} services requested; at most {DESCRIBE_LIMIT} per call",
                    names.len()
                ),
            ));
        }
        // ECS refuses the whole call with ClusterNotFoundException; the
        // port answers it for each service asked about.
        if !self.services.has_cluster(scope, cluster) {
            return Ok(names
                .iter()
                .map(|n| (n.clone(), ServiceState::ClusterMissing))
                .collect());
        }
        Ok(names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    self.service_state(
                        &ServiceKey::new(cluster, n.as_str()).in_scope(scope.clone()),
                    ),
                )
            })
            .collect())
    }

    pub(crate) fn service_mut(
        &mut self,
        key: &ServiceKey,
        op: &'static str,
    ) -> Result<&mut Service, CloudError> {
        self.services
            .by_key
            .get_mut(key)
            .ok_or_else(|| CloudError::not_found(op, format!("service {key}")))
    }

    pub fn create_task_set(
        &mut self,
        key: &ServiceKey,
        req: &CreateTaskSet,
    ) -> Result<TaskSet, CloudError> {
        let invalid = |m: String| CloudError::new(ErrorKind::Invalid, CREATE, m);
        let report = self.config.report_counts;
        let service = self.service_mut(key, CREATE)?;
        if service.deployment_controller != "EXTERNAL" {
            return Err(invalid(format!(
                "service {key} uses the {} deployment controller; task sets need EXTERNAL",
                service.deployment_controller
            )));
        }
        check_client_token(&req.client_token).map_err(invalid)?;
        // A repeated token: the same request gets the first answer again,
        // even after its task set was deleted; another request is refused
        // (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/ECS_Idempotency.html).
        let token = (
            key.scope.clone(),
            key.cluster.clone(),
            req.client_token.clone(),
        );
        if let Some(issued) = self.services.client_tokens.get(&token) {
            if issued.request != *req || issued.service != *key {
                return Err(invalid(format!(
                    "the client token {} was already used for another request; use a new token for a new request",
                    req.client_token
                )));
            }
            let service = self.services.by_key.get(key);
            return Ok(match service.and_then(|s| s.task_set(&issued.created.id)) {
                Some(live) => live.to_domain(service.map_or(0, |s| s.desired_count), report),
                None => TaskSet {
                    status: TaskSetStatus::Draining,
                    ..issued.created.clone()
                },
            });
        }
        let service = self.service_mut(key, CREATE)?;
        // DRAINING task sets stay in `task_sets` until they are gone, so
        // they count.
        if service.task_sets.len() >= TASK_SET_LIMIT {
            return Err(invalid(format!(
                "service {key} already has {} task sets (DRAINING ones included until they are gone); at most {TASK_SET_LIMIT} are allowed",
                service.task_sets.len()
            )));
        }
        if !(0.0..=100.0).contains(&req.scale_percent) {
            return Err(invalid(format!(
                "scale {} is not 0-100 percent",
                req.scale_percent
            )));
        }
        let placement = match &req.template {
            Some(t) => match service.task_set(t) {
                Some(template) => template.placement.clone(),
                None => return Err(CloudError::not_found(CREATE, format!("task set {t}"))),
            },
            None if req.placement.network.is_none() => {
                return Err(invalid(
                    "Network Configuration must be provided when networkMode 'awsvpc' is specified"
                        .into(),
                ));
            }
            None => req.placement.clone(),
        };
        let base = req
            .template
            .as_deref()
            .and_then(|t| service.task_set(t))
            .or_else(|| {
                service
                    .task_sets
                    .iter()
                    .find(|t| t.status == TaskSetStatus::Primary)
            })
            .map_or_else(
                || service.base_task_definition.clone(),
                |t| t.task_definition.clone(),
            );
        if !self.lb.target_groups.contains_key(&req.target_group) {
            return Err(CloudError::not_found(
                CREATE,
                format!("target group {}", req.target_group),
            ));
        }
        let task_definition = match &req.version {
            Version::TaskDefinition(td) => self.registry.resolve(td, &req.container),
            Version::Image { image, container } => {
                self.registry.with_image(&base, container, image)
            }
        }
        .map_err(invalid)?;
        let has_container = registry::parse(&task_definition)
            .and_then(|(f, r)| self.registry.containers(&f, r))
            .is_some_and(|c| c.contains_key(&req.container));
        if !has_container {
            return Err(invalid(format!(
                "the container {} does not exist in task definition {task_definition}",
                req.container
            )));
        }
        let id = format!("ecs-svc/{}", self.digits(19));
        let task_set = SimTaskSet {
            arn: arn::task_set_in(&key.scope, &key.cluster, &key.service, &id),
            id: id.clone(),
            task_definition,
            external_id: Some(req.external_id.clone()),
            status: TaskSetStatus::Active,
            scale_percent: req.scale_percent,
            target_group: Some(req.target_group.clone()),
            container_port: req.container_port,
            placement,
            tasks: BTreeMap::new(),
            created_at: self.now,
        };
        self.log(format!(
            "{key}: created task set {id} ({}) at {}% in {}",
            task_set.task_definition,
            task_set.scale_percent,
            arn::label(&req.target_group)
        ));
        let service = self.service_mut(key, CREATE)?;
        service.task_sets.push(task_set);
        self.reconcile_task_set(key, &id);
        let service = self.service_mut(key, CREATE)?;
        let created = service
            .task_set(&id)
            .map(|t| t.to_domain(service.desired_count, report))
            .ok_or_else(|| CloudError::not_found(CREATE, format!("task set {id}")))?;
        self.services.client_tokens.insert(
            token,
            IssuedToken {
                service: key.clone(),
                request: req.clone(),
                created: created.clone(),
            },
        );
        Ok(created)
    }

    pub fn set_primary(&mut self, key: &ServiceKey, id_or_arn: &str) -> Result<(), CloudError> {
        let service = self.service_mut(key, SET_PRIMARY)?;
        let Some(target) = service.task_set(id_or_arn) else {
            return Err(CloudError::not_found(
                SET_PRIMARY,
                format!("task set {id_or_arn}"),
            ));
        };
        if target.status == TaskSetStatus::Draining {
            return Err(CloudError::new(
                ErrorKind::Invalid,
                SET_PRIMARY,
                format!("task set {id_or_arn} is DRAINING and cannot become primary"),
            ));
        }
        for t in &mut service.task_sets {
            if t.is(id_or_arn) {
                t.status = TaskSetStatus::Primary;
            } else if t.status == TaskSetStatus::Primary {
                t.status = TaskSetStatus::Active;
            }
        }
        self.log(format!("{key}: task set {id_or_arn} is primary"));
        Ok(())
    }

    pub fn delete_task_set(&mut self, key: &ServiceKey, id_or_arn: &str) -> Result<(), CloudError> {
        self.delete_task_set_as(key, id_or_arn, false)
    }

    /// Deletes a task set as a person on the console would: whatever
    /// traffic it still gets is theirs to answer for, not the controller's,
    /// so the invariants do not judge it. ECS does not say whether it
    /// refuses to delete the primary task set; for the controller the worst
    /// case of a person's delete is that it succeeds, so it does.
    pub fn delete_task_set_by_hand(
        &mut self,
        key: &ServiceKey,
        id_or_arn: &str,
    ) -> Result<(), CloudError> {
        self.log(format!("{key}: a person deletes task set {id_or_arn}"));
        self.delete_task_set_as(key, id_or_arn, true)
    }

    pub(crate) fn delete_task_set_as(
        &mut self,
        key: &ServiceKey,
        id_or_arn: &str,
        by_hand: bool,
    ) -> Result<(), CloudError> {
        let service = self.service_mut(key, DELETE)?;
        let Some(ts) = service.task_set(id_or_arn).cloned() else {
            return Err(CloudError::not_found(
                DELETE,
                format!("task set {id_or_arn}"),
            ));
        };
        // Not documented either way; refusing is the worst case a
        // controller must cope with, and it never needs to delete the primary.
        if ts.status == TaskSetStatus::Primary && !by_hand {
            return Err(CloudError::new(
                ErrorKind::Invalid,
                DELETE,
                format!(
                    "task set {id_or_arn} is the primary task set; make another one primary first"
                ),
            ));
        }
        if ts.status == TaskSetStatus::Draining {
            return Ok(());
        }
        if !by_hand {
            self.check_task_set_delete(&ts.arn, ts.target_group.as_deref());
        }
        let now = self.now;
        let service = self.service_mut(key, DELETE)?;
        if !by_hand {
            service.removed.push((ts.id.clone(), now));
        }
        let Some(live) = service.task_sets.iter_mut().find(|t| t.is(id_or_arn)) else {
            return Ok(());
        };
        live.status = TaskSetStatus::Draining;
        live.scale_percent = 0.0;
        // Pending tasks are simply cancelled; running ones serve until their
        // targets have drained.
        live.tasks.retain(|_, t| t.state == TaskState::Running);
        let targets: Vec<String> = live
            .tasks
            .values()
            .filter_map(|t| t.target.clone())
            .collect();
        if let Some(tg) = &ts.target_group {
            for target in &targets {
                self.deregister_target(tg, target);
            }
        }
        self.log(format!("{key}: task set {} draining", ts.id));
        let at = self.now + self.config.deregistration_delay;
        self.schedule(
            at,
            super::world::Event::TaskSetGone {
                key: key.clone(),
                task_set: ts.id,
            },
        );
        Ok(())
    }
}

/// ECS's rule for a `CreateTaskSet` client token
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/ECS_Idempotency.html).
fn check_client_token(token: &str) -> Result<(), String> {
    if token.is_empty() || token.len() > CLIENT_TOKEN_LIMIT {
        return Err(format!(
            "clientToken must be 1 to {CLIENT_TOKEN_LIMIT} characters long; it has {}",
            token.len()
        ));
    }
    if !token.bytes().all(|b| (33..=126).contains(&b)) {
        return Err("clientToken may hold only ASCII characters 33 to 126".into());
    }
    Ok(())
}
