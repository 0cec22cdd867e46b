//! `ListTasks` and `DescribeTasks`: what a task set's tasks say about
//! themselves, with the filters ECS accepts.
//!
//! ECS starts a task set's tasks with `startedBy` = the task set's id
//! (`ecs-svc/…`), the id of the "deployment" that started them
//! (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html).
//! `ListTasks` takes `startedBy` only as its sole filter, and lists
//! `RUNNING` tasks unless asked for `STOPPED`
//! (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html).

use super::arn;
use super::ecs::TaskState;
use super::world::World;
use crate::cloud::{CloudError, ErrorKind};
use crate::rollout::{Scope, ServiceKey};

const LIST: &str = "ecs:ListTasks";
const DESCRIBE: &str = "ecs:DescribeTasks";
/// DescribeTasks takes at most this many tasks per call.
pub const DESCRIBE_TASKS_LIMIT: usize = 100;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DesiredStatus {
    /// ECS's default when no `desiredStatus` is given.
    #[default]
    Running,
    Stopped,
}

/// The filters of one `ListTasks` call, within one cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub service_name: Option<String>,
    pub started_by: Option<String>,
    /// `None` is ECS's default, `RUNNING`.
    pub desired_status: Option<DesiredStatus>,
}

/// What `DescribeTasks` says of one task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskView {
    pub arn: String,
    pub started_by: String,
    pub desired_status: DesiredStatus,
    /// A stopped task's `stopCode` and `stoppedReason`.
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
}

impl World {
    fn tasks_of(&self, scope: &Scope, cluster: &str) -> Vec<(&ServiceKey, TaskView)> {
        let mut all = vec![];
        for (key, service) in &self.services.by_key {
            if key.cluster != cluster || key.scope != *scope {
                continue;
            }
            for ts in &service.task_sets {
                for (n, task) in &ts.tasks {
                    if matches!(task.state, TaskState::Pending | TaskState::Running) {
                        all.push((
                            key,
                            TaskView {
                                arn: arn::task_in(scope, cluster, *n),
                                started_by: ts.id.clone(),
                                desired_status: DesiredStatus::Running,
                                stop_code: None,
                                stopped_reason: None,
                            },
                        ));
                    }
                }
            }
            for t in &service.stopped_tasks {
                all.push((
                    key,
                    TaskView {
                        arn: t.arn.clone(),
                        started_by: t.started_by.clone(),
                        desired_status: DesiredStatus::Stopped,
                        stop_code: Some(t.stop_code.to_string()),
                        stopped_reason: Some(t.stopped_reason.clone()),
                    },
                ));
            }
        }
        all
    }

    pub fn list_tasks(
        &self,
        cluster: &str,
        filter: &TaskFilter,
    ) -> Result<Vec<String>, CloudError> {
        self.list_tasks_in(&Scope::Home, cluster, filter)
    }

    /// `ListTasks` in a cluster of `scope`.
    pub fn list_tasks_in(
        &self,
        scope: &Scope,
        cluster: &str,
        filter: &TaskFilter,
    ) -> Result<Vec<String>, CloudError> {
        if filter.started_by.is_some()
            && (filter.service_name.is_some() || filter.desired_status.is_some())
        {
            return Err(CloudError::new(
                ErrorKind::Invalid,
                LIST,
                "startedBy must be the only filter when it is given",
            ));
        }
        if !self.services.has_cluster(scope, cluster) {
            return Err(CloudError::not_found(LIST, format!("cluster {cluster}")));
        }
        let status = filter.desired_status.unwrap_or_default();
        Ok(self
            .tasks_of(scope, cluster)
            .into_iter()
            .filter(|(key, t)| {
                t.desired_status == status
                    && filter
                        .service_name
                        .as_ref()
                        .is_none_or(|s| *s == key.service)
                    && filter
                        .started_by
                        .as_ref()
                        .is_none_or(|s| *s == t.started_by)
            })
            .map(|(_, t)| t.arn)
            .collect())
    }

    pub fn describe_tasks(
        &self,
        cluster: &str,
        arns: &[String],
    ) -> Result<Vec<TaskView>, CloudError> {
        self.describe_tasks_in(&Scope::Home, cluster, arns)
    }

    /// `DescribeTasks` in a cluster of `scope`.
    pub fn describe_tasks_in(
        &self,
        scope: &Scope,
        cluster: &str,
        arns: &[String],
    ) -> Result<Vec<TaskView>, CloudError> {
        if arns.len() > DESCRIBE_TASKS_LIMIT {
            return Err(CloudError::new(
                ErrorKind::Invalid,
                DESCRIBE,
                format!(
                    "{} tasks requested; at most {DESCRIBE_TASKS_LIMIT} per call",
                    arns.len()
                ),
            ));
        }
        Ok(self
            .tasks_of(scope, cluster)
            .into_iter()
            .map(|(_, t)| t)
            .filter(|t| arns.contains(&t.arn))
            .collect())
    }
}

impl super::SimCloud {
    /// `ListTasks` in one cluster, outside the ports (no fault, no count).
    pub fn list_tasks(
        &self,
        cluster: &str,
        filter: &TaskFilter,
    ) -> Result<Vec<String>, CloudError> {
        self.world().list_tasks(cluster, filter)
    }

    /// `DescribeTasks` in one cluster, outside the ports.
    pub fn describe_tasks(
        &self,
        cluster: &str,
        arns: &[String],
    ) -> Result<Vec<TaskView>, CloudError> {
        self.world().describe_tasks(cluster, arns)
    }
}
