//! Which rollout a person's request can act on, given the status the
//! controller last wrote. The CLI and the HTTP API both ask here, so they
//! never disagree about when promote, abort or retry applies; each words
//! the answer for its own audience.

use std::fmt;

use super::status::{Failure, Phase, RollbackReason, Rollout, Status};

/// Why a request does not apply now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Promote: nothing waits for promotion in this phase.
    NotAwaitingPromotion(Phase),
    /// Abort: no rollout is in flight.
    NothingInFlight(Phase),
    /// Abort: the rollout is already returning traffic, for this reason.
    AlreadyRollingBack(String, RollbackReason),
    /// Abort: the old task set is being removed; there is nothing to go back to.
    Finalizing(String),
    /// Retry: only a failed revision can be retried.
    NotFailed(Phase),
    /// Pause: the record already says `paused = true`.
    AlreadyPaused,
    /// Resume: the record does not say `paused = true`.
    NotPaused,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotAwaitingPromotion(phase) => {
                write!(f, "nothing awaits promotion: the service is {phase}")
            }
            Refusal::NothingInFlight(phase) => {
                write!(f, "no rollout is in flight: the service is {phase}")
            }
            Refusal::AlreadyRollingBack(id, reason) => {
                write!(f, "rollout {id} is already rolling back: {reason}")
            }
            Refusal::Finalizing(id) => write!(
                f,
                "rollout {id} is finalizing: the old task set is being removed, so there is nothing to return to"
            ),
            Refusal::NotFailed(phase) => write!(
                f,
                "only a failed revision can be retried: the service is {phase}"
            ),
            Refusal::AlreadyPaused => f.write_str("the service is already paused"),
            Refusal::NotPaused => f.write_str("the service is not paused"),
        }
    }
}

fn phase(status: Option<&Status>) -> Phase {
    status.map_or(Phase::default(), |s| s.phase())
}

/// The rollout a promotion would let past its step.
pub fn promotable(status: Option<&Status>) -> Result<&Rollout, Refusal> {
    status
        .filter(|s| s.phase() == Phase::AwaitingPromotion)
        .and_then(|s| s.rollout.as_ref())
        .ok_or_else(|| Refusal::NotAwaitingPromotion(phase(status)))
}

/// The rollout an abort would roll back. A rollout already rolling back,
/// an aborted one included, is refused: there is nothing more to do.
pub fn abortable(status: Option<&Status>) -> Result<&Rollout, Refusal> {
    let Some(r) = status.and_then(|s| s.rollout.as_ref()) else {
        return Err(Refusal::NothingInFlight(phase(status)));
    };
    match &r.rollback {
        Some(reason) => Err(Refusal::AlreadyRollingBack(
            r.id.to_string(),
            reason.clone(),
        )),
        None if phase(status) == Phase::Finalizing => Err(Refusal::Finalizing(r.id.to_string())),
        None => Ok(r),
    }
}

/// Whether `pause` (or, with `pause = false`, `resume`) changes a record
/// whose `paused` field is `paused`: only the one that does is offered to
/// people. Asking again changes nothing, so neither the CLI nor the API
/// turns a repeated request into an error.
pub fn pause_request(paused: bool, pause: bool) -> Result<(), Refusal> {
    match (paused, pause) {
        (true, true) => Err(Refusal::AlreadyPaused),
        (false, false) => Err(Refusal::NotPaused),
        _ => Ok(()),
    }
}

/// The failed rollout a retry would start again.
pub fn retryable(status: Option<&Status>) -> Result<&Failure, Refusal> {
    status
        .filter(|s| s.phase() == Phase::Failed)
        .and_then(|s| s.failed.as_ref())
        .ok_or_else(|| Refusal::NotFailed(phase(status)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::status::Failure;
    use crate::rollout::{Revision, RolloutId};
    use crate::time::Timestamp;

    fn id() -> RolloutId {
        RolloutId {
            revision: Revision::from_raw("0123abcd"),
            attempt: 1,
        }
    }

    fn status(phase: Phase, rollback: Option<RollbackReason>) -> Status {
        let mut s = Status {
            rollout: Some(Rollout {
                step: 1,
                rollback,
                ..Rollout::new(id(), None, "tg".into(), Timestamp(0))
            }),
            ..Status::default()
        };
        s.enter(phase);
        s
    }

    #[test]
    fn promote_applies_only_while_awaiting_promotion() {
        let waiting = status(Phase::AwaitingPromotion, None);
        assert_eq!(promotable(Some(&waiting)).map(|r| &r.id), Ok(&id()));
        let shifting = status(Phase::Shifting, None);
        assert_eq!(
            promotable(Some(&shifting)).unwrap_err().to_string(),
            "nothing awaits promotion: the service is Shifting"
        );
        assert!(promotable(None).is_err());
    }

    #[test]
    fn abort_needs_a_rollout_that_can_still_return() {
        assert!(abortable(Some(&status(Phase::Baking, None))).is_ok());
        assert!(matches!(abortable(None), Err(Refusal::NothingInFlight(_))));
        assert!(matches!(
            abortable(Some(&status(
                Phase::RollingBack,
                Some(RollbackReason::Aborted)
            ))),
            Err(Refusal::AlreadyRollingBack(_, RollbackReason::Aborted))
        ));
        let finalizing = abortable(Some(&status(Phase::Finalizing, None))).unwrap_err();
        assert!(
            finalizing.to_string().contains("nothing to return to"),
            "{finalizing}"
        );
    }

    #[test]
    fn pause_applies_only_unpaused_and_resume_only_paused() {
        assert_eq!(pause_request(false, true), Ok(()));
        assert_eq!(pause_request(true, false), Ok(()));
        assert_eq!(pause_request(true, true), Err(Refusal::AlreadyPaused));
        assert_eq!(
            pause_request(false, false).unwrap_err().to_string(),
            "the service is not paused"
        );
    }

    #[test]
    fn retry_applies_only_to_a_failed_revision() {
        let mut failed = Status {
            settled: crate::rollout::status::Settled::Failed,
            failed: Some(Failure {
                rollout: id(),
                reason: "gate failed".into(),
                at: Timestamp(0),
            }),
            ..Status::default()
        };
        assert_eq!(retryable(Some(&failed)).map(|f| &f.rollout), Ok(&id()));
        failed.enter(Phase::Steady);
        assert!(matches!(
            retryable(Some(&failed)),
            Err(Refusal::NotFailed(Phase::Steady))
        ));
    }
}
