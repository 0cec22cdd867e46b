//! A tiny, synchronous world for decision tests: it applies commands the way
//! ECS and the load balancer would, instantly, so a test can run a rollout
//! step by step and assert on the resulting state.

use std::time::Duration;

use serde_json::{Value, json};

use crate::rollout::{
    Command, Decision, Desired, EcsService, Event, Observed, Outcome, Phase, ServiceKey,
    ServiceState, Spec, Stability, Status, Stickiness, TargetCounts, TaskSet, TaskSetStatus, Wake,
    Weights, decide, parse_record, reads,
};
use crate::time::Timestamp;

pub const BLUE: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-blue/1";
pub const GREEN: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-green/2";
pub const PROD: &str = "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/web/1/80";
pub const TEST: &str = "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/web/1/8080";

pub fn record(td: &str, strategy: Value) -> Value {
    json!({
        "service": "prod/web",
        "task_definition": td,
        "container": "app",
        "container_port": 8080,
        "production_listener": PROD,
        "target_groups": [BLUE, GREEN],
        "strategy": strategy,
        "bake": "2m",
        "progress_deadline": "5m",
    })
}

/// How the rollouts that `events` report ended, in order.
pub fn outcomes(events: &[Event]) -> Vec<Outcome> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::RolloutFinished { outcome, .. } => Some(*outcome),
            _ => None,
        })
        .collect()
}

pub struct World {
    pub body: Value,
    pub svc: EcsService,
    pub production: Weights,
    pub test: Weights,
    /// Healthy targets per target group, as the load balancer reports them.
    pub healthy: std::collections::BTreeMap<String, u32>,
    /// Targets per target group that are `initial` (replacement tasks on
    /// their way); the rest of a task set's targets that are not healthy
    /// fail their checks.
    pub replacing: std::collections::BTreeMap<String, u32>,
    /// Whether a new task set becomes healthy on its own.
    pub candidate_healthy: bool,
    pub status: Status,
    pub now: Timestamp,
    pub next_id: u32,
    pub created: u32,
    pub deleted: Vec<String>,
    /// Every production weight the load balancer took, in order.
    pub weight_log: Vec<u32>,
    pub last: Option<Decision>,
    /// Hooks called, in order.
    pub hooks_called: Vec<crate::rollout::hook::HookPoint>,
    /// Stopped candidate tasks the next observation reports.
    pub failed_tasks: u32,
    /// Gate readings the next observation returns, by gate name.
    pub readings: std::collections::BTreeMap<String, crate::rollout::gate::Reading>,
    /// Group-level stickiness of the production route.
    pub stickiness: Stickiness,
    /// Weights of listeners other than `PROD` and `TEST`, by ARN: a record
    /// that moves its routes points at one of these, which forward to blue
    /// until written.
    pub other_routes: std::collections::BTreeMap<String, Weights>,
    /// The fleet-wide halt the next observation reports.
    pub halt: Option<crate::rollout::halt::Halt>,
    /// The admission under the concurrency limits the next observation
    /// reports.
    pub admission: Option<crate::rollout::admission::Admission>,
}

impl World {
    /// A service running `web:1` in blue, 100% of production on blue.
    pub fn new(body: Value) -> World {
        let blue = TaskSet {
            id: "ts-1".into(),
            arn: "arn:aws:ecs:us-east-1:1:task-set/prod/web/ecs-svc/1".into(),
            task_definition: "arn:aws:ecs:us-east-1:1:task-definition/web:1".into(),
            external_id: None,
            status: TaskSetStatus::Primary,
            stability: Stability::SteadyState,
            scale_percent: 100.0,
            computed_desired: Some(3),
            running: Some(3),
            pending: Some(0),
            target_group: Some(BLUE.into()),
            created_at: Some(Timestamp(1_600_000_000_000)),
        };
        let mut healthy = std::collections::BTreeMap::new();
        healthy.insert(BLUE.to_string(), 3);
        healthy.insert(GREEN.to_string(), 0);
        World {
            body,
            svc: EcsService {
                desired_count: 3,
                deployment_controller: "EXTERNAL".into(),
                native: None,
                task_sets: vec![blue],
            },
            production: Weights::pair(BLUE, 100, GREEN, 0),
            test: Weights::pair(BLUE, 100, GREEN, 0),
            healthy,
            replacing: Default::default(),
            candidate_healthy: true,
            status: Status::default(),
            now: Timestamp(1_700_000_000_000),
            next_id: 2,
            created: 0,
            deleted: vec![],
            weight_log: vec![],
            last: None,
            hooks_called: vec![],
            failed_tasks: 0,
            readings: Default::default(),
            stickiness: Stickiness::default(),
            other_routes: Default::default(),
            halt: None,
            admission: None,
        }
    }

