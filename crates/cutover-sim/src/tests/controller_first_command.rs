//! A written record's first command, the wait someone who wrote it feels:
//! a new rollout is stored before its candidate is created (the create's
//! client token names it), and the create follows in the same pass, at the
//! change's priority, not in a pass of its own queued behind every
//! rollout's load balancer reads. The real loop and decision over the
//! simulated cloud, on a paused clock.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cloud::budget::{ApiBudgets, BudgetConfig, Rate};
use crate::cloud::{Clock, DesiredStore, Ecs, LoadBalancer, ScaledClock};
use crate::controller::{Controller, ControllerConfig};
use crate::rollout::{Phase, ServiceKey, ServiceState};
use crate::{ServiceArns, ServiceSetup, SimCloud};

use super::{EPOCH, secs};

fn config() -> ControllerConfig {
    ControllerConfig {
        poll_interval: secs(5),
        resync_interval: secs(3600),
        concurrency: 16,
        backoff_base: secs(1),
        backoff_max: secs(60),
        seed: 5,
    }
}

/// Deploys `revision` all at once; `bake` keeps the rollout in flight.
fn record(arns: &ServiceArns, revision: u32, bake: &str) -> Value {
    let mut body = arns.record(
        &format!("{}:{revision}", arns.key.service),
        json!("all_at_once"),
    );
    body["bake"] = json!(bake);
    body["progress_deadline"] = json!("2h");
    body
}

struct World {
    sim: SimCloud,
    services: Vec<ServiceArns>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl World {
    /// `services` services, each Steady on revision 1, under `budgets`.
    async fn steady(services: usize, budgets: BudgetConfig) -> World {
        let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(EPOCH, 1.0));
        let sim = SimCloud::builder(5).clock(Arc::clone(&clock)).build();
        let services: Vec<ServiceArns> = (0..services)
            .map(|i| {
                // No test listener, as in the benchmark: a change's pass
                // then makes two ELB describes (weights, target health),
                // which the budget's reserve for changes covers.
                let setup = ServiceSetup {
                    test_listener: false,
                    ..ServiceSetup::new(ServiceKey::new("prod", format!("svc-{i}")))
                };
                let arns = sim.add_service(setup).expect("a new service can be added");
                sim.put_spec(&arns.key, record(&arns, 1, "0s"));
                arns
            })
            .collect();
        let budgets = ApiBudgets::new(&budgets, Arc::clone(&clock));
        let controller = Controller::new(
            Arc::new(sim.clone()) as Arc<dyn DesiredStore>,
            Arc::new(sim.clone()) as Arc<dyn Ecs>,
            Arc::new(sim.clone()) as Arc<dyn LoadBalancer>,
            clock,
            config(),
        )
        .with_budgets(&budgets);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(controller.run(shutdown.clone()));
        let world = World {
            sim,
            services,
            shutdown,
            task,
        };
        world.sim.run_for(secs(60)).await;
        for arns in &world.services {
            assert_eq!(world.phase(&arns.key), Some(Phase::Steady), "{}", arns.key);
        }
        world
    }

    fn phase(&self, key: &ServiceKey) -> Option<Phase> {
        self.sim
            .records()
            .into_iter()
            .find(|r| r.key == *key)
            .and_then(|r| r.status)
            .map(|s| s.phase())
    }

    fn task_sets(&self, key: &ServiceKey) -> usize {
        match self.sim.service(key) {
            ServiceState::Found(svc) => svc.task_sets.len(),
            ServiceState::Missing | ServiceState::ClusterMissing => 0,
        }
    }

    /// Writes revision 2 of `arns`'s record and waits for its candidate's
    /// `CreateTaskSet`: how long that took, in simulated time.
    async fn write_and_wait_for_the_candidate(&self, arns: &ServiceArns) -> Duration {
        let before = self.task_sets(&arns.key);
        let written = self.sim.now();
        self.sim.put_spec(&arns.key, record(arns, 2, "0s"));
        while self.task_sets(&arns.key) == before {
            assert!(
                self.sim.now().since(written) < secs(120),
                "no candidate for {} two minutes after its record was written",
                arns.key
            );
            self.sim.run_for(Duration::from_millis(10)).await;
        }
        self.sim.now().since(written)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

fn calls_since(sim: &SimCloud, before: &std::collections::BTreeMap<&str, u64>, op: &str) -> u64 {
    sim.call_count(op) - before.get(op).copied().unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn a_new_rollout_creates_its_candidate_in_the_pass_that_stores_it() {
    let w = World::steady(1, BudgetConfig::default()).await;
    let web = &w.services[0];
    let before = w.sim.calls();
    w.write_and_wait_for_the_candidate(web).await;
    // One pass: the record read once and the service described once.
    for (op, once) in [
        ("dynamodb:GetItem", 1),
        ("ecs:DescribeServices", 1),
        ("ecs:CreateTaskSet", 1),
    ] {
        assert_eq!(calls_since(&w.sim, &before, op), once, "{op}");
    }
    let stored = w
        .sim
        .records()
        .into_iter()
        .find(|r| r.key == web.key)
        .and_then(|r| r.status)
        .expect("the rollout was stored");
    assert!(stored.rollout.is_some(), "{stored:?}");
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_written_records_first_command_does_not_wait_behind_rollouts_for_the_elb_budget() {
    // One ELB describe a second for cutover, against rollouts that each
    // read their weights and both target groups' health at every poll:
    // their reads queue for the budget, as in a fleet-wide release.
    let budgets = BudgetConfig {
        share: 1.0,
        elb_read: Rate::new(1.0, 8),
        ..BudgetConfig::default()
    };
    let w = World::steady(7, budgets).await;
    let (written, rolling) = w.services.split_last().expect("seven services");
    for arns in rolling {
        w.sim.put_spec(&arns.key, record(arns, 2, "1h"));
    }
    w.sim.run_for(secs(120)).await;
    for arns in rolling {
        let phase = w.phase(&arns.key);
        assert!(
            phase.is_some_and(|p| p != Phase::Steady),
            "{} is still rolling out: {phase:?}",
            arns.key
        );
    }
    let took = w.write_and_wait_for_the_candidate(written).await;
    assert!(
        took <= secs(1),
        "the candidate was created {took:?} after the record was written"
    );
    w.stop().await;
}
