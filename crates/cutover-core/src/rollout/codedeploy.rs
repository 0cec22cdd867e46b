//! The CodeDeploy driver's decision, for services that stay on the
//! CODE_DEPLOY deployment controller. CodeDeploy moves the task sets and the
//! traffic; cutover starts one deployment per revision, maps what CodeDeploy
//! reports onto its own phases (so status, events, metrics and notifications
//! read the same as for its own rollouts), continues a deployment that waits
//! once it is promoted and its gates passed, and stops it with a rollback on
//! an abort, a failed gate or a newer revision.
//!
//! A deployment group runs one deployment at a time, so cutover never
//! creates a deployment while one is in flight: the status keeps the
//! deployment's id, and without one (a restart, a lost status, a lost reply)
//! the group's in-flight deployment is read first and, if it is cutover's,
//! adopted by the rollout named in its description.

use super::command::{Command, Outcome, Wake};
use super::control::RolloutId;
use super::deployment::{
    CodeDeployTarget, ContinueWait, CreateDeployment, Deployment, DeploymentRead, DeploymentRef,
    DeploymentStatus, DeploymentView, description,
};
use super::draft::Draft;
use super::driver::{
    Driver, Flow, Opening, due_probes, failed_revision, gated, interruption, next_attempt,
    promoted, runs,
};
use super::halt::Stop;
use super::machine::task_set_ref;
use super::observed::{EcsService, Observed, short_task_definition};
use super::reading::Reads;
use super::spec::Spec;
use super::status::{Phase, RollbackReason, Rollout, Status};
use crate::time::Timestamp;

/// The service needs nothing: no rollout, and the revision serves (as the
/// status remembers, or as the primary task set shows after a lost status).
fn settled(spec: &Spec, svc: &EcsService, status: &Status) -> bool {
    status.rollout.is_none()
        && (status.stable_revision.as_ref() == Some(&spec.revision)
            || svc.primary().is_some_and(|p| runs(spec, p)))
}

fn reads(spec: &Spec, svc: &EcsService, status: &Status, now: Timestamp) -> Reads {
    let mut reads = Reads::default();
    let Some(target) = spec.driver.codedeploy() else {
        return reads;
    };
    if status.rollout.is_none()
        && (settled(spec, svc, status) || failed_revision(spec, status).is_some())
    {
        return reads;
    }
    reads.deployment = Some(match (&status.rollout, &status.deployment) {
        (Some(_), Some(d)) => DeploymentRead::Get {
            id: d.id.clone(),
            // Which step an ECS deployment is at shows only in its lifecycle
            // events, a call of its own: read them only while it moves.
            lifecycle: d.status == DeploymentStatus::InProgress,
        },
        (rollout, _) => DeploymentRead::InFlight {
            application: target.application.clone(),
            deployment_group: target.deployment_group.clone(),
            // Clocks differ: a minute of slack before the rollout began.
            since: rollout.as_ref().map(|r| Timestamp(r.started_at.0 - 60_000)),
        },
    });
    if let Some(r) = &status.rollout
        && r.rollback.is_none()
        && gated(status.phase())
    {
        reads.probes = due_probes(spec, r, now);
    }
    reads
}

/// The CodeDeploy driver over one decision's draft.
pub(crate) struct CodeDeploy<'a, 'd> {
    spec: &'a Spec,
    target: &'a CodeDeployTarget,
    svc: &'a EcsService,
    observed: &'a Observed,
    d: &'d mut Draft,
}

impl<'a> Driver<'a> for CodeDeploy<'a, '_> {
    fn reads(spec: &Spec, svc: &EcsService, status: &Status, now: Timestamp) -> Reads {
        reads(spec, svc, status, now)
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
        self.between_deployments()
    }

    fn step(&mut self, r: Rollout) -> Flow {
        self.in_rollout(r)
    }

