//! The `ecs_native` driver's decision, for services on the ECS deployment
//! controller that ECS itself deploys blue/green, linearly or as a canary.
//! ECS moves the tasks and the traffic; cutover starts one deployment per
//! revision (UpdateService), and holds each step at a PAUSE lifecycle hook
//! until its own gates and hooks passed, then answers the pause with
//! CONTINUE, or with ROLLBACK when one failed
//! (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/pause-lifecycle-hooks.html).
//!
//! Where the pauses sit, and why:
//! - before every production traffic step (PRE_PRODUCTION_TRAFFIC_SHIFT,
//!   which ECS runs before each step of a LINEAR or CANARY deployment:
//!   https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentLifecycleHook.html).
//!   A PAUSE hook cannot sit at the shift itself, so a step's gates are read
//!   at the pause before the next one, after the step's bake;
//! - after the last shift (POST_PRODUCTION_TRAFFIC_SHIFT), so the gates see
//!   all traffic on the new revision before ECS's bake;
//! - at the stages of the record's hooks (before_install at PRE_SCALE_UP,
//!   after_install at POST_SCALE_UP, after_test_traffic at
//!   POST_TEST_TRAFFIC_SHIFT).
//!
//! Every answer names the pause's hook id, which ECS makes anew each time
//! it pauses; cutover never counts on a step number to know which pause it
//! answers. A pause not answered within the record's progress deadline
//! (the hook's timeoutInMinutes, at most 14 days) rolls back: cutover sets
//! the timeout action to ROLLBACK, so a controller that is down fails safe.
//!
//! ECS does not document what UpdateService does to a deployment in flight
//! (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-deployment.html
//! only says each update makes a new deployment), so cutover never issues
//! one while a deployment of the service is ongoing: a newer revision first
//! stops the one in flight with a rollback (StopServiceDeployment), waits
//! for it to end, then starts.

use std::collections::BTreeMap;
use std::time::Duration;

use super::checks::hook;
use super::command::StartServiceDeployment;
use super::command::{AlertKind, Command, Event, Outcome, Wake};
use super::control::RolloutId;
use super::draft::{Draft, RESEND_AFTER};
use super::driver::{
    Driver, Flow, Opening, due_probes, failed_revision, gated, interruption, next_attempt, promoted,
};
use super::driver_kind::NativeDeployment;
use super::halt::Stop;
use super::hook::HookPoint;
use super::observed::{EcsService, Observed, TargetCounts, short_task_definition};
use super::reading::Reads;
use super::service_deployment::{
    Answered, LifecycleStage, PauseAction, ServiceDeployment, ServiceDeploymentRead,
    ServiceDeploymentRef, ServiceDeploymentStatus, ServiceDeploymentView, ServiceRevision,
    TargetRevision, same_task_definition,
};
use super::spec::{Spec, Version};
use super::status::{Phase, RollbackReason, Rollout, Status};
use crate::time::Timestamp;

/// Clocks differ: a deployment created this long before its rollout began
/// may still be the rollout's.
const CLOCK_SLACK: Duration = Duration::from_secs(60);

/// Whether a task definition with these images (where read) runs `version`.
pub(crate) fn runs(
    task_definition: &str,
    images: &BTreeMap<String, String>,
    version: &Version,
) -> bool {
    match version {
        Version::TaskDefinition(td) => same_task_definition(task_definition, td),
        Version::Image { image, container } => images.get(container) == Some(image),
    }
}

/// Whether the service is set to run `version` (its task definition
/// changes as soon as ECS takes an UpdateService).
fn set_to(service: &ServiceRevision, version: &Version) -> bool {
    runs(&service.task_definition, &service.images, version)
}

/// Whether `dep` deploys `version`: by the revision it targets where that
/// was read; otherwise, by what the service is set to (`set`).
fn deploys(dep: &ServiceDeployment, version: &Version, set: bool) -> bool {
    match &dep.target {
        Some(TargetRevision {
            task_definition,
            images,
            ..
        }) => runs(task_definition, images, version),
        None => set,
    }
}

/// The stages cutover pauses at for `spec`.
pub(crate) fn pause_stages(spec: &Spec) -> Vec<LifecycleStage> {
    let mut stages = Vec::new();
    for (point, stage) in [
        (HookPoint::BeforeInstall, LifecycleStage::PreScaleUp),
        (HookPoint::AfterInstall, LifecycleStage::PostScaleUp),
        (
            HookPoint::AfterTestTraffic,
            LifecycleStage::PostTestTrafficShift,
        ),
    ] {
        if spec.hooks.get(point).is_some() {
            stages.push(stage);
        }
    }
    stages.push(LifecycleStage::PreProductionTrafficShift);
    stages.push(LifecycleStage::PostProductionTrafficShift);
    stages
}

