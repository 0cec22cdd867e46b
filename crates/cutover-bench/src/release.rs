//! The same fleet released in waves: the fleet, seed, controller
//! configuration and budgets of the all-at-once rollout, but rather than
//! 1,000 record writes, one release record that sets a new image, wave by
//! wave, with a bake between waves and a failure budget. The controller's
//! release loop writes the members' records; their rollouts are the
//! ordinary ones.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::fleet::{self, Fleet};
use super::measure::{mib, proc_status_kib};
use super::report::{ReleaseLoopCalls, ReleaseRun, WaveRun, ok_calls};
use super::rollout::{ECS_MUTATIONS, ELB_MUTATIONS, delta};
use super::steady;
use cutover_controller::cloud::budget::{ApiBudgets, BudgetConfig};
use cutover_controller::cloud::releases;
use cutover_core::fleet::ReleasePhase;
use cutover_core::rollout::Phase;
use cutover_core::rollout::items::RELEASE_PREFIX;

/// Long enough for the rollout's limit plus the bakes.
const LIMIT: Duration = Duration::from_secs(7 * 3600);
/// How often the benchmark checks whether every service settled, as the
/// all-at-once rollout does.
const CHECK: Duration = Duration::from_secs(5);
/// How often the members in flight are counted.
const SAMPLE: Duration = Duration::from_secs(1);

pub const NAME: &str = "bench-image-2";
/// The image the release sets; the container every bench service runs.
pub const IMAGE: &str = "registry.example/bench:2";
pub const CONTAINER: &str = "app";
pub const BAKE_BETWEEN: &str = "5m";
pub const BAKE_SECONDS: f64 = 300.0;

/// Cumulative wave sizes: 10 services, then 10%, 50% and all of them.
pub fn waves() -> Value {
    json!([{"services": 10}, {"percent": 10}, {"percent": 50}, {"percent": 100}])
}

/// More than 1% of the members failed (10 of 1,000) halts the release.
pub fn failure_budget() -> Value {
    json!({"percent": 1})
}

pub fn body() -> Value {
    json!({
        "selector": {"bench": "fleet"},
        "set": {"image": IMAGE, "container": CONTAINER},
        "waves": waves(),
        "bake_between": BAKE_BETWEEN,
        "failure_budget": failure_budget(),
        "on_halt": "pause",
    })
}

/// What each member is at, read from the simulated table and cloud.
struct Tally {
    /// Records that say the release's image.
    written: usize,
    /// Steady with the primary task set on `<family>:2`.
    settled: usize,
    failed: usize,
    /// Written and neither settled nor failed.
    in_flight: usize,
}

fn tally(fleet: &Fleet) -> Tally {
    let mut t = Tally {
        written: 0,
        settled: 0,
        failed: 0,
        in_flight: 0,
    };
    for r in fleet.sim.records() {
        let written = r.body.get("image") == Some(&json!(IMAGE));
        let phase = r.status.as_ref().map(|s| s.phase());
        let settled = written && phase == Some(Phase::Steady) && fleet.primary_on(&r.key, 2);
        let failed = phase == Some(Phase::Failed);
        t.written += usize::from(written);
        t.settled += usize::from(settled);
        t.failed += usize::from(failed);
        t.in_flight += usize::from(written && !settled && !failed);
    }
    t
}

