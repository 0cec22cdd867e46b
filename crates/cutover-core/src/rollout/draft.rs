//! What a decision is building: the next status, the commands, the events
//! and when to look again. Every driver writes into one; transitions,
//! adoptions and holds go through it, so each is recorded the same way.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::command::{Command, Decision, Event, Outcome, Wake};
use super::revision::Revision;
use super::status::{Failure, Pending, Phase, Rollout, Status, Transition};
use crate::time::Timestamp;

/// A command already sent is not sent again for this long while AWS makes
/// it visible (load balancer changes are eventually consistent).
pub const RESEND_AFTER: Duration = Duration::from_secs(10);

/// What the decision is building: the next status, commands and events.
pub(crate) struct Draft {
    pub status: Status,
    pub commands: Vec<Command>,
    pub events: Vec<Event>,
    pub wake: Wake,
    pub now: Timestamp,
    /// The phase shown before this decision opened or ended a rollout,
    /// until the transition that says where it is now is recorded from it.
    pub shown: Option<Phase>,
    /// The fleet-wide halt the decision runs under, if one is on.
    pub halt: Option<super::halt::Halt>,
    /// Whether a rollout may start under the concurrency limits.
    pub admission: Option<super::admission::Admission>,
}

impl Draft {
    /// A transition of the rollout in flight, named by its revision.
    pub fn transition(&mut self, to: Phase, reason: impl Into<String>) {
        let revision = self.status.rollout.as_ref().map(|r| r.id.revision.clone());
        self.transition_of(to, reason, revision);
    }

    /// A transition named by `revision`: the rollout that just ended, or
    /// the revision that serves, when no rollout is in flight any more.
    pub fn transition_of(
        &mut self,
        to: Phase,
        reason: impl Into<String>,
        revision: Option<Revision>,
    ) {
        let from = self.shown.take().unwrap_or_else(|| self.status.phase());
        // Entered even when the phase shown stays: a pause set by someone
        // replaces a hold by weights changed outside cutover (both show as
        // Paused).
        self.status.enter(to);
        // A stage cannot be entered without a rollout, nor a resting phase
        // while one is in flight: nothing changed that people see.
        if from == to || self.status.phase() != to {
            return;
        }
        let t = Transition {
            at: self.now,
            from,
            to,
            reason: reason.into(),
            revision,
        };
        self.status.phase_since = self.now;
        self.status.record(t.clone());
        self.events.push(Event::Transition(t));
    }

    /// Takes over the rollout in the status, found in `phase` on the live
    /// service after its status was lost. Not a transition: the phase it was
    /// in before is unknown, and the rollout did not start again.
    pub fn adopt(&mut self, phase: Phase, reason: impl Into<String>) {
        let Some(rollout) = self.status.rollout.as_ref().map(|r| r.id.clone()) else {
            return;
        };
        self.shown = None;
        self.status.enter(phase);
        self.status.phase_since = self.now;
        self.events.push(Event::RolloutAdopted {
            rollout,
            phase,
            reason: reason.into(),
        });
    }

    pub fn say(&mut self, message: impl Into<String>) {
        self.status.message = message.into();
    }

    /// A rollout of `revision` that would start now but waits its turn
    /// under the concurrency limits: the status says where it stands, and
    /// the next poll looks again (a slot frees when a rollout elsewhere
    /// ends). `false` when it may start.
    pub fn queued(&mut self, revision: &Revision) -> bool {
        let Some(q) = super::admission::Admission::queued(self.admission.as_ref()) else {
            return false;
        };
        self.status.message = q.not_started(revision);
        self.wake(Wake::Poll);
        true
    }

    /// Asks to be woken; the soonest request wins.
    pub fn wake(&mut self, w: Wake) {
        self.wake = match (self.wake, w) {
            (Wake::Poll, _) | (_, Wake::Poll) => Wake::Poll,
            (Wake::At(a), Wake::At(b)) => Wake::At(a.min(b)),
            (Wake::At(a), Wake::Idle) | (Wake::Idle, Wake::At(a)) => Wake::At(a),
            (Wake::Idle, Wake::Idle) => Wake::Idle,
        };
    }

    /// Holds everything as it is and explains why: the record is invalid or
    /// the service cannot be driven as configured.
    pub fn hold(&mut self, why: String) {
        let mut message = why.clone();
        // A rollout in flight keeps its stage under the hold.
        if let Some(r) = self.status.rollout.as_ref() {
            message = format!(
                "{why}; rollout of revision {} is held where it is until this is fixed",
                r.id.revision
            );
        }
        self.transition(Phase::Invalid, why);
        self.say(message);
        self.wake(Wake::Idle);
    }

    pub(crate) fn finish(mut self) -> Decision {
        // Don't resend the exact commands of the last decision while AWS is
        // still making them visible; do resend once that grace has passed.
        if self.commands.is_empty() {
            self.status.pending = None;
        } else {
            let fingerprint = fingerprint(&self.commands);
            let fresh =
                self.status.pending.as_ref().is_some_and(|p| {
                    p.fingerprint == fingerprint && self.now < p.at + RESEND_AFTER
                });
            if fresh {
                self.commands.clear();
            } else {
                self.status.pending = Some(Pending {
                    fingerprint,
                    at: self.now,
                });
            }
            self.wake(Wake::Poll);
        }
        Decision {
            commands: self.commands,
            status: self.status,
            wake: self.wake,
            events: self.events,
        }
    }

    /// Ends the rollout in flight with `outcome`.
    pub(crate) fn finish_rollout(&mut self, r: &Rollout, outcome: Outcome) {
        self.shown = Some(self.status.phase());
        self.events.push(Event::RolloutFinished {
            rollout: r.id.clone(),
            outcome,
            duration: self.now.since(r.started_at),
        });
        self.status.rollout = None;
        self.status.candidate = None;
    }

    /// Marks the rollout's revision failed: not deployed again until retried.
    pub(crate) fn fail_revision(&mut self, r: &Rollout, reason: String) {
        self.status.failed = Some(Failure {
            rollout: r.id.clone(),
            reason,
            at: self.now,
        });
    }
}

fn fingerprint(commands: &[Command]) -> String {
    let bytes = serde_json::to_vec(commands).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..8])
}
