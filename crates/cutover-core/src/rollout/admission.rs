//! Concurrency limits, as a decision sees them: whether a rollout that has
//! not started may start now. The controller counts the rollouts in flight
//! and the ones waiting, and hands each decision its admission with the
//! observed service, as it hands the fleet-wide halt. A limit only ever
//! delays a start: a rollout in flight, and any rollback, goes on whatever
//! the counts say.

use std::fmt;

/// A rollout's place under the configured limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// It may start now (or it is in flight already).
    Admitted,
    /// Every slot of a limit it falls under is taken: it waits its turn.
    Queued {
        /// Rollouts waiting for the same slots that asked before it.
        ahead: u32,
        /// The limit that holds it, in words: "2 per cluster prod".
        limit: String,
    },
}

impl Admission {
    /// Why a start waits, when it does.
    pub(crate) fn queued(admission: Option<&Admission>) -> Option<Queued<'_>> {
        match admission {
            Some(Admission::Queued { ahead, limit }) => Some(Queued {
                ahead: *ahead,
                limit,
            }),
            Some(Admission::Admitted) | None => None,
        }
    }
}

/// A start held in the queue, for its status message.
pub(crate) struct Queued<'a> {
    ahead: u32,
    limit: &'a str,
}

impl Queued<'_> {
    /// The status message of a revision that waits for a slot.
    pub fn not_started(&self, revision: &impl fmt::Display) -> String {
        format!(
            "queued: {} ahead of it for a rollout slot (limit: {}); revision {revision} starts when one frees",
            self.ahead, self.limit
        )
    }
}