pub async fn run(services: usize, seed: u64) -> anyhow::Result<ReleaseRun> {
    let wall = Instant::now();
    let fleet = fleet::build(services, seed)?;
    // The release selects its members by label: every bench service.
    for arns in &fleet.services {
        let mut record = fleet::record(arns, 1);
        record["labels"] = json!({"bench": "fleet"});
        fleet.sim.put_spec(&arns.key, record);
    }
    let budgets = ApiBudgets::new(&BudgetConfig::default(), Arc::clone(&fleet.clock));
    let controller = steady::controller(&fleet, &budgets, seed);
    let handle = controller.handle();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(controller.run(shutdown.clone()));
    // Every service settled and with a status before the release starts.
    while !fleet.all_have_status() || fleet.settled_on(1) < services {
        fleet.clock.sleep(CHECK).await;
    }
    let before = fleet.sim.calls();
    let throttled_before = fleet.sim.throttled();
    let loop_before = fleet.recorder.release_calls();
    let start = fleet.clock.now();
    // As the API starts one: checked, written, and looked at from the next
    // poll. The one UpdateItem is counted with the controller's calls.
    releases::start(&fleet.sim, NAME, &body())
        .await
        .map_err(|e| anyhow::anyhow!("starting the release: {e}"))?;
    handle.release_written(&format!("{RELEASE_PREFIX}{NAME}"));

    let mut seconds = None;
    let mut most_in_flight = 0;
    let mut last_check = start;
    let mut outcome = "not done".to_string();
    while fleet.clock.now().since(start) < LIMIT {
        fleet.clock.sleep(SAMPLE).await;
        let t = tally(&fleet);
        most_in_flight = most_in_flight.max(t.in_flight);
        let calls = fleet.recorder.release_calls();
        if let Some((_, status)) = &calls.last
            && matches!(
                status.phase,
                ReleasePhase::Halted { .. } | ReleasePhase::Aborted | ReleasePhase::Invalid { .. }
            )
        {
            outcome = format!("{}: {}", status.phase, status.message);
            break;
        }
        if fleet.clock.now().since(last_check) >= CHECK {
            last_check = fleet.clock.now();
            if seconds.is_none() && t.settled + t.failed >= services {
                seconds = Some(fleet.clock.now().since(start).as_secs_f64());
            }
        }
        if seconds.is_some() && calls.completed_at.is_some() {
            outcome = "completed".into();
            break;
        }
    }
    let after = fleet.sim.calls();
    let throttled_after = fleet.sim.throttled();
    let loop_after = fleet.recorder.release_calls();
    shutdown.cancel();
    let _ = running.await;

    let calls = delta(&before, &after);
    let throttled = delta(&throttled_before, &throttled_after);
    let t = tally(&fleet);
    let (_, status) = loop_after
        .last
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the release loop never wrote the release's status"))?;
    // The stored status, read once the measurement is over, agrees.
    let stored = releases::get(&fleet.sim, NAME)
        .await
        .map_err(|e| anyhow::anyhow!("reading the release: {e}"))?
        .and_then(|r| r.status)
        .ok_or_else(|| anyhow::anyhow!("the release has no status"))?;
    anyhow::ensure!(
        stored.phase == ReleasePhase::Completed
            && loop_after.completed_at.is_some()
            && t.settled == services
            && t.failed == 0,
        "the release did not complete with every service Steady on the new image: {outcome}; \
         stored phase {} ({}); {} of {services} settled, {} failed, {} in flight",
        stored.phase,
        stored.message,
        t.settled,
        t.failed,
        t.in_flight
    );
    let secs_from_start =
        |at: Option<cutover_core::time::Timestamp>| at.map(|a| a.since(start).as_secs_f64());
    let mut cumulative = 0;
    let wave_runs = status
        .waves
        .iter()
        .map(|w| {
            cumulative += w.members.len();
            WaveRun {
                services: w.members.len(),
                cumulative,
                started_seconds: secs_from_start(w.started_at),
                settled_seconds: secs_from_start(w.settled_at),
            }
        })
        .collect();
    Ok(ReleaseRun {
        services,
        waves_spec: waves().to_string(),
        bake_between: BAKE_BETWEEN.into(),
        failure_budget: failure_budget().to_string(),
        seconds,
        completed_seconds: secs_from_start(loop_after.completed_at),
        phase: stored.phase.kind().into(),
        settled: t.settled,
        failed: t.failed,
        waves: wave_runs,
        most_in_flight,
        most_in_flight_counted_by_release: loop_after.most_in_flight,
        elb_mutations: ok_calls(&calls, &throttled, &ELB_MUTATIONS),
        ecs_mutations: ok_calls(&calls, &throttled, &ECS_MUTATIONS),
        release_loop: ReleaseLoopCalls {
            // One Scan of the table per look, then the release's GetItem.
            scans: loop_after.reads - loop_before.reads,
            reads: loop_after.reads - loop_before.reads,
            member_writes: loop_after.member_writes - loop_before.member_writes,
            status_writes: loop_after.status_writes - loop_before.status_writes,
        },
        largest_status_bytes: loop_after.largest_status,
        calls,
        throttled,
        peak_rss_mib: mib(proc_status_kib("VmHWM")),
        wall_seconds: wall.elapsed().as_secs_f64(),
    })
}
