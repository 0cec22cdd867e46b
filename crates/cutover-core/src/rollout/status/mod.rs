//! What the controller writes back into the record's `status` attribute: enough
//! to resume exactly after a restart, and to tell people what is going on.

use std::fmt;

use serde::{Deserialize, Serialize};

use std::collections::{BTreeMap, BTreeSet};

use super::alert::AlertKind;
use super::control::RolloutId;
use super::gate::GateState;
use super::hook::HookPoint;
use super::observed::Weights;
use super::revision::Revision;
use crate::time::Timestamp;

mod state;
mod stored;

pub use state::{Hold, Settled, Stage};

/// How many transitions the status keeps.
pub const HISTORY_LIMIT: usize = 20;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
pub enum Phase {
    /// Nothing to do: the active task set runs the desired revision.
    #[default]
    Steady,
    /// The candidate task set is created; waiting until it is ready.
    Provisioning,
    /// The candidate is behind the test route; pre-traffic checks run.
    Testing,
    /// Production weight moves to the candidate step by step.
    Shifting,
    /// Waiting for someone to promote the rollout.
    AwaitingPromotion,
    /// Held by `paused = true` in the record.
    Paused,
    /// The candidate serves everything; the old task set is kept for instant rollback.
    Baking,
    /// The old task set is being removed and the target groups swap roles.
    Finalizing,
    /// Traffic returns to the active task set and the candidate is removed.
    RollingBack,
    /// The revision failed and was rolled back; it is not tried again until retried.
    Failed,
    /// The record is invalid, or the service cannot be driven as configured.
    Invalid,
}

impl Phase {
    pub const ALL: [Phase; 11] = [
        Phase::Steady,
        Phase::Provisioning,
        Phase::Testing,
        Phase::Shifting,
        Phase::AwaitingPromotion,
        Phase::Paused,
        Phase::Baking,
        Phase::Finalizing,
        Phase::RollingBack,
        Phase::Failed,
        Phase::Invalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Steady => "Steady",
            Phase::Provisioning => "Provisioning",
            Phase::Testing => "Testing",
            Phase::Shifting => "Shifting",
            Phase::AwaitingPromotion => "AwaitingPromotion",
            Phase::Paused => "Paused",
            Phase::Baking => "Baking",
            Phase::Finalizing => "Finalizing",
            Phase::RollingBack => "RollingBack",
            Phase::Failed => "Failed",
            Phase::Invalid => "Invalid",
        }
    }

    /// Phases that belong to a rollout in flight.
    pub fn in_rollout(self) -> bool {
        matches!(
            self,
            Phase::Provisioning
                | Phase::Testing
                | Phase::Shifting
                | Phase::AwaitingPromotion
                | Phase::Paused
                | Phase::Baking
                | Phase::Finalizing
                | Phase::RollingBack
        )
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A task set as the status remembers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSetRef {
    pub arn: String,
    pub task_definition: String,
    pub target_group: String,
    pub revision: Option<Revision>,
}

/// Why a rollout is being rolled back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RollbackReason {
    /// A gate said no.
    GateFailed { gate: String, detail: String },
    /// No progress within the progress deadline.
    DeadlineExceeded { phase: Phase, detail: String },
    /// Someone aborted the rollout.
    Aborted,
    /// A newer revision was written mid-rollout.
    Superseded { by: Revision },
    /// A lifecycle hook answered fail, or not in time.
    HookFailed { hook: HookPoint, detail: String },
}

impl RollbackReason {
    /// Whether the revision counts as failed afterwards.
    pub fn fails_revision(&self) -> bool {
        !matches!(self, RollbackReason::Superseded { .. })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            RollbackReason::GateFailed { .. } => "gate_failed",
            RollbackReason::DeadlineExceeded { .. } => "deadline_exceeded",
            RollbackReason::Aborted => "aborted",
            RollbackReason::Superseded { .. } => "superseded",
            RollbackReason::HookFailed { .. } => "hook_failed",
        }
    }
}

impl fmt::Display for RollbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RollbackReason::GateFailed { gate, detail } => {
                write!(f, "gate {gate} failed: {detail}")
            }
            RollbackReason::DeadlineExceeded { phase, detail } => {
                write!(
                    f,
                    "no progress in {phase} within the progress deadline: {detail}"
                )
            }
            RollbackReason::Aborted => write!(f, "aborted by request"),
            RollbackReason::Superseded { by } => write!(f, "superseded by revision {by}"),
            RollbackReason::HookFailed { hook, detail } => {
                write!(f, "hook {hook} failed: {detail}")
            }
        }
    }
}

