//! The `ecs_native` driver's decisions, against a tiny ECS that keeps the
//! service's deployments where a test can move them from stage to stage.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::rollout::TargetCounts;
use crate::rollout::command::StartServiceDeployment;
use crate::rollout::draft::RESEND_AFTER;
use crate::rollout::gate::{Reading, Verdict};
use crate::rollout::hook::HookPoint;
use crate::rollout::service_deployment::{
    LifecycleStage, NativeStrategy, Pause, PauseAction, PauseStatus, ServiceDeployment,
    ServiceDeploymentRead, ServiceDeploymentStatus, ServiceDeploymentView, ServiceRevision,
    TargetRevision,
};
use crate::rollout::{
    AlertKind, Command, Decision, Desired, EcsService, Event, Observed, Outcome, Phase, Reads,
    ServiceKey, ServiceState, Spec, Status, Version, decide, parse_record, reads,
};
use crate::time::Timestamp;

use LifecycleStage::{
    BakeTime, CleanUp, PostProductionTrafficShift, PostScaleUp, PostTestTrafficShift,
    PreProductionTrafficShift, PreScaleUp, ProductionTrafficShift, ScaleUp, TestTrafficShift,
};
use ServiceDeploymentStatus::{
    InProgress, RollbackFailed, RollbackInProgress, RollbackSuccessful, Successful,
};

const TD: &str = "arn:aws:ecs:us-east-1:1:task-definition/";
const SD: &str = "arn:aws:ecs:us-east-1:1:service-deployment/prod/web/";
const S5: Duration = Duration::from_secs(5);

pub fn native_record(td: &str, strategy: Value) -> Value {
    json!({
        "service": "prod/web",
        "driver": "ecs_native",
        "task_definition": td,
        "strategy": strategy,
        "bake": "2m",
        "progress_deadline": "5m",
    })
}

fn canary() -> Value {
    json!({"type": "canary", "percent": 10, "interval": "5m"})
}

/// The ARN of the `n`th deployment (0 is the one that deployed web:1).
fn sd(n: usize) -> String {
    format!("{SD}sd-{n}")
}

/// How ECS takes an UpdateService.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Takes {
    /// Its deployment shows at once.
    Shown,
    /// The service is set to the revision, but ECS lists and describes
    /// its deployment only once a test calls [`Ecs::show`].
    Unlisted,
    /// The update is lost: nothing changes.
    Lost,
}

pub struct Ecs {
    pub body: Value,
    pub svc: EcsService,
    pub deployments: Vec<ServiceDeployment>,
    /// Deployments ECS made that it does not list or describe yet.
    pub unlisted: BTreeSet<String>,
    pub takes: Takes,
    pub status: Status,
    pub now: Timestamp,
    pub started: Vec<StartServiceDeployment>,
    /// Every pause answer: (deployment ARN, hook id, action).
    pub answers: Vec<(String, String, PauseAction)>,
    pub stopped: Vec<String>,
    pub hooks_called: Vec<HookPoint>,
    pub readings: BTreeMap<String, Reading>,
    pub events: Vec<Event>,
    /// Reads of the service's deployments.
    pub read_count: u32,
    /// Target groups whose targets are all unhealthy; every other is healthy.
    pub unhealthy: BTreeSet<String>,
    next_hook: u32,
    /// The fleet-wide halt the next observation reports.
    pub halt: Option<crate::rollout::halt::Halt>,
    /// The admission under the concurrency limits the next observation
    /// reports.
    pub admission: Option<crate::rollout::admission::Admission>,
}

impl Ecs {
    /// A service on the ECS deployment controller running web:1, which its
    /// deployment sd-0 put there a day ago.
    pub fn new(body: Value) -> Ecs {
        let now = Timestamp(1_700_000_000_000);
        Ecs {
            body,
            svc: EcsService {
                desired_count: 2,
                deployment_controller: "ECS".into(),
                task_sets: vec![],
                native: Some(ServiceRevision {
                    task_definition: format!("{TD}web:1"),
                    images: BTreeMap::new(),
                    current_deployment: Some(sd(0)),
                }),
            },
            deployments: vec![ServiceDeployment {
                arn: sd(0),
                status: Successful,
                status_reason: None,
                stage: Some(CleanUp),
                pauses: vec![],
                created_at: Some(Timestamp(now.0 - 86_400_000)),
                target_weight: Some(100),
                rollback_reason: None,
                target: Some(target(&format!("{TD}web:1"), &BTreeMap::new(), 0)),
            }],
            unhealthy: BTreeSet::new(),
            unlisted: BTreeSet::new(),
            takes: Takes::Shown,
            status: Status::default(),
            now,
            started: vec![],
            answers: vec![],
            stopped: vec![],
            hooks_called: vec![],
            readings: BTreeMap::new(),
            events: vec![],
            read_count: 0,
            next_hook: 0,
            halt: None,
            admission: None,
        }
    }

    pub fn spec(&self) -> Spec {
        parse_record(&ServiceKey::new("prod", "web"), &self.body).expect("a valid record")
    }

    /// What the decision asks to read now.
    pub fn reads(&self) -> Reads {
        let service = ServiceState::Found(self.svc.clone());
        reads(
            &Desired::Valid(&self.spec()),
            Some(&service),
            &self.status,
            self.now,
        )
    }

