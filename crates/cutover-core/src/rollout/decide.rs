//! `decide`: the pure heart of cutover. Given the record, a snapshot of the
//! live service and the stored status, it returns the commands to run, the
//! status to write and when to look again. It re-checks the observed world at
//! every phase, so a lost or stale status, a restart or a lost response all
//! converge without doing anything twice.

use std::borrow::Cow;

use super::codedeploy::CodeDeploy;
use super::command::{Decision, Wake};
use super::draft::Draft;
use super::driver::{Driver, Mandate};
use super::machine::Machine;
use super::native::Native;
use super::observed::{EcsService, Observed, ServiceState};
use super::reading::Reads;
use super::spec::{RecordError, Spec};
use super::status::Status;
use crate::time::Timestamp;

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

/// The record a rollout in flight is watched under while its record is
/// invalid: what the rollout kept of the last valid one.
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
    /// ECS deploys it itself (`driver = "ecs_native"`).
    Native { spec: &'a Spec, svc: &'a EcsService },
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
            Some(ServiceState::Found(svc)) if spec.driver.native().is_some() => {
                if svc.is_native() && svc.native.is_some() {
                    Situation::Native { spec, svc }
                } else {
                    Situation::Held(format!(
                        "ECS service {} uses the {} deployment controller: driver \"ecs_native\" drives services on the ECS deployment controller (deploymentController ECS, with the load balancer's advancedConfiguration for blue/green)",
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
        Situation::Native { spec, svc } => Native::reads(spec, svc, status, now),
        Situation::TaskSets { spec, svc, .. } => Machine::reads(&spec, svc, status, now),
        Situation::Invalid { watched: None, .. } | Situation::Unobserved | Situation::Held(_) => {
            Reads::default()
        }
    }
}

pub fn decide(desired: &Desired, observed: &Observed, status: &Status, now: Timestamp) -> Decision {
    let mut draft = Draft {
        status: status.clone(),
        commands: Vec::new(),
        events: Vec::new(),
        wake: Wake::Idle,
        now,
        shown: None,
        halt: observed.halt.clone(),
        admission: observed.admission.clone(),
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
        Situation::Native { spec, svc } => {
            if let Some(mut driver) = Native::new(spec, svc, observed, &mut draft) {
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
