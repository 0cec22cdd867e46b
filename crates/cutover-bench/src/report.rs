//! What each run measured, and how the two sides compare.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::measure::percentile;

/// Steady sweeps and detection, for one fleet size and one side.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SweepRun {
    pub mode: String,
    pub services: usize,
    /// Steady sweeps measured (after a first one that writes every status).
    pub sweeps: usize,
    /// Every AWS request attempt, throttled ones included, per service and sweep.
    pub calls_per_service_per_sweep: f64,
    pub calls_by_operation: BTreeMap<String, f64>,
    pub throttled_per_sweep: f64,
    /// Simulated seconds from a sweep's listing to its last pass.
    pub sweep_seconds: f64,
    /// How often a sweep starts: the resync interval, or back to back.
    pub sweep_period_seconds: f64,
    /// Simulated seconds covered by the measured sweeps.
    pub steady_window_seconds: f64,
    pub describe_calls_per_sweep: f64,
    pub detection_p50_seconds: Option<f64>,
    pub detection_p99_seconds: Option<f64>,
    pub detection_samples: usize,
    /// Writes not acted on before the run gave up waiting.
    pub detection_missed: usize,
    pub cpu_ms_per_sweep: f64,
    pub peak_rss_mib: Option<f64>,
    /// Resident set once the simulated fleet is built, before any controller.
    pub setup_rss_mib: Option<f64>,
    pub simulated_seconds: f64,
    pub wall_seconds: f64,
}

/// AWS's account budget for DescribeServices, per second.
pub const ECS_READ_PER_SECOND: f64 = 20.0;

impl SweepRun {
    pub fn measured(
        mode: &str,
        services: usize,
        times: &[Duration],
        calls_before: &BTreeMap<&'static str, u64>,
        calls_after: &BTreeMap<&'static str, u64>,
        throttled_before: &BTreeMap<&'static str, u64>,
        throttled_after: &BTreeMap<&'static str, u64>,
    ) -> SweepRun {
        let sweeps = times.len().max(1) as f64;
        let per = (services.max(1) as f64) * sweeps;
        let delta = |before: &BTreeMap<&'static str, u64>, after: &BTreeMap<&'static str, u64>| {
            after
                .iter()
                .map(|(op, n)| (op.to_string(), n - before.get(op).copied().unwrap_or(0)))
                .filter(|(_, n)| *n > 0)
                .collect::<BTreeMap<String, u64>>()
        };
        let calls = delta(calls_before, calls_after);
        let throttled: u64 = delta(throttled_before, throttled_after).values().sum();
        let total: u64 = calls.values().sum();
        let describes = calls.get("ecs:DescribeServices").copied().unwrap_or(0);
        SweepRun {
            mode: mode.into(),
            services,
            sweeps: times.len(),
            calls_per_service_per_sweep: total as f64 / per,
            calls_by_operation: calls
                .into_iter()
                .map(|(op, n)| (op, n as f64 / per))
                .collect(),
            throttled_per_sweep: throttled as f64 / sweeps,
            sweep_seconds: times.iter().map(Duration::as_secs_f64).sum::<f64>() / sweeps,
            describe_calls_per_sweep: describes as f64 / sweeps,
            ..SweepRun::default()
        }
    }

    pub fn set_detection(&mut self, samples: &[Duration], missed: usize) {
        self.detection_p50_seconds = percentile(samples, 50.0).map(|d| d.as_secs_f64());
        self.detection_p99_seconds = percentile(samples, 99.0).map(|d| d.as_secs_f64());
        self.detection_samples = samples.len();
        self.detection_missed = missed;
    }

    /// The share of the account's DescribeServices budget the sweeps take,
    /// averaged over the time between sweep starts.
    pub fn ecs_read_budget_share(&self) -> f64 {
        let period = self.sweep_period_seconds.max(self.sweep_seconds);
        if period <= 0.0 {
            return 0.0;
        }
        self.describe_calls_per_sweep / (ECS_READ_PER_SECOND * period)
    }
}

