//! The ECS scheduler's part: keeping each task set at its computed desired
//! count, starting tasks, and replacing tasks that crash or fail health checks.

use super::arn;
use super::ecs::{StoppedTask, Task, TaskState};
use super::registry::BadVersion;
use super::world::{Event, TaskRef, World};
use crate::cloud::CloudError;
use crate::rollout::{ServiceKey, TaskSetStatus};
use crate::time::Timestamp;

impl World {
    /// Starts or stops tasks until the task set has its computed desired count.
    pub fn reconcile_task_set(&mut self, key: &ServiceKey, task_set: &str) {
        let Some(service) = self.services.by_key.get(key) else {
            return;
        };
        let Some(ts) = service.task_set(task_set) else {
            return;
        };
        if ts.status == TaskSetStatus::Draining {
            return;
        }
        let desired = ts.computed_desired(service.desired_count) as usize;
        let live = ts.tasks.len();
        // Pending tasks go first, then the newest running ones, as ECS
        // prefers to keep tasks that have proven themselves.
        let mut surplus: Vec<u64> = ts
            .tasks
            .iter()
            .rev()
            .filter(|(_, t)| t.state == TaskState::Pending)
            .chain(
                ts.tasks
                    .iter()
                    .rev()
                    .filter(|(_, t)| t.state == TaskState::Running),
            )
            .map(|(id, _)| *id)
            .take(live.saturating_sub(desired))
            .collect();
        surplus.sort_unstable();
        for task in surplus {
            let task = TaskRef {
                key: key.clone(),
                task_set: task_set.to_string(),
                task,
            };
            self.stop_task(&task, "scaled in");
        }
        for _ in live..desired {
            let start = self.draw(self.config.task_start);
            let task = self.add_task(key, task_set, TaskState::Pending);
            self.schedule(self.now + start, Event::TaskRunning(task));
        }
    }

    fn add_task(&mut self, key: &ServiceKey, task_set: &str, state: TaskState) -> TaskRef {
        self.services.next_task += 1;
        let id = self.services.next_task;
        if let Some(ts) = self
            .services
            .by_key
            .get_mut(key)
            .and_then(|s| s.task_sets.iter_mut().find(|t| t.id == task_set))
        {
            ts.tasks.insert(
                id,
                Task {
                    state,
                    running_since: None,
                    target: None,
                    crash_at: None,
                },
            );
        }
        TaskRef {
            key: key.clone(),
            task_set: task_set.to_string(),
            task: id,
        }
    }

    /// A task that is already running, for scenario setup: its target
    /// registered at `registered`, which may lie in the past.
    pub fn add_running_task(&mut self, key: &ServiceKey, task_set: &str, registered: Timestamp) {
        let task = self.add_task(key, task_set, TaskState::Pending);
        self.start_task(&task, registered);
    }

    pub(crate) fn task_running(&mut self, task: &TaskRef) {
        let now = self.now;
        self.start_task(task, now);
    }

    fn start_task(&mut self, task: &TaskRef, since: Timestamp) {
        let Some(ts) = self
            .services
            .by_key
            .get_mut(&task.key)
            .and_then(|s| s.task_sets.iter_mut().find(|t| t.id == task.task_set))
        else {
            return;
        };
        let port = ts.container_port;
        let target_group = ts.target_group.clone();
        let Some(t) = ts.tasks.get_mut(&task.task) else {
            return;
        };
        if t.state != TaskState::Pending {
            return;
        }
        t.state = TaskState::Running;
        t.running_since = Some(since);
        let id = task.task;
        let target = format!(
            "10.{}.{}.{}:{port}",
            (id >> 16) & 255,
            (id >> 8) & 255,
            id & 255
        );
        if target_group.is_some() {
            t.target = Some(target.clone());
        }
        self.log(format!(
            "{}: task {id} of {} running",
            task.key, task.task_set
        ));
        if let Some(tg) = target_group {
            self.register_target(&tg, target, task.clone(), since, None);
        }
        self.apply_badness(task);
    }

