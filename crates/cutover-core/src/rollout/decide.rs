//! `decide`: the pure heart of cutover. Given the record, a snapshot of the
//! live service and the stored status, it returns the commands to run, the
//! status to write and when to look again. It re-checks the observed world at
//! every phase, so a lost or stale status, a restart or a lost response all
//! converge without doing anything twice.

use std::borrow::Cow;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::codedeploy::CodeDeploy;
use super::command::{Command, Decision, Event, Wake};
use super::deployment::DeploymentRead;
use super::driver::{Driver, Mandate};
use super::gate::Probe;
use super::machine::Machine;
use super::observed::{EcsService, Observed, ServiceState, TaskSet, TaskSetStatus};
use super::revision::Revision;
use super::spec::{RecordError, Route, Spec, Version};
use super::status::{Pending, Phase, Status, Transition};
use crate::time::Timestamp;

/// A command already sent is not sent again for this long while AWS makes
/// it visible (load balancer changes are eventually consistent).
pub const RESEND_AFTER: Duration = Duration::from_secs(10);

/// The record as the decision sees it.
#[derive(Clone, Copy, Debug)]
pub enum Desired<'a> {
    Valid(&'a Spec),
    Invalid(&'a RecordError),
}

impl<'a> Desired<'a> {
    /// The record as parsed: valid, or invalid with its problems. Every
    /// caller of the decision (a pass, `cutover plan`, the benchmark's
    /// baseline, the tests) builds it here.
    pub fn of(parsed: &'a Result<Spec, RecordError>) -> Self {
        match parsed {
            Ok(spec) => Desired::Valid(spec),
            Err(problems) => Desired::Invalid(problems),
        }
    }
}

/// What to read from the load balancer before deciding. A steady service
/// needs nothing, so a sweep of a quiet fleet costs no load balancer call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reads {
    pub production: Option<Route>,
    pub test: Option<Route>,
    pub target_health: Vec<String>,
    /// Analysis gates due for a reading.
    pub probes: Vec<Probe>,
    /// The candidate task set whose stopped tasks to count.
    pub failed_tasks: Option<String>,
    /// The CodeDeploy deployment to read, under the CodeDeploy driver.
    pub deployment: Option<DeploymentRead>,
    /// Whether to read the production route's stickiness: only when a task
    /// set it weighed is about to be removed, or stickiness is to be put
    /// back, so a rollout's other passes spend no extra describe call.
    pub stickiness: bool,
}

impl Reads {
    pub fn is_empty(&self) -> bool {
        self.production.is_none()
            && self.test.is_none()
            && self.target_health.is_empty()
            && self.probes.is_empty()
            && self.failed_tasks.is_none()
            && self.deployment.is_none()
            && !self.stickiness
    }
}

/// Task sets that still count: a DRAINING task set is on its way out.
pub(crate) fn live(svc: &EcsService) -> impl Iterator<Item = &TaskSet> {
    svc.task_sets
        .iter()
        .filter(|t| t.status != TaskSetStatus::Draining)
}

/// The live task set that runs `rev`: a rollout's candidate. A draining task
/// set of the same revision (the one an A -> B -> A release left behind) is
/// not it: its stopped tasks and targets belong to the earlier rollout.
pub(crate) fn candidate<'s>(svc: &'s EcsService, rev: &Revision) -> Option<&'s TaskSet> {
    live(svc).find(|t| t.revision().as_ref() == Some(rev))
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

/// The record a rollout in flight is watched under while its record is
/// invalid: what the rollout kept of the last valid one.
/// The record a rollout in flight is driven under: `spec`, with the routes,
/// target groups and container the rollout shifted traffic with. A record
/// that changes them mid-rollout names a new revision, so the rollout is
/// superseded and rolls back; it must give production (and the test route)
/// back to the active task set on the routes it moved, not on the record's
/// new ones, before it removes the candidate. The next rollout takes the new
/// wiring.
pub fn under_rollout<'a>(spec: &'a Spec, status: &Status) -> Cow<'a, Spec> {
    match status.rollout.as_ref().and_then(|r| r.watch.as_ref()) {
        Some(w) if w.traffic != spec.traffic => {
            let mut driven = spec.clone();
            driven.traffic = w.traffic.clone();
            Cow::Owned(driven)
        }
        _ => Cow::Borrowed(spec),
    }
}

fn watched(status: &Status) -> Option<Spec> {
    let r = status.rollout.as_ref()?;
    Some(r.watch.as_ref()?.spec(&r.id.revision))
}

/// What a decision is about, worked out once from the record, the service
/// as observed and the status. [`reads`] and [`decide`] both match on it,
/// so what is read before a decision and what the decision drives cannot
/// disagree.
pub(crate) enum Situation<'a> {
    /// The record is invalid. A rollout in flight on task sets is still
    /// watched, under what it kept of the last valid record (`watched`);
    /// anything else is held where it is.
    Invalid {
        why: String,
        watched: Option<(Spec, &'a EcsService)>,
    },
    /// The service has not been read yet.
    Unobserved,
    /// The service cannot be driven as the record says (missing, its
    /// cluster missing, or another deployment controller): held, with why.
    Held(String),
    /// A CodeDeploy deployment group deploys it.
    CodeDeploy { spec: &'a Spec, svc: &'a EcsService },
    /// cutover's own task sets. `spec` is wired as the rollout in flight
    /// was; `rewired` when that differs from the record, so the rollout is
    /// driven out and the next starts under the record's own wiring.
    TaskSets {
        spec: Cow<'a, Spec>,
        rewired: bool,
        svc: &'a EcsService,
    },
}

