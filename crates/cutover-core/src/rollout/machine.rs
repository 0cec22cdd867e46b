//! The forward phases of a rollout: start, provision, test, shift, bake,
//! finalize. Each handler checks the observed world before acting and either
//! moves to another phase (`Flow::Next`) or waits (`Flow::Wait`).

use super::command::{Command, CreateTaskSet, Event, Outcome, TARGET_HEALTH, Wake};
use super::control::RolloutId;
use super::draft::Draft;
use super::driver::{
    Driver, Flow, Opening, failed_revision, interruption, next_attempt, promoted, runs,
};
use super::halt::Stop;
use super::hook::HookPoint;
use super::observed::{
    EcsService, Observed, TaskSet, TaskSetStatus, Weights, live, short_arn, short_task_definition,
};
use super::readiness::{self, Health};
use super::reading::Reads;
use super::revision::Revision;
use super::spec::Spec;
use super::status::{Phase, RollbackReason, Rollout, Status, TaskSetRef};
use super::strategy::Step;
use crate::time::Timestamp;
use sha2::{Digest, Sha256};

pub(crate) struct Machine<'a, 'd> {
    pub spec: &'a Spec,
    pub svc: &'a EcsService,
    pub observed: &'a Observed,
    pub d: &'d mut Draft,
}

/// The `CreateTaskSet` client token of a rollout's candidate. ECS remembers
/// a token after its task set is gone, answers a repeat with that task set,
/// and refuses the token for any other request
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/ECS_Idempotency.html):
/// so it is unique to the attempt, the task set it starts from and the
/// moment it started (the same revision may start again from the same task
/// set after it was superseded), and the same for every try of one create.
/// At most 36 characters, as ECS allows.
pub(crate) fn client_token(r: &Rollout) -> String {
    let mut hasher = Sha256::new();
    hasher.update(r.id.to_string().as_bytes());
    hasher.update([0]);
    hasher.update(r.from.as_ref().map_or("", |f| f.arn.as_str()).as_bytes());
    hasher.update([0]);
    hasher.update(r.started_at.0.to_be_bytes());
    format!("cutover-{}", hex::encode(&hasher.finalize()[..14]))
}

pub(crate) fn task_set_ref(t: &TaskSet) -> TaskSetRef {
    TaskSetRef {
        arn: t.arn.clone(),
        task_definition: t.task_definition.clone(),
        target_group: t.target_group.clone().unwrap_or_default(),
        revision: t.revision(),
    }
}

