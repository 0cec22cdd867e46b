//! Prometheus metrics. Each process (and each test) builds its own registry,
//! so several controllers can run side by side without sharing counters.
//!
//! Labels stay bounded: a service key, and names from fixed sets (`Phase`,
//! `Outcome`, `ErrorKind`, gate names, SDK operation names). Revisions, ARNs,
//! request ids and error messages belong in logs, never in labels.

mod aws;
mod budget;
mod feed;
mod queue;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::cloud::ErrorKind;
use crate::cloud::budget::ApiBudgets;
use crate::cloud::calls::ApiCalls;
use crate::rollout::{Event, GATES, Outcome, Phase, ServiceKey, Status};

/// Where in a reconcile pass a failure is counted (`stage`): the controller
/// names its failures with these, and the counters start at zero for each.
pub const PASS_STAGES: [&str; 4] = ["read_record", "observe", "command", "write_status"];
/// The `stage` and `kind` of a pass that panicked.
pub const PANIC: &str = "panic";

/// Every (`stage`, `kind`) a failed pass is counted under, so that the
/// counters can start at zero before the first failure.
pub fn failure_labels() -> Vec<(&'static str, &'static str)> {
    let mut labels: Vec<_> = PASS_STAGES
        .iter()
        .flat_map(|stage| {
            ErrorKind::ALL
                .iter()
                .map(move |kind| (*stage, kind.as_str()))
        })
        .collect();
    labels.push((PANIC, PANIC));
    labels
}

/// What the metrics read of a running controller at each scrape. The
/// controller's handle provides it; the metrics know nothing else of the
/// loop.
pub trait LoopReadings: Send + Sync + 'static {
    /// Services waiting in the work queue, due or not.
    fn queue_depth(&self) -> usize;
    /// How long the longest-waiting due service has waited for a worker.
    fn oldest_due_age(&self) -> Duration;
    /// Services being reconciled right now.
    fn in_flight(&self) -> usize;
    /// Whether this replica reads the table's change stream itself.
    fn reads_stream(&self) -> bool;
    /// Polls of the relay made while not reading the stream.
    fn relay_polls(&self) -> u64;
    /// Shards listed because the relay could not say what changed.
    fn relay_listings(&self) -> u64;
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A reconcile pass is a handful of AWS calls: milliseconds to seconds.
const RECONCILE_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Rollouts last from a minute (all at once, short bake) to hours.
const ROLLOUT_BUCKETS: &[f64] = &[
    60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0,
];
/// A change feed reacts in about a second; a missed change waits for the
/// next resync, five minutes by default.
const DETECTION_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

pub struct Metrics {
    registry: Registry,
    reconcile_duration: Histogram,
    reconcile_errors: IntCounterVec,
    rollouts_started: IntCounter,
    rollouts_finished: IntCounterVec,
    rollout_duration: HistogramVec,
    gate_evaluations: IntCounterVec,
    traffic_held: IntCounterVec,
    alerts: IntCounterVec,
    service_phase: IntGaugeVec,
    candidate_weight: IntGaugeVec,
    steps_completed: IntGaugeVec,
    phase_since: prometheus::GaugeVec,
    detection_latency: Histogram,
    notifications: IntCounterVec,
    fleet_halted: prometheus::IntGauge,
    release_phase: IntGaugeVec,
    release_members: IntGaugeVec,
    fleet_halt: IntGaugeVec,
    rollouts_in_flight: prometheus::IntGauge,
    rollouts_queued: prometheus::IntGauge,
    /// The services that have per-service gauges.
    services: Mutex<BTreeSet<ServiceKey>>,
    /// Which services this replica drives now; unset, all of them.
    drives: OnceLock<Drives>,
}

