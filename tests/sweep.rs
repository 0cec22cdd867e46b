//! What a resync sweep costs over the simulated cloud: services of a
//! cluster share DescribeServices calls, and passes reuse the records the
//! listing read. And the budgets, as the controller applies them.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use cutover::cloud::budget::{ApiBudgets, BudgetConfig, Category, Rate};
use cutover::cloud::{Clock, ScaledClock};
use cutover::controller::{Controller, ControllerConfig, ControllerHandle};
use cutover::rollout::{Phase, ServiceKey};
use cutover::sim::{DEFAULT_EPOCH, RateLimits, ServiceArns, ServiceSetup, SimCloud};

const RESYNC: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_secs(5);

struct Fleet {
    clock: Arc<dyn Clock>,
    sim: SimCloud,
    arns: Vec<ServiceArns>,
}

/// `n` services of `cluster`, each with a record for the version it runs.
fn fleet(cluster: &str, n: usize) -> Fleet {
    let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(DEFAULT_EPOCH, 1.0));
    let sim = SimCloud::builder(11)
        .clock(Arc::clone(&clock))
        .rate_limits(RateLimits::aws())
        .build();
    let arns: Vec<ServiceArns> = (0..n)
        .map(|i| {
            let key = ServiceKey::new(cluster, format!("svc{i:03}"));
            let arns = sim
                .add_service(ServiceSetup {
                    test_listener: false,
                    ..ServiceSetup::new(key.clone())
                })
                .expect("service setup");
            sim.put_spec(
                &key,
                arns.record(&format!("svc{i:03}:1"), json!("all_at_once")),
            );
            arns
        })
        .collect();
    Fleet { clock, sim, arns }
}

fn start(f: &Fleet, budgets: Option<&Arc<ApiBudgets>>) -> (CancellationToken, ControllerHandle) {
    let mut controller = Controller::new(
        Arc::new(f.sim.clone()),
        Arc::new(f.sim.clone()),
        Arc::new(f.sim.clone()),
        Arc::clone(&f.clock),
        ControllerConfig {
            poll_interval: POLL,
            resync_interval: RESYNC,
            concurrency: 16,
            ..ControllerConfig::default()
        },
    );
    if let Some(b) = budgets {
        controller = controller.with_budgets(b);
    }
    let handle = controller.handle();
    let shutdown = CancellationToken::new();
    tokio::spawn(controller.run(shutdown.clone()));
    (shutdown, handle)
}

/// Every service has a Steady status.
fn all_steady(f: &Fleet) -> bool {
    f.sim.records().iter().all(|r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.phase() == Phase::Steady)
    })
}

