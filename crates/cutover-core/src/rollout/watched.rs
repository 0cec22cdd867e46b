//! A rollout in flight while its record is invalid: held where it is, its
//! candidate still judged by the target health and task failure gates and
//! the progress deadline of the last valid record (`watch.rs`).

use super::command::Wake;
use super::driver::{Driver, Flow, gated};
use super::machine::Machine;
use super::status::RollbackReason;

impl Machine<'_, '_> {
    /// One step of a rollout in flight while its record is invalid, neither
    /// rolling back nor finishing; `self.spec` is the watch's.
    pub(crate) fn watch_candidate(&mut self, why: &str) -> Flow {
        let Some(r) = self.d.status.rollout.clone() else {
            return Flow::Next;
        };
        let held = self.d.status.working_phase();
        // The candidate has traffic (or is behind the test route): its gates
        // look at it as they would have. A gate that waits (a shortfall
        // within its grace, a first failing check) holds like the record.
        self.d.say("");
        if gated(held) {
            let _ = self.gates(&r);
        }
        let rolling_back = |m: &Self| {
            m.d.status
                .rollout
                .as_ref()
                .is_some_and(|r| r.rollback.is_some())
        };
        if rolling_back(self) {
            return Flow::Next;
        }
        let gate_says = self.d.status.message.clone();
        let deadline = r.progress_at + self.spec.progress_deadline;
        if self.d.now >= deadline {
            return self.begin_rollback(RollbackReason::DeadlineExceeded {
                phase: held,
                detail: format!("{why}; held in {held}"),
            });
        }
        // `hold` remembers the phase to return to and goes to Invalid.
        self.d.hold(why.to_string());
        let mut message = format!(
            "{}; meanwhile the target health gate and the progress deadline of the last valid record still watch the candidate, and roll it back if it fails",
            self.d.status.message
        );
        if !gate_says.is_empty() {
            message = format!("{message} (target health: {gate_says})");
        }
        self.d.say(message);
        self.d.wake(if gated(held) {
            Wake::Poll
        } else {
            Wake::At(deadline)
        });
        Flow::Wait
    }
}
