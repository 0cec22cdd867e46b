//! ECS service deployments in the domain's words, for services on the ECS
//! deployment controller that ECS itself deploys blue/green, linearly or as
//! a canary (`driver = "ecs_native"`): what the controller reads of a
//! deployment, and what it asks ECS to do.
//!
//! The shapes follow the ECS API reference:
//! https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeployment.html
//! (status, lifecycle stage, hook details, rollback) and
//! https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentLifecycleHook.html
//! (where a hook may sit).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// A service deployment's status. ECS calls the first five ongoing and the
/// last four completed
/// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-deployment.html).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceDeploymentStatus {
    Pending,
    InProgress,
    StopRequested,
    RollbackRequested,
    RollbackInProgress,
    Successful,
    Stopped,
    RollbackSuccessful,
    RollbackFailed,
    /// A status this release does not know. Treated as ongoing: nothing
    /// starts beside a deployment whose state is not understood.
    Unknown,
}

impl ServiceDeploymentStatus {
    pub const ONGOING: [ServiceDeploymentStatus; 5] = [
        ServiceDeploymentStatus::Pending,
        ServiceDeploymentStatus::InProgress,
        ServiceDeploymentStatus::StopRequested,
        ServiceDeploymentStatus::RollbackRequested,
        ServiceDeploymentStatus::RollbackInProgress,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceDeploymentStatus::Pending => "PENDING",
            ServiceDeploymentStatus::InProgress => "IN_PROGRESS",
            ServiceDeploymentStatus::StopRequested => "STOP_REQUESTED",
            ServiceDeploymentStatus::RollbackRequested => "ROLLBACK_REQUESTED",
            ServiceDeploymentStatus::RollbackInProgress => "ROLLBACK_IN_PROGRESS",
            ServiceDeploymentStatus::Successful => "SUCCESSFUL",
            ServiceDeploymentStatus::Stopped => "STOPPED",
            ServiceDeploymentStatus::RollbackSuccessful => "ROLLBACK_SUCCESSFUL",
            ServiceDeploymentStatus::RollbackFailed => "ROLLBACK_FAILED",
            ServiceDeploymentStatus::Unknown => "UNKNOWN",
        }
    }

    pub fn parse(s: &str) -> ServiceDeploymentStatus {
        Self::ONGOING
            .into_iter()
            .chain([
                ServiceDeploymentStatus::Successful,
                ServiceDeploymentStatus::Stopped,
                ServiceDeploymentStatus::RollbackSuccessful,
                ServiceDeploymentStatus::RollbackFailed,
            ])
            .find(|st| st.as_str() == s)
            .unwrap_or(ServiceDeploymentStatus::Unknown)
    }

    /// Not completed (an unknown status included).
    pub fn ongoing(self) -> bool {
        !self.completed()
    }

    pub fn completed(self) -> bool {
        matches!(
            self,
            ServiceDeploymentStatus::Successful
                | ServiceDeploymentStatus::Stopped
                | ServiceDeploymentStatus::RollbackSuccessful
                | ServiceDeploymentStatus::RollbackFailed
        )
    }

    /// ECS is stopping or rolling it back.
    pub fn rolling_back(self) -> bool {
        matches!(
            self,
            ServiceDeploymentStatus::StopRequested
                | ServiceDeploymentStatus::RollbackRequested
                | ServiceDeploymentStatus::RollbackInProgress
        )
    }
}

impl fmt::Display for ServiceDeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a service deployment is. `PreProductionTrafficShift` is missing
/// from the API's `lifecycleStage` enum although hooks sit there, so every
/// value outside the list reads as `Other` and is never matched exhaustively.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LifecycleStage {
    ReconcileService,
    PreScaleUp,
    ScaleUp,
    PostScaleUp,
    TestTrafficShift,
    PostTestTrafficShift,
    PreProductionTrafficShift,
    ProductionTrafficShift,
    PostProductionTrafficShift,
    BakeTime,
    CleanUp,
    Other,
}

