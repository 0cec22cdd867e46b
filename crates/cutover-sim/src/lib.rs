//! The simulated cloud: a deterministic, seeded stand-in for ECS (task sets,
//! and the service deployments ECS runs itself), the Application Load
//! Balancer and the desired-state table. It implements the
//! same ports as the AWS adapters, and adds what tests, the demo and the
//! benchmark need: scenario setup, bad versions, faults, call counts, an
//! event log and safety invariants.
//!
//! All state lives in one world behind a mutex that is never held across an
//! `.await`. The world moves only when someone looks: every call first runs
//! the events due by the injected clock's time, so a paused tokio runtime
//! makes a whole scenario deterministic for a seed.

mod alb;
mod arn;
mod builder;
mod churn;
mod config;
mod ecs;
mod faults;
mod in_flight;
mod invariants;
mod item_size;
mod leases;
mod limits;
mod native;
mod ports;
mod registry;
mod relay;
mod scenario;
mod scheduler;
mod store;
mod targets;
mod tasks;
mod world;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

// The decision core and the controller's ports under the paths this code
// has always used.
use cutover_controller::cloud;
#[cfg(test)]
use cutover_controller::controller;
use cutover_core::{rollout, time};

use crate::cloud::{Clock, CloudError, StoredRecord};
use crate::rollout::{ServiceKey, ServiceState, TargetCounts, Weights};
use crate::time::Timestamp;

pub use alb::{Action, Condition, Forward, RouteConfig, Stickiness, WeightedTargetGroup};
pub use arn::{ACCOUNT, REGION};
pub use builder::{DEFAULT_EPOCH, SimBuilder};
pub use config::{Churn, HealthCheck, SimConfig};
pub use ecs::TASK_SET_LIMIT;
pub use faults::{ApiGroup, FaultProfile, Faults};
pub use invariants::{NativeContinue, NativeStart};
pub use item_size::{ITEM_LIMIT, item_size};
pub use limits::RateLimits;
pub use registry::{BadVersion, Containers};
pub use scenario::{NATIVE_CONTROLLER, ServiceArns, ServiceSetup};
pub use store::STREAM_READERS;
pub use targets::TargetState;
pub use tasks::{DesiredStatus, TaskFilter, TaskView};
pub use world::LogEntry;

use world::World;

/// A handle on the simulated cloud; clones share the same world.
#[derive(Clone)]
pub struct SimCloud {
    inner: Arc<Inner>,
}

struct Inner {
    seed: u64,
    clock: Arc<dyn Clock>,
    world: Mutex<World>,
    /// Wakes change feeds when a record changes.
    changes: Notify,
}

impl SimCloud {
    pub fn builder(seed: u64) -> SimBuilder {
        SimBuilder::new(seed)
    }

    pub fn seed(&self) -> u64 {
        self.inner.seed
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    /// The world, brought up to the clock's time.
    fn world(&self) -> MutexGuard<'_, World> {
        let now = self.inner.clock.now();
        let mut w = self
            .inner
            .world
            .lock()
            .expect("sim world lock poisoned: a panic while it was held");
        w.advance_to(now);
        w
    }

    /// Runs everything due by now. API calls do this themselves; a harness
    /// calls it to let time pass with nobody looking.
    pub fn advance(&self) {
        drop(self.world());
    }

    /// Sleeps `d` on the clock, then advances the world.
    pub async fn run_for(&self, d: Duration) {
        self.inner.clock.sleep(d).await;
        self.advance();
    }

    pub fn now(&self) -> Timestamp {
        self.world().now
    }