    fn observe(&mut self) -> Observed {
        let r = self.reads();
        let visible = |d: &&ServiceDeployment| !self.unlisted.contains(&d.arn);
        let service_deployment = r.service_deployment.as_ref().map(|read| {
            let found = match read {
                ServiceDeploymentRead::Get { arn } => self
                    .deployments
                    .iter()
                    .filter(visible)
                    .find(|d| d.arn == *arn),
                ServiceDeploymentRead::Ongoing { since } => {
                    self.deployments.iter().filter(visible).rfind(|d| {
                        d.status.ongoing()
                            && since.is_none_or(|t| d.created_at.is_some_and(|c| c >= t))
                    })
                }
            };
            found.map_or(ServiceDeploymentView::Absent, |d| {
                ServiceDeploymentView::Found(d.clone())
            })
        });
        if service_deployment.is_some() {
            self.read_count += 1;
        }
        let gates = r
            .probes
            .iter()
            .filter_map(|p| Some((p.name().to_string(), self.readings.get(p.name())?.clone())))
            .collect();
        let targets = r
            .target_health
            .iter()
            .map(|tg| {
                let counts = if self.unhealthy.contains(tg) {
                    TargetCounts {
                        unhealthy: 2,
                        ..TargetCounts::default()
                    }
                } else {
                    TargetCounts {
                        healthy: 2,
                        ..TargetCounts::default()
                    }
                };
                (tg.clone(), counts)
            })
            .collect();
        Observed {
            service: Some(ServiceState::Found(self.svc.clone())),
            service_deployment,
            gates,
            targets,
            halt: self.halt.clone(),
            admission: self.admission.clone(),
            ..Observed::default()
        }
    }

    /// One reconcile: decide, apply every command, keep the new status.
    pub fn step(&mut self) -> Decision {
        let spec = self.spec();
        let observed = self.observe();
        let d = decide(&Desired::Valid(&spec), &observed, &self.status, self.now);
        for c in &d.commands {
            self.apply(c);
        }
        self.status = d.status.clone();
        self.events.extend(d.events.iter().cloned());
        d
    }

    fn apply(&mut self, c: &Command) {
        match c {
            Command::StartServiceDeployment(req) => {
                assert!(
                    !self.deployments.iter().any(|d| d.status.ongoing()),
                    "StartServiceDeployment while a deployment is ongoing: {:?}",
                    self.deployments
                );
                self.started.push((**req).clone());
                if self.takes == Takes::Lost {
                    return;
                }
                let native = self.svc.native.as_mut().expect("an ECS service");
                match &req.version {
                    Version::TaskDefinition(td) => native.task_definition = format!("{TD}{td}"),
                    Version::Image { image, container } => {
                        native.images.insert(container.clone(), image.clone());
                    }
                }
                let arn = sd(self.started.len());
                let deployed = target(&native.task_definition, &native.images, self.started.len());
                self.deployments.push(ServiceDeployment {
                    arn: arn.clone(),
                    status: ServiceDeploymentStatus::Pending,
                    status_reason: None,
                    stage: None,
                    pauses: vec![],
                    created_at: Some(self.now),
                    target_weight: None,
                    rollback_reason: None,
                    target: Some(deployed),
                });
                if self.takes == Takes::Unlisted {
                    self.unlisted.insert(arn);
                } else {
                    native.current_deployment = Some(arn);
                }
            }
            Command::ContinueServiceDeployment {
                arn,
                hook_id,
                action,
            } => {
                let d = self
                    .deployments
                    .iter()
                    .find(|d| d.arn == *arn)
                    .expect("answering a deployment that exists");
                assert!(
                    d.pauses
                        .iter()
                        .any(|p| p.hook_id == *hook_id && p.status == PauseStatus::AwaitingAction),
                    "answering {hook_id}, which does not wait: {d:?}"
                );
                self.answers.push((arn.clone(), hook_id.clone(), *action));
            }
            Command::StopServiceDeployment { arn } => {
                let d = self
                    .deployments
                    .iter()
                    .find(|d| d.arn == *arn)
                    .expect("stopping a deployment that exists");
                assert!(d.status.ongoing(), "stopping {arn}, which ended: {d:?}");
                self.stopped.push(arn.clone());
            }
            Command::InvokeHook { payload, .. } => self.hooks_called.push(payload.hook),
            other => panic!("not a command for ECS's own deployments: {other:?}"),
        }
    }

    pub fn last(&mut self) -> &mut ServiceDeployment {
        self.deployments.last_mut().expect("a deployment")
    }

    /// ECS lists the deployments it made.
    pub fn show(&mut self) {
        self.unlisted.clear();
        let arn = self.deployments.last().map(|d| d.arn.clone());
        self.svc.native.as_mut().unwrap().current_deployment = arn;
    }

    /// ECS moves the newest deployment on to `stage`, past the pause it
    /// waited at.
    pub fn at(&mut self, stage: LifecycleStage) {
        let d = self.last();
        d.status = InProgress;
        d.stage = Some(stage);
        for p in &mut d.pauses {
            if p.status == PauseStatus::AwaitingAction {
                p.status = PauseStatus::Succeeded;
            }
        }
    }

    /// ECS pauses the newest deployment at `stage`, under a new hook id.
    pub fn pause(&mut self, stage: LifecycleStage) -> String {
        self.at(stage);
        self.next_hook += 1;
        let hook_id = format!("hook-{}", self.next_hook);
        let expires_at = Some(self.now + Duration::from_secs(300));
        self.last().pauses.push(Pause {
            hook_id: hook_id.clone(),
            status: PauseStatus::AwaitingAction,
            expires_at,
        });
        hook_id
    }

    pub fn set_status(&mut self, s: ServiceDeploymentStatus) {
        self.last().status = s;
    }

    /// ECS rolled the newest deployment back: the service runs web:1 again.
    pub fn rolled_back(&mut self) {
        let d = self.last();
        d.status = RollbackSuccessful;
        for p in &mut d.pauses {
            if p.status == PauseStatus::AwaitingAction {
                p.status = PauseStatus::Failed;
            }
        }
        self.svc.native.as_mut().unwrap().task_definition = format!("{TD}web:1");
    }