/// Whether this replica drives a service now.
pub type Drives = Box<dyn Fn(&ServiceKey) -> bool + Send + Sync>;

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn counter_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn histogram_vec(
    r: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
    labels: &[&str],
) -> prometheus::Result<HistogramVec> {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
) -> prometheus::Result<Histogram> {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

impl Metrics {
    /// Registers every metric the controller itself updates. Fails only on a
    /// programming error (a malformed or duplicate name), which the tests
    /// exercise.
    pub fn new() -> prometheus::Result<Metrics> {
        let r = Registry::new();
        let build = gauge_vec(
            &r,
            "cutover_build_info",
            "The running cutover version; always 1.",
            &["version"],
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);

        let m = Metrics {
            reconcile_duration: histogram(
                &r,
                "cutover_reconcile_duration_seconds",
                "Time one reconcile pass took: read the record, observe, decide, act, write the status.",
                RECONCILE_BUCKETS,
            )?,
            reconcile_errors: counter_vec(
                &r,
                "cutover_reconcile_errors_total",
                "Reconcile passes that failed, by where they failed and the kind of AWS error.",
                &["stage", "kind"],
            )?,
            rollouts_started: {
                let c = IntCounter::new("cutover_rollouts_started_total", "Rollouts started.")?;
                r.register(Box::new(c.clone()))?;
                c
            },
            rollouts_finished: counter_vec(
                &r,
                "cutover_rollouts_finished_total",
                "Rollouts finished, by outcome.",
                &["outcome"],
            )?,
            rollout_duration: histogram_vec(
                &r,
                "cutover_rollout_duration_seconds",
                "Time from a rollout's start to its end, by outcome.",
                ROLLOUT_BUCKETS,
                &["outcome"],
            )?,
            gate_evaluations: counter_vec(
                &r,
                "cutover_gate_evaluations_total",
                "Gate checks of a candidate, by gate and result (pass or fail).",
                &["gate", "result"],
            )?,
            traffic_held: counter_vec(
                &r,
                "cutover_traffic_held_total",
                "Rollbacks that held production where it was because the task set they return to had no healthy target, by whether the candidate had none either (no_side_serves) or not (previous_unhealthy).",
                &["reason"],
            )?,
            alerts: counter_vec(
                &r,
                "cutover_rollout_alerts_total",
                "Changes made outside cutover mid-rollout, and overdue rollbacks, by kind: weights_changed_by_hand (the rollout pauses), foreign_target_group (it holds), previous_task_set_deleted, rollback_overdue, rollback_failed (ECS could not roll a service deployment back).",
                &["kind"],
            )?,
            service_phase: gauge_vec(
                &r,
                "cutover_service_phase",
                "1 for the phase the service is in, 0 for the others.",
                &["service", "phase"],
            )?,
            candidate_weight: gauge_vec(
                &r,
                "cutover_service_candidate_weight",
                "Percent of production traffic on the candidate, as last verified on the load balancer.",
                &["service"],
            )?,
            steps_completed: gauge_vec(
                &r,
                "cutover_service_steps_completed",
                "Strategy steps the rollout in flight has completed; 0 between rollouts.",
                &["service"],
            )?,
            phase_since: {
                let g = prometheus::GaugeVec::new(
                    Opts::new(
                        "cutover_service_phase_since_timestamp_seconds",
                        "When the service entered its current phase, in seconds since the Unix epoch.",
                    ),
                    &["service"],
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            detection_latency: histogram(
                &r,
                "cutover_detection_latency_seconds",
                "Time from a record's write to the first action taken on its revision.",
                DETECTION_BUCKETS,
            )?,
            notifications: counter_vec(
                &r,
                "cutover_notifications_total",
                "Rollout notifications, by format (json or slack) and result (sent, failed after its retries, or dropped because the queue was full).",
                &["format", "result"],
            )?,
            fleet_halted: {
                let g = prometheus::IntGauge::new(
                    "cutover_fleet_halted",
                    "1 while the fleet-wide halt is on (no rollout takes a step), else 0.",
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            // One series at most, and only while halted: the reason is what
            // the on-call engineer wrote, and a dashboard shows it beside
            // the red light. It is cut to a bound where it is read.
            fleet_halt: gauge_vec(
                &r,
                "cutover_fleet_halt_info",
                "1 while the fleet-wide halt is on, with its reason and who halted; no series otherwise.",
                &["reason", "by"],
            )?,
            release_phase: gauge_vec(
                &r,
                "cutover_release_phase",
                "1 for the phase a release is in (pending, rolling, baking, paused, halted, held_by_fleet_halt, aborted, completed, invalid), 0 for the others.",
                &["release", "phase"],
            )?,
            release_members: gauge_vec(
                &r,
                "cutover_release_members",
                "A release's members by outcome: succeeded, failed, in_flight, pending, superseded, missing.",
                &["release", "outcome"],
            )?,
            rollouts_in_flight: {
                let g = prometheus::IntGauge::new(
                    "cutover_rollouts_in_flight",
                    "Rollouts in flight that this replica counts against its concurrency limits ([limits]); 0 when no limit is set.",
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            rollouts_queued: {
                let g = prometheus::IntGauge::new(
                    "cutover_rollouts_queued",
                    "Rollouts waiting for a slot under the concurrency limits ([limits]); each one's place is in its status message.",
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            registry: r,
            services: Mutex::new(BTreeSet::new()),
            drives: OnceLock::new(),
        };
        // Known label values start at zero, so `increase()` sees the first
        // rollback and dashboards show every outcome from the start.
        for outcome in Outcome::ALL {
            m.rollouts_finished.with_label_values(&[outcome.as_str()]);
        }
        for format in ["json", "slack"] {
            for result in ["sent", "failed", "dropped"] {
                m.notifications.with_label_values(&[format, result]);
            }
        }
        // And the failure counters, so the error panel shows 0, not
        // nothing, and `rate()` sees the first failure after a restart.
        for (stage, kind) in failure_labels() {
            m.reconcile_errors.with_label_values(&[stage, kind]);
        }
        // A histogram per outcome too, so the duration panel has a series
        // for every outcome before its first rollout.
        for outcome in Outcome::ALL {
            m.rollout_duration.with_label_values(&[outcome.as_str()]);
        }
        for gate in GATES {
            for result in ["pass", "fail"] {
                m.gate_evaluations.with_label_values(&[gate, result]);
            }
        }
        for kind in crate::rollout::AlertKind::ALL {
            m.alerts.with_label_values(&[kind.as_str()]);
        }
        for neither_serves in [false, true] {
            m.traffic_held
                .with_label_values(&[Event::held_kind(neither_serves)]);
        }
        Ok(m)
    }

    /// Exports the AWS request counts of `calls`, read at each scrape.
    pub fn export_api_calls(&self, calls: &ApiCalls) -> prometheus::Result<()> {
        self.registry
            .register(Box::new(aws::ApiCallsCollector::new(calls.clone())?))
    }

    /// Exports what the AWS request budgets handed out and made wait for,
    /// read at each scrape.
    pub fn export_budgets(&self, budgets: &Arc<ApiBudgets>) -> prometheus::Result<()> {
        self.registry
            .register(Box::new(budget::BudgetCollector::new(Arc::clone(budgets))?))
    }

    /// Exports the controller's work queue and change feed, read at each
    /// scrape.
    pub fn export_queue<L: LoopReadings + Clone>(&self, handle: &L) -> prometheus::Result<()> {
        let readings: Arc<dyn LoopReadings> = Arc::new(handle.clone());
        for collector in queue::collectors(&readings)? {
            self.registry.register(collector)?;
        }
        self.registry
            .register(Box::new(feed::FeedCollector::new(readings)?))
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Shows per-service gauges only for the services `drives` says this
    /// replica drives now: once a shard goes to another replica, the phase,
    /// weight and steps this one last saw of its services are stale, and
    /// beside the new holder's they would show two phases at once (and
    /// could fire a stuck-rollout alert). Set once, by the controller that
    /// shares the services through shard leases.
    pub fn show_services(&self, drives: Drives) {
        if self.drives.set(drives).is_err() {
            tracing::warn!("per-service metrics are already filtered; keeping the first filter");
        }
    }

    fn services(&self) -> std::sync::MutexGuard<'_, BTreeSet<ServiceKey>> {
        self.services.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops the gauges of services this replica no longer drives. At each
    /// scrape, so that a pass that finished after the handoff cannot bring
    /// them back for long.
    fn drop_services_elsewhere(&self) {
        let Some(drives) = self.drives.get() else {
            return;
        };
        let elsewhere: Vec<ServiceKey> = self
            .services()
            .iter()
            .filter(|k| !drives(k))
            .cloned()
            .collect();
        for key in &elsewhere {
            self.service_gone(key);
        }
    }

    /// Everything, in Prometheus' text format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        self.drop_services_elsewhere();
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }

    pub fn reconciled(&self, took: Duration) {
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    pub fn reconcile_failed(&self, stage: &'static str, kind: &'static str) {
        self.reconcile_errors
            .with_label_values(&[stage, kind])
            .inc();
    }

    /// Counts what a decision reported. Called by the same function that
    /// logs the event, so the two never disagree.
    pub fn event(&self, event: &Event) {
        match event {
            Event::RolloutStarted { .. } => self.rollouts_started.inc(),
            Event::RolloutFinished {
                outcome, duration, ..
            } => {
                self.rollouts_finished
                    .with_label_values(&[outcome.as_str()])
                    .inc();
                self.rollout_duration
                    .with_label_values(&[outcome.as_str()])
                    .observe(duration.as_secs_f64());
            }
            Event::GateEvaluated { gate, passed } => {
                let result = if *passed { "pass" } else { "fail" };
                self.gate_evaluations
                    .with_label_values(&[gate, result])
                    .inc();
            }
            Event::TrafficHeld { neither_serves, .. } => {
                self.traffic_held
                    .with_label_values(&[Event::held_kind(*neither_serves)])
                    .inc();
            }
            Event::Alert { kind, .. } => {
                self.alerts.with_label_values(&[kind.as_str()]).inc();
            }
            // The phase gauge follows the stored status instead, which
            // also covers services that have not moved since startup.
            // An adopted rollout was counted when it started.
            Event::Transition(_)
            | Event::StepCompleted { .. }
            | Event::RolloutAdopted { .. }
            | Event::ProductionRestored { .. } => {}
        }
    }

    /// The fleet-wide halt as last read.
    pub fn halt(&self, halt: Option<&crate::rollout::halt::Halt>) {
        self.fleet_halted.set(i64::from(halt.is_some()));
        self.fleet_halt.reset();
        if let Some(h) = halt {
            self.fleet_halt
                .with_label_values(&[h.reason.as_str(), h.by.as_deref().unwrap_or("")])
                .set(1);
        }
    }

    /// A release's gauges, from its status.
    pub fn release(&self, item: &str, status: &crate::fleet::ReleaseStatus) {
        let name = item
            .strip_prefix(crate::rollout::items::RELEASE_PREFIX)
            .unwrap_or(item);
        for phase in crate::fleet::ReleasePhase::KINDS {
            self.release_phase
                .with_label_values(&[name, phase])
                .set(i64::from(status.phase.kind() == phase));
        }
        let c = &status.counts;
        for (outcome, n) in [
            ("succeeded", c.succeeded),
            ("failed", c.failed),
            ("in_flight", c.in_flight),
            ("pending", c.pending),
            ("superseded", c.superseded),
            ("missing", c.missing),
        ] {
            self.release_members
                .with_label_values(&[name, outcome])
                .set(n as i64);
        }
    }

    /// Drops the gauges of a release whose item was deleted.
    pub fn release_gone(&self, item: &str) {
        let name = item
            .strip_prefix(crate::rollout::items::RELEASE_PREFIX)
            .unwrap_or(item);
        for phase in crate::fleet::ReleasePhase::KINDS {
            let _ = self.release_phase.remove_label_values(&[name, phase]);
        }
        for outcome in [
            "succeeded",
            "failed",
            "in_flight",
            "pending",
            "superseded",
            "missing",
        ] {
            let _ = self.release_members.remove_label_values(&[name, outcome]);
        }
    }

    /// Rollouts counted against the concurrency limits, and waiting.
    pub fn admissions(&self, in_flight: usize, queued: usize) {
        self.rollouts_in_flight.set(in_flight as i64);
        self.rollouts_queued.set(queued as i64);
    }

    /// The service's gauges, from the status as stored.
    pub fn service(&self, key: &ServiceKey, status: &Status) {
        self.services().insert(key.clone());
        let service = key.to_string();
        for phase in Phase::ALL {
            self.service_phase
                .with_label_values(&[service.as_str(), phase.as_str()])
                .set(i64::from(phase == status.phase()));
        }
        let candidate = status.weights.map_or(0, |(_, c)| c);
        self.candidate_weight
            .with_label_values(&[service.as_str()])
            .set(i64::from(candidate));
        let steps = status.rollout.as_ref().map_or(0, |r| r.step);
        self.steps_completed
            .with_label_values(&[service.as_str()])
            .set(i64::from(steps));
        self.phase_since
            .with_label_values(&[service.as_str()])
            .set(status.phase_since.millis() as f64 / 1000.0);
    }

    /// Drops the gauges of a service whose record was deleted, or that
    /// another replica drives now.
    pub fn service_gone(&self, key: &ServiceKey) {
        self.services().remove(key);
        let service = key.to_string();
        for phase in Phase::ALL {
            let _ = self
                .service_phase
                .remove_label_values(&[service.as_str(), phase.as_str()]);
        }
        for gauge in [&self.candidate_weight, &self.steps_completed] {
            let _ = gauge.remove_label_values(&[service.as_str()]);
        }
        let _ = self.phase_since.remove_label_values(&[service.as_str()]);
    }

    /// One notification's fate: `sent`, `failed` or `dropped`.
    pub fn detected(&self, latency: Duration) {
        self.detection_latency.observe(latency.as_secs_f64());
    }
}

#[cfg(test)]
mod tests;

/// The notifier counts its deliveries here.
impl crate::notice::CountNotifications for Metrics {
    fn notification(&self, format: &'static str, result: &'static str) {
        self.notifications
            .with_label_values(&[format, result])
            .inc();
    }
}