/// The record's hook that runs at a pause of `stage`, where one does.
/// before_production_traffic runs at the first step's pause only.
fn hook_point(stage: LifecycleStage, steps_passed: u32) -> Option<HookPoint> {
    match stage {
        LifecycleStage::PreScaleUp => Some(HookPoint::BeforeInstall),
        LifecycleStage::PostScaleUp => Some(HookPoint::AfterInstall),
        LifecycleStage::PostTestTrafficShift => Some(HookPoint::AfterTestTraffic),
        LifecycleStage::PreProductionTrafficShift if steps_passed == 0 => {
            Some(HookPoint::BeforeProductionTraffic)
        }
        LifecycleStage::PostProductionTrafficShift => Some(HookPoint::AfterProductionTraffic),
        _ => None,
    }
}

/// The phase a deployment's stage shows as; `None` for a stage this
/// release does not know (the phase stays what it was).
fn phase_of(dep: &ServiceDeployment) -> Option<Phase> {
    if dep.status.rolling_back() {
        return Some(Phase::RollingBack);
    }
    Some(match dep.stage {
        None
        | Some(
            LifecycleStage::ReconcileService
            | LifecycleStage::PreScaleUp
            | LifecycleStage::ScaleUp
            | LifecycleStage::PostScaleUp,
        ) => Phase::Provisioning,
        Some(LifecycleStage::TestTrafficShift | LifecycleStage::PostTestTrafficShift) => {
            Phase::Testing
        }
        Some(
            LifecycleStage::PreProductionTrafficShift | LifecycleStage::ProductionTrafficShift,
        ) => Phase::Shifting,
        Some(LifecycleStage::PostProductionTrafficShift | LifecycleStage::BakeTime) => {
            Phase::Baking
        }
        Some(LifecycleStage::CleanUp) => Phase::Finalizing,
        Some(LifecycleStage::Other) => return None,
    })
}

fn describe(phase: Phase) -> &'static str {
    match phase {
        Phase::Provisioning => "starting the new revision's tasks",
        Phase::Testing => "sending test traffic to the new revision",
        Phase::Shifting => "shifting production traffic to the new revision",
        Phase::Baking => "baking: both revisions run while the new one serves",
        Phase::Finalizing => "removing the old revision",
        Phase::RollingBack => "rolling back to the old revision",
        _ => "in flight",
    }
}

/// The service needs nothing: no rollout, and the status remembers that
/// the revision serves.
fn settled(spec: &Spec, status: &Status) -> bool {
    status.rollout.is_none() && status.stable_revision.as_ref() == Some(&spec.revision)
}

fn reads(spec: &Spec, svc: &EcsService, status: &Status, now: Timestamp) -> Reads {
    let mut reads = Reads::default();
    if settled(spec, status)
        || (status.rollout.is_none() && failed_revision(spec, status).is_some())
    {
        return reads;
    }
    let current = svc
        .native
        .as_ref()
        .and_then(|n| n.current_deployment.clone());
    let known = status
        .rollout
        .as_ref()
        .and_then(|r| r.service_deployment.as_ref());
    reads.service_deployment = Some(match (known, current) {
        (Some(k), _) => ServiceDeploymentRead::Get { arn: k.arn.clone() },
        (None, Some(arn)) => ServiceDeploymentRead::Get { arn },
        (None, None) => ServiceDeploymentRead::Ongoing {
            since: status
                .rollout
                .as_ref()
                .map(|r| Timestamp(r.started_at.0 - CLOCK_SLACK.as_millis() as i64)),
        },
    });
    if let Some(r) = &status.rollout
        && r.rollback.is_none()
    {
        if let Some(k) = &r.service_deployment {
            reads.target_health = k.target_groups.clone();
        }
        if gated(status.phase()) {
            reads.probes = due_probes(spec, r, now);
        }
    }
    reads
}

/// The `ecs_native` driver over one decision's draft.
pub(crate) struct Native<'a, 'd> {
    spec: &'a Spec,
    config: &'a NativeDeployment,
    service: &'a ServiceRevision,
    observed: &'a Observed,
    d: &'d mut Draft,
}

impl<'a> Driver<'a> for Native<'a, '_> {
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