    /// Calls made so far, by operation (e.g. `ecs:DescribeServices`),
    /// including calls that failed with an injected fault.
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.world().calls.clone()
    }

    /// Calls refused by the enforced rate limits, by operation (these are
    /// also in `calls`).
    pub fn throttled(&self) -> BTreeMap<&'static str, u64> {
        self.world().limits.throttled.clone()
    }

    /// Calls refused by the enforced rate limits in one account and region
    /// (the scope's, as its keys name it), by operation.
    pub fn throttled_in(&self, scope: &crate::rollout::Scope) -> BTreeMap<&'static str, u64> {
        let (region, account) = arn::place(scope);
        let w = self.world();
        w.limits
            .throttled_in
            .iter()
            .filter(|((place, _), _)| place.0 == region && place.1 == account)
            .map(|((_, op), n)| (*op, *n))
            .collect()
    }

    pub fn call_count(&self, operation: &str) -> u64 {
        self.world().calls.get(operation).copied().unwrap_or(0)
    }

    pub fn violations(&self) -> Vec<LogEntry> {
        self.world().checks.violations.clone()
    }

    /// Everything that happened, in sim time order: enough to replay a
    /// failing seed by reading.
    pub fn event_log(&self) -> Vec<LogEntry> {
        self.world().log_entries().to_vec()
    }

    /// How many tasks of the service's primary task set had stopped for a
    /// failure of its version (as the task failures gate counts them) at
    /// least `known_after` before the controller removed the task set that
    /// served before it: what the controller could know of the version it
    /// kept, as a pass acts on reads taken a moment before. `None` without
    /// a primary, or when no task set was removed after it was created.
    /// Under the ECS deployment controller the primary is the revision a
    /// service deployment made serve, and the removal ECS's CLEAN_UP of the
    /// one before: the controller could stop the deployment until then.
    pub fn primary_failures_before_promotion(
        &self,
        key: &ServiceKey,
        known_after: Duration,
    ) -> Option<u32> {
        let world = self.world();
        let service = world.services.by_key.get(key)?;
        let primary = service
            .task_sets
            .iter()
            .find(|t| t.status == crate::rollout::TaskSetStatus::Primary)?;
        let removed = service
            .removed
            .iter()
            .filter(|(id, at)| *id != primary.id && *at >= primary.created_at)
            .map(|(_, at)| *at)
            .min()?;
        let failures = service
            .stopped_tasks
            .iter()
            .filter(|t| {
                t.started_by == primary.id
                    && t.stopped_at + known_after <= removed
                    && crate::cloud::stopped::counts_as_failure(
                        Some(t.stop_code),
                        Some(&t.stopped_reason),
                    )
            })
            .count();
        Some(failures as u32)
    }

    /// Every UpdateService that started a service deployment, in order
    /// (invariant (f) flags those made while another was ongoing).
    pub fn native_starts(&self) -> Vec<NativeStart> {
        self.world().checks.native_starts.clone()
    }

    /// Every CONTINUE answer to a service deployment's pause, in order,
    /// with what the controller could know of the new revision then.
    pub fn native_continues(&self) -> Vec<NativeContinue> {
        self.world().checks.native_continues.clone()
    }

    /// The service's deployments as they are now (no lag, cost or
    /// faults), oldest first.
    pub fn service_deployments(
        &self,
        key: &ServiceKey,
    ) -> Vec<crate::rollout::service_deployment::ServiceDeployment> {
        self.world().service_deployments(key)
    }

    /// The longest time a production route sent traffic to a target group
    /// with no healthy target, counting an exposure still going on.
    pub fn max_exposure(&self) -> Duration {
        self.world().max_exposure()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.world().faults = faults;
    }

    /// Tasks of this task definition (`family:revision` or ARN) misbehave,
    /// including tasks already running.
    pub fn mark_task_definition_bad(&self, task_definition: &str, bad: BadVersion) {
        let mut w = self.world();
        w.registry.mark_task_definition(task_definition, bad);
        w.log(format!("task definition {task_definition} marked {bad:?}"));
        w.apply_badness_everywhere();
    }

    /// Tasks of this task definition behave again from now on (what was
    /// wrong with it was fixed outside the version, e.g. a dependency);
    /// tasks that already stopped stay stopped.
    pub fn mark_task_definition_good(&self, task_definition: &str) {
        let mut w = self.world();
        w.registry.unmark_task_definition(task_definition);
        w.log(format!("task definition {task_definition} behaves again"));
    }

    /// Tasks of any task definition with this image misbehave, including
    /// tasks already running.
    pub fn mark_image_bad(&self, image: &str, bad: BadVersion) {
        let mut w = self.world();
        w.registry.mark_image(image, bad);
        w.log(format!("image {image} marked {bad:?}"));
        w.apply_badness_everywhere();
    }

    /// Registers the next revision of `family` (or returns an identical one)
    /// and returns `family:revision`.
    pub fn register_task_definition(&self, family: &str, containers: Containers) -> String {
        let rev = self.world().registry.register(family, containers);
        format!("{family}:{rev}")
    }

    /// Changes a service's desired count, as an autoscaler would.
    pub fn set_desired_count(&self, key: &ServiceKey, count: u32) -> Result<(), CloudError> {
        self.world().set_desired_count(key, count)
    }

    /// Deletes a task set (even the primary one's sibling serving
    /// production) as a person on the console would.
    pub fn delete_task_set_by_hand(
        &self,
        key: &ServiceKey,
        task_set_arn: &str,
    ) -> Result<(), CloudError> {
        self.world().delete_task_set_by_hand(key, task_set_arn)
    }

    /// The service as ECS would describe it, without cost or faults.
    pub fn service(&self, key: &ServiceKey) -> ServiceState {
        self.world().service_state(key)
    }

    /// The weights the load balancer applies now, without cost or faults.
    pub fn visible_weights(&self, route_arn: &str) -> Option<Weights> {
        self.world()
            .lb
            .routes
            .get(route_arn)
            .and_then(|r| r.visible.weights())
    }

    /// The target groups a route sends requests to now: those it weighs,
    /// and those its sticky clients may still be held on.
    pub fn receiving(&self, route_arn: &str) -> std::collections::BTreeSet<String> {
        let w = self.world();
        w.lb.routes
            .get(route_arn)
            .map(|r| r.receiving(w.now))
            .unwrap_or_default()
    }

    /// A listener's or rule's visible configuration.
    pub fn route_config(&self, route_arn: &str) -> Option<RouteConfig> {
        self.world()
            .lb
            .routes
            .get(route_arn)
            .map(|r| r.visible.clone())
    }

    /// Replaces a listener's or rule's configuration at once, e.g. to add
    /// stickiness or another action; returns whether the route exists.
    pub fn set_route_config(&self, route_arn: &str, config: RouteConfig) -> bool {
        let mut w = self.world();
        let now = w.now;
        let replaced = w.lb.replace_route(route_arn, config, now);
        w.schedule_sticky_expiry(route_arn);
        w.route_changed(route_arn);
        replaced
    }

    /// Marks a route as carrying production traffic (or not), which decides
    /// whether the invariants watch it.
    pub fn set_production(&self, route_arn: &str, production: bool) -> bool {
        let mut w = self.world();
        let Some(r) = w.lb.routes.get_mut(route_arn) else {
            return false;
        };
        r.production = production;
        w.route_changed(route_arn);
        true
    }

    /// Whether the invariants watch the route as one production takes.
    pub fn is_production(&self, route_arn: &str) -> bool {
        self.world()
            .lb
            .routes
            .get(route_arn)
            .is_some_and(|r| r.production)
    }

    /// Every record, sorted by key, without cost or faults.
    pub fn records(&self) -> Vec<StoredRecord> {
        self.world().records.list()
    }

    pub fn target_counts(&self, target_group: &str) -> Option<TargetCounts> {
        self.world().target_counts(target_group).ok()
    }
}