impl LifecycleStage {
    pub const ALL: [LifecycleStage; 11] = [
        LifecycleStage::ReconcileService,
        LifecycleStage::PreScaleUp,
        LifecycleStage::ScaleUp,
        LifecycleStage::PostScaleUp,
        LifecycleStage::TestTrafficShift,
        LifecycleStage::PostTestTrafficShift,
        LifecycleStage::PreProductionTrafficShift,
        LifecycleStage::ProductionTrafficShift,
        LifecycleStage::PostProductionTrafficShift,
        LifecycleStage::BakeTime,
        LifecycleStage::CleanUp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStage::ReconcileService => "RECONCILE_SERVICE",
            LifecycleStage::PreScaleUp => "PRE_SCALE_UP",
            LifecycleStage::ScaleUp => "SCALE_UP",
            LifecycleStage::PostScaleUp => "POST_SCALE_UP",
            LifecycleStage::TestTrafficShift => "TEST_TRAFFIC_SHIFT",
            LifecycleStage::PostTestTrafficShift => "POST_TEST_TRAFFIC_SHIFT",
            LifecycleStage::PreProductionTrafficShift => "PRE_PRODUCTION_TRAFFIC_SHIFT",
            LifecycleStage::ProductionTrafficShift => "PRODUCTION_TRAFFIC_SHIFT",
            LifecycleStage::PostProductionTrafficShift => "POST_PRODUCTION_TRAFFIC_SHIFT",
            LifecycleStage::BakeTime => "BAKE_TIME",
            LifecycleStage::CleanUp => "CLEAN_UP",
            LifecycleStage::Other => "OTHER",
        }
    }

    pub fn parse(s: &str) -> LifecycleStage {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .unwrap_or(LifecycleStage::Other)
    }

    /// Whether a PAUSE hook may sit at this stage: not at the two traffic
    /// shifts themselves, which take Lambda hooks only
    /// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/pause-lifecycle-hooks.html).
    pub fn takes_pause(self) -> bool {
        matches!(
            self,
            LifecycleStage::ReconcileService
                | LifecycleStage::PreScaleUp
                | LifecycleStage::PostScaleUp
                | LifecycleStage::PostTestTrafficShift
                | LifecycleStage::PreProductionTrafficShift
                | LifecycleStage::PostProductionTrafficShift
        )
    }
}

impl fmt::Display for LifecycleStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lifecycle hook's state (`DeploymentLifecycleHookDetail.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PauseStatus {
    AwaitingAction,
    InProgress,
    Succeeded,
    Failed,
    TimedOut,
    Other,
}

impl PauseStatus {
    pub fn parse(s: &str) -> PauseStatus {
        match s {
            "AWAITING_ACTION" => PauseStatus::AwaitingAction,
            "IN_PROGRESS" => PauseStatus::InProgress,
            "SUCCEEDED" => PauseStatus::Succeeded,
            "FAILED" => PauseStatus::Failed,
            "TIMED_OUT" => PauseStatus::TimedOut,
            _ => PauseStatus::Other,
        }
    }
}

/// One PAUSE hook of a deployment, as `lifecycleHookDetails` shows it. ECS
/// makes a new `hook_id` each time it pauses; every answer names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub hook_id: String,
    pub status: PauseStatus,
    /// When ECS takes the hook's timeout action if no answer came.
    pub expires_at: Option<Timestamp>,
}

/// One service deployment as DescribeServiceDeployments shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceDeployment {
    pub arn: String,
    pub status: ServiceDeploymentStatus,
    pub status_reason: Option<String>,
    pub stage: Option<LifecycleStage>,
    /// The PAUSE hooks ECS reports (Lambda hooks are left out).
    pub pauses: Vec<Pause>,
    pub created_at: Option<Timestamp>,
    /// The production weight requested for the new revision, in percent,
    /// where reported (a snapshot that may lag, as the API says).
    pub target_weight: Option<u32>,
    /// Why ECS rolled it back, where it did.
    pub rollback_reason: Option<String>,
    /// The revision it deploys, where read (DescribeServiceRevisions of its
    /// `targetServiceRevision`).
    #[serde(default)]
    pub target: Option<TargetRevision>,
}

