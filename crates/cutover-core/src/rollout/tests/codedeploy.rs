//! The CodeDeploy driver's decisions, against a tiny CodeDeploy that keeps
//! its deployments where a test can move them from state to state.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::rollout::deployment::{
    ContinueWait, CreateDeployment, Deployment, DeploymentRead, DeploymentStatus, DeploymentView,
    EventStatus,
};
use crate::rollout::gate::{Reading, Verdict};
use crate::rollout::{
    Command, Decision, Desired, EcsService, Event, Observed, Outcome, Phase, ServiceKey,
    ServiceState, Spec, Stability, Status, TaskSet, TaskSetStatus, decide, parse_record, reads,
};
use crate::time::Timestamp;

pub fn cd_record(td: &str) -> Value {
    json!({
        "service": "prod/web",
        "driver": "codedeploy",
        "codedeploy": {"application": "web-app", "deployment_group": "web-dg"},
        "task_definition": td,
        "container": "app",
        "container_port": 8080,
    })
}

pub struct Cd {
    pub body: Value,
    pub svc: EcsService,
    pub deployments: Vec<Deployment>,
    pub status: Status,
    pub now: Timestamp,
    pub created: Vec<CreateDeployment>,
    pub stopped: Vec<String>,
    pub continued: Vec<(String, ContinueWait)>,
    pub readings: BTreeMap<String, Reading>,
    /// Reads of the group's in-flight deployments, and of one by id.
    pub listed: u32,
    pub lifecycle_reads: u32,
    pub events: Vec<Event>,
    /// The admission under the concurrency limits the next observation
    /// reports.
    pub admission: Option<crate::rollout::admission::Admission>,
    /// The fleet-wide halt the next observation reports.
    pub halt: Option<crate::rollout::halt::Halt>,
}

impl Cd {
    pub fn new(body: Value) -> Cd {
        let primary = TaskSet {
            id: "ecs-svc/1".into(),
            arn: "arn:aws:ecs:us-east-1:1:task-set/prod/web/ecs-svc/1".into(),
            task_definition: "arn:aws:ecs:us-east-1:1:task-definition/web:1".into(),
            external_id: Some("d-BLUE".into()),
            status: TaskSetStatus::Primary,
            stability: Stability::SteadyState,
            scale_percent: 100.0,
            computed_desired: Some(2),
            running: Some(2),
            pending: Some(0),
            target_group: None,
            created_at: None,
        };
        Cd {
            body,
            svc: EcsService {
                desired_count: 2,
                deployment_controller: "CODE_DEPLOY".into(),
                native: None,
                task_sets: vec![primary],
            },
            deployments: Vec::new(),
            status: Status::default(),
            now: Timestamp(1_700_000_000_000),
            created: Vec::new(),
            stopped: Vec::new(),
            continued: Vec::new(),
            readings: BTreeMap::new(),
            listed: 0,
            lifecycle_reads: 0,
            events: Vec::new(),
            admission: None,
            halt: None,
        }
    }

    pub fn spec(&self) -> Spec {
        parse_record(&ServiceKey::new("prod", "web"), &self.body).expect("a valid record")
    }

    fn observe(&mut self, spec: &Spec) -> Observed {
        let service = ServiceState::Found(self.svc.clone());
        let r = reads(
            &Desired::Valid(spec),
            Some(&service),
            &self.status,
            self.now,
        );
        let deployment = r.deployment.as_ref().map(|read| match read {
            DeploymentRead::Get { id, lifecycle } => {
                if *lifecycle {
                    self.lifecycle_reads += 1;
                }
                match self.deployments.iter().find(|d| d.id == *id) {
                    Some(d) => DeploymentView::Found(d.clone()),
                    None => DeploymentView::Absent,
                }
            }
            DeploymentRead::InFlight { since, .. } => {
                self.listed += 1;
                let listed = |d: &&Deployment| match since {
                    Some(t) => d.created_at.is_some_and(|c| c >= *t),
                    None => d.status.in_flight(),
                };
                match self.deployments.iter().rev().find(listed) {
                    Some(d) => DeploymentView::Found(d.clone()),
                    None => DeploymentView::Absent,
                }
            }
        });
        let gates = r
            .probes
            .iter()
            .filter_map(|p| Some((p.name().to_string(), self.readings.get(p.name())?.clone())))
            .collect();
        Observed {
            service: Some(service),
            deployment,
            gates,
            admission: self.admission.clone(),
            halt: self.halt.clone(),
            ..Observed::default()
        }
    }

