//! The status as it is stored in the record and served by the API: the
//! form cutover has always written, a `phase` field and, while a rollout is
//! held, the stage it resumes at (`rollout.resume_to`). Every reader (the
//! CLI, the API's clients, dashboards, a replica still on an older
//! release) reads it unchanged, and every status written before the state
//! was reshaped decodes into it.

use serde::{Deserialize, Serialize};

use super::state::{Hold, Settled, Stage};
use super::{Failure, Pending, Phase, Rollout, Status, StickinessOff, TaskSetRef, Transition};
use crate::rollout::deployment::DeploymentRef;
use crate::rollout::observed::Weights;
use crate::rollout::revision::Revision;
use crate::time::Timestamp;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct StoredStatus {
    phase: Phase,
    #[serde(default)]
    observed_revision: Option<Revision>,
    #[serde(default)]
    stable_revision: Option<Revision>,
    #[serde(default)]
    active: Option<TaskSetRef>,
    #[serde(default)]
    candidate: Option<TaskSetRef>,
    #[serde(default)]
    weights: Option<(u32, u32)>,
    #[serde(default)]
    rollout: Option<StoredRollout>,
    #[serde(default)]
    failed: Option<Failure>,
    phase_since: Timestamp,
    message: String,
    #[serde(default)]
    last_error: Option<String>,
    #[serde(default)]
    pending: Option<Pending>,
    #[serde(default)]
    production_written: Option<Weights>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stickiness_off: Option<StickinessOff>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deployment: Option<DeploymentRef>,
    history: Vec<Transition>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredRollout {
    #[serde(flatten)]
    rollout: Rollout,
    /// The phase a held rollout goes on in.
    #[serde(default)]
    resume_to: Option<Phase>,
}

/// The rollout's stage and hold, from the phase stored beside it. A held
/// rollout stored without the phase it resumes at (written before cutover
/// remembered it) goes on where a pause always did: shifting, whose gates
/// and weights are read again before any step.
fn stage_and_hold(phase: Phase, resume_to: Option<Phase>, r: &Rollout) -> (Stage, Option<Hold>) {
    let resumes = || resume_to.and_then(Stage::of).unwrap_or(Stage::Shifting);
    match phase {
        Phase::Paused if r.hand_change.as_ref().is_some_and(|c| !c.acknowledged) => {
            (resumes(), Some(Hold::Overridden))
        }
        Phase::Paused => (resumes(), Some(Hold::Paused)),
        Phase::Invalid => (resumes(), Some(Hold::Invalid)),
        // A rollout stored beside a phase that is not one of a rollout's
        // (hand-edited, or a status cut short): a rollout whose stage is
        // unknown is in its first stage, which reads the service again and
        // finds the candidate where it is.
        other => (Stage::of(other).unwrap_or(Stage::Provisioning), None),
    }
}

impl From<StoredStatus> for Status {
    fn from(s: StoredStatus) -> Status {
        let settled = match s.phase {
            Phase::Failed => Settled::Failed,
            Phase::Invalid => Settled::Invalid,
            _ => Settled::Steady,
        };
        let rollout = s.rollout.map(|stored| {
            let mut r = stored.rollout;
            (r.stage, r.hold) = stage_and_hold(s.phase, stored.resume_to, &r);
            r
        });
        Status {
            settled,
            observed_revision: s.observed_revision,
            stable_revision: s.stable_revision,
            active: s.active,
            candidate: s.candidate,
            weights: s.weights,
            rollout,
            failed: s.failed,
            phase_since: s.phase_since,
            message: s.message,
            last_error: s.last_error,
            pending: s.pending,
            production_written: s.production_written,
            stickiness_off: s.stickiness_off,
            deployment: s.deployment,
            history: s.history,
        }
    }
}

impl From<Status> for StoredStatus {
    fn from(s: Status) -> StoredStatus {
        let phase = s.phase();
        StoredStatus {
            phase,
            observed_revision: s.observed_revision,
            stable_revision: s.stable_revision,
            active: s.active,
            candidate: s.candidate,
            weights: s.weights,
            rollout: s.rollout.map(|r| StoredRollout {
                resume_to: r.hold.map(|_| r.stage.phase()),
                rollout: r,
            }),
            failed: s.failed,
            phase_since: s.phase_since,
            message: s.message,
            last_error: s.last_error,
            pending: s.pending,
            production_written: s.production_written,
            stickiness_off: s.stickiness_off,
            deployment: s.deployment,
            history: s.history,
        }
    }
}
