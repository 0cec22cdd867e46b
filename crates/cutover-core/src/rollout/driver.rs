//! One loop for every driver. A driver says what to read before a decision
//! and takes one step of its state machine over the shared draft; the loop
//! around it is written once: the bound on the transitions one decision
//! walks through, the way back from a held (invalid) rollout, the gate
//! assessment, how a rollout opens (started or adopted), how it ends (the
//! outcome a rollback reason maps to) and what a failed revision does until
//! it is retried. Adding a driver means a module that implements [`Driver`],
//! not a copy of this loop.

use super::command::{Event, Outcome, Wake};
use super::draft::Draft;
use super::gate::{Assessment, Probe, Verdict, assess};
use super::observed::{EcsService, Observed, TaskSet};
use super::reading::Reads;
use super::spec::{Spec, Version};
use super::status::{Failure, Phase, RollbackReason, Rollout, Status};
use crate::time::Timestamp;

/// The most phase changes one decision walks through, for every driver.
pub(crate) const MAX_TRANSITIONS: usize = 12;

/// What one step of a driver leaves the loop to do.
pub(crate) enum Flow {
    /// Look at the same snapshot again, in the phase the step moved to.
    Next,
    /// Done for this decision: the draft says what to do and when to look again.
    Wait,
}

/// What a decision may do with the service.
pub(crate) enum Mandate<'w> {
    /// The record is valid and wired as the rollout in flight is: go on with
    /// it, settle, or start the next rollout.
    Record,
    /// The record rewired the rollout in flight (see
    /// `decide::under_rollout`): drive that rollout to its end, under the
    /// wiring it shifted traffic with, and start nothing.
    RolloutOut,
    /// The record is invalid for this reason: a rollout in flight is watched
    /// under the last valid record, and nothing starts.
    Watch(&'w str),
}

/// How a rollout enters the status.
pub(crate) enum Opening {
    /// A rollout that starts now, in `phase`.
    Started { phase: Phase, reason: String },
    /// A rollout found in flight on the service after its status was lost:
    /// not a new rollout, and the phase it was in before is unknown.
    Adopted { phase: Phase, reason: String },
}