impl<'a> Machine<'a, '_> {
    fn remember_watch(&mut self) {
        // What watches the rollout should the record turn invalid.
        let watch = super::watch::Watch::of(self.spec);
        if let Some(r) = self.d.status.rollout.as_mut()
            && r.watch.as_ref() != Some(&watch)
        {
            r.watch = Some(watch);
        }
    }

    fn now(&self) -> crate::time::Timestamp {
        self.d.now
    }

    pub(crate) fn rollout(&mut self) -> &mut Rollout {
        self.d
            .status
            .rollout
            .as_mut()
            .expect("only called while a rollout is in flight")
    }

    /// The live task set created for the rollout's revision.
    pub(crate) fn candidate(&self, rev: &Revision) -> Option<&'a TaskSet> {
        super::observed::candidate(self.svc, rev)
    }

    fn candidate_share(&self, r: &Rollout) -> u32 {
        self.observed
            .production
            .as_ref()
            .map_or(0, |w| w.percent(&r.target_group))
    }

    /// Production weights with `candidate` percent on the rollout's group.
    pub(crate) fn production_weights(&self, r: &Rollout, candidate: u32) -> Weights {
        let other = self
            .spec
            .traffic
            .other_target_group(&r.target_group)
            .unwrap_or_default();
        let from = r.from.as_ref().map_or(other, |f| f.target_group.as_str());
        Weights::pair(from, 100 - candidate, &r.target_group, candidate)
    }

    pub(crate) fn make_primary(&mut self, t: &TaskSet) {
        self.d.commands.push(Command::SetPrimary {
            task_set: t.arn.clone(),
            task_definition: t.task_definition.clone(),
        });
    }

    pub(crate) fn delete(&mut self, t: &TaskSet) {
        self.d.commands.push(Command::DeleteTaskSet {
            task_set: t.arn.clone(),
            task_definition: t.task_definition.clone(),
        });
    }

    /// Sends production weights and remembers them as the last written.
    pub(crate) fn set_production(&mut self, weights: Weights) {
        self.d.status.production_written = Some(weights.clone());
        self.d.commands.push(Command::SetWeights {
            route: self.spec.traffic.production.clone(),
            weights,
        });
    }

    /// Production shows `want` and nothing else is on its way there.
    ///
    /// Only a status that remembers writing `want` proves the second half:
    /// when the status write after a weight change is lost (throttled, a
    /// restart), the change can still be on its way to the load balancer
    /// while the old weights show, so unknown counts as not settled and
    /// `want` is written once more. The callers delete a task set next.
    pub(crate) fn production_settled(&self, want: &Weights) -> Option<bool> {
        let seen = self.observed.production.as_ref()?;
        let written = self
            .d
            .status
            .production_written
            .as_ref()
            .is_some_and(|w| w.same_shares(want));
        Some(seen.same_shares(want) && written)
    }

    fn record_weights(&mut self, r: &Rollout) {
        if let Some(w) = &self.observed.production {
            let from = r.from.as_ref().map_or(0, |f| w.percent(&f.target_group));
            self.d.status.weights = Some((from, w.percent(&r.target_group)));
        }
    }

    // ---- between rollouts ------------------------------------------------

    fn between_rollouts(&mut self) -> Flow {
        let spec = self.spec;
        let primary = self.svc.primary();
        if let Some(p) = primary.filter(|p| runs(spec, p)) {
            if let Some(flow) = self.adopt_bake(p) {
                return flow;
            }
            return self.steady(p);
        }
        if let Some(f) = failed_revision(spec, &self.d.status) {
            if let Some(p) = primary
                && live(self.svc).all(|t| t.status == TaskSetStatus::Primary)
                && let Some(flow) = self.restore_production(p)
            {
                return flow;
            }
            return self.stay_failed(&f);
        }
        match next_attempt(spec, &self.d.status) {
            1 => self.start(1, "new revision"),
            attempt => self.start(attempt, "retry requested"),
        }
    }

    fn steady(&mut self, primary: &TaskSet) -> Flow {
        let spec = self.spec;
        self.d.status.active = Some(task_set_ref(primary));
        self.d.status.stable_revision = Some(spec.revision.clone());
        self.d.status.candidate = None;
        self.d.transition_of(
            Phase::Steady,
            format!("revision {} is serving", spec.revision),
            Some(spec.revision.clone()),
        );
        let strays: Vec<&TaskSet> = live(self.svc)
            .filter(|t| t.status != TaskSetStatus::Primary)
            .collect();
        if let Some(flow) = self.remove_strays(primary, &strays) {
            return flow;
        }
        if strays.is_empty() && self.restoring_stickiness() {
            return Flow::Wait;
        }
        if strays.is_empty()
            && let Some(flow) = self.restore_production(primary)
        {
            return flow;
        }
        if strays.is_empty() {
            self.d.status.weights = Some((100, 0));
            self.d.say(format!(
                "steady on revision {} ({})",
                spec.revision,
                short_task_definition(&primary.task_definition)
            ));
            self.d.wake(Wake::Idle);
        } else {
            self.d.say("removing leftover task sets");
        }
        Flow::Wait
    }

    /// Between rollouts production belongs wholly to the one live task set.
    /// The weights are read here only where a pass asks for them (the first
    /// pass of a replica that took the service's shard): anything else seen
    /// is a late weight change of the replica that drove the service
    /// before, which may point production at a target group whose task set
    /// is gone, and is written back. `None` when production is not read
    /// or is as it should be.
    fn restore_production(&mut self, primary: &TaskSet) -> Option<Flow> {
        let seen = self.observed.production.as_ref()?;
        let active = primary.target_group.as_deref()?;
        let other = self.spec.traffic.other_target_group(active)?;
        let want = Weights::pair(active, 100, other, 0);
        if seen.same_shares(&want) {
            return None;
        }
        self.d.say(format!(
            "production showed {seen}, not everything on active task set {}: writing its 100% back",
            primary.name()
        ));
        self.d.events.push(Event::ProductionRestored {
            seen: seen.clone(),
            written: want.clone(),
        });
        self.set_production(want);
        Some(Flow::Wait)
    }

    /// A service with a record is cutover's to deploy, so between rollouts a
    /// task set that no rollout owns was left behind by a lost status (a
    /// whole-item put while a rollout was rolling back, say): take traffic
    /// off it, then remove it. `Some` when this pass must wait for that;
    /// `None` once the deletions are sent (or there is nothing to remove).
    fn remove_strays(&mut self, primary: &TaskSet, strays: &[&TaskSet]) -> Option<Flow> {
        let primary_tg = primary.target_group.clone().unwrap_or_default();
        for stray in strays {
            let tg = stray.target_group.clone().unwrap_or_default();
            let want = Weights::pair(&primary_tg, 100, &tg, 0);
            match self.production_settled(&want) {
                None => {
                    self.d.wake(Wake::Poll);
                    return Some(Flow::Wait);
                }
                Some(false) if tg != primary_tg => {
                    self.set_production(want);
                    self.d.say(format!(
                        "moving traffic off leftover task set {}",
                        stray.name()
                    ));
                    return Some(Flow::Wait);
                }
                _ => {
                    if self.sticky_clients_held(&tg) {
                        return Some(Flow::Wait);
                    }
                    self.delete(stray)
                }
            }
        }
        None
    }

    fn start(&mut self, attempt: u32, why: &str) -> Flow {
        if let Some(flow) = self.adopt_superseded() {
            return flow;
        }
        let spec = self.spec;
        let primary = self.svc.primary();
        // A leftover task set may sit in the target group the new candidate
        // is about to take: two task sets in one group would share its
        // traffic, and removing the leftover later would pull targets out
        // from under production. Clear them first.
        if let Some(p) = primary {
            let strays: Vec<&TaskSet> = live(self.svc)
                .filter(|t| {
                    t.status != TaskSetStatus::Primary
                        && t.revision().as_ref() != Some(&spec.revision)
                })
                .collect();
            if !strays.is_empty() {
                if let Some(flow) = self.remove_strays(p, &strays) {
                    return flow;
                }
                self.d.say(format!(
                    "removing leftover task sets before revision {} starts",
                    spec.revision
                ));
                self.d.wake(Wake::Poll);
                return Flow::Wait;
            }
        }
        let target_group = match primary {
            None => spec.traffic.target_groups[0].clone(),
            Some(p) => {
                let tg = p.target_group.as_deref().unwrap_or("(none)");
                match spec.traffic.other_target_group(tg) {
                    Some(other) => other.to_string(),
                    None => {
                        self.d.hold(format!(
                            "the active task set serves target group {tg}, which is not one of the record's target_groups: list it there"
                        ));
                        return Flow::Wait;
                    }
                }
            }
        };
        let id = RolloutId {
            revision: spec.revision.clone(),
            attempt,
        };
        let now = self.now();
        let mut rollout = Rollout::new(id, primary.map(task_set_ref), target_group, now);
        // A candidate already in place means a status was lost mid-rollout:
        // pick up where the traffic is instead of starting over.
        let mut phase = Phase::Provisioning;
        let adopted = self.candidate(&spec.revision);
        // A new rollout waits its turn under the concurrency limits; one
        // whose candidate is in place is in flight already.
        if adopted.is_none() && self.d.queued(&spec.revision) {
            return Flow::Wait;
        }
        if let Some(c) = adopted {
            if let Some(tg) = &c.target_group {
                rollout.target_group = tg.clone();
            }
            let share = self.candidate_share(&rollout);
            if c.status == TaskSetStatus::Primary && share == 100 {
                phase = Phase::Baking;
                rollout.step = self.steps(&rollout).len() as u32;
            } else if share > 0 {
                phase = Phase::Shifting;
                rollout.step = self
                    .steps(&rollout)
                    .iter()
                    .position(|s| matches!(s, Step::SetWeight(w) if *w as u32 >= share))
                    .unwrap_or(0) as u32;
            }
        }
        let share = self.candidate_share(&rollout);
        self.d.status.candidate = adopted.map(task_set_ref);
        if let Some(rev) = primary.and_then(TaskSet::revision) {
            self.d.status.stable_revision = Some(rev);
        }
        match adopted {
            // Not a new rollout, and the phase it was in is unknown: say
            // that it was taken over, and where.
            Some(c) => self.open(
                rollout,
                Opening::Adopted {
                    phase,
                    reason: format!(
                        "its task set {} already exists (found by its externalId) with {share}% of production traffic",
                        c.name()
                    ),
                },
            ),
            None => {
                self.open(
                    rollout,
                    Opening::Started {
                        phase,
                        reason: format!(
                            "{why}: rolling out revision {} ({}) with {}",
                            spec.revision, spec.version, spec.strategy
                        ),
                    },
                );
                // The candidate's client token names this rollout's start,
                // so the rollout is stored before the task set is asked
                // for: every later attempt at the create, after a lost
                // reply or by another replica, then sends the same token.
                // At once after that write: the start waits for nothing.
                self.d.say(format!(
                    "starting revision {}: the candidate task set is created next",
                    spec.revision
                ));
                self.d.wake(Wake::At(self.now()));
                return Flow::Wait;
            }
        }
        Flow::Next
    }

    /// The status was lost (a whole-item put replaced it) while this
    /// revision's rollout baked: the primary is the candidate cutover made
    /// for it, with all production traffic, and the task set it replaced is
    /// still live. Calling that steady would remove the old task set before
    /// the bake ends, and with it the rollback that is one weight change;
    /// take the rollout over in `Baking` instead, the bake counted from now.
    fn adopt_bake(&mut self, primary: &'a TaskSet) -> Option<Flow> {
        let spec = self.spec;
        if primary.revision().as_ref() != Some(&spec.revision)
            || self.d.status.stable_revision.as_ref() == Some(&spec.revision)
        {
            return None;
        }
        let target_group = primary.target_group.clone()?;
        let previous = live(self.svc)
            .filter(|t| {
                t.status != TaskSetStatus::Primary
                    && t.target_group
                        .as_ref()
                        .is_some_and(|tg| *tg != target_group)
                    && t.older_than(primary)
            })
            .max_by_key(|t| t.created_at)?;
        let now = self.now();
        let id = RolloutId {
            revision: spec.revision.clone(),
            // The attempt number went with the status.
            attempt: 1,
        };
        let mut rollout = Rollout::new(id, Some(task_set_ref(previous)), target_group, now);
        // Less than all of production on the primary is a bake that gave
        // the share back (its targets were all replaced, or failing) or a
        // rollback under way: the bake's gates judge it again, and traffic
        // returns to it only once it is at its bar. Treating the older task
        // set as a leftover instead would move production onto the primary
        // unread.
        let share = self.candidate_share(&rollout);
        rollout.step = self.steps(&rollout).len() as u32;
        self.d.status.candidate = Some(task_set_ref(primary));
        if let Some(rev) = previous.revision() {
            self.d.status.stable_revision = Some(rev);
        }
        self.open(
            rollout,
            Opening::Adopted {
                phase: Phase::Baking,
                reason: format!(
                    "its task set {} is primary with {share}% of production traffic and the older task set {} is still there: baking again before it is removed",
                    primary.name(),
                    previous.name()
                ),
            },
        );
        Some(Flow::Next)
    }

    /// The status was lost (a whole-item put replaced it) while the
    /// primary's rollout baked, and the record asks again for the version
    /// that rollout started from, whose task set is still there. That is
    /// the primary's rollout superseded, as it would be with the status
    /// kept: all traffic returns to the older task set in one weight change,
    /// without replaying the strategy. "Older" is ECS's `createdAt`
    /// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_TaskSet.html):
    /// a candidate created after the primary, whose status was lost before
    /// it had traffic, is new and still goes through every step.
    fn adopt_superseded(&mut self) -> Option<Flow> {
        let spec = self.spec;
        let primary = self.svc.primary()?;
        let revision = primary.revision().filter(|r| *r != spec.revision)?;
        let target_group = primary.target_group.clone()?;
        let previous = live(self.svc).find(|t| {
            t.status != TaskSetStatus::Primary
                && t.target_group.is_some()
                && t.older_than(primary)
                && runs(spec, t)
        })?;
        let now = self.now();
        // The attempt number went with the status; the revision is what
        // identifies the rollout.
        let id = RolloutId {
            revision,
            attempt: 1,
        };
        let rollout = Rollout {
            rollback: Some(RollbackReason::Superseded {
                by: spec.revision.clone(),
            }),
            ..Rollout::new(id, Some(task_set_ref(previous)), target_group, now)
        };
        let share = self.candidate_share(&rollout);
        self.d.status.candidate = Some(task_set_ref(primary));
        self.open(
            rollout,
            Opening::Adopted {
                phase: Phase::RollingBack,
                reason: format!(
                    "its task set {} serves {share}% of production traffic, and the record asks again for revision {} of the older task set {}: switching back",
                    primary.name(),
                    spec.revision,
                    previous.name()
                ),
            },
        );
        Some(Flow::Next)
    }

    /// The rollout's steps; a first release has nothing to shift from.
    pub(crate) fn steps(&self, r: &Rollout) -> Vec<Step> {
        if r.from.is_none() {
            vec![Step::SetWeight(100)]
        } else {
            self.spec.steps()
        }
    }

    // ---- in a rollout ----------------------------------------------------

    pub(crate) fn in_rollout(&mut self, r: Rollout) -> Flow {
        let spec = self.spec;
        self.record_weights(&r);
        if r.rollback.is_some() {
            self.rollback_overdue(&r);
            return self.roll_back(r);
        }
        let phase = self.d.status.phase();
        if let Some(reason) = interruption(spec, &r, phase) {
            return self.begin_rollback(reason);
        }
        if phase != Phase::Finalizing
            && let Some(stop) = Stop::of(spec, self.d.halt.as_ref())
        {
            if let Some(flow) = self.rescue_while_held(&r, phase) {
                return flow;
            }
            return self.paused(r, stop);
        }
        let r = match self.follow_strategy(r, phase) {
            Ok(r) => r,
            Err(flow) => return flow,
        };
        let phase = self.d.status.phase();
        if let Some(flow) = self.hands_on(&r, phase) {
            return flow;
        }
        match phase {
            Phase::Paused => {
                let resume = self.rollout().stage.phase();
                let now = self.now();
                let rr = self.rollout();
                rr.step_started_at = now;
                rr.progress_at = now;
                self.d.transition(resume, "resumed");
                Flow::Next
            }
            Phase::Provisioning => self.provision(r),
            Phase::Testing => self.test(r),
            Phase::Shifting | Phase::AwaitingPromotion => self.shift(r),
            Phase::Baking => self.bake(r),
            Phase::Finalizing => self.finalize(r),
            // A rollout with a phase that does not belong to one (an old or
            // hand-edited status): start its phases again from the world.
            _ => {
                self.d.status.rollout = None;
                self.between_rollouts()
            }
        }
    }

    /// A strategy changed mid-rollout (its steps differ from those the
    /// rollout followed so far) goes on from the weight the candidate has:
    /// past every step that sets a weight at or below it, so the next weight
    /// is the first step above it, never lower and never straight to 100%
    /// when the new strategy has a step in between. Waits while production
    /// has not been read.
    fn follow_strategy(&mut self, r: Rollout, phase: Phase) -> Result<Rollout, Flow> {
        let steps = self.steps(&r);
        let digest = steps_digest(&steps);
        if r.steps.as_ref() == Some(&digest) {
            return Ok(r);
        }
        // A rollout from before steps were remembered adopts them as they
        // are; before shifting the candidate has no weight to go on from,
        // and once baking there is no step left to take.
        if r.steps.is_some() && matches!(phase, Phase::Shifting | Phase::AwaitingPromotion) {
            let Some(seen) = &self.observed.production else {
                self.d.wake(Wake::Poll);
                return Err(Flow::Wait);
            };
            let share = seen.percent(&r.target_group);
            let step = steps
                .iter()
                .rposition(|s| matches!(s, Step::SetWeight(w) if u32::from(*w) <= share))
                .map_or(0, |i| i as u32 + 1);
            let now = self.now();
            let rr = self.rollout();
            rr.step = step;
            rr.step_started_at = now;
            rr.progress_at = now;
            rr.went_on_from = Some(share);
            let why = format!(
                "the strategy changed: going on from {share}% on the candidate at step {step}"
            );
            if phase == Phase::AwaitingPromotion {
                self.d.transition(Phase::Shifting, why.clone());
            }
            self.d.say(why);
        }
        self.rollout().steps = Some(digest);
        Ok(self.rollout().clone())
    }

    fn paused(&mut self, r: Rollout, stop: Stop) -> Flow {
        // Pausing is how someone says they saw weights changed by hand. It
        // is taken whatever the gates say: a candidate waited out for churn
        // just then would otherwise drop it, and once `paused` is cleared
        // the rollout would stay paused by hand for good (seed 192).
        // Only the record's `paused` says that someone saw it, halted or
        // not: a person acknowledging a move by hand during a fleet-wide
        // halt would otherwise leave the rollout paused by hand for good
        // once the halt is lifted (simulation seed 5).
        if self.spec.paused
            && let Some(change) = self.rollout().hand_change.as_mut()
        {
            change.acknowledged = true;
        }
        if let Err(flow) = self.gates(&r) {
            return flow;
        }
        self.d.transition(Phase::Paused, stop.why());
        self.d.say(format!(
            "{} at step {} with {}% on the candidate; {}",
            stop.opening(),
            r.step,
            self.candidate_share(&r),
            stop.lift()
        ));
        // While the candidate serves traffic its health is still watched.
        let w = if self.candidate_share(&r) > 0 {
            Wake::Poll
        } else {
            Wake::Idle
        };
        self.d.wake(w);
        Flow::Wait
    }

    /// Rolls back when the deadline passed without progress; otherwise waits.
    pub(crate) fn wait_for_progress(&mut self, r: &Rollout, waiting_for: String) -> Flow {
        if self.now() >= r.progress_at + self.spec.progress_deadline {
            return self.begin_rollback(RollbackReason::DeadlineExceeded {
                phase: self.d.status.phase(),
                detail: waiting_for,
            });
        }
        self.d.say(waiting_for);
        self.d.wake(Wake::Poll);
        Flow::Wait
    }

    /// Waits on gates after a timed hold ended: the progress deadline counts
    /// from the end of the hold, not from its start.
    fn wait_after(&mut self, held_until: crate::time::Timestamp, why: String) -> Flow {
        if self.now() >= held_until + self.spec.progress_deadline {
            return self.begin_rollback(RollbackReason::DeadlineExceeded {
                phase: self.d.status.phase(),
                detail: why,
            });
        }
        self.d.say(why);
        self.d.wake(Wake::Poll);
        Flow::Wait
    }

    fn progress(&mut self) {
        let now = self.now();
        let r = self.rollout();
        r.progress_at = now;
        r.gate_failures = 0;
    }

    fn provision(&mut self, r: Rollout) -> Flow {
        let spec = self.spec;
        let Some(c) = self.candidate(&r.id.revision) else {
            if let Some(flow) = self.hook(&r, HookPoint::BeforeInstall) {
                return flow;
            }
            self.d
                .commands
                .push(Command::CreateTaskSet(Box::new(CreateTaskSet {
                    version: spec.version.clone(),
                    external_id: r.id.revision.external_id(),
                    client_token: client_token(&r),
                    target_group: r.target_group.clone(),
                    container: spec.traffic.container.clone(),
                    container_port: spec.traffic.container_port,
                    scale_percent: 100.0,
                    template: r.from.as_ref().map(|f| f.arn.clone()),
                    placement: spec.placement.clone(),
                })));
            return self.wait_for_progress(
                &r,
                format!(
                    "creating the candidate task set for revision {}",
                    r.id.revision
                ),
            );
        };
        self.d.status.candidate = Some(task_set_ref(c));
        if let Some(flow) = self.task_failures(&r) {
            return flow;
        }
        let targets = self.observed.targets.get(&r.target_group);
        match readiness::ready(c, self.svc, targets, &spec.gates.target_health) {
            Ok(()) => {
                if let Some(flow) = self.hook(&r, HookPoint::AfterInstall) {
                    return flow;
                }
                self.progress();
                let now = self.now();
                self.rollout().step_started_at = now;
                let next = if spec.traffic.test.is_some() && r.from.is_some() {
                    Phase::Testing
                } else {
                    Phase::Shifting
                };
                self.d.transition(next, "candidate is ready");
                Flow::Next
            }
            Err(why) => self.wait_for_progress(&r, format!("waiting for the candidate: {why}")),
        }
    }

    fn test(&mut self, r: Rollout) -> Flow {
        let spec = self.spec;
        let (Some(route), Some(from)) = (spec.traffic.test.clone(), r.from.clone()) else {
            self.d.transition(Phase::Shifting, "no test route");
            return Flow::Next;
        };
        if self.candidate(&r.id.revision).is_none() {
            self.d
                .transition(Phase::Provisioning, "the candidate task set disappeared");
            return Flow::Next;
        }
        let want = Weights::pair(&from.target_group, 0, &r.target_group, 100);
        match &self.observed.test {
            None => {
                self.d.wake(Wake::Poll);
                Flow::Wait
            }
            Some(w) if !w.same_shares(&want) => {
                self.d.commands.push(Command::SetWeights {
                    route,
                    weights: want,
                });
                self.wait_for_progress(&r, "sending test traffic to the candidate".into())
            }
            Some(_) => {
                match self.gates(&r) {
                    Err(flow) => return flow,
                    Ok(Some(why)) => return self.wait_for_progress(&r, why),
                    Ok(None) => {}
                }
                if let Some(flow) = self.hook(&r, HookPoint::AfterTestTraffic) {
                    return flow;
                }
                self.progress();
                let now = self.now();
                let rr = self.rollout();
                rr.step = 0;
                rr.step_started_at = now;
                self.d.transition(
                    Phase::Shifting,
                    "the candidate passed its checks on the test route",
                );
                Flow::Next
            }
        }
    }

    /// Marks the candidate short of its bar at `now`, and returns since when
    /// it counts as short: the start of the shortfall, moved later by the
    /// time it spent back at the bar in between. The grace is spent only by
    /// time short, so two routine replacements a minute apart do not add up
    /// to a failure, while a crash loop, short most of the time, still does.
    fn short_again(&mut self, now: crate::time::Timestamp) -> crate::time::Timestamp {
        let watch = &mut self.rollout().health;
        let since = match (watch.short_since, watch.back_since.take()) {
            (Some(since), Some(back)) => since + now.since(back),
            (Some(since), None) => since,
            (None, _) => now,
        };
        watch.short_since = Some(since);
        since
    }

    /// The target health gate. `Some(flow)` when the rollout must stop here.
    /// A shortfall that no failing target explains (a task being replaced,
    /// auto scaling adding tasks, targets still `initial`) is waited out for
    /// the gate's grace; past the grace, or with targets that fail their
    /// checks, each look is a failing check. Either way, a share of
    /// production the candidate cannot serve at all goes back meanwhile
    /// (`retreat`).
    pub(crate) fn health_gate(&mut self, r: &Rollout) -> Option<Flow> {
        let c = self.candidate(&r.id.revision)?;
        let gate = self.spec.gates.target_health.clone();
        let targets = self.observed.targets.get(&r.target_group);
        let now = self.now();
        let why = match readiness::health(c, self.svc, targets, &gate) {
            Health::Enough => {
                self.gate_evaluated(true);
                let watch = &mut self.rollout().health;
                if watch.short_since.is_some() {
                    let back = *watch.back_since.get_or_insert(now);
                    if now >= back + gate.grace {
                        watch.short_since = None;
                        watch.back_since = None;
                    }
                }
                // Failing checks count until the shortfall is over: a
                // version whose tasks crash and come back between two looks
                // still reaches the threshold.
                if self.rollout().health.short_since.is_none() {
                    self.rollout().gate_failures = 0;
                }
                return None;
            }
            Health::NotRead => {
                self.d.say("target health not read yet");
                self.d.wake(Wake::Poll);
                return Some(Flow::Wait);
            }
            Health::Replacing(why) => {
                let since = self.short_again(now);
                let until = since + gate.grace;
                if now < until {
                    // Neither a pass nor a failure: no step is taken, and
                    // failing checks counted so far still count. A share
                    // the candidate cannot serve goes back meanwhile.
                    self.d.say(format!(
                        "target health: {why}; waiting for replacement tasks to pass their checks (grace until {until})"
                    ));
                    self.retreat(r);
                    self.d.wake(Wake::Poll);
                    return Some(Flow::Wait);
                }
                format!(
                    "{why}, short for longer than the grace of {}",
                    crate::time::format_duration(gate.grace)
                )
            }
            Health::Failing(why) => {
                self.short_again(now);
                why
            }
        };
        self.gate_evaluated(false);
        let failures = r.gate_failures + 1;
        self.rollout().gate_failures = failures;
        if failures >= gate.failure_threshold {
            return Some(self.begin_rollback(RollbackReason::GateFailed {
                gate: TARGET_HEALTH.into(),
                detail: why,
            }));
        }
        self.d.say(format!(
            "target health check failed ({failures}/{}): {why}",
            gate.failure_threshold
        ));
        self.retreat(r);
        self.d.wake(Wake::Poll);
        Some(Flow::Wait)
    }

    /// One decision may pass the gate several times on the same snapshot;
    /// that is still one look at the candidate.
    fn gate_evaluated(&mut self, passed: bool) {
        let seen = self.d.events.iter().any(|e| {
            matches!(
                e,
                Event::GateEvaluated {
                    gate: TARGET_HEALTH,
                    ..
                }
            )
        });
        if !seen {
            self.d.events.push(Event::GateEvaluated {
                gate: TARGET_HEALTH,
                passed,
            });
        }
    }

    fn advance(&mut self, step: u32) {
        let now = self.now();
        let r = self.rollout();
        r.step = step + 1;
        r.step_started_at = now;
        r.progress_at = now;
    }

    fn shift(&mut self, r: Rollout) -> Flow {
        let spec = self.spec;
        let Some(c) = self.candidate(&r.id.revision) else {
            return self.begin_rollback(RollbackReason::GateFailed {
                gate: TARGET_HEALTH.into(),
                detail: "the candidate task set disappeared".into(),
            });
        };
        let waiting = match self.gates(&r) {
            Ok(waiting) => waiting,
            Err(flow) => return flow,
        };
        let steps = self.steps(&r);
        let Some(step) = steps.get(r.step as usize).cloned() else {
            if c.status != TaskSetStatus::Primary {
                self.make_primary(c);
            }
            self.progress();
            let now = self.now();
            self.rollout().step_started_at = now;
            self.d
                .transition(Phase::Baking, "all production traffic is on the candidate");
            self.d.say("making the candidate primary");
            self.d.wake(Wake::Poll);
            return Flow::Wait;
        };
        if let Some(flow) = self.resume_share(&r, &steps) {
            return flow;
        }
        match step {
            Step::SetWeight(w) => {
                let want = self.production_weights(&r, w as u32);
                match &self.observed.production {
                    None => {
                        self.d.wake(Wake::Poll);
                        Flow::Wait
                    }
                    Some(seen) if seen.same_shares(&want) => {
                        self.d.status.weights = Some((100 - w as u32, w as u32));
                        if let Some(why) = waiting {
                            return self.wait_for_progress(&r, why);
                        }
                        self.d.events.push(Event::StepCompleted {
                            rollout: r.id.clone(),
                            step: r.step,
                            weight: w as u32,
                        });
                        self.advance(r.step);
                        Flow::Next
                    }
                    Some(seen) => {
                        if let Some(tg) = self.unserved_gain(seen, &want) {
                            return self.wait_for_progress(
                                &r,
                                format!(
                                    "holding production at {seen}: step {} would give {} more weight while it has no healthy target",
                                    r.step,
                                    short_arn(&tg)
                                ),
                            );
                        }
                        if self.candidate_share(&r) == 0
                            && let Some(flow) = self.hook(&r, HookPoint::BeforeProductionTraffic)
                        {
                            return flow;
                        }
                        self.set_production(want);
                        self.wait_for_progress(
                            &r,
                            format!("shifting {w}% of production traffic to the candidate"),
                        )
                    }
                }
            }
            Step::Pause(d) => {
                let until = r.step_started_at + d;
                if self.now() >= until {
                    if let Some(why) = waiting {
                        return self.wait_after(until, why);
                    }
                    self.advance(r.step);
                    return Flow::Next;
                }
                self.d.say(format!(
                    "holding {}% on the candidate until {until}",
                    self.candidate_share(&r)
                ));
                self.d.wake(Wake::At(until));
                self.d.wake(Wake::Poll);
                Flow::Wait
            }
            Step::PauseUntilPromoted => {
                if promoted(spec, &r) {
                    self.advance(r.step);
                    self.d.transition(Phase::Shifting, "promoted");
                    return Flow::Next;
                }
                self.d.transition(
                    Phase::AwaitingPromotion,
                    format!("step {} waits for promotion", r.step),
                );
                self.d.say(format!(
                    "waiting for promotion with {}% on the candidate: run `cutover promote {}`",
                    self.candidate_share(&r),
                    spec.key
                ));
                self.d.wake(Wake::Poll);
                Flow::Wait
            }
        }
    }

    fn bake(&mut self, r: Rollout) -> Flow {
        let spec = self.spec;
        let Some(c) = self.candidate(&r.id.revision) else {
            return self.begin_rollback(RollbackReason::GateFailed {
                gate: TARGET_HEALTH.into(),
                detail: "the candidate task set disappeared".into(),
            });
        };
        let waiting = match self.gates(&r) {
            Ok(waiting) => waiting,
            Err(flow) => return flow,
        };
        let want = self.production_weights(&r, 100);
        if let Some(seen) = &self.observed.production
            && !seen.same_shares(&want)
        {
            self.set_production(want);
            return self.wait_for_progress(&r, "restoring full traffic to the candidate".into());
        }
        if c.status != TaskSetStatus::Primary {
            self.make_primary(c);
            return self.wait_for_progress(&r, "making the candidate primary".into());
        }
        let bake = if r.from.is_some() {
            spec.bake
        } else {
            Default::default()
        };
        if let Some(flow) = self.hook(&r, HookPoint::AfterProductionTraffic) {
            return flow;
        }
        let until = r.step_started_at + bake;
        if self.now() >= until {
            if let Some(why) = waiting {
                return self.wait_after(until, why);
            }
            self.progress();
            self.d.transition(Phase::Finalizing, "bake time is over");
            return Flow::Next;
        }
        self.d.say(format!(
            "baking until {until}; the old task set stays for instant rollback"
        ));
        self.d.wake(Wake::Poll);
        Flow::Wait
    }

    fn finalize(&mut self, r: Rollout) -> Flow {
        let old = r
            .from
            .as_ref()
            .and_then(|f| live(self.svc).find(|t| t.arn == f.arn));
        if let Some(old) = old {
            // The old task set is the way back, so it is removed only while
            // the candidate still serves: one that fails as its bake ends
            // rolls back, or gives its share back, as it would a moment
            // before.
            if let Some(flow) = self.candidate_gates(&r) {
                return flow;
            }
            let want = self.production_weights(&r, 100);
            match self.production_settled(&want) {
                Some(true) => {
                    let leaving = old.target_group.clone().unwrap_or_default();
                    if !self.sticky_clients_held(&leaving) {
                        self.delete(old);
                        self.d
                            .say(format!("removing the old task set {}", old.name()));
                    }
                }
                _ => {
                    self.d
                        .say("waiting for the old target group to reach weight 0");
                    self.set_production(want);
                }
            }
            self.d.wake(Wake::Poll);
            return Flow::Wait;
        }
        if self.restoring_stickiness() {
            return Flow::Wait;
        }
        let candidate = self.candidate(&r.id.revision).map(task_set_ref);
        self.d.finish_rollout(&r, Outcome::Promoted);
        self.d.status.active = candidate;
        self.d.status.stable_revision = Some(r.id.revision.clone());
        self.d.status.weights = Some((100, 0));
        self.d.transition_of(
            Phase::Steady,
            format!(
                "revision {} promoted; its target group is now the active one",
                r.id.revision
            ),
            Some(r.id.revision.clone()),
        );
        Flow::Next
    }
}

