//! Rolling back: traffic returns to the task set that served before the
//! rollout in one weight change, that task set is primary again, and only
//! then is the candidate removed.

use super::command::{Command, Event, Outcome, Wake};
use super::decide::live;
use super::machine::{Flow, Machine};
use super::observed::{TaskSetStatus, Weights};
use super::status::{Failure, Phase, RollbackReason, Rollout};

impl Machine<'_, '_> {
    pub(crate) fn roll_back(&mut self, r: Rollout) -> Flow {
        let Some(reason) = r.rollback.clone() else {
            return Flow::Next;
        };
        let spec = self.spec;
        let candidate = live(self.svc).find(|t| t.revision().as_ref() == Some(&r.id.revision));
        let previous = r
            .from
            .as_ref()
            .and_then(|f| live(self.svc).find(|t| t.arn == f.arn));

        if r.from.is_some() && previous.is_none() {
            return self.nothing_to_return_to(r, reason);
        }
        if let (Some(from), Some(prev)) = (&r.from, previous) {
            let want = Weights::pair(&from.target_group, 100, &r.target_group, 0);
            match self.production_settled(&want) {
                None => {
                    self.d.wake(Wake::Poll);
                    return Flow::Wait;
                }
                Some(false) => {
                    // Written even when it already looks right: an earlier
                    // write may still be on its way to the load balancer.
                    self.set_production(want);
                    self.d.say(format!(
                        "rolling back ({reason}): returning all production traffic to {}",
                        prev.name()
                    ));
                    self.d.wake(Wake::Poll);
                    return Flow::Wait;
                }
                Some(true) => self.d.status.weights = Some((100, 0)),
            }
            if let (Some(route), Some(seen)) = (&spec.traffic.test, &self.observed.test) {
                let want = Weights::pair(&from.target_group, 100, &r.target_group, 0);
                if !seen.same_shares(&want) {
                    self.d.commands.push(Command::SetWeights {
                        route: route.clone(),
                        weights: want,
                    });
                }
            }
            if prev.status != TaskSetStatus::Primary {
                self.make_primary(prev);
                self.d.say(format!(
                    "rolling back ({reason}): making the previous task set primary again"
                ));
                self.d.wake(Wake::Poll);
                return Flow::Wait;
            }
        }
        if let Some(c) = candidate {
            self.delete(c);
            self.d.say(format!(
                "rolling back ({reason}): removing the candidate task set"
            ));
            self.d.wake(Wake::Poll);
            return Flow::Wait;
        }
        if !self.d.commands.is_empty() {
            self.d.wake(Wake::Poll);
            return Flow::Wait;
        }
        self.finish_rollback(r, reason)
    }

    /// The task set to return to is gone (removed by hand, or by a finished
    /// bake): the candidate is all that serves, so it stays.
    fn nothing_to_return_to(&mut self, r: Rollout, reason: RollbackReason) -> Flow {
        let duration = self.d.now.since(r.started_at);
        let outcome = match reason {
            RollbackReason::Superseded { .. } => Outcome::Superseded,
            RollbackReason::Aborted => Outcome::Aborted,
            _ => Outcome::Failed,
        };
        self.d.events.push(Event::RolloutFinished {
            rollout: r.id.clone(),
            outcome,
            duration,
        });
        if let Some(c) = live(self.svc).find(|t| t.revision().as_ref() == Some(&r.id.revision)) {
            self.d.status.active = Some(super::machine::task_set_ref(c));
            self.d.status.stable_revision = Some(r.id.revision.clone());
        }
        self.d.status.candidate = None;
        self.d.status.rollout = None;
        let text = format!(
            "cannot roll back ({reason}): the previous task set is gone, so the candidate keeps serving"
        );
        if reason.fails_revision() {
            self.d.status.failed = Some(Failure {
                rollout: r.id.clone(),
                reason: text.clone(),
                at: self.d.now,
            });
        }
        self.d
            .transition_of(Phase::Failed, text.clone(), Some(r.id.revision.clone()));
        self.d.say(text);
        Flow::Next
    }

    fn finish_rollback(&mut self, r: Rollout, reason: RollbackReason) -> Flow {
        let duration = self.d.now.since(r.started_at);
        let outcome = match &reason {
            RollbackReason::Superseded { .. } => Outcome::Superseded,
            RollbackReason::Aborted => Outcome::Aborted,
            _ if r.from.is_none() => Outcome::Failed,
            _ => Outcome::RolledBack,
        };
        self.d.events.push(Event::RolloutFinished {
            rollout: r.id.clone(),
            outcome,
            duration,
        });
        self.d.status.candidate = None;
        self.d.status.rollout = None;
        if let Some(from) = &r.from {
            self.d.status.active = Some(from.clone());
            self.d.status.stable_revision = from.revision.clone();
        }
        if reason.fails_revision() {
            let text = reason.to_string();
            self.d.status.failed = Some(Failure {
                rollout: r.id.clone(),
                reason: text.clone(),
                at: self.d.now,
            });
            let back = if r.from.is_some() {
                "rolled back to the previous task set"
            } else {
                "the first release was removed"
            };
            self.d.transition_of(
                Phase::Failed,
                format!("{text}; {back}"),
                Some(r.id.revision.clone()),
            );
            self.d.say(format!(
                "revision {} failed: {text}; {back}. Write a new version, or retry",
                r.id.revision
            ));
            self.d.wake(Wake::Idle);
            return Flow::Wait;
        }
        self.d.transition_of(
            Phase::Steady,
            format!("rolled back revision {}: {reason}", r.id.revision),
            Some(r.id.revision.clone()),
        );
        Flow::Next
    }
}