/// A deployment mechanism cutover drives: its reads, and one step of its
/// state machine over [`Draft`]. [`Driver::drive`] is the loop all share.
pub(crate) trait Driver<'a> {
    /// What to read before a decision about `svc` under `spec`.
    fn reads(spec: &Spec, svc: &EcsService, status: &Status, now: Timestamp) -> Reads
    where
        Self: Sized;

    fn spec(&self) -> &'a Spec;
    fn observed(&self) -> &'a Observed;
    fn draft(&mut self) -> &mut Draft;

    /// No rollout is in flight: say the revision serves, keep a failed one
    /// failed, or start (or adopt) a rollout.
    fn between(&mut self) -> Flow;

    /// One step of the rollout in flight.
    fn step(&mut self, r: Rollout) -> Flow;

    /// Starts rolling back the rollout in flight, the driver's way.
    fn begin_rollback(&mut self, reason: RollbackReason) -> Flow;

    /// A step of a rollout whose record turned invalid, neither rolling
    /// back nor finishing. Unless a driver watches it, it is held where it is.
    fn watch_held(&mut self, why: &str) -> Flow {
        self.draft().hold(why.to_string());
        Flow::Wait
    }

    /// After the loop, whatever it ended with.
    fn after(&mut self) {}

    /// The loop: at most [`MAX_TRANSITIONS`] steps over one snapshot.
    fn drive(&mut self, mandate: Mandate<'_>) {
        if !matches!(mandate, Mandate::Watch(_)) {
            self.leave_invalid();
        }
        let mut done = false;
        for _ in 0..MAX_TRANSITIONS {
            let rollout = self.draft().status.rollout.clone();
            let flow = match (rollout, &mandate) {
                (Some(r), Mandate::Watch(why))
                    if r.rollback.is_none() && self.draft().status.phase() != Phase::Finalizing =>
                {
                    self.watch_held(why)
                }
                (Some(r), _) => self.step(r),
                (None, Mandate::Record) => self.between(),
                (None, Mandate::RolloutOut) => {
                    // The rollout is over: the next starts at the next pass,
                    // under the record's own wiring.
                    self.draft().wake(Wake::Poll);
                    Flow::Wait
                }
                (None, Mandate::Watch(why)) => {
                    // The rollout ended (rolled back or finished): nothing
                    // is started under a record that is not valid.
                    self.draft().hold(why.to_string());
                    Flow::Wait
                }
            };
            if let Flow::Wait = flow {
                done = true;
                break;
            }
        }
        if !done {
            self.draft().wake(Wake::Poll);
        }
        if !matches!(mandate, Mandate::Watch(_)) {
            self.after();
        }
    }

    /// The record and the service are valid again: a held rollout goes on
    /// in the phase it was held in.
    fn leave_invalid(&mut self) {
        let d = self.draft();
        if d.status.phase() == Phase::Invalid {
            // A held rollout's stage; without one, steady until the
            // driver looks.
            let resume = match d.status.working_phase() {
                Phase::Invalid => Phase::Steady,
                stage => stage,
            };
            d.transition(resume, "the record and the service are valid again");
        }
    }

    /// The analysis gates (Prometheus, HTTP, CloudWatch): `Ok(None)` when
    /// all passed since the current step began, `Ok(Some(why))` while some
    /// wait for a passing reading, `Err` once one failed and the rollback
    /// has begun.
    fn analysis_gates(&mut self, r: &Rollout) -> Result<Option<String>, Flow> {
        let probes = self.spec().gates.probes();
        if probes.is_empty() {
            return Ok(None);
        }
        let observed = self.observed();
        let mut state = r.gates.clone();
        let assessment = assess(&probes, &observed.gates, &mut state, r.step_started_at);
        let d = self.draft();
        for probe in &probes {
            if let Some(reading) = observed.gates.get(probe.name())
                && r.gates.get(probe.name()).and_then(|g| g.last_at) != Some(reading.at)
            {
                d.events.push(Event::GateEvaluated {
                    gate: probe.kind(),
                    passed: reading.verdict == Verdict::Pass,
                });
            }
        }
        if let Some(rr) = d.status.rollout.as_mut() {
            rr.gates = state;
        }
        match assessment {
            Assessment::Pass => Ok(None),
            Assessment::Wait(why) => {
                d.wake(Wake::Poll);
                Ok(Some(why))
            }
            Assessment::Fail { gate, detail } => {
                Err(self.begin_rollback(RollbackReason::GateFailed { gate, detail }))
            }
        }
    }

    /// Puts `rollout` in flight. The task set it starts from serves
    /// meanwhile: named active from the start, a first release included.
    fn open(&mut self, rollout: Rollout, opening: Opening) {
        let d = self.draft();
        let id = rollout.id.clone();
        d.shown = Some(d.status.phase());
        d.status.active = rollout.from.clone();
        d.status.rollout = Some(rollout);
        match opening {
            Opening::Started { phase, reason } => {
                d.events.push(Event::RolloutStarted { rollout: id });
                d.transition(phase, reason);
            }
            Opening::Adopted { phase, reason } => d.adopt(phase, reason),
        }
    }

    /// Nothing more this decision: looks again at the next poll.
    fn wait(&mut self, message: String) -> Flow {
        let d = self.draft();
        d.say(message);
        d.wake(Wake::Poll);
        Flow::Wait
    }

    /// Ends the rollout. `why` fails the revision (it is not deployed again
    /// until retried); `None` ends it quietly, as a supersede does.
    fn end_rollout(&mut self, r: Rollout, outcome: Outcome, why: Option<String>) -> Flow {
        let d = self.draft();
        d.finish_rollout(&r, outcome);
        let fails = why.is_some() && outcome != Outcome::Superseded;
        match why.filter(|_| fails) {
            Some(why) => {
                d.fail_revision(&r, why.clone());
                d.transition_of(Phase::Failed, why.clone(), Some(r.id.revision.clone()));
                d.say(format!(
                    "revision {} failed: {why}. Write a new version, or retry",
                    r.id.revision
                ));
                d.wake(Wake::Idle);
                Flow::Wait
            }
            None => {
                d.transition_of(
                    Phase::Steady,
                    format!("ended rollout of revision {}", r.id.revision),
                    Some(r.id.revision.clone()),
                );
                Flow::Next
            }
        }
    }

    /// The deployment `what` of `whose` (CodeDeploy's, ECS's) succeeded:
    /// the rollout's revision serves. A rollback that fails the revision and
    /// came too late still fails it, though the revision serves.
    fn promoted_by(&mut self, r: Rollout, whose: &str, what: &str) -> Flow {
        if let Some(reason) = &r.rollback
            && reason.fails_revision()
        {
            let why = format!(
                "{reason}, but {what} succeeded before it could be stopped: revision {} serves; write the previous version to go back",
                r.id.revision
            );
            self.draft().status.stable_revision = Some(r.id.revision.clone());
            return self.end_rollout(r, Outcome::Failed, Some(why));
        }
        let d = self.draft();
        d.finish_rollout(&r, Outcome::Promoted);
        d.status.stable_revision = Some(r.id.revision.clone());
        d.status.weights = Some((100, 0));
        d.transition_of(
            Phase::Steady,
            format!("revision {} deployed by {whose} {what}", r.id.revision),
            Some(r.id.revision.clone()),
        );
        d.say(format!(
            "steady on revision {} ({what} succeeded)",
            r.id.revision
        ));
        d.wake(Wake::Idle);
        // The service's snapshot was taken before the deployment's, so the
        // next look starts from the stored status, not from this snapshot.
        Flow::Wait
    }

    /// The revision failed and no retry asks for it again: it stays failed.
    fn stay_failed(&mut self, f: &Failure) -> Flow {
        let revision = self.spec().revision.clone();
        let d = self.draft();
        d.transition_of(
            Phase::Failed,
            f.reason.clone(),
            Some(f.rollout.revision.clone()),
        );
        d.say(format!(
            "revision {revision} failed: {}; write a new version, or retry",
            f.reason
        ));
        d.wake(Wake::Idle);
        Flow::Wait
    }
}