impl<'a> Situation<'a> {
    pub(crate) fn of(
        desired: &Desired<'a>,
        service: Option<&'a ServiceState>,
        status: &Status,
    ) -> Situation<'a> {
        let spec = match desired {
            Desired::Invalid(err) => {
                let watched = match (watched(status), service) {
                    (Some(spec), Some(ServiceState::Found(svc))) if svc.is_external() => {
                        Some((spec, svc))
                    }
                    _ => None,
                };
                return Situation::Invalid {
                    why: format!("record is invalid: {err}"),
                    watched,
                };
            }
            Desired::Valid(spec) => *spec,
        };
        match service {
            None => Situation::Unobserved,
            Some(ServiceState::Missing) => Situation::Held(format!(
                "ECS service {} not found in cluster {}: create it with deploymentController EXTERNAL, or fix the record's key",
                spec.key.service, spec.key.cluster
            )),
            // Held like a missing service: looked at again when the record
            // changes or at the next resync, not on every poll.
            Some(ServiceState::ClusterMissing) => Situation::Held(format!(
                "ECS cluster {} not found: create it, or write the record again under the key of an existing cluster (<cluster>/<service>)",
                spec.key.cluster
            )),
            Some(ServiceState::Found(svc)) if spec.driver.codedeploy().is_some() => {
                if svc.deployment_controller == "CODE_DEPLOY" {
                    Situation::CodeDeploy { spec, svc }
                } else {
                    Situation::Held(format!(
                        "ECS service {} uses the {} deployment controller: driver \"codedeploy\" drives services created with deploymentController CODE_DEPLOY (leave `driver` out for EXTERNAL services)",
                        spec.key, svc.deployment_controller
                    ))
                }
            }
            Some(ServiceState::Found(svc)) if !svc.is_external() => Situation::Held(format!(
                "ECS service {} uses the {} deployment controller: cutover drives services created with deploymentController EXTERNAL",
                spec.key, svc.deployment_controller
            )),
            Some(ServiceState::Found(svc)) => {
                let spec = under_rollout(spec, status);
                let rewired = matches!(spec, Cow::Owned(_));
                Situation::TaskSets { spec, rewired, svc }
            }
        }
    }
}

pub fn reads(
    desired: &Desired,
    service: Option<&ServiceState>,
    status: &Status,
    now: Timestamp,
) -> Reads {
    match Situation::of(desired, service, status) {
        Situation::Invalid {
            watched: Some((spec, svc)),
            ..
        } => {
            // Read as the stage the rollout is held in would.
            let mut held = status.clone();
            if let Some(r) = held.rollout.as_mut() {
                r.hold = None;
            }
            Machine::reads(&spec, svc, &held, now)
        }
        Situation::CodeDeploy { spec, svc } => CodeDeploy::reads(spec, svc, status, now),
        Situation::TaskSets { spec, svc, .. } => Machine::reads(&spec, svc, status, now),
        Situation::Invalid { watched: None, .. } | Situation::Unobserved | Situation::Held(_) => {
            Reads::default()
        }
    }
}

/// Phases in which the candidate has traffic and the gates are watched.
pub(crate) fn gated(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::Testing | Phase::Shifting | Phase::AwaitingPromotion | Phase::Paused | Phase::Baking
    )
}

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

    fn finish(mut self) -> Decision {
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
}

fn fingerprint(commands: &[Command]) -> String {
    let bytes = serde_json::to_vec(commands).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..8])
}

pub fn decide(desired: &Desired, observed: &Observed, status: &Status, now: Timestamp) -> Decision {
    let mut draft = Draft {
        status: status.clone(),
        commands: Vec::new(),
        events: Vec::new(),
        wake: Wake::Idle,
        now,
        shown: None,
    };
    draft.status.last_error = None;
    if let Desired::Valid(spec) = desired {
        draft.status.observed_revision = Some(spec.revision.clone());
    }
    match Situation::of(desired, observed.service.as_ref(), status) {
        Situation::Invalid {
            why,
            watched: Some((spec, svc)),
        } => Machine {
            spec: &spec,
            svc,
            observed,
            d: &mut draft,
        }
        .drive(Mandate::Watch(&why)),
        Situation::Invalid { why, watched: None } | Situation::Held(why) => draft.hold(why),
        Situation::Unobserved => {
            draft.say("waiting to observe the ECS service");
            draft.wake(Wake::Poll);
        }
        Situation::CodeDeploy { spec, svc } => {
            if let Some(mut driver) = CodeDeploy::new(spec, svc, observed, &mut draft) {
                driver.drive(Mandate::Record);
            }
        }
        Situation::TaskSets { spec, rewired, svc } => Machine {
            spec: &spec,
            svc,
            observed,
            d: &mut draft,
        }
        .drive(if rewired {
            Mandate::RolloutOut
        } else {
            Mandate::Record
        }),
    }
    draft.finish()
}
