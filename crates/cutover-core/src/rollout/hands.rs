//! Hands on the console: what cutover does when someone else changes the
//! service mid-rollout, or when its own rollback takes too long.
//!
//! An operator who moves production weights by hand in the middle of a
//! release is usually answering an emergency; cutover must not undo that
//! move at its next poll. It can only tell its own writes from someone
//! else's by what it would have written: the weights of a step of this
//! rollout, 0% or 100% on the candidate, or what it last wrote or verified.
//! Anything else (or any weight on a third target group) came from outside.
//! ELBv2 itself does not record who changed a listener; CloudTrail's
//! `ModifyListener`/`ModifyRule` events do
//! (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudtrail-logs.html),
//! so the status names that place instead of guessing a person.

use super::command::{AlertKind, Event, Wake};
use super::driver::{Driver, Flow};
use super::machine::Machine;
use super::observed::live;
use super::observed::{TaskSetStatus, Weights};
use super::status::{HandChange, Hold, Phase, RollbackReason, Rollout};
use super::strategy::Step;

impl Machine<'_, '_> {
    /// `Some` when someone else's change decides this pass: a task set the
    /// rollout started from that was deleted, weights this rollout never
    /// wrote, or a third target group on production.
    pub(crate) fn hands_on(&mut self, r: &Rollout, phase: Phase) -> Option<Flow> {
        if !matches!(
            phase,
            Phase::Provisioning
                | Phase::Testing
                | Phase::Shifting
                | Phase::AwaitingPromotion
                | Phase::Paused
                | Phase::Baking
        ) {
            return None;
        }
        // While baking, production is all on the candidate already, and the
        // old task set is about to go anyway.
        if self.previous_gone(r, phase) {
            return Some(self.previous_deleted(r));
        }
        if let Some(change) = r.hand_change.as_ref().filter(|c| !c.acknowledged) {
            return Some(self.paused_by_hand(r, change.clone()));
        }
        let seen = self.observed.production.clone()?;
        let from_tg = self.returning_target_group(r);
        let foreign: Vec<String> = seen
            .0
            .iter()
            .filter(|(tg, w)| **w > 0 && **tg != from_tg && **tg != r.target_group)
            .map(|(tg, _)| tg.clone())
            .collect();
        if !foreign.is_empty() {
            return Some(self.foreign_groups(r, &seen, &foreign));
        }
        if phase == Phase::Paused || self.ours(r, &seen) {
            return None;
        }
        let change = HandChange {
            seen: seen.to_string(),
            written: self
                .d
                .status
                .production_written
                .as_ref()
                .map_or_else(|| "nothing yet".to_string(), |w| w.to_string()),
            at: self.d.now,
            share: seen.percent(&r.target_group),
            acknowledged: false,
        };
        self.alert(
            r,
            AlertKind::WeightsChangedByHand,
            format!(
                "production weights were changed outside cutover: the load balancer shows {}, cutover last wrote {}; the rollout is paused",
                change.seen, change.written
            ),
        );
        let rr = self.rollout();
        rr.hand_change = Some(change.clone());
        Some(self.paused_by_hand(r, change))
    }

    /// Holds a rollout whose weights someone else changed, gates still
    /// watched, until someone sets `paused` in the record: that says the
    /// move was seen, and clearing `paused` after goes on from there.
    fn paused_by_hand(&mut self, r: &Rollout, change: HandChange) -> Flow {
        if let Err(flow) = self.gates(r) {
            return flow;
        }
        self.d.transition(
            Phase::Paused,
            "production weights were changed outside cutover",
        );
        self.rollout().hold = Some(Hold::Overridden);
        self.d.say(format!(
            "paused: production weights were changed outside cutover at {} (the load balancer shows {}; cutover last wrote {}). \
             cutover does not undo the change; CloudTrail's ModifyListener and ModifyRule events name who made it. \
             To go on from here set paused = true, then paused = false; to roll back run `cutover abort {}`",
            change.at, change.seen, change.written, self.spec.key
        ));
        self.d.wake(Wake::Poll);
        Flow::Wait
    }

    /// The target group production returns to: the task set the rollout
    /// started from, or the pair's other group for a first release.
    fn returning_target_group(&self, r: &Rollout) -> String {
        match &r.from {
            Some(f) => f.target_group.clone(),
            None => self
                .spec
                .traffic
                .other_target_group(&r.target_group)
                .unwrap_or_default()
                .to_string(),
        }
    }