/// The status's failure of the record's revision, unless a retry asks for
/// that rollout again.
pub(crate) fn failed_revision(spec: &Spec, status: &Status) -> Option<Failure> {
    status.failed.clone().filter(|f| {
        f.rollout.revision == spec.revision && spec.control.retry.as_ref() != Some(&f.rollout)
    })
}

/// The attempt the record's revision starts at next: one more than the
/// attempt that failed it (a retry), else the first.
pub(crate) fn next_attempt(spec: &Spec, status: &Status) -> u32 {
    match &status.failed {
        Some(f) if f.rollout.revision == spec.revision => f.rollout.attempt + 1,
        _ => 1,
    }
}

/// Why the rollout in flight must stop before its next step: the record
/// names a newer revision, or someone aborted it. Once the old side is
/// being removed (`Finalizing`) there is nothing to return to: finishing is
/// the only safe way out, and both wait for it.
pub(crate) fn interruption(spec: &Spec, r: &Rollout, phase: Phase) -> Option<RollbackReason> {
    if r.rollback.is_some() || phase == Phase::Finalizing {
        return None;
    }
    if r.id.revision != spec.revision {
        return Some(RollbackReason::Superseded {
            by: spec.revision.clone(),
        });
    }
    (spec.control.abort.as_ref() == Some(&r.id)).then_some(RollbackReason::Aborted)
}

/// The analysis gates due for a reading: never read in this rollout, or
/// last read at least their interval ago.
pub(crate) fn due_probes(spec: &Spec, r: &Rollout, now: Timestamp) -> Vec<Probe> {
    spec.gates
        .probes()
        .into_iter()
        .filter(|p| {
            r.gates
                .get(p.name())
                .and_then(|g| g.last_at)
                .is_none_or(|t| now >= t + p.interval())
        })
        .collect()
}

