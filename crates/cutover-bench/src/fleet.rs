//! The simulated fleet every run starts from: services that each run one
//! healthy version behind a production listener, grouped a hundred to a
//! cluster, with AWS-like latency, AWS's request budgets enforced, and a
//! change feed that lags like DynamoDB Streams read every half second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use cutover_controller::cloud::{
    Change, Clock, CloudError, DesiredStore, Ecs, Fence, FleetItem, Positioned, Precondition,
    ScaledClock, SpecChanges, SpecWrite, StatusWrite, StoredRecord,
};
use cutover_core::fleet::ReleaseStatus;
use cutover_core::rollout::command::CreateTaskSet;
use cutover_core::rollout::items::RELEASE_PREFIX;
use cutover_core::rollout::{Phase, ServiceKey, ServiceState, Status, TaskSet};
use cutover_core::time::Timestamp;
use cutover_sim::{
    DEFAULT_EPOCH, FaultProfile, Faults, RateLimits, ServiceArns, ServiceSetup, SimCloud,
};

pub const CLUSTER_SIZE: usize = 100;

fn latency(min_ms: u64, max_ms: u64) -> FaultProfile {
    FaultProfile {
        latency: (Duration::from_millis(min_ms), Duration::from_millis(max_ms)),
        ..FaultProfile::NONE
    }
}

/// Typical AWS latencies; no errors but the throttling the limits cause.
pub fn aws_latency() -> Faults {
    Faults {
        ecs_read: latency(40, 150),
        ecs_mutation: latency(100, 400),
        elb_read: latency(20, 80),
        elb_mutation: latency(50, 200),
        store: latency(5, 20),
    }
}

pub struct Fleet {
    pub clock: Arc<dyn Clock>,
    pub sim: SimCloud,
    pub services: Vec<ServiceArns>,
    pub recorder: Arc<Recorder>,
}

/// Must be called inside the (paused) runtime that will drive it.
pub fn build(services: usize, seed: u64) -> anyhow::Result<Fleet> {
    let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(DEFAULT_EPOCH, 1.0));
    let sim = SimCloud::builder(seed)
        .clock(Arc::clone(&clock))
        .faults(aws_latency())
        .rate_limits(RateLimits::aws())
        .feed_delay(Duration::from_millis(100), Duration::from_millis(600))
        .keep_log(false)
        .build();
    let mut all = Vec::with_capacity(services);
    for i in 0..services {
        let key = ServiceKey::new(
            format!("bench-{:03}", i / CLUSTER_SIZE),
            format!("svc-{i:05}"),
        );
        let arns = sim.add_service(ServiceSetup {
            test_listener: false,
            ..ServiceSetup::new(key.clone())
        })?;
        sim.put_spec(&key, record(&arns, 1));
        all.push(arns);
    }
    Ok(Fleet {
        recorder: Arc::new(Recorder::new(sim.clone(), Arc::clone(&clock))),
        clock,
        sim,
        services: all,
    })
}

/// The record deploying `revision` of the service's family, all at once
/// and without a bake, with a deadline long enough that waiting for the
/// budget is never mistaken for a stuck rollout.
pub fn record(arns: &ServiceArns, revision: u32) -> Value {
    let mut body = arns.record(
        &format!("{}:{revision}", arns.key.service),
        json!("all_at_once"),
    );
    body["bake"] = json!("0s");
    body["progress_deadline"] = json!("2h");
    body
}

impl Fleet {
    /// Services whose status is Steady and whose primary task set runs
    /// `revision`.
    pub fn settled_on(&self, revision: u32) -> usize {
        let suffix = format!(":{revision}");
        self.sim
            .records()
            .iter()
            .filter(|r| {
                r.status
                    .as_ref()
                    .is_some_and(|s| s.phase() == Phase::Steady)
            })
            .filter(|r| match self.sim.service(&r.key) {
                ServiceState::Found(svc) => svc
                    .primary()
                    .is_some_and(|p| p.task_definition.ends_with(&suffix)),
                ServiceState::Missing | ServiceState::ClusterMissing => false,
            })
            .count()
    }

    /// Whether the service's primary task set runs `revision`.
    pub fn primary_on(&self, key: &ServiceKey, revision: u32) -> bool {
        let suffix = format!(":{revision}");
        match self.sim.service(key) {
            ServiceState::Found(svc) => svc
                .primary()
                .is_some_and(|p| p.task_definition.ends_with(&suffix)),
            ServiceState::Missing | ServiceState::ClusterMissing => false,
        }
    }

    /// Services whose rollout failed.
    pub fn failed(&self) -> usize {
        self.sim
            .records()
            .iter()
            .filter(|r| {
                r.status
                    .as_ref()
                    .is_some_and(|s| s.phase() == Phase::Failed)
            })
            .count()
    }

    pub fn all_have_status(&self) -> bool {
        self.sim.records().iter().all(|r| r.status.is_some())
    }
}

/// Passes the simulated cloud's store and ECS through, noting when each
/// listing ran and when each service first got a task set created: the
/// first action on a record's write.
///
/// Of the fleet items it passes only releases through (`release:<name>`),
/// and counts the calls the release loop makes on them and on the records
/// it writes. Any other item, the fleet-wide halt above all, is answered
/// "none" without a call, as the store's default does: the halt watch's
/// read every poll costs nothing here, in every run alike.
pub struct Recorder {
    sim: SimCloud,
    clock: Arc<dyn Clock>,
    state: Mutex<Recorded>,
}