    /// Whether `seen` needs no one's attention: weights cutover could have
    /// written in this rollout (the candidate at 0%, 100%, a step's weight,
    /// what it last wrote, or the share a changed strategy went on from), or
    /// a change by hand
    /// someone has acknowledged.
    fn ours(&self, r: &Rollout, seen: &Weights) -> bool {
        let share = seen.percent(&r.target_group);
        let steps = self.steps(r);
        let stepped = steps
            .iter()
            .any(|s| matches!(s, Step::SetWeight(w) if u32::from(*w) == share));
        let written = self
            .d
            .status
            .production_written
            .as_ref()
            .is_some_and(|w| w.percent(&r.target_group) == share);
        let acknowledged = r
            .hand_change
            .as_ref()
            .is_some_and(|h| h.acknowledged && h.share == share);
        // The share a changed strategy went on from was judged against the
        // steps before the change, pass after pass; the new steps need not
        // have it, and what cutover wrote may not be on the status (a lost
        // status write).
        let went_on_from = r.went_on_from == Some(share);
        share == 0 || share == 100 || stepped || written || acknowledged || went_on_from
    }

    /// Production forwards to a target group the rollout does not own: the
    /// weights hold as they are (moving them would drop the other group),
    /// and at the progress deadline the rollout rolls back, which writes
    /// only the rollout's own groups.
    fn foreign_groups(&mut self, r: &Rollout, seen: &Weights, foreign: &[String]) -> Flow {
        let names: Vec<&str> = foreign
            .iter()
            .map(|tg| super::observed::short_arn(tg))
            .collect();
        let why = format!(
            "production also forwards to {} (the load balancer shows {seen}), a target group this rollout does not own",
            names.join(", ")
        );
        self.alert(r, AlertKind::ForeignTargetGroup, why.clone());
        let deadline = r.progress_at + self.spec.progress_deadline;
        if self.d.now >= deadline {
            return self.begin_rollback(RollbackReason::DeadlineExceeded {
                phase: self.d.status.phase(),
                detail: why,
            });
        }
        self.d.say(format!(
            "{why}: holding the weights until it is taken off the listener, or rolling back at {deadline}"
        ));
        self.d.wake(Wake::At(deadline));
        self.d.wake(Wake::Poll);
        Flow::Wait
    }

    /// The task set the rollout started from is gone: its target group has
    /// no target left, so every request it still gets fails. Production
    /// goes to the candidate at once if it can serve, and the rollout bakes
    /// it; otherwise nothing can be done but wait for the candidate until
    /// the deadline, which fails the revision.
    fn previous_deleted(&mut self, r: &Rollout) -> Flow {
        let why = self.previous_deleted_alert(r);
        let healthy = self.healthy_targets(&r.target_group);
        let candidate = self.candidate(&r.id.revision);
        let (Some(c), true) = (candidate, healthy > 0) else {
            let deadline = r.progress_at + self.spec.progress_deadline;
            if self.d.now >= deadline {
                return self.begin_rollback(RollbackReason::DeadlineExceeded {
                    phase: self.d.status.phase(),
                    detail: format!("{why}, and the candidate has no healthy target"),
                });
            }
            self.d.say(format!(
                "{why}, and the candidate has no healthy target yet: waiting for it until {deadline}"
            ));
            self.d.wake(Wake::Poll);
            return Flow::Wait;
        };
        if let Some(flow) = self.production_to_candidate(r, &why, healthy) {
            return flow;
        }
        if c.status != TaskSetStatus::Primary {
            self.make_primary(c);
        }
        self.d.status.weights = Some((0, 100));
        let steps = self.steps(r).len() as u32;
        let now = self.d.now;
        let rr = self.rollout();
        rr.step = steps;
        rr.step_started_at = now;
        rr.progress_at = now;
        rr.hand_change = None;
        self.d.transition(
            Phase::Baking,
            format!("{why}: all production traffic is on the candidate"),
        );
        self.d.wake(Wake::Poll);
        Flow::Wait
    }