    /// A failed gate, an abort or a newer revision stops the deployment;
    /// CodeDeploy rolls it back. Not yet seen: the stop is sent once it is.
    fn begin_rollback(&mut self, reason: RollbackReason) -> Flow {
        let text = reason.to_string();
        if let Some(rr) = self.d.status.rollout.as_mut() {
            rr.rollback = Some(reason);
        }
        self.d.transition(Phase::RollingBack, text.clone());
        let Some(DeploymentView::Found(dep)) = &self.observed.deployment else {
            return self.wait(format!("rolling back ({text})"));
        };
        self.d.commands.push(Command::StopDeployment {
            deployment_id: dep.id.clone(),
        });
        self.wait(format!(
            "rolling back ({text}): stopping deployment {}",
            dep.id
        ))
    }
}

impl<'a, 'd> CodeDeploy<'a, 'd> {
    /// `None` unless `spec` names a deployment group.
    pub(crate) fn new(
        spec: &'a Spec,
        svc: &'a EcsService,
        observed: &'a Observed,
        d: &'d mut Draft,
    ) -> Option<Self> {
        Some(CodeDeploy {
            target: spec.driver.codedeploy()?,
            spec,
            svc,
            observed,
            d,
        })
    }

    fn group(&self) -> String {
        format!(
            "{}/{}",
            self.target.application, self.target.deployment_group
        )
    }

    fn between_deployments(&mut self) -> Flow {
        let spec = self.spec;
        if let Some(f) = failed_revision(spec, &self.d.status) {
            return self.stay_failed(&f);
        }
        if settled(spec, self.svc, &self.d.status) {
            return self.steady();
        }
        let in_flight = match &self.observed.deployment {
            None => return self.wait("waiting to read the deployment group".into()),
            Some(DeploymentView::Found(dep)) if dep.status.in_flight() => Some(dep),
            Some(_) => None,
        };
        if let Some(dep) = in_flight {
            return match dep.rollout() {
                Some(id) => self.adopt(dep, id),
                None => self.wait(format!(
                    "deployment {} ({}) was not started by cutover and is in flight in {}: waiting for it to end before deploying revision {}",
                    dep.id,
                    dep.status,
                    self.group(),
                    spec.revision
                )),
            };
        }
        if let Some(stop) = Stop::of(spec, self.d.halt.as_ref()) {
            self.d.say(stop.not_started(&spec.revision));
            self.d.wake(Wake::Idle);
            return Flow::Wait;
        }
        if self.d.queued(&spec.revision) {
            return Flow::Wait;
        }
        self.start(RolloutId {
            revision: spec.revision.clone(),
            attempt: next_attempt(spec, &self.d.status),
        })
    }

    fn steady(&mut self) -> Flow {
        let spec = self.spec;
        if let Some(p) = self.svc.primary() {
            self.d.status.active = Some(task_set_ref(p));
        }
        self.d.status.stable_revision = Some(spec.revision.clone());
        self.d.status.candidate = None;
        self.d.status.deployment = None;
        self.d.status.weights = Some((100, 0));
        self.d.transition(
            Phase::Steady,
            format!("revision {} is serving", spec.revision),
        );
        self.d.say(format!(
            "steady on revision {} ({})",
            spec.revision,
            short_task_definition(&spec.version.to_string())
        ));
        self.d.wake(Wake::Idle);
        Flow::Wait
    }

    /// The rollout of `id`, started at `started_at`: CodeDeploy replaces
    /// the primary task set, and owns the target groups.
    fn rollout_for(&self, id: RolloutId, started_at: Timestamp) -> Rollout {
        Rollout {
            started_at,
            ..Rollout::new(
                id,
                self.svc.primary().map(task_set_ref),
                String::new(),
                self.d.now,
            )
        }
    }

    fn start(&mut self, id: RolloutId) -> Flow {
        let spec = self.spec;
        self.d.status.deployment = None;
        self.d.status.candidate = None;
        let reason = format!(
            "new revision: deploying revision {} ({}) through CodeDeploy {}",
            spec.revision,
            spec.version,
            self.group()
        );
        self.open(
            self.rollout_for(id.clone(), self.d.now),
            Opening::Started {
                phase: Phase::Provisioning,
                reason,
            },
        );
        self.create(&id);
        Flow::Wait
    }

