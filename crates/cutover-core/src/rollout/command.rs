//! What a decision asks the controller to do, and what it reports.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::control::RolloutId;
use super::deployment::{ContinueWait, CreateDeployment};
use super::observed::{Stickiness, Weights, short_arn, short_task_definition, task_set_name};
use super::service_deployment::{LifecycleStage, NativeStrategy, PauseAction, deployment_id};
use super::spec::{Placement, Route, Version};
use super::status::{Status, Transition};
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateTaskSet {
    pub version: Version,
    pub external_id: String,
    /// Makes the create idempotent if a response is lost.
    pub client_token: String,
    pub target_group: String,
    pub container: String,
    pub container_port: u16,
    pub scale_percent: f64,
    /// A task set to copy network configuration and launch settings from.
    pub template: Option<String>,
    /// Used when there is no template (a service's first release).
    pub placement: Placement,
}

/// A new service deployment: UpdateService with the record's version,
/// ECS's strategy, the bake, and cutover's PAUSE hooks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartServiceDeployment {
    pub version: Version,
    pub strategy: NativeStrategy,
    /// `bakeTimeInMinutes`: blue and green both run this long after the
    /// production shift, and ECS rolls back within it on a failure.
    pub bake_minutes: u32,
    /// The stages that hold a PAUSE hook (one hook, these stages).
    pub pauses: Vec<LifecycleStage>,
    /// How long a pause waits for cutover's answer before ECS takes the
    /// timeout action (`timeoutInMinutes`, 1 to 20160).
    pub pause_timeout_minutes: u32,
}

/// An idempotent action on AWS. Commands run in order; the first failure stops
/// the rest, and the next decision starts from what is then observed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "command")]
pub enum Command {
    CreateTaskSet(Box<CreateTaskSet>),
    SetWeights {
        route: Route,
        weights: Weights,
    },
    /// Turns group-level stickiness of the route's forward action on or
    /// off, keeping its duration and everything else in the route.
    SetStickiness {
        route: Route,
        stickiness: Stickiness,
    },
    SetPrimary {
        task_set: String,
        /// What it runs, so that messages name it as people know it.
        task_definition: String,
    },
    DeleteTaskSet {
        task_set: String,
        task_definition: String,
    },
    /// Calls a lifecycle hook once; its verdict arrives in `control.hooks`.
    InvokeHook {
        url: String,
        payload: super::hook::HookPayload,
    },
    /// Starts a CodeDeploy deployment (the CodeDeploy driver).
    CreateDeployment(Box<CreateDeployment>),
    /// Lets a waiting deployment go on.
    ContinueDeployment {
        deployment_id: String,
        wait: ContinueWait,
    },
    /// Stops a deployment and has CodeDeploy roll it back.
    StopDeployment {
        deployment_id: String,
    },
    /// Starts an ECS service deployment (the `ecs_native` driver).
    StartServiceDeployment(Box<StartServiceDeployment>),
    /// Answers a PAUSE hook of a service deployment.
    ContinueServiceDeployment {
        arn: String,
        hook_id: String,
        action: PauseAction,
    },
    /// Stops a service deployment; ECS rolls it back.
    StopServiceDeployment {
        arn: String,
    },
}