/// cutover's own driver: task sets on an EXTERNAL service, weighed on the
/// load balancer by cutover.
impl<'a> Driver<'a> for Machine<'a, '_> {
    fn reads(spec: &Spec, svc: &EcsService, status: &Status, now: Timestamp) -> Reads {
        super::task_set_reads::task_set_reads(spec, svc, status, now)
    }

    fn spec(&self) -> &'a Spec {
        self.spec
    }

    fn observed(&self) -> &'a Observed {
        self.observed
    }

    fn draft(&mut self) -> &mut Draft {
        self.d
    }

    fn between(&mut self) -> Flow {
        self.between_rollouts()
    }

    fn step(&mut self, r: Rollout) -> Flow {
        self.in_rollout(r)
    }

    fn watch_held(&mut self, why: &str) -> Flow {
        self.watch_candidate(why)
    }

    fn after(&mut self) {
        self.remember_watch();
    }

    fn begin_rollback(&mut self, reason: RollbackReason) -> Flow {
        self.d.say(format!("rolling back: {reason}"));
        let text = reason.to_string();
        self.rollout().rollback = Some(reason);
        // A weight change of an earlier pass whose status write was lost
        // (throttled, a restart) is on no status, and may still be on its
        // way to the load balancer while production looks right. Mark what
        // was written as unknown, so the rollback writes its own weights,
        // and removes the candidate only once a stored status holds them.
        self.d.status.production_written = Some(Weights::default());
        self.d.transition(Phase::RollingBack, text);
        Flow::Next
    }
}

/// Names a list of steps: equal lists, equal names.
fn steps_digest(steps: &[Step]) -> String {
    let value = serde_json::to_value(steps).unwrap_or_default();
    Revision::digest(&value).as_str().to_string()
}