    pub fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
    }

    /// The pauses answered, by hook id.
    pub fn answered(&self) -> Vec<(&str, PauseAction)> {
        self.answers
            .iter()
            .map(|(_, h, a)| (h.as_str(), *a))
            .collect()
    }

    pub fn rollout_id(&self) -> String {
        self.status
            .rollout
            .as_ref()
            .expect("a rollout")
            .id
            .to_string()
    }

    pub fn finished(&self) -> Vec<Outcome> {
        super::fixture::outcomes(&self.events)
    }

    /// The steps completed so far: (step, weight).
    pub fn steps_completed(&self) -> Vec<(u32, u32)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::StepCompleted { step, weight, .. } => Some((*step, *weight)),
                _ => None,
            })
            .collect()
    }

    /// Sets a gate reading taken now.
    pub fn read(&mut self, verdict: Verdict) {
        let at = self.now;
        self.readings.insert(
            "error-ratio".into(),
            Reading {
                at,
                verdict,
                detail: format!("error ratio {verdict:?}"),
            },
        );
    }
}

/// A record with a Prometheus gate that fails at its first failing reading.
fn gated(strategy: Value) -> Ecs {
    let mut body = native_record("web:2", strategy);
    body["gates"] = json!({"prometheus": [{
        "name": "error-ratio",
        "address": "http://prometheus:9090",
        "query": "sum(rate(errors[1m])) / sum(rate(requests[1m]))",
        "max": 0.01,
        "interval": "5s",
        "failure_threshold": 1,
    }]});
    Ecs::new(body)
}

/// A record for web:2 with its deployment started.
/// A rollout whose deployment ECS started and cutover has seen (so it
/// knows the new revision's target group, as it does long before the
/// first pause of a real deployment).
fn started(body: Value) -> Ecs {
    let mut w = Ecs::new(body);
    w.step();
    assert_eq!(w.started.len(), 1);
    if w.takes == Takes::Shown {
        w.step();
    }
    w
}

const CONTINUE: PauseAction = PauseAction::Continue;
const ROLLBACK: PauseAction = PauseAction::Rollback;

#[test]
fn a_new_revision_starts_one_service_deployment_with_ecss_strategy_bake_and_pauses() {
    let mut w = Ecs::new(native_record("web:2", canary()));
    let d = w.step();
    assert_eq!(w.status.phase(), Phase::Provisioning);
    assert_eq!(
        w.started,
        vec![StartServiceDeployment {
            version: Version::TaskDefinition("web:2".into()),
            strategy: NativeStrategy::Canary {
                percent: 10,
                bake_minutes: 5
            },
            bake_minutes: 2,
            pauses: vec![PreProductionTrafficShift, PostProductionTrafficShift],
            pause_timeout_minutes: 5,
        }]
    );
    assert!(
        d.events
            .iter()
            .any(|e| matches!(e, Event::RolloutStarted { .. })),
        "{:?}",
        d.events
    );
    // Its deployment shows: it is the rollout's, and nothing more starts.
    for _ in 0..3 {
        w.advance(S5);
        let d = w.step();
        assert!(d.commands.is_empty(), "{:?}", d.commands);
    }
    assert_eq!(w.started.len(), 1);
    assert_eq!(w.status.phase(), Phase::Provisioning);
    let known = w
        .status
        .rollout
        .as_ref()
        .unwrap()
        .service_deployment
        .as_ref();
    assert_eq!(known.map(|k| k.arn.as_str()), Some(sd(1).as_str()));
}

#[test]
fn the_records_hooks_add_pauses_at_their_stages_only() {
    let mut body = native_record("web:2", json!("all_at_once"));
    let hook = json!({"url": "http://hooks.internal/h"});
    body["hooks"] = json!({
        "before_install": hook, "after_install": hook, "after_test_traffic": hook,
        "before_production_traffic": hook, "after_production_traffic": hook,
    });
    let w = started(body);
    let s = &w.started[0];
    assert_eq!(s.strategy, NativeStrategy::BlueGreen);
    assert_eq!(
        s.pauses,
        vec![
            PreScaleUp,
            PostScaleUp,
            PostTestTrafficShift,
            PreProductionTrafficShift,
            PostProductionTrafficShift
        ]
    );
    let mut body = native_record("web:2", json!("all_at_once"));
    body["hooks"] = json!({"after_install": hook});
    let w = started(body);
    assert_eq!(
        w.started[0].pauses,
        vec![
            PostScaleUp,
            PreProductionTrafficShift,
            PostProductionTrafficShift
        ]
    );
}

#[test]
fn the_phase_follows_ecss_stage_and_an_unknown_stage_keeps_it() {
    let mut w = started(native_record("web:2", canary()));
    for (stage, phase) in [
        (ScaleUp, Phase::Provisioning),
        (TestTrafficShift, Phase::Testing),
        (ProductionTrafficShift, Phase::Shifting),
        (LifecycleStage::Other, Phase::Shifting),
        (BakeTime, Phase::Baking),
        (CleanUp, Phase::Finalizing),
    ] {
        w.at(stage);
        let d = w.step();
        assert_eq!(w.status.phase(), phase, "{stage}");
        assert!(d.commands.is_empty(), "{stage}: {:?}", d.commands);
    }
    w.set_status(RollbackInProgress);
    w.last().rollback_reason = Some("alarm web-5xx is in ALARM".into());
    let d = w.step();
    assert_eq!(w.status.phase(), Phase::RollingBack);
    assert!(d.commands.is_empty(), "ECS rolls back by itself");
}