    /// Under a pause or a fleet-wide halt, which hold every step forward,
    /// the rescue of production still runs: when the task set the rollout
    /// started from was deleted and the candidate can serve, production
    /// goes to the candidate, since every request the emptied group gets
    /// fails (simulation seed 1581: a halt kept production on a deleted
    /// task set for 127 s). Baking the candidate waits until the hold is
    /// lifted. `None` when there is nothing to rescue, or it is done.
    pub(crate) fn rescue_while_held(&mut self, r: &Rollout, phase: Phase) -> Option<Flow> {
        if !self.previous_gone(r, phase) || self.candidate(&r.id.revision).is_none() {
            return None;
        }
        let healthy = self.healthy_targets(&r.target_group);
        if healthy == 0 {
            return None;
        }
        let why = self.previous_deleted_alert(r);
        self.production_to_candidate(r, &why, healthy)
    }

    /// Whether the task set the rollout started from was deleted while
    /// production may still weigh it (it is all on the candidate by Baking).
    fn previous_gone(&self, r: &Rollout, phase: Phase) -> bool {
        r.from.as_ref().is_some_and(|from| {
            phase != Phase::Baking && !live(self.svc).any(|t| t.arn == from.arn)
        })
    }

    /// Says once per rollout that its previous task set was deleted, and
    /// returns the words for it.
    fn previous_deleted_alert(&mut self, r: &Rollout) -> String {
        let why = format!(
            "the task set this rollout started from ({}) was deleted outside cutover",
            r.from
                .as_ref()
                .map_or_else(String::new, |f| super::observed::task_set_id(&f.arn)
                    .to_string())
        );
        self.alert(r, AlertKind::PreviousTaskSetDeleted, why.clone());
        why
    }

    /// Moves production, and its sticky clients, off the deleted task set's
    /// group onto the candidate, which has `healthy` targets. `None` once
    /// both are there.
    fn production_to_candidate(&mut self, r: &Rollout, why: &str, healthy: u32) -> Option<Flow> {
        let from_tg = self.returning_target_group(r);
        let want = Weights::pair(&from_tg, 0, &r.target_group, 100);
        match self.production_settled(&want) {
            None => {
                self.d.wake(Wake::Poll);
                Some(Flow::Wait)
            }
            Some(false) => {
                self.set_production(want);
                // Sticky clients held on the emptied group move with it.
                self.sticky_clients_held(&from_tg);
                self.d.say(format!(
                    "{why}: sending all production traffic to the candidate, which has {healthy} healthy targets"
                ));
                self.d.wake(Wake::Poll);
                Some(Flow::Wait)
            }
            Some(true) if self.sticky_clients_held(&from_tg) => Some(Flow::Wait),
            Some(true) => None,
        }
    }

    /// `want` with every other target group production forwards to kept at
    /// the weight it has: a rollback takes the candidate off production and
    /// gives its share back, but leaves a group someone else added alone.
    pub(crate) fn keeping_foreign(&self, want: Weights) -> Weights {
        let mut kept = want;
        if let Some(seen) = &self.observed.production {
            for (tg, w) in &seen.0 {
                kept.0.entry(tg.clone()).or_insert(*w);
            }
        }
        kept
    }

    /// All of production back on the previous task set's `previous_tg`,
    /// none on the candidate's `candidate_tg`, and groups someone else
    /// added kept as they are: where a rollback, or a candidate with no
    /// healthy target, sends production.
    pub(crate) fn all_back_to(&self, previous_tg: &str, candidate_tg: &str) -> Weights {
        self.keeping_foreign(Weights::pair(previous_tg, 100, candidate_tg, 0))
    }

    /// Raises `kind` once per rollout.
    pub(crate) fn alert(&mut self, r: &Rollout, kind: AlertKind, reason: String) {
        if self.rollout().alerted.insert(kind) {
            self.d.events.push(Event::Alert {
                rollout: r.id.clone(),
                kind,
                reason,
            });
        }
    }

    /// A rollback still under way past the progress deadline is alerted
    /// once; it goes on trying, as it is the way back.
    pub(crate) fn rollback_overdue(&mut self, r: &Rollout) {
        if self.d.status.phase() != Phase::RollingBack {
            return;
        }
        let since = self.d.status.phase_since;
        if self.d.now < since + self.spec.progress_deadline {
            return;
        }
        let reason = format!(
            "rolling back since {since} ({}) and not done within the progress deadline; last: {}",
            r.rollback
                .as_ref()
                .map_or_else(String::new, |x| x.to_string()),
            self.d.status.message
        );
        self.alert(r, AlertKind::RollbackOverdue, reason);
    }
}
