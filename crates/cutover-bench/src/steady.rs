//! cutover itself over the simulated fleet: steady sweeps (what a fleet
//! with nothing to do costs), then detection of a wave of record writes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::fleet::{self, Fleet};
use super::measure::{cpu_time, mib, proc_status_kib};
use super::report::SweepRun;
use cutover_controller::cloud::budget::{ApiBudgets, BudgetConfig};
use cutover_controller::cloud::{DesiredStore, Ecs, LoadBalancer};
use cutover_controller::controller::{Controller, ControllerConfig, ControllerHandle};
use cutover_core::time::Timestamp;

/// The configuration's defaults.
pub const RESYNC: Duration = Duration::from_secs(300);
pub const POLL: Duration = Duration::from_secs(5);
pub const CONCURRENCY: usize = 64;
/// The baseline's parallelism: a polling script's thread pool. More would
/// only draw more throttling.
pub const NAIVE_WORKERS: usize = 16;
/// How finely the benchmark watches the controller.
const TICK: Duration = Duration::from_millis(10);
/// The wave of writes whose detection is measured: this many services,
/// one write every `WAVE_SPREAD / WAVE` (a busy deploy day, not a storm).
pub const WAVE: usize = 100;
pub const WAVE_SPREAD: Duration = Duration::from_secs(300);

pub fn steady_sweeps(services: usize) -> usize {
    if services >= 10_000 { 2 } else { 3 }
}

pub fn controller(fleet: &Fleet, budgets: &Arc<ApiBudgets>, seed: u64) -> Controller {
    let store: Arc<dyn DesiredStore> = fleet.recorder.clone();
    let ecs: Arc<dyn Ecs> = fleet.recorder.clone();
    let lb: Arc<dyn LoadBalancer> = Arc::new(fleet.sim.clone());
    Controller::new(
        store,
        ecs,
        lb,
        Arc::clone(&fleet.clock),
        ControllerConfig {
            poll_interval: POLL,
            resync_interval: RESYNC,
            concurrency: CONCURRENCY,
            seed,
            ..ControllerConfig::default()
        },
    )
    .with_budgets(budgets)
}

pub async fn run(services: usize, seed: u64) -> anyhow::Result<SweepRun> {
    let wall = Instant::now();
    let fleet = fleet::build(services, seed)?;
    let setup_rss = mib(proc_status_kib("VmRSS"));
    let started = fleet.clock.now();
    let budgets = ApiBudgets::new(&BudgetConfig::default(), Arc::clone(&fleet.clock));
    let controller = controller(&fleet, &budgets, seed);
    let handle = controller.handle();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(controller.run(shutdown.clone()));

    // The first sweep writes every service's status; the next ones find
    // nothing to do.
    let (_, first_end) = sweep(&fleet, &handle).await;
    anyhow::ensure!(
        fleet.all_have_status(),
        "the first sweep left services without a status"
    );
    let sweeps = steady_sweeps(services);
    let (calls, throttled, cpu) = (fleet.sim.calls(), fleet.sim.throttled(), cpu_time());
    let mut times = Vec::new();
    let mut first_start = first_end;
    for i in 0..sweeps {
        let (start, end) = sweep(&fleet, &handle).await;
        if i == 0 {
            first_start = start;
        }
        times.push(end.since(start));
    }
    let cpu = cpu_time().saturating_sub(cpu);
    let mut run = SweepRun::measured(
        "cutover",
        services,
        &times,
        &calls,
        &fleet.sim.calls(),
        &throttled,
        &fleet.sim.throttled(),
    );
    run.sweep_period_seconds = RESYNC.as_secs_f64();
    run.cpu_ms_per_sweep = cpu.as_secs_f64() * 1000.0 / sweeps as f64;
    run.steady_window_seconds = fleet.clock.now().since(first_start).as_secs_f64();

    // The wave starts as a sweep does, so it competes with one.
    wait_for_listing(&fleet).await;
    let limit = RESYNC * 2 + WAVE_SPREAD;
    let (samples, missed) = detection(&fleet, limit).await;
    run.set_detection(&samples, missed);
    shutdown.cancel();
    let _ = running.await;
    run.setup_rss_mib = setup_rss;
    run.peak_rss_mib = mib(proc_status_kib("VmHWM"));
    run.simulated_seconds = fleet.clock.now().since(started).as_secs_f64();
    run.wall_seconds = wall.elapsed().as_secs_f64();
    Ok(run)
}

/// Waits for the next listing to return.
async fn wait_for_listing(fleet: &Fleet) -> Timestamp {
    let (before, _) = fleet.recorder.listings();
    loop {
        let (done, started) = fleet.recorder.listings();
        if done > before {
            return started.unwrap_or_else(|| fleet.clock.now());
        }
        fleet.clock.sleep(TICK).await;
    }
}

/// The next resync sweep: from its listing to the last pass it caused.
async fn sweep(fleet: &Fleet, handle: &ControllerHandle) -> (Timestamp, Timestamp) {
    let start = wait_for_listing(fleet).await;
    while handle.queue_depth() > 0 || handle.in_flight() > 0 {
        fleet.clock.sleep(TICK).await;
    }
    (start, fleet.clock.now())
}

/// Writes a new version for `WAVE` services spread over `WAVE_SPREAD`, and
/// measures each write's wait for its first action (the CreateTaskSet
/// call). Returns the waits and how many were not acted on within `limit`.
pub async fn detection(fleet: &Fleet, limit: Duration) -> (Vec<Duration>, usize) {
    let n = fleet.services.len();
    let wave = WAVE.min(n);
    let start = fleet.clock.now();
    let mut written = Vec::with_capacity(wave);
    for j in 0..wave {
        let at = start + WAVE_SPREAD.mul_f64(j as f64 / wave as f64);
        fleet.clock.sleep_until(at).await;
        let arns = &fleet.services[j * n / wave];
        fleet.sim.put_spec(&arns.key, fleet::record(arns, 2));
        written.push((arns.key.clone(), fleet.clock.now()));
    }
    let deadline = start + limit;
    loop {
        let pending = written
            .iter()
            .filter(|(k, _)| fleet.recorder.first_create(k).is_none())
            .count();
        if pending == 0 || fleet.clock.now() >= deadline {
            break;
        }
        fleet.clock.sleep(Duration::from_millis(100)).await;
    }
    let samples: Vec<Duration> = written
        .iter()
        .filter_map(|(k, at)| fleet.recorder.first_create(k).map(|t| t.since(*at)))
        .collect();
    let missed = wave - samples.len();
    (samples, missed)
}