/// Whether `task_set` runs what `spec` asks for.
pub(crate) fn runs(spec: &Spec, task_set: &TaskSet) -> bool {
    match task_set.revision() {
        Some(rev) => rev == spec.revision,
        // A task set cutover did not create: adopt it if it runs the very
        // task definition the record names.
        None => match &spec.version {
            Version::TaskDefinition(td) => {
                task_set.task_definition == *td
                    || task_set
                        .task_definition
                        .strip_suffix(td.as_str())
                        .is_some_and(|head| head.ends_with('/'))
            }
            Version::Image { .. } => false,
        },
    }
}

/// Phases in which the candidate has traffic and the gates are watched.
pub(crate) fn gated(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::Testing | Phase::Shifting | Phase::AwaitingPromotion | Phase::Paused | Phase::Baking
    )
}

/// Whether someone promoted the rollout at its current step.
pub(crate) fn promoted(spec: &Spec, r: &Rollout) -> bool {
    spec.control
        .promote
        .as_ref()
        .is_some_and(|p| p.rollout == r.id && p.step == r.step)
}

impl Outcome {
    /// How a rollout that did not finish ended, for every driver: a
    /// supersede and an abort are what they are; otherwise it rolled back
    /// when production went back to what served before, and failed when
    /// there was nothing to go back to (a first release, or the previous
    /// side gone).
    pub(crate) fn of_rollback(reason: Option<&RollbackReason>, returned: bool) -> Outcome {
        match reason {
            Some(RollbackReason::Superseded { .. }) => Outcome::Superseded,
            Some(RollbackReason::Aborted) => Outcome::Aborted,
            _ if returned => Outcome::RolledBack,
            _ => Outcome::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::control::RolloutId;
    use crate::rollout::revision::Revision;

    #[test]
    fn a_rollback_reason_maps_to_one_outcome_for_every_driver() {
        let gate = RollbackReason::GateFailed {
            gate: "smoke".into(),
            detail: "HTTP 500".into(),
        };
        let superseded = RollbackReason::Superseded {
            by: Revision::digest(&serde_json::json!("web:3")),
        };
        for (reason, returned, want) in [
            (Some(&gate), true, Outcome::RolledBack),
            (Some(&gate), false, Outcome::Failed),
            (None, true, Outcome::RolledBack),
            (None, false, Outcome::Failed),
            (Some(&superseded), true, Outcome::Superseded),
            (Some(&superseded), false, Outcome::Superseded),
            (Some(&RollbackReason::Aborted), true, Outcome::Aborted),
            (Some(&RollbackReason::Aborted), false, Outcome::Aborted),
        ] {
            assert_eq!(Outcome::of_rollback(reason, returned), want, "{reason:?}");
        }
    }

    #[test]
    fn a_newer_revision_or_an_abort_interrupts_a_rollout_except_while_it_finalizes() {
        let key = crate::rollout::ServiceKey::new("prod", "web");
        let record = |td: &str| {
            serde_json::json!({
                "service": "prod/web", "task_definition": td, "container": "app",
                "container_port": 80, "production_listener": "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/w/1/80",
                "target_groups": ["arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/b/1",
                                  "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/g/2"],
            })
        };
        let spec = crate::rollout::parse_record(&key, &record("web:2")).expect("valid");
        let now = Timestamp(1);
        let ours = Rollout::new(
            RolloutId {
                revision: spec.revision.clone(),
                attempt: 1,
            },
            None,
            String::new(),
            now,
        );
        assert_eq!(interruption(&spec, &ours, Phase::Shifting), None);

        let newer = crate::rollout::parse_record(&key, &record("web:3")).expect("valid");
        assert!(matches!(
            interruption(&newer, &ours, Phase::Shifting),
            Some(RollbackReason::Superseded { by }) if by == newer.revision
        ));
        assert_eq!(interruption(&newer, &ours, Phase::Finalizing), None);

        let mut aborted = spec.clone();
        aborted.control.abort = Some(ours.id.clone());
        assert_eq!(
            interruption(&aborted, &ours, Phase::Baking),
            Some(RollbackReason::Aborted)
        );
        let rolling_back = Rollout {
            rollback: Some(RollbackReason::Aborted),
            ..ours.clone()
        };
        assert_eq!(
            interruption(&newer, &rolling_back, Phase::RollingBack),
            None
        );
    }
}
