//! A full controller over the simulated cloud with the real checks, at real
//! speed (a `ScaledClock` at factor 1) and short timings, so a gated rollout
//! takes seconds. Shared by the tests of gates, hooks and notifications.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use cutover::checks::{self, HookPolicy, LiveChecks};
use cutover::cloud::{Clock, DesiredStore, ScaledClock};
use cutover::controller::{Controller, ControllerConfig};
use cutover::http::{self, ApiState, ApiToken};
use cutover::metrics::Metrics;
use cutover::notify::{Courier, Notifier, NotifyPolicy};
use cutover::rollout::{Phase, ServiceKey, Status};
use cutover::sim::{DEFAULT_EPOCH, Faults, HealthCheck, ServiceArns, ServiceSetup, SimCloud};

pub const TOKEN: &str = "hook-reporter-token-0123456789";

pub fn web() -> ServiceKey {
    ServiceKey::new("prod", "web")
}

pub struct Rig {
    pub sim: SimCloud,
    pub clock: Arc<dyn Clock>,
    pub arns: ServiceArns,
    pub metrics: Arc<Metrics>,
    /// The HTTP API, token-guarded with [`TOKEN`].
    pub api: SocketAddr,
    shutdown: CancellationToken,
    running: Option<tokio::task::JoinHandle<()>>,
    courier: Option<Courier>,
}

/// Notices are retried quickly here, so a test of a dead endpoint is short.
pub fn quick_notify() -> NotifyPolicy {
    NotifyPolicy {
        attempts: 3,
        backoff: Duration::from_millis(50),
        timeout: Duration::from_millis(500),
        ..NotifyPolicy::default()
    }
}

impl Rig {
    /// `prod/web` runs `web:1`; the controller runs with the real checks, a
    /// notifier, and the API in front of it.
    pub async fn start(seed: u64) -> Rig {
        let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(DEFAULT_EPOCH, 1.0));
        let sim = SimCloud::builder(seed)
            .clock(Arc::clone(&clock))
            .faults(Faults::none())
            .task_start(Duration::from_millis(100), Duration::from_millis(300))
            .health_check(HealthCheck {
                interval: Duration::from_millis(200),
                healthy_threshold: 1,
                unhealthy_threshold: 2,
            })
            .deregistration_delay(Duration::from_millis(200))
            .visibility_delay(Duration::ZERO, Duration::from_millis(100))
            .build();
        let arns = sim.add_service(ServiceSetup::new(web())).unwrap();
        let metrics = Arc::new(Metrics::new().unwrap());
        let client = checks::client().unwrap();
        let live =
            LiveChecks::new(client.clone(), Arc::clone(&clock)).with_hook_policy(HookPolicy {
                timeout: Duration::from_millis(500),
                attempts: 2,
                backoff: Duration::from_millis(50),
            });
        let (notifier, courier) =
            Notifier::start(client, quick_notify(), Some(Arc::clone(&metrics)));
        let controller = Controller::new(
            Arc::new(sim.clone()),
            Arc::new(sim.clone()),
            Arc::new(sim.clone()),
            Arc::clone(&clock),
            ControllerConfig {
                poll_interval: Duration::from_millis(200),
                resync_interval: Duration::from_secs(10),
                backoff_base: Duration::from_millis(100),
                backoff_max: Duration::from_secs(1),
                seed,
                ..ControllerConfig::default()
            },
        )
        .with_metrics(Arc::clone(&metrics))
        .with_checks(Arc::new(live))
        .with_notifier(notifier);
        let router = http::router(ApiState {
            store: Arc::new(sim.clone()),
            lb: Arc::new(sim.clone()),
            controller: controller.handle(),
            metrics: Arc::clone(&metrics),
            clock: Arc::clone(&clock),
            token: Some(ApiToken::new(TOKEN).unwrap()),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(http::serve(listener, router, shutdown.clone()));
        let running = Some(tokio::spawn(controller.run(shutdown.clone())));
        Rig {
            sim,
            clock,
            arns,
            metrics,
            api,
            shutdown,
            running,
            courier: Some(courier),
        }
    }

    /// A record rolling `web:2` out all at once with a one-second bake;
    /// `extra` fields (gates, hooks, notifications) are added to it.
    pub fn deploy(&self, extra: Value) {
        let mut body = self.arns.record("web:2", json!("all_at_once"));
        body["bake"] = json!("1s");
        body["progress_deadline"] = json!("30s");
        if let Value::Object(fields) = extra {
            for (k, v) in fields {
                body[k] = v;
            }
        }
        self.sim.put_spec(&web(), body);
    }

    pub async fn status(&self) -> Option<Status> {
        DesiredStore::get(&self.sim, &web()).await.ok()??.status
    }

    /// Waits until the rollout of `web:2` has ended, `Steady` on it or
    /// `Failed`, and returns the status.
    pub async fn settled(&self, within: Duration) -> Status {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(s) = self.status().await {
                let moved = s
                    .history
                    .iter()
                    .any(|t| t.from != Phase::Steady || t.to != Phase::Steady);
                let done =
                    matches!(s.phase(), Phase::Steady | Phase::Failed) && s.rollout.is_none();
                if moved && done && s.history.len() > 1 {
                    return s;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "the rollout did not end within {within:?}: {:#?}",
                    self.status().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `check` holds for the status.
    pub async fn until(&self, within: Duration, check: impl Fn(&Status) -> bool) -> Status {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(s) = self.status().await
                && check(&s)
            {
                return s;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("not reached within {within:?}: {:#?}", self.status().await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Production weights the load balancer applies now: (blue, green).
    pub fn production(&self) -> (u32, u32) {
        let w = self
            .sim
            .visible_weights(self.arns.production.arn())
            .unwrap();
        (w.get(self.arns.blue()), w.get(self.arns.green()))
    }

    /// Stops the controller and waits for queued notifications.
    pub async fn stop(mut self) -> Arc<Metrics> {
        self.shutdown.cancel();
        if let Some(r) = self.running.take() {
            r.await.unwrap();
        }
        if let Some(c) = self.courier.take() {
            c.finish(Duration::from_secs(5)).await;
        }
        Arc::clone(&self.metrics)
    }
}
