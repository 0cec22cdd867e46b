//! The baseline: a polling loop as a script or a CLI on a timer would run
//! it. Each sweep lists the records, then for every service describes it
//! alone and reads the health of both its target groups, then decides and
//! acts with the same decision cutover uses. No change feed, no batching,
//! no budget: AWS's throttling paces it, and the SDK's standard retries
//! (three attempts, full-jitter exponential backoff from 1 s, capped at
//! 20 s) absorb the throttles.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::fleet::{self, Fleet};
use super::measure::{cpu_time, mib, proc_status_kib};
use super::report::SweepRun;
use super::steady::{NAIVE_WORKERS, POLL, WAVE_SPREAD, detection, steady_sweeps};
use cutover_controller::cloud::observe::observe;
use cutover_controller::cloud::{
    Clock, CloudError, DesiredStore, Ecs, LoadBalancer, NoChecks, NoCodeDeploy,
    NoServiceDeployments, StoredRecord,
};
use cutover_controller::controller::{CommandPorts, execute_commands};
use cutover_core::rollout::command::CreateTaskSet;
use cutover_core::rollout::{
    Desired, Route, ServiceKey, ServiceState, Stickiness, TargetCounts, TaskSet, Weights, decide,
    reads,
};
use cutover_core::time::Timestamp;

const ATTEMPTS: u32 = 3;
/// Sweeps the baseline may take to give every service its first status.
const WARM_SWEEPS: usize = 60;
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(20);

/// The SDK's standard retry mode, on the simulated clock.
pub struct Retry {
    clock: Arc<dyn Clock>,
    rng: Mutex<ChaCha8Rng>,
}

impl Retry {
    pub fn new(clock: Arc<dyn Clock>, seed: u64) -> Self {
        Retry {
            clock,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        }
    }