#[test]
fn a_canary_answers_each_pause_once_its_gates_passed_since_the_pause_began() {
    let mut w = gated(canary());
    w.step();
    w.at(ScaleUp);
    w.step();
    // A passing reading taken before the first pause does not count.
    w.read(Verdict::Pass);
    w.advance(S5);
    let h1 = w.pause(PreProductionTrafficShift);
    for _ in 0..2 {
        w.step();
    }
    assert_eq!(w.status.phase(), Phase::Shifting);
    assert!(w.answers.is_empty(), "{:?}", w.answers);
    assert!(
        w.status.message.contains("error-ratio"),
        "{}",
        w.status.message
    );
    w.advance(S5);
    w.read(Verdict::Pass);
    w.step();
    assert_eq!(w.answered(), vec![(h1.as_str(), CONTINUE)]);
    assert_eq!(w.answers[0].0, sd(1));
    assert_eq!(w.steps_completed(), vec![(1, 10)]);

    // ECS shifts the canary, bakes it, and pauses before the rest.
    w.at(ProductionTrafficShift);
    w.last().target_weight = Some(10);
    w.advance(S5);
    w.read(Verdict::Pass);
    w.step();
    assert_eq!(w.status.weights, Some((90, 10)));
    w.advance(S5);
    let h2 = w.pause(PreProductionTrafficShift);
    for _ in 0..2 {
        w.step();
    }
    assert_eq!(
        w.answers.len(),
        1,
        "the canary's reading is older: {:?}",
        w.answers
    );
    w.advance(S5);
    w.read(Verdict::Pass);
    w.step();
    assert_eq!(
        w.answered(),
        vec![(h1.as_str(), CONTINUE), (h2.as_str(), CONTINUE)]
    );
    assert_eq!(w.steps_completed(), vec![(1, 10), (2, 100)]);

    // All traffic moved: the pause after it waits for the gates likewise.
    w.at(ProductionTrafficShift);
    w.last().target_weight = Some(100);
    w.step();
    w.advance(S5);
    let h3 = w.pause(PostProductionTrafficShift);
    for _ in 0..2 {
        w.step();
    }
    assert_eq!(w.status.phase(), Phase::Baking);
    assert_eq!(w.answers.len(), 2);
    w.advance(S5);
    w.read(Verdict::Pass);
    w.step();
    assert_eq!(w.answered()[2], (h3.as_str(), CONTINUE));
    assert_eq!(w.steps_completed().len(), 2, "not a production step");

    w.at(BakeTime);
    w.step();
    w.at(CleanUp);
    w.step();
    w.set_status(Successful);
    w.step();
    assert_eq!(w.status.phase(), Phase::Steady);
    assert!(w.status.rollout.is_none());
    assert_eq!(w.finished(), vec![Outcome::Promoted]);
    assert_eq!(w.status.stable_revision, Some(w.spec().revision));
    assert_eq!(w.started.len(), 1);
    assert!(w.stopped.is_empty());
}

#[test]
fn a_failing_gate_at_a_pause_answers_it_with_rollback_and_fails_the_revision() {
    let mut w = gated(canary());
    w.step();
    let h1 = w.pause(PreProductionTrafficShift);
    w.step();
    w.advance(S5);
    w.read(Verdict::Fail);
    w.step();
    assert_eq!(w.answered(), vec![(h1.as_str(), ROLLBACK)]);
    assert!(w.stopped.is_empty());
    assert_eq!(w.status.phase(), Phase::RollingBack);
    w.step();
    assert_eq!(w.answers.len(), 1, "asked once while ECS shows it");
    w.set_status(RollbackInProgress);
    w.step();
    assert_eq!(w.status.phase(), Phase::RollingBack);
    w.rolled_back();
    w.step();
    assert_eq!(w.status.phase(), Phase::Failed);
    let failed = w.status.failed.clone().unwrap();
    assert!(
        failed.reason.contains("gate error-ratio failed"),
        "{}",
        failed.reason
    );
    assert_eq!(w.finished(), vec![Outcome::RolledBack]);
    // The revision stays failed: not deployed again until retried.
    for _ in 0..3 {
        w.advance(S5);
        let d = w.step();
        assert!(d.commands.is_empty());
    }
    assert_eq!(w.status.phase(), Phase::Failed);
    assert_eq!(w.started.len(), 1);
    w.body["control"] = json!({"retry": failed.rollout.to_string()});
    w.step();
    assert_eq!(w.started.len(), 2);
    assert_eq!(w.status.rollout.as_ref().unwrap().id.attempt, 2);
}

#[test]
fn a_failing_gate_between_pauses_stops_the_deployment() {
    let mut w = gated(canary());
    w.step();
    w.at(BakeTime);
    w.step();
    assert_eq!(w.status.phase(), Phase::Baking);
    w.advance(S5);
    w.read(Verdict::Fail);
    w.step();
    assert_eq!(w.stopped, vec![sd(1)]);
    assert!(w.answers.is_empty());
    assert_eq!(w.status.phase(), Phase::RollingBack);
    w.rolled_back();
    w.step();
    assert_eq!(w.status.phase(), Phase::Failed);
    assert_eq!(w.finished(), vec![Outcome::RolledBack]);
}

#[test]
fn a_pause_that_timed_out_at_ecs_rolls_back_and_fails_with_ecss_reason() {
    let mut w = gated(canary());
    w.step();
    w.pause(PreProductionTrafficShift);
    w.step();
    w.step();
    assert!(w.answers.is_empty(), "no reading: no answer");
    // Nobody answered in time: ECS takes the timeout action, ROLLBACK.
    w.advance(Duration::from_secs(300));
    {
        let d = w.last();
        d.status = RollbackInProgress;
        d.pauses[0].status = PauseStatus::TimedOut;
        d.rollback_reason = Some("lifecycle hook timed out waiting for a response".into());
    }
    let d = w.step();
    assert_eq!(w.status.phase(), Phase::RollingBack);
    assert!(d.commands.is_empty(), "{:?}", d.commands);
    w.rolled_back();
    w.step();
    assert_eq!(w.status.phase(), Phase::Failed);
    let reason = &w.status.failed.as_ref().unwrap().reason;
    assert!(reason.contains("timed out waiting"), "{reason}");
    assert_eq!(w.finished(), vec![Outcome::RolledBack]);
    assert!(w.answers.is_empty() && w.stopped.is_empty());
}

#[test]
fn a_failed_rollback_fails_the_revision_and_raises_an_alert() {
    let mut w = started(native_record("web:2", canary()));
    w.at(ScaleUp);
    w.step();
    w.set_status(RollbackFailed);
    w.last().rollback_reason = Some("tasks of web:1 failed to start".into());
    let d = w.step();
    assert_eq!(w.status.phase(), Phase::Failed);
    assert!(
        d.events.iter().any(|e| matches!(
            e,
            Event::Alert { kind: AlertKind::RollbackFailed, reason, .. } if reason.contains("web:1 failed to start")
        )),
        "{:?}",
        d.events
    );
    assert_eq!(w.finished(), vec![Outcome::Failed]);
}