/// The rollout in flight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    pub id: RolloutId,
    pub started_at: Timestamp,
    /// The task set that served production when the rollout began; `None`
    /// for a service's first release.
    pub from: Option<TaskSetRef>,
    /// The target group the candidate registers in.
    pub target_group: String,
    /// Index into the strategy's steps.
    pub step: u32,
    pub step_started_at: Timestamp,
    /// Last time the rollout made progress; the progress deadline counts from here.
    pub progress_at: Timestamp,
    /// Consecutive failing checks of the target health gate.
    #[serde(default)]
    pub gate_failures: u32,
    /// The most candidate tasks seen stopped for a failure of the version.
    /// Kept, because ECS lists a stopped task only for a while.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub task_failures: u32,
    /// What the target health gate and a held rollback remember between looks.
    #[serde(default, skip_serializing_if = "HealthWatch::is_empty")]
    pub health: HealthWatch,
    /// Set while rolling back.
    #[serde(default)]
    pub rollback: Option<RollbackReason>,
    /// Where the rollout is. Stored as the status's `phase` (and, while it
    /// is held, as `resume_to`), as cutover always wrote it: see `stored`.
    #[serde(skip)]
    pub stage: Stage,
    /// What holds the rollout where it is, if anything: its stage is kept,
    /// and it goes on from there once the hold ends.
    #[serde(skip)]
    pub hold: Option<Hold>,
    /// What each analysis gate said, so far, in this rollout.
    #[serde(default)]
    pub gates: BTreeMap<String, GateState>,
    /// When each lifecycle hook was called, in this rollout.
    #[serde(default)]
    pub hooks: BTreeMap<HookPoint, Timestamp>,
    /// Verdicts of hooks that answered at once (late ones arrive in the
    /// record's `control.hooks`).
    #[serde(default)]
    pub hook_verdicts: BTreeMap<HookPoint, super::hook::HookVerdict>,
    /// What the last valid record said that keeps the candidate watched if
    /// the record turns invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<super::watch::Watch>,
    /// A digest of the steps the rollout follows: another one means the
    /// strategy changed, and `step` is found again from the weight the
    /// candidate has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<String>,
    /// The candidate's share when the strategy last changed: the rollout
    /// goes on from it, so that share is cutover's own although no step of
    /// the new strategy sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub went_on_from: Option<u32>,
    /// Production weights found changed outside cutover: the rollout stays
    /// paused until someone sets `paused` in the record (and clears it to
    /// go on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand_change: Option<HandChange>,
    /// The alerts already raised in this rollout, so each is raised once.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub alerted: BTreeSet<AlertKind>,
    /// Under the `ecs_native` driver: the ECS service deployment of this
    /// rollout, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_deployment: Option<super::service_deployment::ServiceDeploymentRef>,
}

/// Weights someone else wrote on production mid-rollout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandChange {
    /// The weights the load balancer showed, as `target group=percent`.
    pub seen: String,
    /// The weights cutover last wrote.
    pub written: String,
    pub at: Timestamp,
    /// The candidate's share in what was seen.
    pub share: u32,
    /// Someone set `paused` since: the change was seen, and these weights
    /// no longer pause the rollout.
    #[serde(default)]
    pub acknowledged: bool,
}

/// The candidate's health over time, and a rollback that waits for the side
/// it returns to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthWatch {
    /// When the current shortfall of healthy candidate targets began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_since: Option<Timestamp>,
    /// When the candidate was back at the bar after that shortfall; the
    /// shortfall is over once it has stayed there for the gate's grace, so
    /// a task that keeps crashing and coming back is one long shortfall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back_since: Option<Timestamp>,
    /// When a rollback began to wait because the task set it returns to
    /// had no healthy target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_since: Option<Timestamp>,
}

impl HealthWatch {
    pub fn is_empty(&self) -> bool {
        *self == HealthWatch::default()
    }
}

