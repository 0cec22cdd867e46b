//! Rolling back: traffic returns to the task set that served before the
//! rollout in one weight change, that task set is primary again, and only
//! then is the candidate removed.

use super::command::{Command, Event, Outcome, Wake};
use super::driver::Flow;
use super::machine::Machine;
use super::observed::live;
use super::observed::{TaskSetStatus, Weights};
use super::status::{Phase, RollbackReason, Rollout};

impl Machine<'_, '_> {
    pub(crate) fn roll_back(&mut self, r: Rollout) -> Flow {
        let Some(reason) = r.rollback.clone() else {
            return Flow::Next;
        };
        let spec = self.spec;
        let candidate = self.candidate(&r.id.revision);
        let previous = r
            .from
            .as_ref()
            .and_then(|f| live(self.svc).find(|t| t.arn == f.arn));

        if r.from.is_some() && previous.is_none() {
            return self.nothing_to_return_to(r, reason);
        }
        if let (Some(from), Some(prev)) = (&r.from, previous) {
            let want = self.all_back_to(&from.target_group, &r.target_group);
            match self.production_settled(&want) {
                None => {
                    self.d.wake(Wake::Poll);
                    return Flow::Wait;
                }
                Some(false) => {
                    if let Some(flow) = self.hold_for_health(&r, &from.target_group, prev) {
                        return flow;
                    }
                    // Written even when it already looks right: an earlier
                    // write may still be on its way to the load balancer.
                    self.set_production(want);
                    // Clients held on the candidate by stickiness must
                    // leave it as soon as the weights do.
                    self.sticky_clients_held(&r.target_group);
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
            if self.sticky_clients_held(&r.target_group) {
                return Flow::Wait;
            }
            self.delete(c);
            self.d.say(format!(
                "rolling back ({reason}): removing the candidate task set"
            ));
            self.d.wake(Wake::Poll);
            return Flow::Wait;
        }
        if !self.d.commands.is_empty() || self.restoring_stickiness() {
            self.d.wake(Wake::Poll);
            return Flow::Wait;
        }
        self.finish_rollback(r, reason)
    }

    /// A rollback never sends production to a target group without a
    /// healthy target: while the task set it returns to has none (an outage
    /// of the old side), the weights stay as they are, and people are told
    /// once, when the hold begins. `None` once that side can serve.
    fn hold_for_health(
        &mut self,
        r: &Rollout,
        back_to: &str,
        prev: &super::observed::TaskSet,
    ) -> Option<Flow> {
        let Some(back) = self.observed.targets.get(back_to) else {
            self.d
                .say("rolling back: reading the health of the previous task set");
            self.d.wake(Wake::Poll);
            return Some(Flow::Wait);
        };
        if back.healthy > 0 {
            if let Some(rr) = self.d.status.rollout.as_mut() {
                rr.health.held_since = None;
            }
            return None;
        }
        let neither_serves = self.healthy_targets(&r.target_group) == 0;
        let weights = self
            .observed
            .production
            .as_ref()
            .map_or_else(String::new, |w| w.to_string());
        let reason = if neither_serves {
            format!(
                "neither side can serve: the previous task set {} and the candidate have no healthy target; production is held at {weights} until one has",
                prev.name()
            )
        } else {
            format!(
                "the previous task set {} has no healthy target ({} unhealthy, {} initial); production is held at {weights} until it has",
                prev.name(),
                back.unhealthy,
                back.initial
            )
        };
        let now = self.d.now;
        if let Some(rr) = self.d.status.rollout.as_mut()
            && rr.health.held_since.is_none()
        {
            rr.health.held_since = Some(now);
            self.d.events.push(Event::TrafficHeld {
                rollout: r.id.clone(),
                neither_serves,
                reason: reason.clone(),
            });
        }
        let why = r
            .rollback
            .as_ref()
            .map_or_else(String::new, |x| x.to_string());
        self.d.say(format!("rolling back ({why}): {reason}"));
        self.d.wake(Wake::Poll);
        Some(Flow::Wait)
    }

    /// The task set to return to is gone (removed by hand, or by a finished
    /// bake): the candidate is all that serves, so it stays.
    fn nothing_to_return_to(&mut self, r: Rollout, reason: RollbackReason) -> Flow {
        // Nothing went back: the candidate serves.
        self.d
            .finish_rollout(&r, Outcome::of_rollback(Some(&reason), false));
        if let Some(c) = self.candidate(&r.id.revision) {
            self.d.status.active = Some(super::machine::task_set_ref(c));
            self.d.status.stable_revision = Some(r.id.revision.clone());
        }
        let text = format!(
            "cannot roll back ({reason}): the previous task set is gone, so the candidate keeps serving"
        );
        if reason.fails_revision() {
            self.d.fail_revision(&r, text.clone());
        }
        self.d
            .transition_of(Phase::Failed, text.clone(), Some(r.id.revision.clone()));
        self.d.say(text);
        Flow::Next
    }

    fn finish_rollback(&mut self, r: Rollout, reason: RollbackReason) -> Flow {
        // Production went back to the task set it started from, if any.
        self.d
            .finish_rollout(&r, Outcome::of_rollback(Some(&reason), r.from.is_some()));
        if let Some(from) = &r.from {
            self.d.status.active = Some(from.clone());
            self.d.status.stable_revision = from.revision.clone();
        }
        if reason.fails_revision() {
            let text = reason.to_string();
            self.d.fail_revision(&r, text.clone());
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