#[test]
fn abort_stops_the_deployment_and_ends_aborted() {
    let mut w = started(native_record("web:2", canary()));
    w.at(ScaleUp);
    w.step();
    let id = w.rollout_id();
    w.body["control"] = json!({"abort": id});
    w.step();
    assert_eq!(w.stopped, vec![sd(1)]);
    assert!(w.answers.is_empty());
    assert_eq!(w.status.phase(), Phase::RollingBack);
    w.set_status(RollbackInProgress);
    w.step();
    w.rolled_back();
    w.step();
    assert_eq!(w.status.phase(), Phase::Failed);
    assert_eq!(w.finished(), vec![Outcome::Aborted]);
    for _ in 0..3 {
        w.advance(S5);
        w.step();
    }
    assert_eq!(
        w.started.len(),
        1,
        "an aborted revision is not deployed again"
    );
}

#[test]
fn a_newer_revision_stops_the_deployment_in_flight_and_starts_once_it_ended() {
    let mut w = started(native_record("web:2", canary()));
    w.at(ScaleUp);
    w.step();
    w.body["task_definition"] = json!("web:3");
    w.step();
    assert_eq!(w.stopped, vec![sd(1)]);
    assert_eq!(
        w.started.len(),
        1,
        "nothing new while the old one is ongoing"
    );
    assert_eq!(w.status.phase(), Phase::RollingBack);
    w.set_status(RollbackInProgress);
    // The fake panics if an update arrives while sd-1 is ongoing.
    for _ in 0..4 {
        w.advance(S5);
        w.step();
    }
    assert_eq!(w.started.len(), 1);
    w.rolled_back();
    w.step();
    if w.started.len() == 1 {
        w.step();
    }
    assert_eq!(w.finished(), vec![Outcome::Superseded]);
    assert_eq!(w.started.len(), 2);
    assert_eq!(
        w.started[1].version,
        Version::TaskDefinition("web:3".into())
    );
    assert_eq!(w.status.phase(), Phase::Provisioning);
    assert!(
        w.status.failed.is_none(),
        "a superseded revision did not fail"
    );
}

#[test]
fn without_auto_promote_the_last_production_pause_waits_for_promotion() {
    let mut body = native_record("web:2", canary());
    body["auto_promote"] = json!(false);
    let mut w = started(body);
    let h1 = w.pause(PreProductionTrafficShift);
    w.step();
    assert_eq!(
        w.answered(),
        vec![(h1.as_str(), CONTINUE)],
        "not the last step"
    );
    w.at(ProductionTrafficShift);
    w.step();
    let h2 = w.pause(PreProductionTrafficShift);
    for _ in 0..3 {
        w.advance(S5);
        w.step();
        assert_eq!(w.status.phase(), Phase::AwaitingPromotion);
    }
    assert_eq!(w.answers.len(), 1);
    assert!(
        w.status.message.contains("cutover promote prod/web"),
        "{}",
        w.status.message
    );
    let id = w.rollout_id();
    let step = w.status.rollout.as_ref().unwrap().step;
    assert_eq!(step, 1);
    // A promotion of another step is not this one.
    w.body["control"] = json!({"promote": {"rollout": id, "step": 0}});
    w.step();
    assert_eq!(w.status.phase(), Phase::AwaitingPromotion);
    assert_eq!(w.answers.len(), 1);
    w.body["control"] = json!({"promote": {"rollout": id, "step": step}});
    w.step();
    assert_eq!(
        w.answered(),
        vec![(h1.as_str(), CONTINUE), (h2.as_str(), CONTINUE)]
    );
    assert_eq!(w.status.phase(), Phase::Shifting);
    assert_eq!(w.steps_completed(), vec![(1, 10), (2, 100)]);
}

#[test]
fn paused_holds_a_pause_unanswered_until_unpaused() {
    let mut w = started(native_record("web:2", canary()));
    w.body["paused"] = json!(true);
    let h1 = w.pause(PreProductionTrafficShift);
    for _ in 0..3 {
        w.advance(S5);
        w.step();
        assert_eq!(w.status.phase(), Phase::Paused);
    }
    assert!(w.answers.is_empty());
    w.body["paused"] = json!(false);
    w.step();
    assert_eq!(w.answered(), vec![(h1.as_str(), CONTINUE)]);
    assert_eq!(w.status.phase(), Phase::Shifting);
}

#[test]
fn an_answer_is_resent_for_the_same_pause_only_after_resend_after() {
    let mut w = started(native_record("web:2", canary()));
    let h1 = w.pause(PreProductionTrafficShift);
    w.step();
    assert_eq!(w.answers.len(), 1);
    // ECS still shows the pause waiting: it shows answers late.
    let tick = Duration::from_secs(4);
    for _ in 0..2 {
        w.advance(tick);
        w.step();
    }
    assert_eq!(w.answers.len(), 1, "not again within {RESEND_AFTER:?}");
    w.advance(RESEND_AFTER - tick * 2);
    w.step();
    assert_eq!(
        w.answered(),
        vec![(h1.as_str(), CONTINUE), (h1.as_str(), CONTINUE)]
    );
    assert_eq!(w.status.rollout.as_ref().unwrap().step, 1);
    assert_eq!(w.steps_completed(), vec![(1, 10)]);
    let known = w
        .status
        .rollout
        .as_ref()
        .unwrap()
        .service_deployment
        .clone();
    assert_eq!(known.unwrap().pauses_passed, 1);
    // ECS went on and paused again: the next pause is the next step.
    w.at(ProductionTrafficShift);
    w.step();
    let h2 = w.pause(PreProductionTrafficShift);
    w.step();
    assert_eq!(w.answered()[2], (h2.as_str(), CONTINUE));
    assert_eq!(w.steps_completed(), vec![(1, 10), (2, 100)]);
}

