//! Rolling a whole fleet out at once: every record gets a new version at
//! the same moment, all at once and without a bake. What bounds it is the
//! request budgets, above all the load balancer's mutations.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::fleet;
use super::measure::{mib, proc_status_kib};
use super::naive::Naive;
use super::report::RolloutRun;
use super::steady;
use cutover_controller::cloud::budget::{ApiBudgets, BudgetConfig};

/// Long enough for either side, budgets permitting.
const LIMIT: Duration = Duration::from_secs(6 * 3600);
const CHECK: Duration = Duration::from_secs(5);

pub const ELB_MUTATIONS: [&str; 2] = ["elbv2:ModifyListener", "elbv2:ModifyRule"];
pub const ECS_MUTATIONS: [&str; 3] = [
    "ecs:CreateTaskSet",
    "ecs:UpdateServicePrimaryTaskSet",
    "ecs:DeleteTaskSet",
];

pub async fn run(mode: &str, services: usize, seed: u64) -> anyhow::Result<RolloutRun> {
    let wall = Instant::now();
    let fleet = fleet::build(services, seed)?;
    let shutdown = CancellationToken::new();
    let running = match mode {
        "cutover" => {
            let budgets = ApiBudgets::new(&BudgetConfig::default(), Arc::clone(&fleet.clock));
            let controller = steady::controller(&fleet, &budgets, seed);
            tokio::spawn(controller.run(shutdown.clone()))
        }
        "naive" => tokio::spawn(Naive::new(&fleet, seed).run(shutdown.clone())),
        other => anyhow::bail!("no such side {other:?}: cutover or naive"),
    };
    // Every service settled and with a status before the new version goes out.
    while !fleet.all_have_status() || fleet.settled_on(1) < services {
        fleet.clock.sleep(CHECK).await;
    }
    let before = fleet.sim.calls();
    let throttled_before = fleet.sim.throttled();
    let start = fleet.clock.now();
    for arns in &fleet.services {
        fleet.sim.put_spec(&arns.key, fleet::record(arns, 2));
    }
    let mut seconds = None;
    while fleet.clock.now().since(start) < LIMIT {
        fleet.clock.sleep(CHECK).await;
        if fleet.settled_on(2) + fleet.failed() >= services {
            seconds = Some(fleet.clock.now().since(start).as_secs_f64());
            break;
        }
    }
    shutdown.cancel();
    let _ = running.await;
    let calls = delta(&before, &fleet.sim.calls());
    let throttled = delta(&throttled_before, &fleet.sim.throttled());
    let ok = |ops: &[&str]| -> u64 {
        ops.iter()
            .map(|op| {
                calls.get(*op).copied().unwrap_or(0) - throttled.get(*op).copied().unwrap_or(0)
            })
            .sum()
    };
    Ok(RolloutRun {
        mode: mode.into(),
        services,
        seconds: seconds.filter(|_| fleet.failed() == 0),
        settled: fleet.settled_on(2),
        failed: fleet.failed(),
        elb_mutations: ok(&ELB_MUTATIONS),
        ecs_mutations: ok(&ECS_MUTATIONS),
        calls,
        throttled,
        peak_rss_mib: mib(proc_status_kib("VmHWM")),
        wall_seconds: wall.elapsed().as_secs_f64(),
    })
}

pub fn delta(
    before: &BTreeMap<&'static str, u64>,
    after: &BTreeMap<&'static str, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(op, n)| (op.to_string(), n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}
