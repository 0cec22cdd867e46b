//! Where a service is, in terms that cannot contradict each other: a
//! rollout in flight has a stage and maybe a hold; a service without one
//! rests, steady, failed or invalid. The phase shown to people (and stored,
//! served, counted) is derived from these, as Argo Rollouts derives its
//! phase from the rollout's state.

use super::{Phase, Rollout, Status};
use crate::rollout::control::RolloutId;
use crate::rollout::revision::Revision;

/// Where a service rests while no rollout is in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Settled {
    /// The active task set runs the desired revision.
    #[default]
    Steady,
    /// The revision failed; it is not tried again until retried.
    Failed,
    /// The record is invalid, or the service cannot be driven as configured.
    Invalid,
}

/// Where a rollout in flight is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stage {
    #[default]
    Provisioning,
    Testing,
    Shifting,
    AwaitingPromotion,
    Baking,
    Finalizing,
    RollingBack,
}

/// What holds a rollout in flight where it is. Its stage is kept, and it
/// goes on from there once the hold ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// `paused = true` in the record.
    Paused,
    /// An operator's hand: production weights changed outside cutover. It
    /// holds until someone pauses and resumes the rollout (`hand_change`
    /// says what was seen).
    Overridden,
    /// The record turned invalid (or the service cannot be driven as it
    /// says); the candidate stays watched meanwhile.
    Invalid,
}

impl Stage {
    pub fn phase(self) -> Phase {
        match self {
            Stage::Provisioning => Phase::Provisioning,
            Stage::Testing => Phase::Testing,
            Stage::Shifting => Phase::Shifting,
            Stage::AwaitingPromotion => Phase::AwaitingPromotion,
            Stage::Baking => Phase::Baking,
            Stage::Finalizing => Phase::Finalizing,
            Stage::RollingBack => Phase::RollingBack,
        }
    }

    /// The stage a phase names; `None` for the phases that are not one
    /// (paused and invalid are holds, steady and failed are settled).
    pub fn of(phase: Phase) -> Option<Stage> {
        Some(match phase {
            Phase::Provisioning => Stage::Provisioning,
            Phase::Testing => Stage::Testing,
            Phase::Shifting => Stage::Shifting,
            Phase::AwaitingPromotion => Stage::AwaitingPromotion,
            Phase::Baking => Stage::Baking,
            Phase::Finalizing => Stage::Finalizing,
            Phase::RollingBack => Stage::RollingBack,
            Phase::Steady | Phase::Failed | Phase::Paused | Phase::Invalid => return None,
        })
    }
}

impl Settled {
    pub fn phase(self) -> Phase {
        match self {
            Settled::Steady => Phase::Steady,
            Settled::Failed => Phase::Failed,
            Settled::Invalid => Phase::Invalid,
        }
    }
}

impl Hold {
    pub fn phase(self) -> Phase {
        match self {
            Hold::Paused | Hold::Overridden => Phase::Paused,
            Hold::Invalid => Phase::Invalid,
        }
    }
}

impl Status {
    /// The phase people see: the hold of the rollout in flight, else its
    /// stage; without a rollout, where the service rests.
    pub fn phase(&self) -> Phase {
        match &self.rollout {
            Some(r) => r.hold.map_or(r.stage.phase(), Hold::phase),
            None => self.settled.phase(),
        }
    }

    /// The phase the rollout in flight is in under any hold: what it goes
    /// on from once the hold ends. Without a rollout, the shown phase.
    pub fn working_phase(&self) -> Phase {
        match &self.rollout {
            Some(r) => r.stage.phase(),
            None => self.settled.phase(),
        }
    }

    /// Moves to the state `phase` names. A stage is the rollout's, and
    /// ends any hold; `Paused` and `Invalid` hold a rollout in flight
    /// where it is; `Steady`, `Failed` (and `Invalid` without a rollout)
    /// are where the service rests. Every transition goes through it.
    pub fn enter(&mut self, phase: Phase) {
        match (self.rollout.as_mut(), Stage::of(phase)) {
            (Some(r), Some(stage)) => {
                r.stage = stage;
                r.hold = None;
            }
            (Some(r), None) => match phase {
                Phase::Paused => r.hold = Some(Hold::Paused),
                Phase::Invalid => r.hold = Some(Hold::Invalid),
                // Steady or Failed while a rollout is in flight: where the
                // service rests once it ends. The rollout still shows.
                Phase::Steady => self.settled = Settled::Steady,
                _ => self.settled = Settled::Failed,
            },
            // A stage with no rollout cannot be: nothing is in flight, and
            // the service keeps resting where it was.
            (None, Some(_)) => {}
            (None, None) => {
                self.settled = match phase {
                    Phase::Failed => Settled::Failed,
                    Phase::Invalid => Settled::Invalid,
                    _ => Settled::Steady,
                }
            }
        }
    }

    /// This status, moved to `phase` as [`Status::enter`] moves it: for
    /// building statuses by hand (tests, examples). A rollout's phase with
    /// no rollout in flight puts one in flight, the first attempt at the
    /// observed revision, begun at `phase_since`.
    pub fn with_phase(mut self, phase: Phase) -> Status {
        if phase.in_rollout() && self.rollout.is_none() {
            let revision = self
                .observed_revision
                .clone()
                .unwrap_or_else(|| Revision::from_raw("0123abcd"));
            let id = RolloutId {
                revision,
                attempt: 1,
            };
            self.rollout = Some(Rollout::new(id, None, String::new(), self.phase_since));
        }
        self.enter(phase);
        self
    }
}