    /// One reconcile: decide, apply every command, keep the new status.
    pub fn step(&mut self) -> Decision {
        let spec = self.spec();
        let observed = self.observe(&spec);
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
            Command::CreateDeployment(req) => {
                assert!(
                    !self.deployments.iter().any(|d| d.status.in_flight()),
                    "a second deployment while one is in flight"
                );
                self.created.push((**req).clone());
                self.deployments.push(Deployment {
                    id: format!("d-{}", self.created.len()),
                    status: DeploymentStatus::Created,
                    description: Some(req.description.clone()),
                    error: None,
                    termination_wait_started: false,
                    created_at: Some(self.now),
                    lifecycle: BTreeMap::new(),
                    traffic: None,
                });
            }
            Command::StopDeployment { deployment_id } => self.stopped.push(deployment_id.clone()),
            Command::ContinueDeployment {
                deployment_id,
                wait,
            } => self.continued.push((deployment_id.clone(), *wait)),
            other => panic!("not a CodeDeploy command: {other:?}"),
        }
    }

    pub fn last(&mut self) -> &mut Deployment {
        self.deployments.last_mut().expect("a deployment")
    }

    pub fn set_status(&mut self, s: DeploymentStatus) {
        self.last().status = s;
    }

    pub fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
    }

    pub fn finished(&self) -> Vec<Outcome> {
        super::fixture::outcomes(&self.events)
    }
}

/// A record for `web:2` with its deployment created.
fn created() -> Cd {
    let mut w = Cd::new(cd_record("web:2"));
    w.step();
    assert_eq!(w.created.len(), 1);
    w
}

#[test]
fn a_new_task_definition_creates_one_deployment_with_an_appspec_of_the_record() {
    let mut w = Cd::new(cd_record("web:2"));
    let d = w.step();
    assert_eq!(w.status.phase(), Phase::Provisioning);
    let c = &w.created[0];
    assert_eq!(
        (c.application.as_str(), c.deployment_group.as_str()),
        ("web-app", "web-dg")
    );
    assert_eq!(
        (
            c.task_definition.as_str(),
            c.container.as_str(),
            c.container_port
        ),
        ("web:2", "app", 8080)
    );
    assert!(c.appspec().contains("\"ContainerName\":\"app\""));
    assert!(matches!(d.events[0], Event::RolloutStarted { .. }));
}

#[test]
fn created_and_queued_deployments_are_provisioning() {
    let mut w = created();
    for s in [DeploymentStatus::Created, DeploymentStatus::Queued] {
        w.set_status(s);
        let d = w.step();
        assert_eq!(w.status.phase(), Phase::Provisioning, "{s}");
        assert!(d.commands.is_empty());
        assert_eq!(w.status.deployment.as_ref().unwrap().id, "d-1");
    }
    assert_eq!(w.created.len(), 1);
}

#[test]
fn in_progress_follows_the_lifecycle_events_read_while_it_moves() {
    let mut w = created();
    w.step();
    w.set_status(DeploymentStatus::InProgress);
    w.step();
    assert_eq!(w.status.phase(), Phase::Provisioning);
    w.last().lifecycle = BTreeMap::from([
        ("Install".into(), EventStatus::Succeeded),
        ("AllowTestTraffic".into(), EventStatus::InProgress),
    ]);
    w.step();
    assert_eq!(w.status.phase(), Phase::Testing);
    assert!(
        w.lifecycle_reads > 0,
        "lifecycle events are read while in progress"
    );
    w.last()
        .lifecycle
        .insert("AllowTraffic".into(), EventStatus::InProgress);
    w.last().traffic = Some((90, 10));
    w.step();
    assert_eq!(w.status.phase(), Phase::Shifting);
    assert_eq!(w.status.weights, Some((90, 10)));
}

#[test]
fn the_termination_wait_is_baking() {
    let mut w = created();
    w.set_status(DeploymentStatus::InProgress);
    w.last().termination_wait_started = true;
    w.step();
    assert_eq!(w.status.phase(), Phase::Baking);
    w.set_status(DeploymentStatus::Baking);
    w.step();
    assert_eq!(w.status.phase(), Phase::Baking);
}

#[test]
fn a_ready_deployment_waits_for_promotion_then_continues() {
    let mut body = cd_record("web:2");
    body["auto_promote"] = json!(false);
    let mut w = Cd::new(body);
    w.step();
    w.set_status(DeploymentStatus::Ready);
    for _ in 0..3 {
        let d = w.step();
        assert!(d.commands.is_empty());
        assert_eq!(w.status.phase(), Phase::AwaitingPromotion);
    }
    assert!(
        w.status.message.contains("cutover promote prod/web"),
        "{}",
        w.status.message
    );
    let rollout = w.status.rollout.as_ref().unwrap();
    w.body["control"] =
        json!({"promote": {"rollout": rollout.id.to_string(), "step": rollout.step}});
    w.step();
    assert_eq!(
        w.continued,
        vec![("d-1".to_string(), ContinueWait::ReadyWait)]
    );
}

