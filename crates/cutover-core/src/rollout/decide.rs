//! `decide`: the pure heart of cutover. Given the record, a snapshot of the
//! live service and the stored status, it returns the commands to run, the
//! status to write and when to look again. It re-checks the observed world at
//! every phase, so a lost or stale status, a restart or a lost response all
//! converge without doing anything twice.

use std::borrow::Cow;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::codedeploy;
use super::command::{Command, Decision, Event, Wake};
use super::deployment::DeploymentRead;
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

/// The most phase changes one decision walks through.
const MAX_TRANSITIONS: usize = 12;

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

pub fn reads(
    desired: &Desired,
    service: Option<&ServiceState>,
    status: &Status,
    now: Timestamp,
) -> Reads {
    if let Desired::Invalid(_) = desired {
        // Read as the phase the rollout is held in would, under the last
        // valid record.
        let Some(spec) = watched(status) else {
            return Reads::default();
        };
        let mut held = status.clone();
        held.phase = super::watch::held_phase(
            status.phase,
            status.rollout.as_ref().and_then(|r| r.resume_to),
        );
        return reads(&Desired::Valid(&spec), service, &held, now);
    }
    let (Desired::Valid(spec), Some(ServiceState::Found(svc))) = (desired, service) else {
        return Reads::default();
    };
    if let Some(target) = spec.driver.codedeploy() {
        return codedeploy::reads(spec, target, svc, status, now);
    }
    if !svc.is_external() {
        return Reads::default();
    }
    let spec = &*under_rollout(spec, status);
    let primary = svc.primary();
    let strays = live(svc).any(|t| t.status != TaskSetStatus::Primary);
    let target_group = match &status.rollout {
        Some(r) => Some(r.target_group.clone()),
        None => {
            let settled = primary.is_some_and(|p| runs(spec, p));
            let failed = status
                .failed
                .as_ref()
                .is_some_and(|f| f.rollout.revision == spec.revision)
                && spec.control.retry.as_ref() != status.failed.as_ref().map(|f| &f.rollout);
            if (settled || failed) && !strays && status.stickiness_off.is_none() {
                return Reads::default();
            }
            match primary.and_then(|p| p.target_group.as_deref()) {
                Some(tg) => spec.traffic.other_target_group(tg).map(str::to_string),
                None => Some(spec.traffic.target_groups[0].clone()),
            }
        }
    };
    // The task set the rollout started from is still live: the way back,
    // and the candidate is watched until Finalizing removes it.
    let from_live = status
        .rollout
        .as_ref()
        .and_then(|r| r.from.as_ref())
        .is_some_and(|f| live(svc).any(|t| t.arn == f.arn));
    let mut probes = Vec::new();
    let mut failed_tasks = None;
    if let Some(r) = &status.rollout
        && r.rollback.is_none()
    {
        if gated(status.phase) {
            probes = spec
                .gates
                .probes()
                .into_iter()
                .filter(|p| {
                    r.gates
                        .get(p.name())
                        .and_then(|g| g.last_at)
                        .is_none_or(|t| now >= t + p.interval())
                })
                .collect();
        }
        // A record's own task failure gate is read at every pass. Without
        // one, the circuit breaker's default is read while the candidate is
        // short of healthy targets: a task that stops leaves it short until
        // a replacement passes its checks, HealthyThresholdCount intervals
        // at least, and ECS lists a stopped task for an hour or more
        // (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html),
        // so every failure is counted, and a rollout whose candidate stays
        // healthy costs no ListTasks at all.
        let watched = gated(status.phase) || (status.phase == Phase::Finalizing && from_live);
        let own =
            spec.gates.task_failures.is_some() && (watched || status.phase == Phase::Provisioning);
        let short = watched && r.health.short_since.is_some();
        if own || short {
            failed_tasks = candidate(svc, &r.id.revision).map(|t| t.arn.clone());
        }
    }
    // The candidate's health decides while it waits to be ready, serves
    // traffic, and until the old task set is removed. A rollback reads the
    // side it returns production to, which must have a healthy target, and
    // the candidate's, to say whether either side can serve meanwhile.
    // DescribeTargetHealth is one group per call from a small shared
    // budget, so a fleet-wide release is paced by reads like these.
    let target_health = match &status.rollout {
        Some(r) if r.rollback.is_some() => r
            .from
            .iter()
            .map(|f| f.target_group.clone())
            .chain(target_group)
            .collect(),
        Some(_) if status.phase == Phase::Finalizing && !from_live => vec![],
        // Where a rollback can begin with production on the candidate, the
        // side it would return to is read too, so the rollback's first
        // decision already knows whether that side can serve.
        Some(r)
            if matches!(
                status.phase,
                Phase::Shifting
                    | Phase::AwaitingPromotion
                    | Phase::Paused
                    | Phase::Baking
                    | Phase::Finalizing
            ) =>
        {
            target_group
                .into_iter()
                .chain(r.from.iter().map(|f| f.target_group.clone()))
                .collect()
        }
        _ => target_group.into_iter().collect(),
    };
    // Stickiness matters where a task set production weighed is removed
    // (finalizing, rolling back, a leftover) and until it is put back.
    // And where the task set a rollout started from was deleted by
    // someone else: its sticky clients must leave it at once.
    let stickiness = status.stickiness_off.is_some()
        || match &status.rollout {
            Some(r) => {
                r.rollback.is_some()
                    || status.phase == Phase::Finalizing
                    || (r.from.is_some() && !from_live)
            }
            None => strays,
        };
    Reads {
        production: Some(spec.traffic.production.clone()),
        test: spec.traffic.test.clone(),
        target_health,
        probes,
        failed_tasks,
        deployment: None,
        stickiness,
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
        let from = self.status.phase;
        if from == to {
            return;
        }
        let t = Transition {
            at: self.now,
            from,
            to,
            reason: reason.into(),
            revision,
        };
        self.status.phase = to;
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
        self.status.phase = phase;
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
        let phase = self.status.phase;
        let mut message = why.clone();
        if let Some(r) = self.status.rollout.as_mut() {
            if phase != Phase::Invalid {
                r.resume_to = Some(phase);
            }
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
    };
    draft.status.last_error = None;
    match desired {
        Desired::Invalid(err) => {
            let why = format!("record is invalid: {err}");
            match (watched(status), &observed.service) {
                (Some(spec), Some(ServiceState::Found(svc))) if svc.is_external() => {
                    let mut machine = Machine {
                        spec: &spec,
                        svc,
                        observed,
                        d: &mut draft,
                    };
                    machine.watch(why, MAX_TRANSITIONS);
                }
                _ => draft.hold(why),
            }
        }
        Desired::Valid(spec) => {
            draft.status.observed_revision = Some(spec.revision.clone());
            match &observed.service {
                None => {
                    draft.say("waiting to observe the ECS service");
                    draft.wake(Wake::Poll);
                }
                Some(ServiceState::Missing) => draft.hold(format!(
                    "ECS service {} not found in cluster {}: create it with deploymentController EXTERNAL, or fix the record's key",
                    spec.key.service, spec.key.cluster
                )),
                // Held like a missing service: looked at again when the
                // record changes or at the next resync, not on every poll.
                Some(ServiceState::ClusterMissing) => draft.hold(format!(
                    "ECS cluster {} not found: create it, or write the record again under the key of an existing cluster (<cluster>/<service>)",
                    spec.key.cluster
                )),
                Some(ServiceState::Found(svc)) if spec.driver.codedeploy().is_some() => {
                    codedeploy::decide(spec, svc, observed, &mut draft);
                }
                Some(ServiceState::Found(svc)) if !svc.is_external() => draft.hold(format!(
                    "ECS service {} uses the {} deployment controller: cutover drives services created with deploymentController EXTERNAL",
                    spec.key, svc.deployment_controller
                )),
                Some(ServiceState::Found(svc)) => {
                    let driven = under_rollout(spec, &draft.status);
                    let rewired = matches!(driven, Cow::Owned(_));
                    let mut machine = Machine {
                        spec: &driven,
                        svc,
                        observed,
                        d: &mut draft,
                    };
                    if rewired {
                        machine.run_rollout_out(MAX_TRANSITIONS);
                    } else {
                        machine.run(MAX_TRANSITIONS);
                    }
                }
            }
        }
    }
    draft.finish()
}