#[test]
fn a_lost_status_adopts_the_deployment_of_the_records_revision() {
    let mut w = started(native_record("web:2", canary()));
    w.at(ScaleUp);
    w.step();
    let before = w.status.rollout.as_ref().unwrap().id.clone();
    // A restart after a whole-item PutItem: the status is gone.
    w.status = Status::default();
    let d = w.step();
    assert!(d.commands.is_empty(), "{:?}", d.commands);
    assert_eq!(w.started.len(), 1);
    assert!(
        d.events
            .iter()
            .any(|e| matches!(e, Event::RolloutAdopted { .. })),
        "{:?}",
        d.events
    );
    assert!(
        !d.events
            .iter()
            .any(|e| matches!(e, Event::RolloutStarted { .. })),
        "{:?}",
        d.events
    );
    let r = w.status.rollout.as_ref().unwrap();
    assert_eq!(r.id, before);
    assert_eq!(
        r.service_deployment.as_ref().map(|k| k.arn.clone()),
        Some(sd(1))
    );
    assert_eq!(w.status.phase(), Phase::Provisioning);
    // It goes on.
    let h1 = w.pause(PreProductionTrafficShift);
    w.step();
    assert_eq!(w.answered(), vec![(h1.as_str(), CONTINUE)]);
    w.set_status(Successful);
    w.step();
    assert_eq!(w.status.phase(), Phase::Steady);
    assert_eq!(w.finished(), vec![Outcome::Promoted]);
}

#[test]
fn a_deployment_of_another_revision_in_flight_is_waited_for() {
    let mut w = Ecs::new(native_record("web:2", canary()));
    // Someone else deploys web:5.
    let now = w.now;
    w.deployments.push(ServiceDeployment {
        arn: sd(9),
        status: InProgress,
        status_reason: None,
        stage: Some(ScaleUp),
        pauses: vec![],
        created_at: Some(now),
        target_weight: None,
        rollback_reason: None,
        target: Some(target(&format!("{TD}web:5"), &BTreeMap::new(), 9)),
    });
    let native = w.svc.native.as_mut().unwrap();
    native.task_definition = format!("{TD}web:5");
    native.current_deployment = Some(sd(9));
    for _ in 0..3 {
        w.step();
        w.advance(S5);
        assert!(w.started.is_empty());
        assert!(w.status.rollout.is_none());
    }
    assert!(w.status.message.contains("sd-9"), "{}", w.status.message);
    w.set_status(Successful);
    w.step();
    assert_eq!(w.started.len(), 1, "deployed once the service is free");
}

#[test]
fn a_lost_status_after_success_is_steady_without_a_command() {
    let mut w = started(native_record("web:2", canary()));
    w.set_status(Successful);
    w.step();
    assert_eq!(w.status.phase(), Phase::Steady);
    w.status = Status::default();
    let d = w.step();
    assert_eq!(w.status.phase(), Phase::Steady);
    assert!(d.commands.is_empty(), "{:?}", d.commands);
    assert!(
        !d.events.iter().any(|e| matches!(
            e,
            Event::RolloutStarted { .. } | Event::RolloutAdopted { .. }
        )),
        "{:?}",
        d.events
    );
    assert_eq!(w.status.stable_revision, Some(w.spec().revision));
    assert_eq!(w.started.len(), 1);
}

#[test]
fn an_update_taken_but_not_yet_listed_is_not_sent_again() {
    let mut w = Ecs::new(native_record("web:2", canary()));
    w.takes = Takes::Unlisted;
    w.step();
    for _ in 0..6 {
        w.advance(S5);
        let d = w.step();
        assert!(d.commands.is_empty(), "{:?}", d.commands);
    }
    assert_eq!(w.started.len(), 1);
    assert_eq!(w.status.phase(), Phase::Provisioning);
    assert!(
        w.status.message.contains("waiting for ECS to show"),
        "{}",
        w.status.message
    );
    w.show();
    w.step();
    let known = w
        .status
        .rollout
        .as_ref()
        .unwrap()
        .service_deployment
        .as_ref();
    assert_eq!(known.map(|k| k.arn.as_str()), Some(sd(1).as_str()));
}

#[test]
fn an_update_not_taken_is_sent_again_only_after_resend_after() {
    let mut w = Ecs::new(native_record("web:2", canary()));
    w.takes = Takes::Lost;
    w.step();
    let tick = Duration::from_secs(4);
    for _ in 0..2 {
        w.advance(tick);
        w.step();
    }
    assert_eq!(w.started.len(), 1, "not again within {RESEND_AFTER:?}");
    w.takes = Takes::Shown;
    w.advance(RESEND_AFTER - tick * 2);
    w.step();
    assert_eq!(w.started.len(), 2);
    assert_eq!(w.started[0], w.started[1]);
    w.step();
    let known = w
        .status
        .rollout
        .as_ref()
        .unwrap()
        .service_deployment
        .as_ref();
    assert_eq!(known.map(|k| k.arn.as_str()), Some(sd(2).as_str()));
}

#[test]
fn no_deployment_within_the_progress_deadline_fails_the_revision() {
    let mut w = Ecs::new(native_record("web:2", canary()));
    w.takes = Takes::Lost;
    w.step();
    let deadline = w.now + Duration::from_secs(300);
    while w.now < deadline {
        w.advance(S5);
        w.step();
    }
    assert_eq!(w.status.phase(), Phase::Failed);
    let reason = &w.status.failed.as_ref().unwrap().reason;
    assert!(reason.contains("progress deadline"), "{reason}");
    assert_eq!(w.finished(), vec![Outcome::Failed]);
}

#[test]
fn a_service_on_another_deployment_controller_is_held_without_reads() {
    for controller in ["EXTERNAL", "CODE_DEPLOY"] {
        let mut w = Ecs::new(native_record("web:2", canary()));
        w.svc.deployment_controller = controller.into();
        assert!(w.reads().is_empty(), "{controller}");
        let d = w.step();
        assert!(d.commands.is_empty(), "{controller}");
        assert_eq!(w.status.phase(), Phase::Invalid, "{controller}");
        assert!(
            w.status.message.contains(controller)
                && w.status.message.contains("deploymentController ECS"),
            "{}",
            w.status.message
        );
        assert_eq!(w.read_count, 0);
    }
}