#[test]
fn auto_promote_continues_a_ready_deployment_once_its_gates_pass() {
    let mut body = cd_record("web:2");
    body["gates"] = json!({"http": [{"name": "smoke", "url": "http://smoke/ok"}]});
    let mut w = Cd::new(body);
    w.step();
    w.set_status(DeploymentStatus::Ready);
    w.step();
    assert!(w.continued.is_empty(), "no reading yet");
    assert!(w.status.message.contains("smoke"), "{}", w.status.message);
    w.advance(Duration::from_secs(15));
    let at = w.now;
    w.readings.insert(
        "smoke".into(),
        Reading {
            at,
            verdict: Verdict::Pass,
            detail: "200".into(),
        },
    );
    w.step();
    assert_eq!(w.continued.len(), 1);
}

#[test]
fn succeeded_is_steady_and_the_rollout_ends_promoted() {
    let mut w = created();
    w.set_status(DeploymentStatus::Succeeded);
    let d = w.step();
    assert_eq!(w.status.phase(), Phase::Steady);
    assert!(w.status.rollout.is_none() && w.status.deployment.is_none());
    assert_eq!(w.finished(), vec![Outcome::Promoted]);
    assert_eq!(d.wake, crate::rollout::Wake::Idle);
    // The stored status says the revision serves: no more reads, no create.
    let listed = w.listed;
    w.step();
    assert_eq!(w.listed, listed);
    assert_eq!(w.created.len(), 1);
}

#[test]
fn a_failed_deployment_fails_the_revision_with_codedeploys_reason() {
    let mut w = created();
    w.set_status(DeploymentStatus::Failed);
    w.last().error = Some("HEALTH_CONSTRAINTS: tasks failed to start".into());
    w.step();
    assert_eq!(w.status.phase(), Phase::Failed);
    let reason = &w.status.failed.as_ref().unwrap().reason;
    assert!(reason.contains("HEALTH_CONSTRAINTS"), "{reason}");
    assert_eq!(w.finished(), vec![Outcome::RolledBack]);
    // Failed stays failed: no second deployment of the same revision.
    w.step();
    assert_eq!(w.created.len(), 1);
}

#[test]
fn a_deployment_stopped_by_someone_else_fails_the_revision() {
    let mut w = created();
    w.set_status(DeploymentStatus::Stopped);
    w.step();
    assert_eq!(w.status.phase(), Phase::Failed);
    assert!(w.status.message.contains("stopped"), "{}", w.status.message);
}

#[test]
fn abort_stops_the_deployment_with_a_rollback() {
    let mut w = created();
    w.set_status(DeploymentStatus::InProgress);
    w.step();
    let id = w.status.rollout.as_ref().unwrap().id.to_string();
    w.body["control"] = json!({"abort": id});
    w.step();
    assert_eq!(w.stopped, vec!["d-1".to_string()]);
    assert_eq!(w.status.phase(), Phase::RollingBack);
    w.set_status(DeploymentStatus::Stopped);
    w.step();
    assert_eq!(w.status.phase(), Phase::Failed);
    assert_eq!(w.finished(), vec![Outcome::Aborted]);
}

#[test]
fn a_failed_gate_stops_the_deployment_with_a_rollback() {
    let mut body = cd_record("web:2");
    body["gates"] =
        json!({"http": [{"name": "smoke", "url": "http://smoke/ok", "failure_threshold": 1}]});
    let mut w = Cd::new(body);
    w.step();
    w.set_status(DeploymentStatus::InProgress);
    w.last()
        .lifecycle
        .insert("AllowTraffic".into(), EventStatus::InProgress);
    w.step();
    assert_eq!(w.status.phase(), Phase::Shifting);
    w.advance(Duration::from_secs(15));
    let at = w.now;
    w.readings.insert(
        "smoke".into(),
        Reading {
            at,
            verdict: Verdict::Fail,
            detail: "HTTP 500".into(),
        },
    );
    w.step();
    assert_eq!(w.stopped, vec!["d-1".to_string()]);
    assert_eq!(w.status.phase(), Phase::RollingBack);
    w.set_status(DeploymentStatus::Stopped);
    w.step();
    assert_eq!(w.status.phase(), Phase::Failed);
    assert!(w.status.failed.as_ref().unwrap().reason.contains("smoke"));
}