/// Rolling a fleet out all at once, for one side.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RolloutRun {
    pub mode: String,
    pub services: usize,
    /// Simulated seconds from the writes until every service is Steady on
    /// the new version; `None` if that did not happen within the limit.
    pub seconds: Option<f64>,
    pub settled: usize,
    pub failed: usize,
    /// Successful ModifyListener/ModifyRule calls.
    pub elb_mutations: u64,
    /// Successful CreateTaskSet/UpdateServicePrimaryTaskSet/DeleteTaskSet calls.
    pub ecs_mutations: u64,
    pub calls: BTreeMap<String, u64>,
    pub throttled: BTreeMap<String, u64>,
    pub peak_rss_mib: Option<f64>,
    pub wall_seconds: f64,
}

/// Successful calls of `ops`: attempts less the throttled ones.
pub fn ok_calls(
    calls: &BTreeMap<String, u64>,
    throttled: &BTreeMap<String, u64>,
    ops: &[&str],
) -> u64 {
    ops.iter()
        .map(|op| calls.get(*op).copied().unwrap_or(0) - throttled.get(*op).copied().unwrap_or(0))
        .sum()
}

/// The same fleet released in waves by one release record.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReleaseRun {
    pub services: usize,
    /// The release's `waves`, `bake_between` and `failure_budget`.
    pub waves_spec: String,
    pub bake_between: String,
    pub failure_budget: String,
    /// Simulated seconds from the release's write until every service is
    /// Steady on the new image, checked every 5 s as for the rollout.
    pub seconds: Option<f64>,
    /// Simulated seconds from the release's write until the release loop
    /// wrote its status `completed`.
    pub completed_seconds: Option<f64>,
    /// The release's phase as stored at the end.
    pub phase: String,
    pub settled: usize,
    pub failed: usize,
    pub waves: Vec<WaveRun>,
    /// The most members written the new image and neither Steady on it nor
    /// failed at once, counted every simulated second.
    pub most_in_flight: usize,
    /// The most members in flight in a status the release wrote (its own
    /// count, at each look).
    pub most_in_flight_counted_by_release: usize,
    /// Successful ModifyListener/ModifyRule calls.
    pub elb_mutations: u64,
    /// Successful CreateTaskSet/UpdateServicePrimaryTaskSet/DeleteTaskSet calls.
    pub ecs_mutations: u64,
    /// DynamoDB calls the release loop made.
    pub release_loop: ReleaseLoopCalls,
    /// The largest release status written, in bytes of JSON (an item holds
    /// at most 400 KB).
    pub largest_status_bytes: usize,
    /// Every call from the release's write on, the write included.
    pub calls: BTreeMap<String, u64>,
    pub throttled: BTreeMap<String, u64>,
    pub peak_rss_mib: Option<f64>,
    pub wall_seconds: f64,
}

/// One wave, in simulated seconds from the release's write.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WaveRun {
    /// Members new in this wave.
    pub services: usize,
    /// Members in this wave and the ones before.
    pub cumulative: usize,
    pub started_seconds: Option<f64>,
    pub settled_seconds: Option<f64>,
}

/// The release loop's DynamoDB calls: each look (every poll while the
/// release is active) is a Scan of the table and a GetItem of the release.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReleaseLoopCalls {
    pub scans: u64,
    pub reads: u64,
    /// Conditional UpdateItems of members' records.
    pub member_writes: u64,
    /// UpdateItems of the release's status (when it changed).
    pub status_writes: u64,
}

impl ReleaseLoopCalls {
    pub fn total(&self) -> u64 {
        self.scans + self.reads + self.member_writes + self.status_writes
    }
}

/// The least time `calls` can take at `per_second` after a burst of `burst`.
pub fn floor_seconds(calls: f64, per_second: f64, burst: f64) -> f64 {
    ((calls - burst) / per_second).max(0.0)
}

pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a > 0.0 && b > 0.0 => {
            let r = b / a;
            if r >= 10.0 {
                format!("{r:.0}×")
            } else {
                format!("{r:.1}×")
            }
        }
        _ => "-".into(),
    }
}

pub fn secs(s: Option<f64>) -> String {
    match s {
        None => "-".into(),
        Some(s) if s < 10.0 => format!("{s:.2} s"),
        Some(s) => format!("{s:.0} s"),
    }
}