    /// A failed gate or hook answers the pause that waits with ROLLBACK;
    /// an abort or a newer revision, or a failure between pauses, stops the
    /// deployment with a rollback. ECS rolls it back either way.
    fn begin_rollback(&mut self, reason: RollbackReason) -> Flow {
        let text = reason.to_string();
        if let Some(rr) = self.d.status.rollout.as_mut() {
            rr.rollback = Some(reason);
        }
        self.d.transition(Phase::RollingBack, text.clone());
        match self.found() {
            Some(dep) if dep.status.ongoing() && !dep.status.rolling_back() => {
                let how = self.send_rollback(dep);
                self.wait(format!("rolling back ({text}): {how}"))
            }
            _ => self.wait(format!("rolling back ({text})")),
        }
    }
}

impl<'a, 'd> Native<'a, 'd> {
    /// `None` unless `spec` is an `ecs_native` record and `svc` reports
    /// what it runs (a service on the ECS deployment controller).
    pub(crate) fn new(
        spec: &'a Spec,
        svc: &'a EcsService,
        observed: &'a Observed,
        d: &'d mut Draft,
    ) -> Option<Self> {
        Some(Native {
            config: spec.driver.native()?,
            service: svc.native.as_ref()?,
            spec,
            observed,
            d,
        })
    }