#[test]
fn a_steady_service_reads_nothing() {
    // The service already runs the record's revision.
    let mut w = Ecs::new(native_record("web:1", canary()));
    let d = w.step();
    assert_eq!(w.status.phase(), Phase::Steady);
    assert!(d.commands.is_empty());
    assert!(w.reads().is_empty(), "{:?}", w.reads());
    // And after a deployment succeeded.
    let mut w = started(native_record("web:2", canary()));
    w.set_status(Successful);
    w.step();
    assert_eq!(w.status.phase(), Phase::Steady);
    assert!(w.reads().is_empty(), "{:?}", w.reads());
    let reads = w.read_count;
    w.step();
    assert_eq!(w.read_count, reads);
}

fn hooked() -> Ecs {
    let mut body = native_record("web:2", json!("all_at_once"));
    body["hooks"] =
        json!({"before_install": {"url": "http://hooks.internal/pre", "timeout": "5m"}});
    started(body)
}

fn verdict(w: &mut Ecs, answer: &str) {
    let id = w.rollout_id();
    w.body["control"] = json!({"hooks": {"before_install": {"rollout": id, "verdict": answer, "detail": "migrations"}}});
}

#[test]
fn a_hook_is_called_at_its_pause_and_its_pass_answers_it_with_continue() {
    let mut w = hooked();
    let h1 = w.pause(PreScaleUp);
    for _ in 0..3 {
        w.advance(S5);
        w.step();
    }
    assert_eq!(
        w.hooks_called,
        vec![HookPoint::BeforeInstall],
        "called once"
    );
    assert!(w.answers.is_empty());
    assert_eq!(w.status.phase(), Phase::Provisioning);
    verdict(&mut w, "pass");
    w.step();
    assert_eq!(w.answered(), vec![(h1.as_str(), CONTINUE)]);
    assert!(w.steps_completed().is_empty(), "not a production step");
}

#[test]
fn a_hook_that_says_fail_answers_its_pause_with_rollback() {
    let mut w = hooked();
    let h1 = w.pause(PreScaleUp);
    w.step();
    verdict(&mut w, "fail");
    w.step();
    assert_eq!(w.answered(), vec![(h1.as_str(), ROLLBACK)]);
    assert_eq!(w.status.phase(), Phase::RollingBack);
    w.rolled_back();
    w.step();
    assert_eq!(w.status.phase(), Phase::Failed);
    let reason = &w.status.failed.as_ref().unwrap().reason;
    assert!(
        reason.contains("before_install") && reason.contains("migrations"),
        "{reason}"
    );
}

#[test]
fn a_newer_revision_written_before_the_update_shows_does_not_start_beside_it() {
    let mut w = Ecs::new(native_record("web:2", canary()));
    w.takes = Takes::Unlisted;
    w.step();
    w.body["task_definition"] = json!("web:3");
    // The update to web:2 was taken: its deployment is ongoing although
    // ECS does not list it yet. The fake panics on a start beside it.
    for _ in 0..4 {
        w.advance(S5);
        w.step();
    }
    assert_eq!(w.started.len(), 1);
    w.show();
    w.step();
    assert_eq!(w.stopped, vec![sd(1)]);
    w.rolled_back();
    w.step();
    if w.started.len() == 1 {
        w.step();
    }
    assert_eq!(w.finished(), vec![Outcome::Superseded]);
    assert_eq!(
        w.started[1].version,
        Version::TaskDefinition("web:3".into())
    );
}

#[test]
fn a_newer_revision_after_an_update_that_never_shows_starts_at_the_progress_deadline() {
    let mut w = Ecs::new(native_record("web:2", canary()));
    w.takes = Takes::Lost;
    w.step();
    w.takes = Takes::Shown;
    w.body["task_definition"] = json!("web:3");
    let deadline = w.now + Duration::from_secs(300);
    while w.started.len() == 1 && w.now <= deadline {
        w.advance(S5);
        w.step();
    }
    assert_eq!(w.finished(), vec![Outcome::Superseded]);
    assert_eq!(
        w.started[1].version,
        Version::TaskDefinition("web:3".into())
    );
    assert!(w.status.failed.is_none());
}

#[test]
fn a_rollout_adopted_at_its_last_production_pause_still_waits_for_promotion() {
    let mut body = native_record("web:2", canary());
    body["auto_promote"] = json!(false);
    let mut w = started(body);
    w.pause(PreProductionTrafficShift);
    w.step();
    assert_eq!(w.answers.len(), 1);
    w.at(ProductionTrafficShift);
    w.last().target_weight = Some(10);
    w.step();
    let h2 = w.pause(PreProductionTrafficShift);
    w.step();
    assert_eq!(w.status.phase(), Phase::AwaitingPromotion);
    // A restart after a whole-item PutItem: the status is gone.
    w.status = Status::default();
    for _ in 0..3 {
        w.advance(S5);
        w.step();
    }
    assert_eq!(w.answers.len(), 1, "promotion skipped: {:?}", w.answers);
    assert_eq!(w.status.phase(), Phase::AwaitingPromotion);
    let id = w.rollout_id();
    let step = w.status.rollout.as_ref().unwrap().step;
    assert_eq!(step, 1, "the canary's step passed before the restart");
    w.body["control"] = json!({"promote": {"rollout": id, "step": step}});
    w.step();
    assert_eq!(w.answered()[1], (h2.as_str(), CONTINUE));
    let completed = w.steps_completed();
    assert_eq!(completed.last(), Some(&(2, 100)), "{completed:?}");
}

/// The revision a deployment deploys: its tasks register in a target group
/// of their own (`tg-<n>`), two of them.
fn target(task_definition: &str, images: &BTreeMap<String, String>, n: usize) -> TargetRevision {
    TargetRevision {
        task_definition: task_definition.to_string(),
        images: images.clone(),
        target_groups: vec![format!("tg-{n}")],
        requested_tasks: Some(2),
    }
}