    /// Makes a running task misbehave the way its version is marked to.
    pub fn apply_badness(&mut self, task: &TaskRef) {
        let Some(ts) = self
            .services
            .by_key
            .get(&task.key)
            .and_then(|s| s.task_sets.iter().find(|t| t.id == task.task_set))
        else {
            return;
        };
        let Some(bad) = self.registry.badness(&ts.task_definition) else {
            return;
        };
        let target_group = ts.target_group.clone();
        let Some(t) = ts.tasks.get(&task.task) else {
            return;
        };
        let (Some(since), target, crash_at) = (t.running_since, t.target.clone(), t.crash_at)
        else {
            return;
        };
        let fail_from = match bad {
            BadVersion::NeverHealthy => Some(since),
            BadVersion::FailsAfter(d) => Some(since + d),
            BadVersion::CrashLoop => None,
        };
        if let (Some(from), Some(tg), Some(target)) = (fail_from, &target_group, &target) {
            self.fail_target_from(tg, target, from);
        }
        if bad == BadVersion::CrashLoop && crash_at.is_none() {
            let at = self.now + self.draw(self.config.crash_after);
            if let Some(t) = self.task_mut(task) {
                t.crash_at = Some(at);
            }
            self.schedule(
                at,
                Event::TaskReplaced {
                    task: task.clone(),
                    reason: "essential container exited",
                },
            );
        }
    }

    /// After a version is marked bad, its running tasks start misbehaving too.
    pub fn apply_badness_everywhere(&mut self) {
        let running: Vec<TaskRef> = self
            .services
            .by_key
            .iter()
            .flat_map(|(key, s)| {
                s.task_sets.iter().flat_map(move |ts| {
                    ts.tasks
                        .iter()
                        .filter(|(_, t)| t.state == TaskState::Running)
                        .map(move |(id, _)| TaskRef {
                            key: key.clone(),
                            task_set: ts.id.clone(),
                            task: *id,
                        })
                })
            })
            .collect();
        for task in running {
            self.apply_badness(&task);
        }
    }

    fn task_mut(&mut self, task: &TaskRef) -> Option<&mut Task> {
        self.services
            .by_key
            .get_mut(&task.key)?
            .task_sets
            .iter_mut()
            .find(|t| t.id == task.task_set)?
            .tasks
            .get_mut(&task.task)
    }

    /// Stops a task; the scheduler starts a replacement if one is still needed.
    pub fn replace_task(&mut self, task: &TaskRef, reason: &str) {
        if self.stop_task(task, reason) {
            self.reconcile_task_set(&task.key, &task.task_set);
        }
    }

    /// Returns whether the task was there to stop.
    fn stop_task(&mut self, task: &TaskRef, reason: &str) -> bool {
        let Some(service) = self.services.by_key.get_mut(&task.key) else {
            return false;
        };
        let Some(ts) = service.task_sets.iter_mut().find(|t| t.id == task.task_set) else {
            return false;
        };
        let target_group = ts.target_group.clone();
        let Some(stopped) = ts.tasks.remove(&task.task) else {
            return false;
        };
        let started_by = ts.id.clone();
        let (stop_code, stopped_reason) = stop_code(reason, target_group.as_deref());
        service.stopped_tasks.push(StoppedTask {
            arn: arn::task_in(&task.key.scope, &task.key.cluster, task.task),
            started_by,
            stop_code,
            stopped_reason,
            stopped_at: self.now,
        });
        self.log(format!(
            "{}: task {} of {} stopped: {reason}",
            task.key, task.task, task.task_set
        ));
        if let (Some(tg), Some(target)) = (target_group, stopped.target) {
            self.deregister_target(&tg, &target);
        }
        true
    }

    pub(crate) fn task_set_gone(&mut self, key: &ServiceKey, id: &str) {
        if let Some(service) = self.services.by_key.get_mut(key) {
            service.task_sets.retain(|t| t.id != id);
            self.log(format!("{key}: task set {id} deleted"));
        }
    }

    pub fn set_desired_count(&mut self, key: &ServiceKey, count: u32) -> Result<(), CloudError> {
        let service = self.service_mut(key, "ecs:UpdateService")?;
        service.desired_count = count;
        let ids: Vec<String> = service.task_sets.iter().map(|t| t.id.clone()).collect();
        self.log(format!("{key}: desired count {count}"));
        for id in ids {
            self.reconcile_task_set(key, &id);
        }
        Ok(())
    }
}

/// The `stopCode` and `stoppedReason` ECS gives a task stopped for `reason`
/// (the API reference's Task, and the stopped task error codes:
/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html).
fn stop_code(reason: &str, target_group: Option<&str>) -> (&'static str, String) {
    match reason {
        "essential container exited" => (
            "EssentialContainerExited",
            "Essential container in task exited".to_string(),
        ),
        "failed ELB health checks" => (
            "ServiceSchedulerInitiated",
            format!(
                "Task failed ELB health checks in (target-group {})",
                target_group.unwrap_or("")
            ),
        ),
        // A host retired or a Fargate task retired for maintenance.
        "host retired (routine replacement)" => (
            "TerminationNotice",
            "Task stopped due to a termination notice".to_string(),
        ),
        other => (
            "ServiceSchedulerInitiated",
            format!("Scaling activity initiated by the service scheduler: {other}"),
        ),
    }
}