    fn found(&self) -> Option<&'a ServiceDeployment> {
        match &self.observed.service_deployment {
            Some(ServiceDeploymentView::Found(dep)) => Some(dep),
            _ => None,
        }
    }

    fn known(&self) -> Option<ServiceDeploymentRef> {
        self.d
            .status
            .rollout
            .as_ref()
            .and_then(|r| r.service_deployment.clone())
    }

    fn set_known(&mut self, known: ServiceDeploymentRef) {
        if let Some(rr) = self.d.status.rollout.as_mut() {
            rr.service_deployment = Some(known);
        }
    }

    fn between_deployments(&mut self) -> Flow {
        let spec = self.spec;
        if let Some(f) = failed_revision(spec, &self.d.status) {
            return self.stay_failed(&f);
        }
        if settled(spec, &self.d.status) {
            return self.steady(None);
        }
        let latest = match &self.observed.service_deployment {
            None => return self.wait("waiting to read the service's deployments".into()),
            Some(ServiceDeploymentView::Found(dep)) => Some(dep),
            Some(ServiceDeploymentView::Absent) => None,
        };
        let set = set_to(self.service, &spec.version);
        if let Some(dep) = latest.filter(|d| d.status.ongoing()) {
            if deploys(dep, &spec.version, set) {
                return self.adopt(dep);
            }
            return self.wait(format!(
                "service deployment {} ({}) is in flight and does not deploy revision {}: waiting for it to end before deploying",
                dep.id(),
                dep.status,
                spec.revision
            ));
        }
        match latest {
            // Its newest deployment put the revision there: it serves (a
            // status lost after the end).
            Some(dep)
                if dep.status == ServiceDeploymentStatus::Successful
                    && deploys(dep, &spec.version, set) =>
            {
                return self.steady(Some(dep));
            }
            // Never deployed through a service deployment, and set to it.
            None if set && self.service.current_deployment.is_none() => {
                return self.steady(None);
            }
            // A revision whose newest deployment did not succeed (a status
            // lost after a rollback) is deployed again.
            Some(dep) if dep.target.is_some() && deploys(dep, &spec.version, set) => {}
            // ECS took an update to the revision (the service is set to it)
            // and shows no deployment of it yet: reads lag, and a lost reply
            // left no status. Never a second update: its rollout is taken
            // up, and waits for the deployment to show (at most the
            // progress deadline).
            _ if set => {
                let id = RolloutId {
                    revision: spec.revision.clone(),
                    attempt: next_attempt(spec, &self.d.status),
                };
                self.open(
                    self.rollout_for(id, self.d.now),
                    Opening::Adopted {
                        phase: Phase::Provisioning,
                        reason: format!(
                            "service {} is set to revision {}: ECS took its update",
                            spec.key, spec.revision
                        ),
                    },
                );
                return Flow::Next;
            }
            _ => {}
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

    fn steady(&mut self, by: Option<&ServiceDeployment>) -> Flow {
        let spec = self.spec;
        self.d.status.stable_revision = Some(spec.revision.clone());
        self.d.status.weights = Some((100, 0));
        let reason = match by {
            Some(dep) => format!(
                "revision {} is serving (service deployment {})",
                spec.revision,
                dep.id()
            ),
            None => format!("revision {} is serving", spec.revision),
        };
        self.d.transition(Phase::Steady, reason);
        self.d.say(format!(
            "steady on revision {} ({})",
            spec.revision,
            short_task_definition(&spec.version.to_string())
        ));
        self.d.wake(Wake::Idle);
        Flow::Wait
    }

    fn rollout_for(&self, id: RolloutId, started_at: Timestamp) -> Rollout {
        Rollout {
            started_at,
            ..Rollout::new(id, None, String::new(), self.d.now)
        }
    }

    fn start(&mut self, id: RolloutId) -> Flow {
        let reason = format!(
            "new revision: ECS deploys revision {} ({}) {}",
            id.revision, self.spec.version, self.config.strategy
        );
        self.open(
            self.rollout_for(id, self.d.now),
            Opening::Started {
                phase: Phase::Provisioning,
                reason,
            },
        );
        self.send_start();
        Flow::Wait
    }

    fn send_start(&mut self) {
        let spec = self.spec;
        self.d
            .commands
            .push(Command::StartServiceDeployment(Box::new(
                StartServiceDeployment {
                    version: spec.version.clone(),
                    strategy: self.config.strategy,
                    bake_minutes: self.config.bake_minutes,
                    pauses: pause_stages(spec),
                    pause_timeout_minutes: self.config.pause_timeout_minutes,
                },
            )));
        let now = self.d.now;
        if let Some(rr) = self.d.status.rollout.as_mut() {
            rr.step_started_at = now;
        }
        self.d.say(format!(
            "updating service {} to revision {} ({}): ECS starts a {} deployment",
            spec.key,
            spec.revision,
            short_task_definition(&spec.version.to_string()),
            self.config.strategy.name()
        ));
        self.d.wake(Wake::Poll);
    }

    /// A deployment of the record's revision is in flight and the status
    /// does not know it (a restart, a lost status): its rollout goes on.
    /// Never a second deployment of the same revision.
    fn adopt(&mut self, dep: &ServiceDeployment) -> Flow {
        let id = RolloutId {
            revision: self.spec.revision.clone(),
            attempt: next_attempt(self.spec, &self.d.status),
        };
        let mut rollout = self.rollout_for(id, dep.created_at.unwrap_or(self.d.now));
        // The production steps it passed, from the weight ECS moved to the
        // new revision. Counting none, as before, answered the pause before
        // the last step as if it were the first: past a promotion that
        // auto_promote = false waits for, and calling
        // before_production_traffic again. Without a weight, none.
        let strategy = self.config.strategy;
        let passed = dep.target_weight.map_or(0, |w| {
            (1..=strategy.steps())
                .take_while(|&n| strategy.weight_after(n) <= w)
                .count() as u32
        });
        rollout.step = passed;
        rollout.service_deployment = Some(ServiceDeploymentRef {
            pauses_passed: passed,
            ..ServiceDeploymentRef::of(dep)
        });
        self.open(
            rollout,
            Opening::Adopted {
                phase: Phase::Provisioning,
                reason: format!("its service deployment {} is in flight", dep.id()),
            },
        );
        Flow::Next
    }

    /// Whether `dep` is the rollout's: the one it knows; else one created
    /// since the rollout began (or still ongoing: a rollout taken up after
    /// a lost reply began after its deployment) that deploys its revision,
    /// by the revision it targets where read, or else by what the service
    /// is set to.
    fn is_ours(&self, r: &Rollout, dep: &ServiceDeployment) -> bool {
        match &r.service_deployment {
            Some(k) => k.arn == dep.arn,
            None => {
                let since = Timestamp(r.started_at.0 - CLOCK_SLACK.as_millis() as i64);
                let recent = dep.created_at.is_none_or(|t| t >= since);
                if r.id.revision != self.spec.revision {
                    // Superseded before it was seen: what it deploys is no
                    // longer the record's; the newest update is the one.
                    return recent;
                }
                let set = set_to(self.service, &self.spec.version);
                (recent || dep.status.ongoing()) && deploys(dep, &self.spec.version, set)
            }
        }
    }

    fn in_rollout(&mut self, r: Rollout) -> Flow {
        let known = r.service_deployment.clone();
        let dep = match (&self.observed.service_deployment, &known) {
            (None, _) => return self.wait("waiting to read the service deployment".into()),
            (Some(ServiceDeploymentView::Absent), Some(k)) => {
                let why = format!("service deployment {} is not known to ECS", k.arn);
                return self.end_rollout(r, Outcome::Failed, Some(why));
            }
            (Some(ServiceDeploymentView::Found(dep)), _) if self.is_ours(&r, dep) => dep,
            _ => return self.not_created(r),
        };
        let mut k = known.unwrap_or_else(|| ServiceDeploymentRef::of(dep));
        k.status = dep.status;
        if let Some(t) = dep.target.as_ref().filter(|t| !t.target_groups.is_empty()) {
            k.target_groups = t.target_groups.clone();
        }
        self.set_known(k);
        if let Some(w) = dep.target_weight {
            self.d.status.weights = Some((100 - w.min(100), w.min(100)));
        }
        if let Some(reason) = interruption(self.spec, &r, self.d.status.phase()) {
            return self.begin_rollback(reason);
        }
        match dep.status {
            ServiceDeploymentStatus::Successful => self.succeeded(r, dep),
            ServiceDeploymentStatus::RollbackSuccessful
            | ServiceDeploymentStatus::Stopped
            | ServiceDeploymentStatus::RollbackFailed => self.ended(r, dep),
            s if s.rolling_back() => {
                if self.d.status.phase() != Phase::RollingBack {
                    let why = dep
                        .rollback_reason
                        .clone()
                        .or_else(|| dep.status_reason.clone())
                        .unwrap_or_else(|| dep.status.to_string());
                    self.d.transition(
                        Phase::RollingBack,
                        format!("ECS is rolling back service deployment {}: {why}", dep.id()),
                    );
                }
                self.wait(format!(
                    "ECS is rolling back service deployment {} ({})",
                    dep.id(),
                    dep.status
                ))
            }
            _ if r.rollback.is_some() => {
                let how = self.send_rollback(dep);
                self.wait(format!("rolling back: {how}"))
            }
            _ => self.moving(r, dep),
        }
    }

    /// Asks ECS to roll `dep` back: the pause that waits is answered
    /// ROLLBACK, otherwise the deployment is stopped with a rollback. Sent
    /// again only once the last request had time to show.
    fn send_rollback(&mut self, dep: &ServiceDeployment) -> String {
        let now = self.d.now;
        let Some(mut k) = self.known().filter(|k| k.arn == dep.arn) else {
            return format!("waiting to know service deployment {}", dep.id());
        };
        let hook_id = dep.awaiting().map(|p| p.hook_id.clone());
        let key = hook_id.clone().unwrap_or_default();
        if let Some(a) = &k.answered
            && a.action == PauseAction::Rollback
            && a.hook_id == key
            && now < a.at + RESEND_AFTER
        {
            return format!(
                "asked ECS to roll back service deployment {}; waiting for it to show",
                dep.id()
            );
        }
        let how = match hook_id {
            Some(hook_id) => {
                self.d.commands.push(Command::ContinueServiceDeployment {
                    arn: dep.arn.clone(),
                    hook_id: hook_id.clone(),
                    action: PauseAction::Rollback,
                });
                format!(
                    "answering pause {hook_id} of service deployment {} with ROLLBACK",
                    dep.id()
                )
            }
            None => {
                self.d.commands.push(Command::StopServiceDeployment {
                    arn: dep.arn.clone(),
                });
                format!(
                    "stopping service deployment {}; ECS rolls it back",
                    dep.id()
                )
            }
        };
        k.answered = Some(Answered {
            hook_id: key,
            action: PauseAction::Rollback,
            at: now,
        });
        self.set_known(k);
        how
    }

    /// No deployment of the rollout shows yet: UpdateService was sent and
    /// ECS has not listed its deployment, or the update never landed.
    fn not_created(&mut self, r: Rollout) -> Flow {
        let superseded = r.id.revision != self.spec.revision;
        let landed = set_to(self.service, &self.spec.version) && !superseded;
        let now = self.d.now;
        // A superseded rollout's update cannot be told taken or lost: the
        // service is compared with the record's version, which is no longer
        // the rollout's. Its status was written only once UpdateService
        // succeeded, so its deployment may be ongoing and not listed yet;
        // ending it here started the newer revision beside it. It waits for
        // that deployment to show (and be stopped), or for the progress
        // deadline, after which none will.
        let deadline = r.started_at + self.spec.progress_deadline;
        if superseded && r.rollback.is_none() && now < deadline {
            return self.wait(format!(
                "revision {} is superseded by {}: waiting for ECS to show the deployment of revision {} before deploying",
                r.id.revision, self.spec.revision, r.id.revision
            ));
        }
        if !landed && (r.rollback.is_some() || superseded) {
            // Nothing was deployed for it: it ends here, and a newer
            // revision starts.
            return match r.rollback {
                Some(RollbackReason::Aborted) => {
                    self.end_rollout(r, Outcome::Aborted, Some("aborted by request".into()))
                }
                _ => self.end_rollout(r, Outcome::Superseded, None),
            };
        }
        if !landed && self.spec.control.abort.as_ref() == Some(&r.id) {
            return self.end_rollout(r, Outcome::Aborted, Some("aborted by request".into()));
        }
        if now >= r.started_at + self.spec.progress_deadline {
            let why = format!(
                "ECS showed no service deployment of revision {} within the progress deadline ({})",
                r.id.revision,
                crate::time::format_duration(self.spec.progress_deadline)
            );
            return self.end_rollout(r, Outcome::Failed, Some(why));
        }
        if landed {
            // The update was taken: its deployment shows soon. Never a
            // second update for the same revision.
            return self.wait(format!(
                "service {} is set to revision {}: waiting for ECS to show its deployment",
                self.spec.key, r.id.revision
            ));
        }
        if now >= r.step_started_at + RESEND_AFTER {
            self.send_start();
            return Flow::Wait;
        }
        self.wait(format!(
            "waiting for ECS to take the update to revision {}",
            r.id.revision
        ))
    }

    /// In flight: the phase follows ECS's stage, and a pause is answered
    /// once the gates and hooks of its step passed.
    fn moving(&mut self, r: Rollout, dep: &ServiceDeployment) -> Flow {
        // Waiting for promotion is a pause before a production step.
        let shown = match self.d.status.working_phase() {
            Phase::AwaitingPromotion => Phase::Shifting,
            p => p,
        };
        let phase = phase_of(dep).unwrap_or(shown);
        if phase != shown || self.d.status.phase() == Phase::Invalid {
            let now = self.d.now;
            if let Some(rr) = self.d.status.rollout.as_mut() {
                rr.progress_at = now;
            }
            self.d.transition(
                phase,
                format!("service deployment {} is {}", dep.id(), describe(phase)),
            );
        }
        let Some(pause) = dep.awaiting() else {
            return self.between_pauses(dep, phase);
        };
        let mut k = self
            .known()
            .unwrap_or_else(|| ServiceDeploymentRef::of(dep));
        let now = self.d.now;
        if let Some(a) = k.answered.as_mut()
            && a.hook_id == pause.hook_id
            && a.action == PauseAction::Continue
        {
            // Answered already: ECS shows answers late. Sent again (the
            // same answer to the same pause) only once it had time to show.
            if now >= a.at + RESEND_AFTER {
                a.at = now;
                self.d.commands.push(Command::ContinueServiceDeployment {
                    arn: dep.arn.clone(),
                    hook_id: pause.hook_id.clone(),
                    action: PauseAction::Continue,
                });
                self.set_known(k);
            }
            return self.wait(format!(
                "answered pause {} of service deployment {} with CONTINUE: waiting for ECS to go on",
                pause.hook_id,
                dep.id()
            ));
        }
        if k.pause.as_ref() != Some(&pause.hook_id) {
            // A new pause: the step's gates count from here.
            k.pause = Some(pause.hook_id.clone());
            if let Some(rr) = self.d.status.rollout.as_mut() {
                rr.step_started_at = now;
                rr.progress_at = now;
            }
        }
        self.set_known(k.clone());
        let r = self.d.status.rollout.clone().unwrap_or(r);
        let stage = dep.stage.unwrap_or(LifecycleStage::Other);
        let production = stage == LifecycleStage::PreProductionTrafficShift;
        if let Some(point) = hook_point(stage, k.pauses_passed)
            && let Some(flow) = hook(self, &r, point)
        {
            return flow;
        }
        // From POST_SCALE_UP on the new revision's tasks run: its targets
        // must be healthy before any step.
        let started = stage >= LifecycleStage::PostScaleUp && stage != LifecycleStage::Other;
        let unhealthy = if started {
            match self.green_health(&r, dep) {
                Ok(short) => short,
                Err(flow) => return flow,
            }
        } else {
            None
        };
        let r = self.d.status.rollout.clone().unwrap_or(r);
        let waiting = if gated(phase) {
            match self.analysis_gates(&r) {
                Ok(waiting) => waiting,
                Err(flow) => return flow,
            }
        } else {
            None
        };
        let waiting = match (unhealthy, waiting) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        };
        let expires = pause
            .expires_at
            .map(|t| format!(" (ECS rolls it back at {t} unless answered)"))
            .unwrap_or_default();
        if let Some(stop) = Stop::of(self.spec, self.d.halt.as_ref()) {
            self.d.transition(Phase::Paused, stop.why());
            return self.wait(format!(
                "{}: service deployment {} waits at {stage}{expires}; {}",
                stop.opening(),
                dep.id(),
                stop.lift()
            ));
        }
        let last_step = production && k.pauses_passed + 1 >= self.config.strategy.steps();
        if last_step && !(self.spec.auto_promote || promoted(self.spec, &r)) {
            if self.d.status.phase() != Phase::AwaitingPromotion {
                self.d.transition(
                    Phase::AwaitingPromotion,
                    "waiting for promotion before all production traffic moves",
                );
            }
            return self.wait(format!(
                "service deployment {} waits for promotion before all production traffic moves{expires}: run `cutover promote {}`",
                dep.id(),
                self.spec.key
            ));
        }
        if matches!(
            self.d.status.phase(),
            Phase::Paused | Phase::AwaitingPromotion
        ) {
            self.d.transition(phase, "resumed");
        }
        if let Some(why) = waiting {
            return self.wait(format!(
                "service deployment {} waits at {stage}; {why}",
                dep.id()
            ));
        }
        self.answer_continue(r, dep, &pause.hook_id, stage, k)
    }

    fn answer_continue(
        &mut self,
        r: Rollout,
        dep: &ServiceDeployment,
        hook_id: &str,
        stage: LifecycleStage,
        mut k: ServiceDeploymentRef,
    ) -> Flow {
        let now = self.d.now;
        self.d.commands.push(Command::ContinueServiceDeployment {
            arn: dep.arn.clone(),
            hook_id: hook_id.to_string(),
            action: PauseAction::Continue,
        });
        k.answered = Some(Answered {
            hook_id: hook_id.to_string(),
            action: PauseAction::Continue,
            at: now,
        });
        if stage == LifecycleStage::PreProductionTrafficShift {
            k.pauses_passed += 1;
            let weight = self.config.strategy.weight_after(k.pauses_passed);
            if let Some(rr) = self.d.status.rollout.as_mut() {
                rr.step = k.pauses_passed;
            }
            self.d.events.push(Event::StepCompleted {
                rollout: r.id.clone(),
                step: k.pauses_passed,
                weight,
            });
        }
        self.set_known(k);
        self.wait(format!(
            "gates passed at {stage}: answering pause {hook_id} of service deployment {} with CONTINUE",
            dep.id()
        ))
    }

    /// ECS's blue/green deployments have no deployment circuit breaker (it
    /// serves rolling updates only:
    /// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentCircuitBreaker.html),
    /// so nothing of ECS's keeps a new revision that never turns healthy
    /// from its next traffic step: cutover's target health gate watches
    /// the revision's target group. `Ok(None)` when healthy enough,
    /// `Ok(Some(why))` while short, `Err` once the rollback has begun.
    /// Before the new revision has production traffic a shortfall is
    /// waited out for the gate's grace (its tasks are starting); once it
    /// has some, each failing look counts at once, since no weight can be
    /// taken back short of a rollback; and past the last pause, the first
    /// failing look rolls back.
    fn green_health(
        &mut self,
        r: &Rollout,
        dep: &ServiceDeployment,
    ) -> Result<Option<String>, Flow> {
        let gate = self.spec.gates.target_health.clone();
        let Some(target) = &dep.target else {
            return Ok(Some("waiting to read the new revision".into()));
        };
        // No load balancer target group (Service Connect, VPC Lattice, or
        // none): no targets to count; the analysis gates watch it.
        if target.target_groups.is_empty() {
            return Ok(None);
        }
        let desired = target.requested_tasks.unwrap_or(1).max(1);
        let needed = (desired * u32::from(gate.min_healthy_percent))
            .div_ceil(100)
            .max(1);
        // The least healthy of the groups the new revision may be in.
        let mut counts = None;
        for tg in &target.target_groups {
            match self.observed.targets.get(tg) {
                None => return Ok(Some("target health not read yet".into())),
                Some(c) if counts.is_none_or(|m: TargetCounts| c.healthy < m.healthy) => {
                    counts = Some(*c)
                }
                Some(_) => {}
            }
        }
        let Some(counts) = counts else {
            return Ok(None);
        };
        let now = self.d.now;
        let seen = |passed| Event::GateEvaluated {
            gate: super::command::TARGET_HEALTH,
            passed,
        };
        if counts.healthy >= needed {
            if let Some(rr) = self.d.status.rollout.as_mut() {
                rr.health.short_since = None;
                rr.gate_failures = 0;
            }
            self.d.events.push(seen(true));
            return Ok(None);
        }
        let why = format!(
            "the new revision has {} healthy targets of the {needed} it needs ({} unhealthy, {} starting)",
            counts.healthy, counts.unhealthy, counts.initial
        );
        let has_traffic = dep.target_weight.is_some_and(|w| w > 0);
        let since = self
            .d
            .status
            .rollout
            .as_mut()
            .map_or(now, |rr| *rr.health.short_since.get_or_insert(now));
        if !has_traffic && now < since + gate.grace {
            return Ok(Some(format!(
                "{why}; waiting for its tasks (grace until {})",
                since + gate.grace
            )));
        }
        self.d.events.push(seen(false));
        let failures = r.gate_failures + 1;
        if let Some(rr) = self.d.status.rollout.as_mut() {
            rr.gate_failures = failures;
        }
        // Past the last pause (once it is answered: ECS's bake, then its
        // clean-up) no pause of cutover's stands before ECS removes the old
        // revision, so a second failing look may come when there is nothing
        // left to roll back to. Waiting for the threshold there kept a
        // revision whose tasks failed while ECS baked: ECS removed the old
        // one between the two looks (the simulated cloud, native seed 18).
        // There the first failing look rolls back.
        let no_pause_left = dep.awaiting().is_none()
            && dep.stage.is_some_and(|s| {
                s >= LifecycleStage::PostProductionTrafficShift && s != LifecycleStage::Other
            });
        if failures >= gate.failure_threshold || no_pause_left {
            return Err(self.begin_rollback(RollbackReason::GateFailed {
                gate: super::command::TARGET_HEALTH.into(),
                detail: why,
            }));
        }
        Ok(Some(format!(
            "target health check failed ({failures}/{}): {why}",
            gate.failure_threshold
        )))
    }

    /// Between pauses ECS moves on by itself; a failing gate stops it.
    fn between_pauses(&mut self, dep: &ServiceDeployment, phase: Phase) -> Flow {
        let mut message = format!("service deployment {} is {}", dep.id(), describe(phase));
        if gated(phase)
            && let Some(r) = self.d.status.rollout.clone()
        {
            match self.green_health(&r, dep) {
                Ok(Some(why)) => message = format!("{message}; {why}"),
                Ok(None) => {}
                Err(flow) => return flow,
            }
            let Some(r) = self.d.status.rollout.clone() else {
                return self.wait(message);
            };
            match self.analysis_gates(&r) {
                Ok(Some(why)) => message = format!("{message}; {why}"),
                Ok(None) => {}
                Err(flow) => return flow,
            }
        }
        self.wait(message)
    }

    fn succeeded(&mut self, r: Rollout, dep: &ServiceDeployment) -> Flow {
        self.promoted_by(r, "ECS", &format!("service deployment {}", dep.id()))
    }

    /// ECS ended the deployment without it succeeding: rolled back (by
    /// cutover's request, its own alarms or circuit breaker, or a pause
    /// that timed out), stopped, or a rollback that failed.
    fn ended(&mut self, r: Rollout, dep: &ServiceDeployment) -> Flow {
        let failed_back = dep.status == ServiceDeploymentStatus::RollbackFailed;
        let outcome = Outcome::of_rollback(r.rollback.as_ref(), !failed_back);
        let ecs_why = dep
            .rollback_reason
            .clone()
            .or_else(|| dep.status_reason.clone())
            .unwrap_or_else(|| dep.status.to_string());
        if failed_back {
            self.d.events.push(Event::Alert {
                rollout: r.id.clone(),
                kind: AlertKind::RollbackFailed,
                reason: format!(
                    "ECS could not roll back service deployment {}: {ecs_why}; look at the service",
                    dep.id()
                ),
            });
        }
        let why = match &r.rollback {
            Some(reason) => reason.to_string(),
            None => format!(
                "service deployment {} ended {}: {ecs_why}",
                dep.id(),
                dep.status
            ),
        };
        self.end_rollout(r, outcome, Some(why))
    }
}