    pub async fn call<T, F, Fut>(&self, mut f: F) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        let mut attempt = 1;
        loop {
            match f().await {
                Err(e) if e.kind.is_retryable() && attempt < ATTEMPTS => {
                    let cap = BACKOFF_BASE
                        .saturating_mul(1 << (attempt - 1))
                        .min(BACKOFF_MAX);
                    let jitter = {
                        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
                        rng.random_range(0.0..1.0)
                    };
                    self.clock.sleep(cap.mul_f64(jitter)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// A port whose calls the SDK would retry.
pub struct Retrying<P: ?Sized> {
    inner: Arc<P>,
    retry: Arc<Retry>,
}

#[async_trait]
impl Ecs for Retrying<dyn Ecs> {
    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<(String, ServiceState)>, CloudError> {
        let inner = &self.inner;
        self.retry
            .call(|| inner.describe_services(cluster, services))
            .await
    }

    async fn create_task_set(
        &self,
        key: &ServiceKey,
        request: &CreateTaskSet,
    ) -> Result<TaskSet, CloudError> {
        let inner = &self.inner;
        self.retry
            .call(|| inner.create_task_set(key, request))
            .await
    }

    async fn set_primary(&self, key: &ServiceKey, task_set_arn: &str) -> Result<(), CloudError> {
        let inner = &self.inner;
        self.retry
            .call(|| inner.set_primary(key, task_set_arn))
            .await
    }

    async fn delete_task_set(
        &self,
        key: &ServiceKey,
        task_set_arn: &str,
    ) -> Result<(), CloudError> {
        let inner = &self.inner;
        self.retry
            .call(|| inner.delete_task_set(key, task_set_arn))
            .await
    }

    async fn stopped_tasks(&self, key: &ServiceKey, task_set_arn: &str) -> Result<u32, CloudError> {
        let inner = &self.inner;
        self.retry
            .call(|| inner.stopped_tasks(key, task_set_arn))
            .await
    }
}

#[async_trait]
impl LoadBalancer for Retrying<dyn LoadBalancer> {
    async fn weights(&self, route: &Route) -> Result<Weights, CloudError> {
        let inner = &self.inner;
        self.retry.call(|| inner.weights(route)).await
    }

    async fn set_weights(&self, route: &Route, weights: &Weights) -> Result<(), CloudError> {
        let inner = &self.inner;
        self.retry.call(|| inner.set_weights(route, weights)).await
    }

    async fn stickiness(&self, route: &Route) -> Result<Stickiness, CloudError> {
        let inner = &self.inner;
        self.retry.call(|| inner.stickiness(route)).await
    }

    async fn set_stickiness(
        &self,
        route: &Route,
        stickiness: Stickiness,
    ) -> Result<(), CloudError> {
        let inner = &self.inner;
        self.retry
            .call(|| inner.set_stickiness(route, stickiness))
            .await
    }

    async fn target_health(&self, target_group: &str) -> Result<TargetCounts, CloudError> {
        let inner = &self.inner;
        self.retry.call(|| inner.target_health(target_group)).await
    }
}

pub struct Naive {
    store: Arc<dyn DesiredStore>,
    ecs: Arc<dyn Ecs>,
    lb: Arc<dyn LoadBalancer>,
    clock: Arc<dyn Clock>,
    retry: Arc<Retry>,
    sweeps: Mutex<Vec<(Timestamp, Timestamp)>>,
}

impl Naive {
    pub fn new(fleet: &Fleet, seed: u64) -> Arc<Naive> {
        let retry = Arc::new(Retry::new(Arc::clone(&fleet.clock), seed));
        let ecs: Arc<dyn Ecs> = fleet.recorder.clone();
        let lb: Arc<dyn LoadBalancer> = Arc::new(fleet.sim.clone());
        Arc::new(Naive {
            store: fleet.recorder.clone(),
            ecs: Arc::new(Retrying {
                inner: ecs,
                retry: Arc::clone(&retry),
            }),
            lb: Arc::new(Retrying {
                inner: lb,
                retry: Arc::clone(&retry),
            }),
            clock: Arc::clone(&fleet.clock),
            retry,
            sweeps: Mutex::default(),
        })
    }

    /// Sweeps completed so far, start and end.
    pub fn sweeps(&self) -> Vec<(Timestamp, Timestamp)> {
        self.sweeps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sweeps until `shutdown`, pausing a poll interval between them.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let start = self.clock.now();
            Arc::clone(&self).sweep().await;
            let end = self.clock.now();
            self.sweeps
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((start, end));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.clock.sleep(POLL) => {}
            }
        }
    }

    async fn sweep(self: Arc<Self>) {
        let store = &self.store;
        let Ok(records) = self.retry.call(|| store.list()).await else {
            return;
        };
        let todo = Arc::new(Mutex::new(VecDeque::from(records)));
        let mut workers = JoinSet::new();
        for _ in 0..NAIVE_WORKERS {
            let (me, todo) = (Arc::clone(&self), Arc::clone(&todo));
            workers.spawn(async move {
                loop {
                    let next = todo
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pop_front();
                    let Some(record) = next else { break };
                    // A service that failed waits for the next sweep, as
                    // in any polling loop.
                    let _ = me.pass(record).await;
                }
            });
        }
        while workers.join_next().await.is_some() {}
    }

    async fn pass(&self, record: StoredRecord) -> Result<(), CloudError> {
        let key = record.key.clone();
        let status = record.status.clone().unwrap_or_default();
        let spec = record.spec();
        let desired = Desired::of(&spec);
        let both: Vec<String> = spec
            .as_ref()
            .map(|s| s.traffic.target_groups.to_vec())
            .unwrap_or_default();
        let now = self.clock.now();
        let (ecs, lb) = (self.ecs.as_ref(), self.lb.as_ref());
        let observed = observe(
            ecs,
            lb,
            &NoChecks,
            &NoCodeDeploy,
            &NoServiceDeployments,
            &key,
            |service| {
                let mut r = reads(&desired, Some(service), &status, now);
                r.target_health = both;
                r
            },
        )
        .await?;
        let decision = decide(&desired, &observed, &status, self.clock.now());
        let ports = CommandPorts {
            ecs,
            lb,
            checks: &NoChecks,
            codedeploy: &NoCodeDeploy,
            service_deployments: &NoServiceDeployments,
        };
        execute_commands(&ports, &key, &decision.commands)
            .await
            .map_err(|failed| failed.error)?;
        if record.status.as_ref() != Some(&decision.status) {
            let store = &self.store;
            let version = record.status_version;
            self.retry
                .call(|| store.write_status(&key, version, &decision.status))
                .await?;
        }
        Ok(())
    }
}

/// Waits until the loop has completed `n` sweeps in all.
async fn sweeps_done(naive: &Naive, clock: &dyn Clock, n: usize) -> Vec<(Timestamp, Timestamp)> {
    loop {
        let sweeps = naive.sweeps();
        if sweeps.len() >= n {
            return sweeps;
        }
        clock.sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run(services: usize, seed: u64) -> anyhow::Result<SweepRun> {
    let wall = Instant::now();
    let fleet = fleet::build(services, seed)?;
    let setup_rss = mib(proc_status_kib("VmRSS"));
    let started = fleet.clock.now();
    let naive = Naive::new(&fleet, seed);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(Arc::clone(&naive).run(shutdown.clone()));
    let clock = fleet.clock.as_ref();

    // As for cutover, the first sweeps write the statuses; throttled
    // services get theirs in a later sweep. At 10,000 services more than
    // half the baseline's passes fail on a throttled DescribeTargetHealth
    // (seed 1: 115,541 in 20 sweeps), so a service may go without a status
    // through 20 sweeps in a row; 60 leave that to chance no more.
    let mut warm = 0;
    while warm < WARM_SWEEPS && !fleet.all_have_status() {
        warm += 1;
        sweeps_done(&naive, clock, warm).await;
    }
    anyhow::ensure!(
        fleet.all_have_status(),
        "{warm} sweeps left services without a status"
    );
    let sweeps = steady_sweeps(services);
    let (calls, throttled, cpu) = (fleet.sim.calls(), fleet.sim.throttled(), cpu_time());
    let done = sweeps_done(&naive, clock, warm + sweeps).await;
    let cpu = cpu_time().saturating_sub(cpu);
    let measured = &done[warm..warm + sweeps];
    let times: Vec<Duration> = measured.iter().map(|(s, e)| e.since(*s)).collect();
    let mut run = SweepRun::measured(
        "naive",
        services,
        &times,
        &calls,
        &fleet.sim.calls(),
        &throttled,
        &fleet.sim.throttled(),
    );
    run.sweep_period_seconds = run.sweep_seconds + POLL.as_secs_f64();
    run.cpu_ms_per_sweep = cpu.as_secs_f64() * 1000.0 / sweeps as f64;
    if let (Some(first), Some(last)) = (measured.first(), measured.last()) {
        run.steady_window_seconds = last.1.since(first.0).as_secs_f64();
    }

    // The same wave of writes, from the end of a sweep (the next one
    // starts a poll interval later).
    let next = naive.sweeps().len() + 1;
    while naive.sweeps().len() < next {
        fleet.clock.sleep(Duration::from_millis(100)).await;
    }
    let sweep = Duration::from_secs_f64(run.sweep_period_seconds.max(1.0));
    let (samples, missed) = detection(&fleet, sweep * 3 + WAVE_SPREAD).await;
    run.set_detection(&samples, missed);
    shutdown.cancel();
    let _ = running.await;
    run.setup_rss_mib = setup_rss;
    run.peak_rss_mib = mib(proc_status_kib("VmHWM"));
    run.simulated_seconds = fleet.clock.now().since(started).as_secs_f64();
    run.wall_seconds = wall.elapsed().as_secs_f64();
    Ok(run)
}