impl Command {
    /// A bounded name for logs and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::CreateTaskSet(_) => "create_task_set",
            Command::SetWeights { .. } => "set_weights",
            Command::SetStickiness { .. } => "set_stickiness",
            Command::SetPrimary { .. } => "set_primary",
            Command::DeleteTaskSet { .. } => "delete_task_set",
            Command::InvokeHook { .. } => "invoke_hook",
            Command::CreateDeployment(_) => "create_deployment",
            Command::ContinueDeployment { .. } => "continue_deployment",
            Command::StopDeployment { .. } => "stop_deployment",
            Command::StartServiceDeployment(_) => "start_service_deployment",
            Command::ContinueServiceDeployment { .. } => "continue_service_deployment",
            Command::StopServiceDeployment { .. } => "stop_service_deployment",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::CreateTaskSet(c) => write!(
                f,
                "create task set {} ({}) in {}",
                c.external_id,
                c.version,
                short_arn(&c.target_group)
            ),
            Command::SetWeights { route, weights } => {
                write!(f, "set weights {weights} on {}", short_arn(route.arn()))
            }
            Command::SetStickiness { route, stickiness } => write!(
                f,
                "turn stickiness {} on {}",
                if stickiness.enabled { "on" } else { "off" },
                short_arn(route.arn())
            ),
            Command::SetPrimary {
                task_set,
                task_definition,
            } => write!(
                f,
                "make task set {} primary",
                task_set_name(task_set, task_definition)
            ),
            Command::DeleteTaskSet {
                task_set,
                task_definition,
            } => write!(
                f,
                "delete task set {}",
                task_set_name(task_set, task_definition)
            ),
            Command::InvokeHook { url, payload } => {
                // Logged for every call: the URL's path may hold a secret.
                let at = super::hook::origin(url);
                write!(f, "call the {} hook at {at}", payload.hook)
            }
            Command::CreateDeployment(c) => write!(
                f,
                "create a CodeDeploy deployment of {} in {}/{}",
                short_task_definition(&c.task_definition),
                c.application,
                c.deployment_group
            ),
            Command::ContinueDeployment {
                deployment_id,
                wait,
            } => match wait {
                ContinueWait::ReadyWait => {
                    write!(f, "continue deployment {deployment_id}: reroute traffic")
                }
                ContinueWait::TerminationWait => write!(
                    f,
                    "continue deployment {deployment_id}: remove the original task set"
                ),
            },
            Command::StopDeployment { deployment_id } => {
                write!(f, "stop deployment {deployment_id} and roll it back")
            }
            Command::StartServiceDeployment(s) => write!(
                f,
                "update the service to {} ({}, bake {} min)",
                short_task_definition(&s.version.to_string()),
                s.strategy,
                s.bake_minutes
            ),
            Command::ContinueServiceDeployment {
                arn,
                hook_id,
                action,
            } => write!(
                f,
                "answer pause {hook_id} of service deployment {} with {}",
                deployment_id(arn),
                action.as_str()
            ),
            Command::StopServiceDeployment { arn } => write!(
                f,
                "stop service deployment {} and roll it back",
                deployment_id(arn)
            ),
        }
    }
}

/// When the controller should look at the service again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Soon: the controller's poll interval (something is in motion).
    Poll,
    /// At this time, unless something changes first.
    At(Timestamp),
    /// Nothing to wait for: only a record change or the periodic resync.
    Idle,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Promoted,
    RolledBack,
    Aborted,
    Superseded,
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Promoted,
        Outcome::RolledBack,
        Outcome::Aborted,
        Outcome::Superseded,
        Outcome::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Promoted => "promoted",
            Outcome::RolledBack => "rolled_back",
            Outcome::Aborted => "aborted",
            Outcome::Superseded => "superseded",
            Outcome::Failed => "failed",
        }
    }
}

/// The gate's name in events, rollback reasons and metric labels.
pub const TARGET_HEALTH: &str = "target_health";

/// Every gate a decision may report on.
pub const GATES: [&str; 1] = [TARGET_HEALTH];

/// Something worth telling logs, metrics and notifications about.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Transition(Transition),
    RolloutStarted {
        rollout: RolloutId,
    },
    /// A rollout taken over from the live service after its status was
    /// lost: it goes on from `phase`, and did not start again.
    RolloutAdopted {
        rollout: RolloutId,
        phase: super::status::Phase,
        reason: String,
    },
    StepCompleted {
        rollout: RolloutId,
        step: u32,
        weight: u32,
    },
    RolloutFinished {
        rollout: RolloutId,
        outcome: Outcome,
        duration: Duration,
    },
    /// A gate looked at the candidate; reported at most once per gate and
    /// decision, and only when it had something to look at.
    GateEvaluated {
        gate: &'static str,
        passed: bool,
    },
    /// A rollback holds production where it is: the task set it returns to
    /// has no healthy target. `neither_serves` when the candidate has none
    /// either. Reported once, when the hold begins.
    TrafficHeld {
        rollout: RolloutId,
        neither_serves: bool,
        reason: String,
    },
    /// Between rollouts, production was found off the active task set (a
    /// late weight change of the replica that drove the service before)
    /// and written back.
    ProductionRestored {
        seen: Weights,
        written: Weights,
    },
    /// Something outside cutover changed the service mid-rollout, or a
    /// rollback is overdue: someone should look. Reported once per kind
    /// and rollout.
    Alert {
        rollout: RolloutId,
        kind: AlertKind,
        reason: String,
    },
}

pub use super::alert::AlertKind;

impl Event {
    /// A bounded label for a held rollback's metric and notification.
    pub fn held_kind(neither_serves: bool) -> &'static str {
        if neither_serves {
            "no_side_serves"
        } else {
            "previous_unhealthy"
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub commands: Vec<Command>,
    /// The status to write once every command has succeeded.
    pub status: Status,
    pub wake: Wake,
    pub events: Vec<Event>,
}