/// The revision a service deployment deploys
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceRevision.html).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRevision {
    pub task_definition: String,
    /// Each container's image in that task definition, where read.
    #[serde(default)]
    pub images: std::collections::BTreeMap<String, String>,
    /// The target groups its tasks may register in: each must keep the
    /// healthy targets the target health gate asks for. One where the
    /// reader knows this deployment's green group; both of the service's
    /// when it cannot tell (ECS does not document which one it fills:
    /// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/alb-resources-for-blue-green.html
    /// says only "the appropriate target group"); none without a load
    /// balancer (Service Connect, VPC Lattice).
    #[serde(default)]
    pub target_groups: Vec<String>,
    /// How many tasks ECS runs for it.
    #[serde(default)]
    pub requested_tasks: Option<u32>,
}

impl ServiceDeployment {
    /// The pause that waits for an answer, if one does.
    pub fn awaiting(&self) -> Option<&Pause> {
        self.pauses
            .iter()
            .find(|p| p.status == PauseStatus::AwaitingAction)
    }

    /// The id at the end of its ARN, for messages.
    pub fn id(&self) -> &str {
        deployment_id(&self.arn)
    }
}

/// `…:service-deployment/<cluster>/<service>/<id>` → `<id>`.
pub fn deployment_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// What the controller saw of the service's deployments: `Found` is the
/// deployment asked for (by ARN, or the newest ongoing one); `Absent`
/// means there was none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
// One per service and pass, moved rarely: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum ServiceDeploymentView {
    Found(ServiceDeployment),
    Absent,
}

/// Which service deployment to read before deciding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceDeploymentRead {
    /// One deployment, by ARN (DescribeServiceDeployments).
    Get { arn: String },
    /// The service's ongoing deployments (ListServiceDeployments with the
    /// ongoing statuses), created since `since` where given; the newest is
    /// described.
    Ongoing { since: Option<Timestamp> },
}

/// What the service itself runs, for services on the ECS deployment
/// controller: DescribeServices gives the task definition (the new one as
/// soon as an UpdateService is taken) and the current service deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRevision {
    pub task_definition: String,
    /// Each container's image in that task definition, where read.
    #[serde(default)]
    pub images: std::collections::BTreeMap<String, String>,
    /// `currentServiceDeployment`: the ARN of the newest deployment.
    #[serde(default)]
    pub current_deployment: Option<String>,
}

/// Whether a task definition ARN and a `family:revision` (or ARN) name the
/// same revision.
pub fn same_task_definition(arn: &str, given: &str) -> bool {
    arn == given
        || arn
            .strip_suffix(given)
            .is_some_and(|head| head.ends_with('/'))
}

/// The deployment of the rollout in flight, as the status remembers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceDeploymentRef {
    pub arn: String,
    pub status: ServiceDeploymentStatus,
    /// The pause cutover is looking at: its gates count from when it began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<String>,
    /// The pause cutover last answered, how, and when: an answer is sent
    /// again only once ECS had time to show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered: Option<Answered>,
    /// Pauses passed in this deployment (each traffic step has one).
    #[serde(default)]
    pub pauses_passed: u32,
    /// The target groups the new revision's tasks register in, once
    /// known: the target health gate reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_groups: Vec<String>,
}

impl ServiceDeploymentRef {
    /// A deployment first seen: nothing answered, no pause passed.
    pub fn of(dep: &ServiceDeployment) -> ServiceDeploymentRef {
        ServiceDeploymentRef {
            arn: dep.arn.clone(),
            status: dep.status,
            pause: None,
            answered: None,
            pauses_passed: 0,
            target_groups: dep
                .target
                .as_ref()
                .map(|t| t.target_groups.clone())
                .unwrap_or_default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answered {
    pub hook_id: String,
    pub action: PauseAction,
    pub at: Timestamp,
}

/// The answer to a pause (ContinueServiceDeployment's `action`). Always sent
/// explicitly: the API's default is CONTINUE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PauseAction {
    Continue,
    Rollback,
}

impl PauseAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PauseAction::Continue => "CONTINUE",
            PauseAction::Rollback => "ROLLBACK",
        }
    }
}

/// ECS's own strategies, onto which a record's strategy maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum NativeStrategy {
    /// `BLUE_GREEN`: all production traffic at once.
    BlueGreen,
    /// `CANARY`: `percent` for `bake_minutes`, then the rest.
    Canary { percent: u32, bake_minutes: u32 },
    /// `LINEAR`: `percent` more every `bake_minutes`.
    Linear { percent: u32, bake_minutes: u32 },
}