#[tokio::test(start_paused = true)]
async fn a_steady_sweep_of_25_services_makes_3_describe_calls_and_reads_no_record() {
    let f = fleet("prod", 25);
    let (shutdown, _handle) = start(&f, None);
    // The first sweep writes every status; the next one has nothing to do.
    f.clock.sleep(RESYNC / 2).await;
    assert!(all_steady(&f));
    let before = f.sim.calls();
    f.clock.sleep(RESYNC).await;
    let after = f.sim.calls();
    shutdown.cancel();
    let delta =
        |op: &str| after.get(op).copied().unwrap_or(0) - before.get(op).copied().unwrap_or(0);
    assert_eq!(delta("dynamodb:Scan"), 1, "{after:?}");
    assert_eq!(delta("ecs:DescribeServices"), 3, "{after:?}");
    // The passes read no record: the listing handed each its own. The
    // replica's only GetItem is the fleet-wide halt's, once a poll, whatever
    // the fleet's size (fewer reads than the 25 services here).
    let polls = RESYNC.as_secs() / POLL.as_secs() + 1;
    assert!(delta("dynamodb:GetItem") <= polls, "{after:?}");
    assert_eq!(delta("dynamodb:UpdateItem"), 0, "{after:?}");
    for op in ["elbv2:DescribeListeners", "elbv2:DescribeTargetHealth"] {
        assert_eq!(delta(op), 0, "{op}: {after:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn services_of_different_clusters_are_described_apart() {
    let f = fleet("blue", 12);
    let g: Vec<ServiceArns> = (0..5)
        .map(|i| {
            let key = ServiceKey::new("green", format!("svc{i:03}"));
            let arns = f
                .sim
                .add_service(ServiceSetup {
                    test_listener: false,
                    ..ServiceSetup::new(key.clone())
                })
                .expect("service setup");
            f.sim.put_spec(
                &key,
                arns.record(&format!("svc{i:03}:1"), json!("all_at_once")),
            );
            arns
        })
        .collect();
    assert_eq!(g.len() + f.arns.len(), 17);
    let (shutdown, _handle) = start(&f, None);
    f.clock.sleep(RESYNC / 2).await;
    assert!(all_steady(&f));
    let before = f.sim.call_count("ecs:DescribeServices");
    f.clock.sleep(RESYNC).await;
    shutdown.cancel();
    // ⌈12/10⌉ + ⌈5/10⌉
    assert_eq!(f.sim.call_count("ecs:DescribeServices") - before, 3);
}

#[tokio::test(start_paused = true)]
async fn a_record_written_after_the_listing_is_read_afresh() {
    let f = fleet("prod", 3);
    let (shutdown, _handle) = start(&f, None);
    f.clock.sleep(RESYNC / 2).await;
    assert!(all_steady(&f));
    let gets = f.sim.call_count("dynamodb:GetItem");
    let key = f.arns[1].key.clone();
    f.sim
        .put_spec(&key, f.arns[1].record("svc001:2", json!("all_at_once")));
    f.clock.sleep(Duration::from_secs(5)).await;
    shutdown.cancel();
    assert!(f.sim.call_count("dynamodb:GetItem") > gets);
    assert!(f.sim.call_count("ecs:CreateTaskSet") >= 1);
}

#[tokio::test(start_paused = true)]
async fn with_budgets_a_sweep_keeps_to_its_share_of_the_ecs_read_budget() {
    let f = fleet("prod", 400);
    let config = BudgetConfig {
        // 2 calls a second for drift checks, after a burst of 10.
        ecs_read: Rate::new(20.0, 100),
        share: 0.2,
        steady_share: 0.5,
        ..BudgetConfig::default()
    };
    let budgets = ApiBudgets::new(&config, Arc::clone(&f.clock));
    let (shutdown, handle) = start(&f, Some(&budgets));
    f.clock.sleep(Duration::from_millis(100)).await;
    let started = f.clock.now();
    let mut samples = vec![];
    while !(handle.is_synced() && handle.queue_depth() == 0 && handle.in_flight() == 0) {
        f.clock.sleep(Duration::from_secs(1)).await;
        samples.push((
            f.clock.now().since(started),
            f.sim.call_count("ecs:DescribeServices"),
        ));
    }
    shutdown.cancel();
    assert!(all_steady(&f));
    // 40 calls at 2 a second after a burst of 10: at least 15 seconds.
    let took = f.clock.now().since(started);
    assert!(took >= Duration::from_secs(15), "{took:?}");
    for (at, calls) in samples {
        assert!(
            calls as f64 <= 10.0 + 2.0 * at.as_secs_f64(),
            "{calls} calls after {at:?}"
        );
    }
    assert!(f.sim.throttled().is_empty(), "{:?}", f.sim.throttled());
    // Every drift check took a token of its own share. Whether a pass had
    // to wait for one depends on what else paces the passes: the first pass
    // of each service in a process also reads its production weights once
    // (a previous process's last weight change may land late), which the ELB
    // read budget paces; since it does, no pass here waited for an ECS token
    // (this asserted a wait before). The bound on calls over time above is
    // what shows the sweep kept to its share.
    let stats = budgets.stats(Category::EcsRead);
    assert!(stats.tokens[2] >= 40, "{stats:?}");
}