    /// What the load balancer shows on `route`.
    pub fn route_weights(&self, route: &str) -> Weights {
        match route {
            PROD => self.production.clone(),
            TEST => self.test.clone(),
            other => self
                .other_routes
                .get(other)
                .cloned()
                .unwrap_or_else(|| Weights::pair(BLUE, 100, GREEN, 0)),
        }
    }

    pub fn spec(&self) -> Result<Spec, crate::rollout::RecordError> {
        parse_record(&ServiceKey::new("prod", "web"), &self.body)
    }

    pub fn observe(&self, spec: &Result<Spec, crate::rollout::RecordError>) -> Observed {
        let desired = Desired::of(spec);
        let service = ServiceState::Found(self.svc.clone());
        let r = reads(&desired, Some(&service), &self.status, self.now);
        let mut observed = Observed {
            service: Some(service),
            halt: self.halt.clone(),
            admission: self.admission.clone(),
            ..Observed::default()
        };
        if let Some(route) = &r.production {
            observed.production = Some(self.route_weights(route.arn()));
        }
        if let Some(route) = &r.test {
            observed.test = Some(self.route_weights(route.arn()));
        }
        if r.failed_tasks.is_some() {
            observed.failed_tasks = Some(self.failed_tasks);
        }
        if r.stickiness {
            observed.production_stickiness = Some(self.stickiness);
        }
        for probe in &r.probes {
            if let Some(reading) = self.readings.get(probe.name()) {
                observed
                    .gates
                    .insert(probe.name().to_string(), reading.clone());
            }
        }
        for tg in r.target_health {
            let healthy = self.healthy.get(&tg).copied().unwrap_or(0);
            let initial = self.replacing.get(&tg).copied().unwrap_or(0);
            let tasks = self
                .svc
                .task_sets
                .iter()
                .find(|t| t.target_group.as_deref() == Some(tg.as_str()))
                .and_then(|t| t.computed_desired)
                .unwrap_or(0);
            observed.targets.insert(
                tg,
                TargetCounts {
                    healthy,
                    initial,
                    unhealthy: tasks.saturating_sub(healthy + initial),
                    ..TargetCounts::default()
                },
            );
        }
        observed
    }

    /// One reconcile: decide, apply every command, keep the new status.
    pub fn step(&mut self) -> Decision {
        let spec = self.spec();
        let observed = self.observe(&spec);
        let desired = Desired::of(&spec);
        let decision = decide(&desired, &observed, &self.status, self.now);
        for c in &decision.commands {
            self.apply(c);
        }
        self.status = decision.status.clone();
        self.last = Some(decision.clone());
        decision
    }