impl Rollout {
    /// A rollout that begins `now`, at its first step, with nothing said
    /// by its gates and hooks yet.
    pub fn new(
        id: RolloutId,
        from: Option<TaskSetRef>,
        target_group: String,
        now: Timestamp,
    ) -> Rollout {
        Rollout {
            id,
            started_at: now,
            from,
            target_group,
            step: 0,
            step_started_at: now,
            progress_at: now,
            gate_failures: 0,
            task_failures: 0,
            health: Default::default(),
            rollback: None,
            stage: Stage::Provisioning,
            hold: None,
            gates: Default::default(),
            hooks: Default::default(),
            hook_verdicts: Default::default(),
            watch: None,
            steps: None,
            went_on_from: None,
            hand_change: None,
            alerted: BTreeSet::new(),
            service_deployment: None,
        }
    }
}

/// A revision that failed; it stays failed until retried or replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub rollout: RolloutId,
    pub reason: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub at: Timestamp,
    pub from: Phase,
    pub to: Phase,
    pub reason: String,
    #[serde(default)]
    pub revision: Option<Revision>,
}

/// Commands already sent and not yet visible, so the controller does not
/// resend them on every poll while AWS catches up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub fingerprint: String,
    pub at: Timestamp,
}

/// The status of one service. The phase people see is derived from it
/// ([`Status::phase`]): the rollout in flight, with its stage and hold, or
/// where the service rests without one. It is still stored and served as
/// a `phase` field, so every reader of the status reads it as before: its
/// stored form, with the defaults of fields written later, is `stored`'s.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(from = "stored::StoredStatus", into = "stored::StoredStatus")]
pub struct Status {
    /// Where the service rests while no rollout is in flight; while one
    /// is, where it rested before that rollout began.
    pub settled: Settled,
    /// The spec revision this status was computed for.
    pub observed_revision: Option<Revision>,
    /// The revision serving production (the active task set's).
    pub stable_revision: Option<Revision>,
    pub active: Option<TaskSetRef>,
    pub candidate: Option<TaskSetRef>,
    /// Production weights in percent (active, candidate), as last verified.
    pub weights: Option<(u32, u32)>,
    pub rollout: Option<Rollout>,
    pub failed: Option<Failure>,
    pub phase_since: Timestamp,
    pub message: String,
    pub last_error: Option<String>,
    pub pending: Option<Pending>,
    /// The production weights cutover last wrote. A load balancer shows
    /// writes late, so a state that merely looks right is trusted only when
    /// it is also what was last written.
    pub production_written: Option<Weights>,
    /// Stickiness cutover turned off on a production route so that sticky
    /// clients leave a task set it removes; it is turned back on after.
    pub stickiness_off: Option<StickinessOff>,
    /// Under the CodeDeploy driver: the deployment of the rollout in flight.
    pub deployment: Option<super::deployment::DeploymentRef>,
    pub history: Vec<Transition>,
}

/// Group-level stickiness that cutover turned off, and what to put back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StickinessOff {
    pub route: super::spec::Route,
    /// The duration it had, in seconds, restored with it.
    pub duration_seconds: u32,
    pub since: Timestamp,
}

impl Status {
    pub fn record(&mut self, t: Transition) {
        self.history.push(t);
        if self.history.len() > HISTORY_LIMIT {
            let excess = self.history.len() - HISTORY_LIMIT;
            self.history.drain(..excess);
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded_and_keeps_the_newest() {
        let mut s = Status::default();
        for i in 0..(HISTORY_LIMIT as i64 + 5) {
            s.record(Transition {
                at: Timestamp(i),
                from: Phase::Steady,
                to: Phase::Provisioning,
                reason: String::new(),
                revision: None,
            });
        }
        assert_eq!(s.history.len(), HISTORY_LIMIT);
        assert_eq!(
            s.history.last().unwrap().at,
            Timestamp(HISTORY_LIMIT as i64 + 4)
        );
    }

    #[test]
    fn status_round_trips_through_json() {
        let rollout = Rollout::new(
            RolloutId {
                revision: Revision::from_raw("0123abcd"),
                attempt: 1,
            },
            None,
            "tg".into(),
            Timestamp(0),
        );
        let s = Status {
            rollout: Some(Rollout {
                stage: Stage::Shifting,
                ..rollout
            }),
            message: "shifting".into(),
            weights: Some((90, 10)),
            ..Status::default()
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["phase"], "Shifting");
        let back: Status = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }
}
