//! CodeDeploy deployments in the domain's words: what a record that keeps a
//! service on the CODE_DEPLOY deployment controller names, what the
//! controller reads of a deployment, and what it asks CodeDeploy to do.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::control::RolloutId;
use super::hook::HookPoint;
use crate::time::Timestamp;

/// The deployment group a `driver = "codedeploy"` record deploys through.
/// Named in the record, so nothing is looked up per service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeDeployTarget {
    pub application: String,
    pub deployment_group: String,
    /// `None`: the deployment group's own configuration.
    pub deployment_config: Option<String>,
    /// Lambda functions CodeDeploy invokes at its lifecycle hooks.
    pub hooks: BTreeMap<HookPoint, String>,
}

/// CodeDeploy's deployment states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeploymentStatus {
    Created,
    Queued,
    InProgress,
    Baking,
    /// Waiting for traffic to be rerouted (ContinueDeployment).
    Ready,
    Succeeded,
    Failed,
    Stopped,
}

impl DeploymentStatus {
    pub const IN_FLIGHT: [DeploymentStatus; 5] = [
        DeploymentStatus::Created,
        DeploymentStatus::Queued,
        DeploymentStatus::InProgress,
        DeploymentStatus::Baking,
        DeploymentStatus::Ready,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Created => "Created",
            DeploymentStatus::Queued => "Queued",
            DeploymentStatus::InProgress => "InProgress",
            DeploymentStatus::Baking => "Baking",
            DeploymentStatus::Ready => "Ready",
            DeploymentStatus::Succeeded => "Succeeded",
            DeploymentStatus::Failed => "Failed",
            DeploymentStatus::Stopped => "Stopped",
        }
    }

    pub fn in_flight(self) -> bool {
        Self::IN_FLIGHT.contains(&self)
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of one lifecycle event of an ECS deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventStatus {
    Pending,
    InProgress,
    Succeeded,
    Failed,
    Skipped,
    Unknown,
}

impl EventStatus {
    /// The event has begun (and may have ended).
    pub fn started(self) -> bool {
        matches!(
            self,
            EventStatus::InProgress | EventStatus::Succeeded | EventStatus::Failed
        )
    }
}

/// One deployment as CodeDeploy describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    pub status: DeploymentStatus,
    /// Set by whoever created it; cutover writes [`description`] there.
    pub description: Option<String>,
    /// `code: message` of a failed or stopped deployment.
    pub error: Option<String>,
    /// The original task set is kept for the termination wait: all traffic
    /// has moved.
    pub termination_wait_started: bool,
    pub created_at: Option<Timestamp>,
    /// Lifecycle events by name (`AllowTraffic`…), where they were read.
    pub lifecycle: BTreeMap<String, EventStatus>,
    /// Production weights (original, replacement) in percent, where read.
    pub traffic: Option<(u32, u32)>,
}

impl Deployment {
    /// The rollout cutover created this deployment for, if it did.
    pub fn rollout(&self) -> Option<RolloutId> {
        self.description
            .as_deref()?
            .strip_prefix(DESCRIPTION_PREFIX)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    fn event(&self, name: &str) -> Option<EventStatus> {
        self.lifecycle.get(name).copied()
    }

    /// Production traffic has started to move to the replacement.
    pub fn shifting(&self) -> bool {
        self.event("AllowTraffic").is_some_and(EventStatus::started)
            || self.traffic.is_some_and(|(_, green)| green > 0)
    }

    /// The test listener sends the replacement traffic.
    pub fn testing(&self) -> bool {
        self.event("AllowTestTraffic")
            .is_some_and(EventStatus::started)
    }
}

const DESCRIPTION_PREFIX: &str = "cutover rollout ";

/// The description cutover gives a deployment, so that a restarted
/// controller can tell its own deployment (and for which rollout) from
/// someone else's.
pub fn description(rollout: &RolloutId) -> String {
    format!("{DESCRIPTION_PREFIX}{rollout}")
}

/// What the controller saw of a deployment group: `Found` is the deployment
/// asked for by id, or the one in flight; `Absent` means none (in flight).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DeploymentView {
    Found(Deployment),
    Absent,
}

/// Which deployment to read before deciding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentRead {
    /// The rollout's own deployment.
    Get { id: String, lifecycle: bool },
    /// The group's deployments in flight (ListDeployments); with `since`,
    /// every deployment created since then, finished ones too, so that a
    /// deployment that ended before its id was stored is still found.
    InFlight {
        application: String,
        deployment_group: String,
        since: Option<Timestamp>,
    },
}