#[derive(Default)]
struct Recorded {
    lists_started: Vec<Timestamp>,
    lists_done: usize,
    first_create: HashMap<ServiceKey, Timestamp>,
    release: ReleaseCalls,
}

/// What the release loop did through the store, and the status it last
/// wrote.
#[derive(Clone, Debug, Default)]
pub struct ReleaseCalls {
    /// GetItem of a release: one per look, each after the look's Scan.
    pub reads: u64,
    /// UpdateItem of a member's record (conditional on its `updated_at`).
    pub member_writes: u64,
    /// UpdateItem of a release's status.
    pub status_writes: u64,
    /// The last status written, and when its write began.
    pub last: Option<(Timestamp, ReleaseStatus)>,
    /// When a status saying `completed` was first written.
    pub completed_at: Option<Timestamp>,
    /// The most members the release itself counted in flight in a status
    /// it wrote (being written, waiting for cutover, or rolling out).
    pub most_in_flight: usize,
    /// The largest status written, in bytes of JSON.
    pub largest_status: usize,
}

impl Recorder {
    fn new(sim: SimCloud, clock: Arc<dyn Clock>) -> Self {
        Recorder {
            sim,
            clock,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Listings that have returned, and when the last one began.
    pub fn listings(&self) -> (usize, Option<Timestamp>) {
        let s = self.lock();
        (s.lists_done, s.lists_started.last().copied())
    }

    pub fn first_create(&self, key: &ServiceKey) -> Option<Timestamp> {
        self.lock().first_create.get(key).copied()
    }

    pub fn release_calls(&self) -> ReleaseCalls {
        self.lock().release.clone()
    }
}

#[async_trait]
impl DesiredStore for Recorder {
    async fn list(&self) -> Result<Vec<StoredRecord>, CloudError> {
        let started = self.clock.now();
        self.lock().lists_started.push(started);
        let listed = self.sim.list().await;
        self.lock().lists_done += 1;
        listed
    }

    async fn get(&self, key: &ServiceKey) -> Result<Option<StoredRecord>, CloudError> {
        self.sim.get(key).await
    }

    async fn get_item(&self, name: &str) -> Result<Option<FleetItem>, CloudError> {
        if !name.starts_with(RELEASE_PREFIX) {
            return Ok(None);
        }
        self.lock().release.reads += 1;
        self.sim.get_item(name).await
    }

    async fn write_item(
        &self,
        name: &str,
        changes: &SpecChanges,
        precondition: Precondition,
    ) -> Result<SpecWrite, CloudError> {
        self.sim.write_item(name, changes, precondition).await
    }

    async fn write_item_status(
        &self,
        name: &str,
        expected: u64,
        status: &Value,
    ) -> Result<StatusWrite, CloudError> {
        let at = self.clock.now();
        self.lock().release.status_writes += 1;
        let written = self.sim.write_item_status(name, expected, status).await?;
        if let StatusWrite::Written { .. } = written
            && let Ok(decoded) = serde_json::from_value::<ReleaseStatus>(status.clone())
        {
            let size = status.to_string().len();
            let mut s = self.lock();
            let r = &mut s.release;
            r.largest_status = r.largest_status.max(size);
            r.most_in_flight = r.most_in_flight.max(decoded.counts.in_flight);
            if decoded.phase == cutover_core::fleet::ReleasePhase::Completed {
                r.completed_at.get_or_insert(at);
            }
            r.last = Some((at, decoded));
        }
        Ok(written)
    }

    async fn write_status(
        &self,
        key: &ServiceKey,
        expected: u64,
        status: &Status,
    ) -> Result<StatusWrite, CloudError> {
        self.sim.write_status(key, expected, status).await
    }

    async fn write_status_fenced(
        &self,
        key: &ServiceKey,
        expected: u64,
        status: &Status,
        fence: &Fence,
    ) -> Result<StatusWrite, CloudError> {
        self.sim
            .write_status_fenced(key, expected, status, fence)
            .await
    }

    async fn watch(
        &self,
        changes: mpsc::Sender<Change>,
        positioned: Positioned,
    ) -> Result<(), CloudError> {
        self.sim.watch(changes, positioned).await
    }

    async fn write_spec(
        &self,
        key: &ServiceKey,
        changes: &SpecChanges,
        precondition: Precondition,
    ) -> Result<SpecWrite, CloudError> {
        // Only the release loop writes records (the bench writes its own
        // directly into the simulated table).
        self.lock().release.member_writes += 1;
        self.sim.write_spec(key, changes, precondition).await
    }
}

#[async_trait]
impl Ecs for Recorder {
    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<(String, ServiceState)>, CloudError> {
        self.sim.describe_services(cluster, services).await
    }

    async fn create_task_set(
        &self,
        key: &ServiceKey,
        request: &CreateTaskSet,
    ) -> Result<TaskSet, CloudError> {
        let now = self.clock.now();
        self.lock().first_create.entry(key.clone()).or_insert(now);
        self.sim.create_task_set(key, request).await
    }

    async fn set_primary(&self, key: &ServiceKey, task_set_arn: &str) -> Result<(), CloudError> {
        self.sim.set_primary(key, task_set_arn).await
    }

    async fn delete_task_set(
        &self,
        key: &ServiceKey,
        task_set_arn: &str,
    ) -> Result<(), CloudError> {
        self.sim.delete_task_set(key, task_set_arn).await
    }

    async fn stopped_tasks(&self, key: &ServiceKey, task_set_arn: &str) -> Result<u32, CloudError> {
        self.sim.stopped_tasks(key, task_set_arn).await
    }
}
