//! What the controller saw of the live service, in the domain's words. The AWS
//! adapters and the simulated cloud both produce these.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::revision::Revision;
use crate::time::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskSetStatus {
    Primary,
    Active,
    Draining,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Stability {
    Stabilizing,
    SteadyState,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSet {
    pub id: String,
    pub arn: String,
    pub task_definition: String,
    pub external_id: Option<String>,
    pub status: TaskSetStatus,
    pub stability: Stability,
    pub scale_percent: f64,
    /// `None` where ECS does not report it: unknown, not zero.
    pub computed_desired: Option<u32>,
    pub running: Option<u32>,
    pub pending: Option<u32>,
    pub target_group: Option<String>,
    /// When ECS created it, where reported: a task set older than the
    /// primary served before it (see `Machine::adopt_superseded`).
    #[serde(default)]
    pub created_at: Option<Timestamp>,
}

impl TaskSet {
    /// The revision cutover created this task set for, if it did.
    pub fn revision(&self) -> Option<Revision> {
        self.external_id
            .as_deref()
            .and_then(Revision::from_external_id)
    }

    /// The task set as people know it: its id and what it runs.
    pub fn name(&self) -> String {
        task_set_name(&self.arn, &self.task_definition)
    }

    /// Whether ECS reports it as created before `other`. Unknown times
    /// compare as "no".
    pub fn older_than(&self, other: &TaskSet) -> bool {
        matches!((self.created_at, other.created_at), (Some(a), Some(b)) if a < b)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EcsService {
    pub desired_count: u32,
    /// `EXTERNAL` for services cutover can drive.
    pub deployment_controller: String,
    pub task_sets: Vec<TaskSet>,
    /// Under the ECS deployment controller: the task definition the service
    /// is set to run and its newest service deployment.
    #[serde(default)]
    pub native: Option<super::service_deployment::ServiceRevision>,
}

impl EcsService {
    pub fn primary(&self) -> Option<&TaskSet> {
        self.task_sets
            .iter()
            .find(|t| t.status == TaskSetStatus::Primary)
    }

    pub fn by_arn(&self, arn: &str) -> Option<&TaskSet> {
        self.task_sets.iter().find(|t| t.arn == arn)
    }

    pub fn is_external(&self) -> bool {
        self.deployment_controller == "EXTERNAL"
    }

    /// On the ECS deployment controller, which deploys blue/green, linear
    /// and canary releases itself.
    pub fn is_native(&self) -> bool {
        self.deployment_controller == "ECS"
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ServiceState {
    Found(EcsService),
    Missing,
    /// The cluster named in the key does not exist, so neither does the
    /// service.
    ClusterMissing,
}

/// The forward weights of one listener action: target group ARN to weight.
/// cutover writes percentages; it compares shares, so weights other tools
/// wrote (e.g. 1 and 0) still read right.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Weights(pub BTreeMap<String, u32>);

impl Weights {
    pub fn pair(active_tg: &str, active: u32, candidate_tg: &str, candidate: u32) -> Weights {
        let mut m = BTreeMap::new();
        m.insert(active_tg.to_string(), active);
        m.insert(candidate_tg.to_string(), candidate);
        Weights(m)
    }

    pub fn total(&self) -> u32 {
        self.0.values().sum()
    }

    pub fn get(&self, tg: &str) -> u32 {
        self.0.get(tg).copied().unwrap_or(0)
    }

    /// Share of `tg` in percent, rounded down.
    pub fn percent(&self, tg: &str) -> u32 {
        match self.total() {
            0 => 0,
            t => self.get(tg) * 100 / t,
        }
    }

    /// Whether both route the same share of traffic to every target group.
    pub fn same_shares(&self, other: &Weights) -> bool {
        let (ta, tb) = (self.total() as u64, other.total() as u64);
        if ta == 0 || tb == 0 {
            return ta == tb;
        }
        self.0
            .keys()
            .chain(other.0.keys())
            .all(|tg| self.get(tg) as u64 * tb == other.get(tg) as u64 * ta)
    }
}

impl fmt::Display for Weights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(tg, w)| format!("{}={w}", short_arn(tg)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// The last path segment of an ARN, for messages.
pub fn short_arn(arn: &str) -> &str {
    let tail = arn.rsplit(':').next().unwrap_or(arn);
    let mut parts = tail.split('/');
    match (parts.next(), parts.next()) {
        (Some(_kind), Some(name)) => name,
        _ => tail,
    }
}

/// The task set's id (`ecs-svc/…`) in its ARN
/// (`…:task-set/<cluster>/<service>/<id>`), for messages: the path's first
/// segment is the cluster, which every task set of the service shares.
pub fn task_set_id(arn: &str) -> &str {
    arn.split_once(":task-set/")
        .and_then(|(_, path)| path.splitn(3, '/').nth(2))
        .unwrap_or(arn)
}

/// `ecs-svc/… (family:revision)`: a task set named so that people can tell
/// it from the service's other task sets.
pub fn task_set_name(arn: &str, task_definition: &str) -> String {
    format!(
        "{} ({})",
        task_set_id(arn),
        short_task_definition(task_definition)
    )
}

/// `family:revision` of a task definition ARN, for messages.
pub fn short_task_definition(td: &str) -> &str {
    td.rsplit_once(":task-definition/")
        .map_or(td, |(_, tail)| tail)
}

/// Target health counts of one target group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetCounts {
    pub healthy: u32,
    pub unhealthy: u32,
    pub initial: u32,
    pub draining: u32,
    pub other: u32,
}

/// One snapshot of a service, read before each decision. Optional parts are
/// read only when the decision needs them (see `rollout::reads`); `None`
/// means "not read", never "empty".
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Observed {
    pub service: Option<ServiceState>,
    pub production: Option<Weights>,
    pub test: Option<Weights>,
    /// Health of target groups that were asked for, by ARN.
    pub targets: BTreeMap<String, TargetCounts>,
    /// The newest reading of each analysis gate, by gate name.
    pub gates: BTreeMap<String, super::gate::Reading>,
    /// Candidate tasks that stopped since the candidate was created, where read.
    pub failed_tasks: Option<u32>,
    /// The CodeDeploy deployment, where read.
    pub deployment: Option<super::deployment::DeploymentView>,
    /// The ECS service deployment, where read (`driver = "ecs_native"`).
    pub service_deployment: Option<super::service_deployment::ServiceDeploymentView>,
    /// Group-level stickiness of the production route, where read (only
    /// when a task set that production weighed is about to be removed).
    pub production_stickiness: Option<Stickiness>,
    /// The fleet-wide halt, when one is on (`rollout::halt`). Read from the
    /// table for every pass, like the service.
    pub halt: Option<super::halt::Halt>,
    /// Whether a rollout not yet started may start, under the configured
    /// concurrency limits (`rollout::admission`). `None`: no limits are
    /// configured, or the rollout is in flight; it may start.
    pub admission: Option<super::admission::Admission>,
}

/// Group-level stickiness of a forward action (`TargetGroupStickinessConfig`):
/// while enabled, a client stays on the target group it was first sent to
/// for `duration_seconds`, whatever the weights say after.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stickiness {
    pub enabled: bool,
    /// 1 to 604800 (7 days) when enabled; 0 when the route has none.
    pub duration_seconds: u32,
}

impl Stickiness {
    /// The same duration, turned on or off.
    pub fn turned(self, enabled: bool) -> Stickiness {
        Stickiness { enabled, ..self }
    }
}

/// Task sets that still count: a DRAINING task set is on its way out.
pub(crate) fn live(svc: &EcsService) -> impl Iterator<Item = &TaskSet> {
    svc.task_sets
        .iter()
        .filter(|t| t.status != TaskSetStatus::Draining)
}

/// The live task set that runs `rev`: a rollout's candidate. A draining task
/// set of the same revision (the one an A -> B -> A release left behind) is
/// not it: its stopped tasks and targets belong to the earlier rollout.
pub(crate) fn candidate<'s>(svc: &'s EcsService, rev: &Revision) -> Option<&'s TaskSet> {
    live(svc).find(|t| t.revision().as_ref() == Some(rev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_compare_by_share() {
        let a = Weights::pair("a", 100, "b", 0);
        let b = Weights::pair("a", 1, "b", 0);
        let mut c = Weights::default();
        c.0.insert("a".into(), 7);
        assert!(a.same_shares(&b));
        assert!(a.same_shares(&c));
        assert!(!a.same_shares(&Weights::pair("a", 90, "b", 10)));
        assert_eq!(Weights::pair("a", 90, "b", 10).percent("b"), 10);
    }

    #[test]
    fn short_arn_keeps_the_name() {
        assert_eq!(
            short_arn("arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/web-blue/abc"),
            "web-blue"
        );
        assert_eq!(short_arn("plain"), "plain");
    }

    #[test]
    fn a_task_set_is_named_by_its_id_and_task_definition_not_its_cluster() {
        assert_eq!(
            task_set_name(
                "arn:aws:ecs:eu-west-1:1:task-set/prod/checkout/ecs-svc/1234567890",
                "arn:aws:ecs:eu-west-1:1:task-definition/checkout:42"
            ),
            "ecs-svc/1234567890 (checkout:42)"
        );
        assert_eq!(task_set_id("not-an-arn"), "not-an-arn");
    }
}