/// The deployment of the rollout in flight, as the status remembers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRef {
    pub id: String,
    pub status: DeploymentStatus,
}

/// A new deployment of the record's task definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateDeployment {
    pub application: String,
    pub deployment_group: String,
    pub deployment_config: Option<String>,
    pub description: String,
    pub task_definition: String,
    pub container: String,
    pub container_port: u16,
    pub hooks: BTreeMap<HookPoint, String>,
}

impl CreateDeployment {
    /// The AppSpec CodeDeploy runs, as JSON (CodeDeploy takes JSON or YAML).
    pub fn appspec(&self) -> String {
        let hooks: Vec<serde_json::Value> = self
            .hooks
            .iter()
            .map(|(point, arn)| json!({ appspec_hook(*point): arn }))
            .collect();
        let mut spec = json!({
            "version": 0.0,
            "Resources": [{
                "TargetService": {
                    "Type": "AWS::ECS::Service",
                    "Properties": {
                        "TaskDefinition": self.task_definition,
                        "LoadBalancerInfo": {
                            "ContainerName": self.container,
                            "ContainerPort": self.container_port,
                        },
                    },
                },
            }],
        });
        if !hooks.is_empty() {
            spec["Hooks"] = serde_json::Value::Array(hooks);
        }
        spec.to_string()
    }
}

/// How ContinueDeployment continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContinueWait {
    /// Reroute production traffic to a deployment that is Ready.
    ReadyWait,
    /// End the termination wait: remove the original task set now.
    TerminationWait,
}

/// AppSpec hook names, by cutover hook point.
pub fn appspec_hook(point: HookPoint) -> &'static str {
    match point {
        HookPoint::BeforeInstall => "BeforeInstall",
        HookPoint::AfterInstall => "AfterInstall",
        HookPoint::AfterTestTraffic => "AfterAllowTestTraffic",
        HookPoint::BeforeProductionTraffic => "BeforeAllowTraffic",
        HookPoint::AfterProductionTraffic => "AfterAllowTraffic",
    }
}

/// The cutover hook point of an AppSpec hook name.
pub fn hook_point(appspec_name: &str) -> Option<HookPoint> {
    HookPoint::ALL
        .into_iter()
        .find(|p| appspec_hook(*p) == appspec_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_appspec_names_the_task_definition_container_and_hooks() {
        let c = CreateDeployment {
            application: "app".into(),
            deployment_group: "dg".into(),
            deployment_config: None,
            description: "x".into(),
            task_definition: "arn:aws:ecs:us-east-1:1:task-definition/web:3".into(),
            container: "web".into(),
            container_port: 8080,
            hooks: BTreeMap::from([(
                HookPoint::AfterTestTraffic,
                "arn:aws:lambda:us-east-1:1:function:smoke".to_string(),
            )]),
        };
        let v: serde_json::Value = serde_json::from_str(&c.appspec()).unwrap();
        let props = &v["Resources"][0]["TargetService"]["Properties"];
        assert_eq!(
            props["TaskDefinition"],
            "arn:aws:ecs:us-east-1:1:task-definition/web:3"
        );
        assert_eq!(props["LoadBalancerInfo"]["ContainerName"], "web");
        assert_eq!(props["LoadBalancerInfo"]["ContainerPort"], 8080);
        assert_eq!(
            v["Hooks"][0]["AfterAllowTestTraffic"],
            "arn:aws:lambda:us-east-1:1:function:smoke"
        );
    }

    #[test]
    fn a_deployment_names_its_rollout_in_the_description() {
        let id: RolloutId = "0123abcd#2".parse().unwrap();
        let d = Deployment {
            id: "d-1".into(),
            status: DeploymentStatus::Queued,
            description: Some(description(&id)),
            error: None,
            termination_wait_started: false,
            created_at: None,
            lifecycle: BTreeMap::new(),
            traffic: None,
        };
        assert_eq!(d.rollout(), Some(id));
        let other = Deployment {
            description: Some("pipeline release 42".into()),
            ..d
        };
        assert_eq!(other.rollout(), None);
    }

    #[test]
    fn hook_names_map_both_ways() {
        for p in HookPoint::ALL {
            assert_eq!(hook_point(appspec_hook(p)), Some(p));
        }
        assert_eq!(hook_point("AllowTraffic"), None);
    }
}