/// ECS's blue/green has no circuit breaker: a new revision that never
/// turns healthy is kept from its first production step by cutover's
/// target health gate, and rolled back once the grace and the failing
/// looks are spent.
#[test]
fn a_new_revision_that_never_turns_healthy_gets_no_traffic_and_is_rolled_back() {
    let mut w = started(native_record("web:2", canary()));
    w.unhealthy.insert("tg-1".into());
    let h1 = w.pause(PreProductionTrafficShift);
    // The default grace (5m) passes without an answer.
    let grace_end = w.now + Duration::from_secs(300);
    while w.now < grace_end {
        w.step();
        assert!(w.answers.is_empty(), "no step for an unhealthy revision");
        assert_eq!(w.status.phase(), Phase::Shifting);
        w.advance(S5);
    }
    // Then the failing looks count: the second (the default threshold) rolls back.
    w.step();
    w.advance(S5);
    w.step();
    assert_eq!(w.answered(), vec![(h1.as_str(), ROLLBACK)]);
    assert_eq!(w.status.phase(), Phase::RollingBack);
    w.rolled_back();
    w.step();
    assert_eq!(w.status.phase(), Phase::Failed);
    let why = &w.status.failed.as_ref().expect("failed").reason;
    assert!(why.contains("target_health"), "{why}");
    assert!(why.contains("0 healthy targets of the 2"), "{why}");
}

/// Once the new revision serves production, a shortfall is not waited
/// out: no weight can be taken back short of a rollback.
#[test]
fn a_revision_that_turns_unhealthy_with_traffic_is_stopped_without_a_grace() {
    let mut w = started(native_record("web:2", canary()));
    w.pause(PreProductionTrafficShift);
    w.step();
    assert_eq!(w.answers.len(), 1);
    w.at(ProductionTrafficShift);
    w.last().target_weight = Some(10);
    w.step();
    w.unhealthy.insert("tg-1".into());
    w.advance(S5);
    w.step();
    assert!(
        w.stopped.is_empty(),
        "one failing look is not yet a failure"
    );
    w.advance(S5);
    w.step();
    assert_eq!(w.stopped, vec![sd(1)]);
    assert_eq!(w.status.phase(), Phase::RollingBack);
}

/// Past the last pause ECS bakes and then removes the old revision
/// without asking: a failing look there rolls back at once, since the
/// threshold's second look may come after the old revision is gone (native
/// simulation seed 18: the tasks of a revision failed while ECS baked, and
/// ECS removed the old revision between the two looks).
#[test]
fn a_revision_failing_while_ecs_bakes_is_stopped_at_the_first_failing_look() {
    let mut w = started(native_record("web:2", json!("all_at_once")));
    w.pause(PreProductionTrafficShift);
    w.step();
    w.at(ProductionTrafficShift);
    w.last().target_weight = Some(100);
    w.step();
    w.pause(PostProductionTrafficShift);
    w.step();
    assert_eq!(w.answers.len(), 2, "both pauses answered: {:?}", w.answers);
    w.at(BakeTime);
    w.step();
    assert_eq!(w.status.phase(), Phase::Baking);
    assert!(w.stopped.is_empty());
    w.unhealthy.insert("tg-1".into());
    w.advance(S5);
    w.step();
    assert_eq!(w.stopped, vec![sd(1)]);
    assert_eq!(w.status.phase(), Phase::RollingBack);
    w.rolled_back();
    w.step();
    assert_eq!(w.status.phase(), Phase::Failed);
}

/// A service without a load balancer target group (Service Connect, VPC
/// Lattice) has no targets to count: its pauses are answered on the
/// analysis gates alone.
#[test]
fn a_revision_without_a_target_group_is_not_held_by_target_health() {
    let mut w = Ecs::new(native_record("web:2", canary()));
    w.step();
    if let Some(t) = w.last().target.as_mut() {
        t.target_groups.clear();
    }
    w.step();
    let h1 = w.pause(PreProductionTrafficShift);
    w.step();
    assert_eq!(w.answered(), vec![(h1.as_str(), CONTINUE)]);
}

/// The update landed, its reply was lost (so no status was written) and
/// ECS does not show the deployment yet: the service is set to the
/// revision, and that is not steady. No second update goes out either.
#[test]
fn an_update_whose_reply_was_lost_is_not_taken_for_steady_before_its_deployment_shows() {
    let mut w = Ecs::new(native_record("web:2", canary()));
    w.takes = Takes::Unlisted;
    w.step();
    // The reply was lost: the controller wrote no status.
    w.status = Status::default();
    for _ in 0..3 {
        w.advance(S5);
        w.step();
        assert_ne!(w.status.phase(), Phase::Steady, "{}", w.status.message);
        assert_eq!(w.started.len(), 1, "a second UpdateService");
    }
    w.show();
    w.step();
    assert!(w.status.rollout.is_some(), "{}", w.status.message);
    assert_eq!(w.started.len(), 1);
}

#[test]
fn a_fleet_wide_halt_holds_a_pause_unanswered_with_its_reason_until_lifted() {
    let mut w = started(native_record("web:2", canary()));
    w.halt = Some(crate::rollout::halt::Halt {
        reason: "INC-7: error budget burning".into(),
        by: None,
        since: None,
    });
    let h1 = w.pause(PreProductionTrafficShift);
    for _ in 0..3 {
        w.advance(S5);
        w.step();
        assert_eq!(w.status.phase(), Phase::Paused);
        assert!(
            w.status.message.contains("INC-7: error budget burning"),
            "{}",
            w.status.message
        );
    }
    assert!(w.answers.is_empty(), "no pause answered while halted");
    w.halt = None;
    w.step();
    assert_eq!(w.answered(), vec![(h1.as_str(), CONTINUE)]);
    assert_eq!(w.status.phase(), Phase::Shifting);
}