    fn apply(&mut self, c: &Command) {
        match c {
            Command::CreateTaskSet(req) => {
                assert!(
                    !self
                        .svc
                        .task_sets
                        .iter()
                        .any(|t| t.external_id.as_deref() == Some(&req.external_id)),
                    "a second task set for {}",
                    req.external_id
                );
                self.created += 1;
                let n = self.next_id;
                self.next_id += 1;
                self.svc.task_sets.push(TaskSet {
                    id: format!("ts-{n}"),
                    arn: format!("arn:aws:ecs:us-east-1:1:task-set/prod/web/ecs-svc/{n}"),
                    task_definition: "web:2".into(),
                    external_id: Some(req.external_id.clone()),
                    status: TaskSetStatus::Active,
                    stability: Stability::SteadyState,
                    scale_percent: 100.0,
                    computed_desired: Some(3),
                    running: Some(3),
                    pending: Some(0),
                    target_group: Some(req.target_group.clone()),
                    created_at: Some(self.now),
                });
                if self.candidate_healthy {
                    self.healthy.insert(req.target_group.clone(), 3);
                }
            }
            Command::SetWeights { route, weights } => {
                let target = match route.arn() {
                    PROD => &mut self.production,
                    TEST => &mut self.test,
                    other => self
                        .other_routes
                        .entry(other.to_string())
                        .or_insert_with(|| Weights::pair(BLUE, 100, GREEN, 0)),
                };
                for (tg, w) in &weights.0 {
                    target.0.insert(tg.clone(), *w);
                }
                // Someone else's target group (a test adds one) is kept at
                // its own weight beside cutover's percentages.
                let ours = self.production.0.keys().all(|tg| tg == BLUE || tg == GREEN);
                if route.arn() == PROD {
                    assert!(
                        !ours || self.production.total() == 100,
                        "production weights sum to 100"
                    );
                    for (tg, w) in &self.production.0 {
                        if *w > 0 {
                            assert!(
                                self.healthy.get(tg).copied().unwrap_or(0) > 0,
                                "weight {w} on {tg} which has no healthy target"
                            );
                        }
                    }
                    let green = self.candidate_share();
                    self.weight_log.push(green);
                }
            }
            Command::SetStickiness { route, stickiness } => {
                assert_eq!(route.arn(), PROD, "stickiness of production only");
                self.stickiness = *stickiness;
            }
            Command::SetPrimary { task_set, .. } => {
                for t in &mut self.svc.task_sets {
                    if t.arn == *task_set {
                        t.status = TaskSetStatus::Primary;
                    } else if t.status == TaskSetStatus::Primary {
                        t.status = TaskSetStatus::Active;
                    }
                }
            }
            Command::InvokeHook { payload, .. } => {
                self.hooks_called.push(payload.hook);
            }
            Command::CreateDeployment(_)
            | Command::ContinueDeployment { .. }
            | Command::StopDeployment { .. }
            | Command::StartServiceDeployment(_)
            | Command::ContinueServiceDeployment { .. }
            | Command::StopServiceDeployment { .. } => {
                panic!("a CodeDeploy command for a service on cutover's own driver: {c:?}")
            }
            Command::DeleteTaskSet { task_set, .. } => {
                let t = self
                    .svc
                    .task_sets
                    .iter()
                    .find(|t| t.arn == *task_set)
                    .expect("deleting a task set that exists");
                if let Some(tg) = &t.target_group {
                    assert_eq!(
                        self.production.get(tg),
                        0,
                        "deleting a task set that still receives traffic"
                    );
                    assert!(
                        !self.stickiness.enabled,
                        "deleting a task set that sticky clients may still be sent to"
                    );
                    self.healthy.insert(tg.clone(), 0);
                }
                self.svc.task_sets.retain(|t| t.arn != *task_set);
                self.deleted.push(task_set.clone());
            }
        }
    }

    /// Production share of whichever target group is not the first task set's.
    pub fn candidate_share(&self) -> u32 {
        let active_tg = self
            .status
            .rollout
            .as_ref()
            .map(|r| r.target_group.clone())
            .unwrap_or_else(|| GREEN.to_string());
        self.production.percent(&active_tg)
    }

    pub fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
    }

    /// Steps until the phase is `until` (or `limit` steps pass), moving the
    /// clock on by `tick` after each step.
    pub fn run_until(&mut self, until: Phase, tick: Duration, limit: usize) -> bool {
        for _ in 0..limit {
            self.step();
            if self.status.phase() == until {
                return true;
            }
            self.advance(tick);
        }
        false
    }

    /// Runs a rollout to its end (Steady or Failed).
    pub fn settle(&mut self) -> Phase {
        for _ in 0..2_000 {
            let d = self.step();
            let done = matches!(self.status.phase(), Phase::Steady | Phase::Failed)
                && self.status.rollout.is_none()
                && d.commands.is_empty()
                && d.wake == Wake::Idle;
            if done {
                return self.status.phase();
            }
            self.advance(Duration::from_secs(5));
        }
        panic!("no settled state: {:?}", self.status);
    }

    pub fn set(&mut self, field: &str, value: Value) {
        self.body[field] = value;
    }

    pub fn phases(&self) -> Vec<Phase> {
        let mut v = vec![];
        for t in &self.status.history {
            if v.is_empty() {
                v.push(t.from);
            }
            v.push(t.to);
        }
        v
    }
}