    fn create(&mut self, id: &RolloutId) {
        let spec = self.spec;
        self.d
            .commands
            .push(Command::CreateDeployment(Box::new(CreateDeployment {
                application: self.target.application.clone(),
                deployment_group: self.target.deployment_group.clone(),
                deployment_config: self.target.deployment_config.clone(),
                description: description(id),
                task_definition: spec.version.to_string(),
                container: spec.traffic.container.clone(),
                container_port: spec.traffic.container_port,
                hooks: self.target.hooks.clone(),
            })));
        self.d.say(format!(
            "creating a CodeDeploy deployment of revision {} in {}",
            id.revision,
            self.group()
        ));
        self.d.wake(Wake::Poll);
    }

    /// A deployment cutover created is in flight and the status does not
    /// know it (a restart or a lost status): its rollout goes on.
    fn adopt(&mut self, dep: &Deployment, id: RolloutId) -> Flow {
        let started = dep.created_at.unwrap_or(self.d.now);
        self.d.status.deployment = Some(DeploymentRef {
            id: dep.id.clone(),
            status: dep.status,
        });
        // Not a new rollout: its start was reported when it began.
        self.open(
            self.rollout_for(id, started),
            Opening::Adopted {
                phase: Phase::Provisioning,
                reason: format!("its CodeDeploy deployment {} is in flight", dep.id),
            },
        );
        Flow::Next
    }

    fn in_rollout(&mut self, r: Rollout) -> Flow {
        let known = self.d.status.deployment.clone();
        let dep = match (&self.observed.deployment, &known) {
            (None, _) => return self.wait("waiting to read the deployment".into()),
            (Some(DeploymentView::Absent), None) => return self.not_created(r),
            (Some(DeploymentView::Absent), Some(k)) => {
                let why = format!("deployment {} is not known to CodeDeploy", k.id);
                return self.end(r, Outcome::Failed, Some(why));
            }
            (Some(DeploymentView::Found(dep)), _) => dep,
        };
        if known.as_ref().is_none_or(|k| k.id != dep.id) && dep.rollout().as_ref() != Some(&r.id) {
            return self.wait(format!(
                "deployment {} of someone else is in flight in {}: waiting for it to end",
                dep.id,
                self.group()
            ));
        }
        self.d.status.deployment = Some(DeploymentRef {
            id: dep.id.clone(),
            status: dep.status,
        });
        if let Some(w) = dep.traffic {
            self.d.status.weights = Some(w);
        }
        if let Some(reason) = interruption(self.spec, &r, self.d.status.phase()) {
            return self.begin_rollback(reason);
        }
        match dep.status {
            DeploymentStatus::Succeeded => self.succeeded(r, dep),
            DeploymentStatus::Failed | DeploymentStatus::Stopped => {
                let error = dep.error.clone().unwrap_or_else(|| dep.status.to_string());
                // CodeDeploy's rollback returns production to the
                // original task set, when there was one.
                let outcome = Outcome::of_rollback(r.rollback.as_ref(), r.from.is_some());
                let why = match &r.rollback {
                    Some(reason) => reason.to_string(),
                    None => format!(
                        "deployment {} {}: {error}",
                        dep.id,
                        dep.status.as_str().to_lowercase()
                    ),
                };
                self.end(r, outcome, Some(why))
            }
            _ if r.rollback.is_some() => {
                // Resent only once the last stop had time to show.
                self.d.commands.push(Command::StopDeployment {
                    deployment_id: dep.id.clone(),
                });
                self.wait(format!(
                    "stopping deployment {} ({}); CodeDeploy rolls it back",
                    dep.id, dep.status
                ))
            }
            _ => self.moving(r, dep),
        }
    }

