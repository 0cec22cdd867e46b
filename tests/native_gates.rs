//! Acceptance: a full controller over the simulated cloud drives a service
//! that ECS deploys itself (`driver = "ecs_native"`), with a Prometheus gate
//! (a fake Prometheus over HTTP). ECS runs a canary and pauses before each
//! production step; cutover answers each pause once the gate passed. A gate
//! that fails once the canary serves has ECS roll the deployment back.

#[path = "endpoints/mod.rs"]
mod endpoints;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use cutover::checks::{self, LiveChecks};
use cutover::cloud::{Clock, DesiredStore, ScaledClock};
use cutover::controller::{Controller, ControllerConfig};
use cutover::rollout::service_deployment::ServiceDeploymentStatus;
use cutover::rollout::{Phase, ServiceKey, Status};
use cutover::sim::{DEFAULT_EPOCH, Faults, ServiceArns, ServiceSetup, SimCloud};

use endpoints::{Endpoint, Reply, scalar};

/// The simulated clock runs this many times faster than real time, so a
/// canary that bakes its step for ECS's smallest whole minute takes seconds.
const SPEED: f64 = 20.0;
const WITHIN: Duration = Duration::from_secs(60);

fn payments() -> ServiceKey {
    ServiceKey::new("prod", "payments")
}

struct Rig {
    sim: SimCloud,
    arns: ServiceArns,
    prometheus: Endpoint,
    /// What the fake Prometheus answers: an error rate above the gate's max
    /// while set.
    failing: Arc<AtomicBool>,
    shutdown: CancellationToken,
    running: tokio::task::JoinHandle<()>,
}

impl Rig {
    async fn start(seed: u64) -> Rig {
        let failing = Arc::new(AtomicBool::new(false));
        let prometheus = Endpoint::start({
            let failing = Arc::clone(&failing);
            move |_, _| {
                let rate = if failing.load(Ordering::SeqCst) {
                    "0.2"
                } else {
                    "0.001"
                };
                Reply::new(200, scalar(rate))
            }
        })
        .await;
        let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(DEFAULT_EPOCH, SPEED));
        let sim = SimCloud::builder(seed)
            .clock(Arc::clone(&clock))
            .faults(Faults::none())
            .task_start(Duration::from_secs(2), Duration::from_secs(4))
            .native_stage_time(Duration::from_secs(2), Duration::from_secs(4))
            .build();
        let arns = sim
            .add_service(ServiceSetup {
                desired_count: 2,
                ..ServiceSetup::native(payments())
            })
            .unwrap();
        let live = LiveChecks::new(checks::client().unwrap(), Arc::clone(&clock));
        let controller = Controller::new(
            Arc::new(sim.clone()),
            Arc::new(sim.clone()),
            Arc::new(sim.clone()),
            Arc::clone(&clock),
            ControllerConfig {
                poll_interval: Duration::from_secs(2),
                resync_interval: Duration::from_secs(60),
                seed,
                ..ControllerConfig::default()
            },
        )
        .with_checks(Arc::new(live))
        .with_service_deployments(Arc::new(sim.clone()));
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(controller.run(shutdown.clone()));
        Rig {
            sim,
            arns,
            prometheus,
            failing,
            shutdown,
            running,
        }
    }

    /// `payments:2` as ECS's canary: 10% for a minute, then the rest; a
    /// Prometheus gate on the error rate.
    fn deploy(&self) {
        let mut body = self.arns.native_record(
            "payments:2",
            json!({"type": "canary", "percent": 10, "interval": "1m"}),
        );
        body["bake"] = json!("0s");
        body["gates"] = json!({"prometheus": [{
            "name": "error-rate",
            "address": self.prometheus.url(""),
            "query": "sum(rate(http_requests_total{service=\"payments\",code=~\"5..\"}[1m])) / sum(rate(http_requests_total{service=\"payments\"}[1m]))",
            "max": 0.01,
            "interval": "4s",
            "failure_threshold": 2,
            "timeout": "10s"
        }]});
        self.sim.put_spec(&payments(), body);
    }

    async fn status(&self) -> Option<Status> {
        DesiredStore::get(&self.sim, &payments())
            .await
            .ok()??
            .status
    }

    async fn until(&self, what: &str, check: impl Fn(&Status) -> bool) -> Status {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            if let Some(s) = self.status().await
                && check(&s)
            {
                return s;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "{what}: not reached within {WITHIN:?}: {:#?}\n{}",
                    self.status().await,
                    self.sim
                        .event_log()
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Production's share (blue, green) as the load balancer applies it.
    fn production(&self) -> (u32, u32) {
        let w = self
            .sim
            .visible_weights(self.arns.production.arn())
            .unwrap();
        (
            w.percent(&self.arns.target_groups[0]),
            w.percent(&self.arns.target_groups[1]),
        )
    }

    fn last_deployment(&self) -> ServiceDeploymentStatus {
        self.sim
            .service_deployments(&payments())
            .last()
            .expect("a service deployment")
            .status
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.running.await.unwrap();
        assert!(
            self.sim.violations().is_empty(),
            "{:?}",
            self.sim.violations()
        );
    }
}

fn ended(s: &Status) -> bool {
    matches!(s.phase(), Phase::Steady | Phase::Failed)
        && s.rollout.is_none()
        && s.history.iter().any(|t| t.to == Phase::Shifting)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_native_canary_the_prometheus_gate_accepts_is_promoted_step_by_step() {
    let rig = Rig::start(41).await;
    rig.deploy();
    let status = rig.until("the canary ends", ended).await;
    assert_eq!(status.phase(), Phase::Steady, "{status:#?}");
    assert_eq!(status.stable_revision, status.observed_revision);
    assert_eq!(rig.last_deployment(), ServiceDeploymentStatus::Successful);
    assert_eq!(rig.production(), (0, 100), "green serves everything");
    // Each production step was held at a pause and answered CONTINUE: the
    // canary's two, and the one after the last shift.
    let continues = rig.sim.native_continues();
    assert!(continues.len() >= 3, "{continues:?}");
    let phases: Vec<Phase> = status.history.iter().map(|t| t.to).collect();
    for p in [Phase::Provisioning, Phase::Shifting, Phase::Baking] {
        assert!(phases.contains(&p), "{phases:?}");
    }
    assert!(rig.prometheus.hits() >= 3, "{}", rig.prometheus.hits());
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_prometheus_gate_mid_canary_rolls_back_through_ecs() {
    let rig = Rig::start(42).await;
    rig.deploy();
    // The canary's first step serves 10% of production on the new revision.
    rig.until("the canary step", |s| s.weights == Some((90, 10)))
        .await;
    rig.failing.store(true, Ordering::SeqCst);
    let status = rig.until("the rollout ends", ended).await;
    assert_eq!(status.phase(), Phase::Failed, "{status:#?}");
    let why = status
        .failed
        .as_ref()
        .map(|f| f.reason.clone())
        .unwrap_or_default();
    assert!(why.contains("error-rate"), "{why}");
    assert!(why.contains("value 0.2 is above max 0.01"), "{why}");
    // ECS rolled it back: production is all on the revision that served.
    assert_eq!(
        rig.last_deployment(),
        ServiceDeploymentStatus::RollbackSuccessful
    );
    assert_eq!(rig.production(), (100, 0));
    rig.stop().await;
}