impl NativeStrategy {
    pub fn name(self) -> &'static str {
        match self {
            NativeStrategy::BlueGreen => "BLUE_GREEN",
            NativeStrategy::Canary { .. } => "CANARY",
            NativeStrategy::Linear { .. } => "LINEAR",
        }
    }

    /// How many production traffic steps it takes: each has its own pause
    /// before it.
    pub fn steps(self) -> u32 {
        match self {
            NativeStrategy::BlueGreen => 1,
            NativeStrategy::Canary { .. } => 2,
            NativeStrategy::Linear { percent, .. } => 100u32.div_ceil(percent.max(1)),
        }
    }

    /// The production weight on the new revision after `passed` steps.
    pub fn weight_after(self, passed: u32) -> u32 {
        match self {
            NativeStrategy::BlueGreen => {
                if passed >= 1 {
                    100
                } else {
                    0
                }
            }
            NativeStrategy::Canary { percent, .. } => match passed {
                0 => 0,
                1 => percent,
                _ => 100,
            },
            NativeStrategy::Linear { percent, .. } => (percent * passed).min(100),
        }
    }
}

impl fmt::Display for NativeStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NativeStrategy::BlueGreen => f.write_str("BLUE_GREEN"),
            NativeStrategy::Canary {
                percent,
                bake_minutes,
            } => write!(f, "CANARY {percent}% for {bake_minutes} min"),
            NativeStrategy::Linear {
                percent,
                bake_minutes,
            } => write!(f, "LINEAR {percent}% every {bake_minutes} min"),
        }
    }
}

/// A pause hook's `timeoutInMinutes` range (API_DeploymentLifecycleHookTimeoutConfiguration.html).
pub const PAUSE_TIMEOUT_MINUTES: std::ops::RangeInclusive<u32> = 1..=20_160;
/// `bakeTimeInMinutes`, `canaryBakeTimeInMinutes` and `stepBakeTimeInMinutes`:
/// 0 to 1440 (API_CanaryConfiguration.html, API_LinearConfiguration.html).
pub const BAKE_MINUTES: std::ops::RangeInclusive<u32> = 0..=1_440;
/// `stepPercent` of LINEAR: 3 to 100 (API_LinearConfiguration.html).
pub const LINEAR_PERCENT: std::ops::RangeInclusive<u32> = 3..=100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_stages_read_from_the_api_and_unknown_ones_are_ongoing() {
        for s in ServiceDeploymentStatus::ONGOING {
            assert_eq!(ServiceDeploymentStatus::parse(s.as_str()), s);
            assert!(s.ongoing());
        }
        assert_eq!(
            ServiceDeploymentStatus::parse("ROLLBACK_FAILED"),
            ServiceDeploymentStatus::RollbackFailed
        );
        assert!(ServiceDeploymentStatus::parse("SOMETHING_NEW").ongoing());
        assert_eq!(
            LifecycleStage::parse("PRE_PRODUCTION_TRAFFIC_SHIFT"),
            LifecycleStage::PreProductionTrafficShift
        );
        assert_eq!(LifecycleStage::parse("LATER_STAGE"), LifecycleStage::Other);
        assert!(!LifecycleStage::ProductionTrafficShift.takes_pause());
        assert!(LifecycleStage::PreProductionTrafficShift.takes_pause());
    }

    #[test]
    fn strategies_count_their_steps_and_weights() {
        let canary = NativeStrategy::Canary {
            percent: 10,
            bake_minutes: 5,
        };
        assert_eq!(canary.steps(), 2);
        assert_eq!(
            (0..3).map(|s| canary.weight_after(s)).collect::<Vec<_>>(),
            [0, 10, 100]
        );
        let linear = NativeStrategy::Linear {
            percent: 30,
            bake_minutes: 1,
        };
        assert_eq!(linear.steps(), 4);
        assert_eq!(linear.weight_after(4), 100);
        assert_eq!(NativeStrategy::BlueGreen.steps(), 1);
    }
}