    /// The rollout's deployment is not in flight: created, and not listed
    /// yet, or never created (the create failed, or was lost).
    fn not_created(&mut self, r: Rollout) -> Flow {
        if r.rollback.is_some() || r.id.revision != self.spec.revision {
            return match r.rollback {
                Some(RollbackReason::Aborted) => {
                    self.end(r, Outcome::Aborted, Some("aborted by request".into()))
                }
                _ => self.end(r, Outcome::Superseded, None),
            };
        }
        if self.spec.control.abort.as_ref() == Some(&r.id) {
            return self.end(r, Outcome::Aborted, Some("aborted by request".into()));
        }
        self.create(&r.id);
        Flow::Wait
    }

    /// Created, queued or running: the phase follows what CodeDeploy shows.
    fn moving(&mut self, r: Rollout, dep: &Deployment) -> Flow {
        let phase = match dep.status {
            DeploymentStatus::Ready => Phase::AwaitingPromotion,
            DeploymentStatus::Baking => Phase::Baking,
            _ if dep.termination_wait_started => Phase::Baking,
            DeploymentStatus::InProgress if dep.shifting() => Phase::Shifting,
            DeploymentStatus::InProgress if dep.testing() => Phase::Testing,
            _ => Phase::Provisioning,
        };
        let held = self.d.status.phase() == Phase::Paused && phase == Phase::AwaitingPromotion;
        if phase != self.d.status.phase() && !held {
            let now = self.d.now;
            if let Some(rr) = self.d.status.rollout.as_mut() {
                rr.step_started_at = now;
                rr.progress_at = now;
            }
            self.d.transition(
                phase,
                format!("deployment {} is {}", dep.id, describe(phase)),
            );
        }
        let waiting = if gated(phase) {
            match self.analysis_gates(&r) {
                Ok(waiting) => waiting,
                Err(flow) => return flow,
            }
        } else {
            None
        };
        if dep.status != DeploymentStatus::Ready {
            let mut message = format!("deployment {} is {}", dep.id, describe(phase));
            if let Some(why) = waiting {
                message = format!("{message}; {why}");
            }
            return self.wait(message);
        }
        let promoted = promoted(self.spec, &r);
        if let Some(stop) = Stop::of(self.spec, self.d.halt.as_ref()) {
            self.d.transition(Phase::Paused, stop.why());
            return self.wait(format!(
                "{}: deployment {} waits to reroute traffic; {}",
                stop.opening(),
                dep.id,
                stop.lift()
            ));
        }
        if self.d.status.phase() == Phase::Paused {
            self.d.transition(Phase::AwaitingPromotion, "resumed");
        }
        if let Some(why) = waiting {
            return self.wait(format!("deployment {} is ready; {why}", dep.id));
        }
        if !(promoted || self.spec.auto_promote) {
            return self.wait(format!(
                "deployment {} is ready and waits for promotion: run `cutover promote {}`",
                dep.id, self.spec.key
            ));
        }
        self.d.commands.push(Command::ContinueDeployment {
            deployment_id: dep.id.clone(),
            wait: ContinueWait::ReadyWait,
        });
        self.wait(format!(
            "continuing deployment {}: rerouting production traffic",
            dep.id
        ))
    }

    fn succeeded(&mut self, r: Rollout, dep: &Deployment) -> Flow {
        self.d.status.deployment = None;
        self.promoted_by(r, "CodeDeploy", &format!("deployment {}", dep.id))
    }

    /// Ends the rollout (see [`Driver::end_rollout`]); the deployment is
    /// forgotten with it.
    fn end(&mut self, r: Rollout, outcome: Outcome, why: Option<String>) -> Flow {
        self.d.status.deployment = None;
        self.end_rollout(r, outcome, why)
    }
}

fn describe(phase: Phase) -> &'static str {
    match phase {
        Phase::Provisioning => "starting the replacement task set",
        Phase::Testing => "sending test traffic to the replacement",
        Phase::Shifting => "shifting production traffic to the replacement",
        Phase::AwaitingPromotion => "ready and waiting to reroute production traffic",
        Phase::Baking => "keeping the original task set for its termination wait",
        _ => "in flight",
    }
}