#[test]
fn no_deployment_is_created_while_someone_elses_is_in_flight() {
    let mut w = Cd::new(cd_record("web:2"));
    w.deployments.push(Deployment {
        id: "d-PIPELINE".into(),
        status: DeploymentStatus::InProgress,
        description: Some("released by the old pipeline".into()),
        error: None,
        termination_wait_started: false,
        created_at: None,
        lifecycle: BTreeMap::new(),
        traffic: None,
    });
    for _ in 0..3 {
        w.step();
        assert!(w.created.is_empty());
    }
    assert!(
        w.status.message.contains("d-PIPELINE"),
        "{}",
        w.status.message
    );
    w.last().status = DeploymentStatus::Succeeded;
    w.step();
    assert_eq!(w.created.len(), 1, "deployed once the group is free");
}

#[test]
fn a_lost_status_adopts_the_deployment_in_flight_instead_of_creating_another() {
    let mut w = created();
    w.set_status(DeploymentStatus::InProgress);
    w.step();
    let before = w.status.rollout.as_ref().unwrap().id.clone();
    // A restart after a whole-item PutItem: the status is gone.
    w.status = Status::default();
    let d = w.step();
    assert_eq!(w.created.len(), 1);
    assert_eq!(w.status.rollout.as_ref().unwrap().id, before);
    // Taken over, not started again.
    assert!(
        matches!(
            d.events.first(),
            Some(Event::RolloutAdopted {
                phase: Phase::Provisioning,
                ..
            })
        ),
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
    assert_eq!(
        w.status.active.as_ref().map(|a| a.arn.as_str()),
        Some("arn:aws:ecs:us-east-1:1:task-set/prod/web/ecs-svc/1")
    );
    assert_eq!(w.status.deployment.as_ref().unwrap().id, "d-1");
    w.set_status(DeploymentStatus::Succeeded);
    w.step();
    assert_eq!(w.status.phase(), Phase::Steady);
}

#[test]
fn a_lost_create_reply_is_adopted_on_the_next_look() {
    let mut w = created();
    // The status write after the create was lost: the rollout has no id.
    w.status.deployment = None;
    w.step();
    assert_eq!(w.status.deployment.as_ref().unwrap().id, "d-1");
    assert_eq!(w.created.len(), 1);
}

#[test]
fn a_newer_revision_stops_the_deployment_in_flight_then_deploys() {
    let mut w = created();
    w.set_status(DeploymentStatus::InProgress);
    w.step();
    w.body["task_definition"] = json!("web:3");
    w.step();
    assert_eq!(w.stopped, vec!["d-1".to_string()]);
    assert_eq!(w.created.len(), 1, "nothing new while the old one runs");
    w.set_status(DeploymentStatus::Stopped);
    w.step();
    assert_eq!(w.finished(), vec![Outcome::Superseded]);
    assert_eq!(w.created.len(), 2);
    assert_eq!(w.created[1].task_definition, "web:3");
    assert_eq!(w.status.phase(), Phase::Provisioning);
}

#[test]
fn a_service_running_the_record_is_steady_without_codedeploy_reads() {
    let mut w = Cd::new(cd_record("web:1"));
    let d = w.step();
    assert_eq!(w.status.phase(), Phase::Steady);
    assert!(d.commands.is_empty());
    assert_eq!(w.listed, 0);
}

#[test]
fn an_external_service_cannot_be_driven_through_codedeploy() {
    let mut w = Cd::new(cd_record("web:2"));
    w.svc.deployment_controller = "EXTERNAL".into();
    w.step();
    assert_eq!(w.status.phase(), Phase::Invalid);
    assert!(
        w.status.message.contains("CODE_DEPLOY"),
        "{}",
        w.status.message
    );
}

#[test]
fn a_fleet_wide_halt_creates_no_deployment_and_holds_a_ready_one_until_lifted() {
    let halt = || {
        Some(crate::rollout::halt::Halt {
            reason: "INC-9".into(),
            by: None,
            since: None,
        })
    };
    let mut w = Cd::new(cd_record("web:2"));
    w.halt = halt();
    for _ in 0..3 {
        let d = w.step();
        assert!(d.commands.is_empty(), "{:?}", d.commands);
    }
    assert!(w.status.message.contains("INC-9"), "{}", w.status.message);
    w.halt = None;
    w.step();
    w.set_status(DeploymentStatus::Ready);
    w.halt = halt();
    for _ in 0..3 {
        w.step();
        assert_eq!(w.status.phase(), Phase::Paused);
    }
    assert!(w.continued.is_empty(), "no traffic rerouted while halted");
    w.halt = None;
    w.step();
    assert_eq!(w.continued.len(), 1);
}
