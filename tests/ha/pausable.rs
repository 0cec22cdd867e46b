//! A replica that can be stopped in its tracks: every call it makes to the
//! table, the leases, ECS or the load balancer first waits at a gate. The
//! gate can be set to close by itself on the replica's next fenced status
//! write, so the replica stalls right after acting and right before writing,
//! as a process stopped by the kernel or a long pause would.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};

use cutover::cloud::lease::{FeedFence, FeedLease, FeedSlot, LeaseView, Shard, ShardLease};
use cutover::cloud::relay::RelayRead;
use cutover::cloud::{
    Change, CloudError, DesiredStore, Ecs, Fence, Leases, LoadBalancer, Positioned, Precondition,
    Relay, SpecChanges, SpecWrite, StatusWrite, StoredRecord,
};
use cutover::rollout::command::CreateTaskSet;
use cutover::rollout::{
    Route, ServiceKey, ServiceState, Status, Stickiness, TargetCounts, TaskSet, Weights,
};

#[derive(Default)]
pub struct Gate {
    closed: watch::Sender<bool>,
    armed: AtomicBool,
    /// Calls that change ECS or the load balancer, made while the gate was open.
    pub mutations: AtomicU64,
    pub fenced: AtomicU64,
    pub written: AtomicU64,
}

impl Gate {
    /// Closes the gate at the next fenced status write after the replica
    /// changed ECS or the load balancer, before it is sent (a rollout's
    /// first status write, which stores it, comes before its candidate is
    /// created).
    pub fn close_at_next_status_write(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    pub fn open(&self) {
        self.closed.send_replace(false);
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    async fn pass(&self) {
        let mut rx = self.closed.subscribe();
        // Only errors when the sender is gone, and the gate owns it.
        let _ = rx.wait_for(|closed| !closed).await;
    }

    fn mutated(&self) {
        self.mutations.fetch_add(1, Ordering::SeqCst);
    }
}

/// Wraps the ports of one replica.
#[derive(Clone)]
pub struct Pausable<S, E, L, T> {
    pub gate: Arc<Gate>,
    pub store: S,
    pub ecs: E,
    pub lb: L,
    pub leases: T,
}

#[async_trait]
impl<S, E, L, T> DesiredStore for Pausable<S, E, L, T>
where
    S: DesiredStore,
    E: Send + Sync,
    L: Send + Sync,
    T: Send + Sync,
{
    async fn list(&self) -> Result<Vec<StoredRecord>, CloudError> {
        self.gate.pass().await;
        self.store.list().await
    }

    async fn get(&self, key: &ServiceKey) -> Result<Option<StoredRecord>, CloudError> {
        self.gate.pass().await;
        self.store.get(key).await
    }

    async fn write_status(
        &self,
        key: &ServiceKey,
        expected: u64,
        status: &Status,
    ) -> Result<StatusWrite, CloudError> {
        self.gate.pass().await;
        self.store.write_status(key, expected, status).await
    }

    async fn write_status_fenced(
        &self,
        key: &ServiceKey,
        expected: u64,
        status: &Status,
        fence: &Fence,
    ) -> Result<StatusWrite, CloudError> {
        let acted = self.gate.mutations.load(Ordering::SeqCst) > 0;
        if acted && self.gate.armed.swap(false, Ordering::SeqCst) {
            self.gate.closed.send_replace(true);
        }
        self.gate.pass().await;
        let written = self
            .store
            .write_status_fenced(key, expected, status, fence)
            .await;
        match written {
            Ok(StatusWrite::Fenced) => self.gate.fenced.fetch_add(1, Ordering::SeqCst),
            Ok(StatusWrite::Written { .. }) => self.gate.written.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
        written
    }

    async fn watch(
        &self,
        changes: mpsc::Sender<Change>,
        positioned: Positioned,
    ) -> Result<(), CloudError> {
        self.gate.pass().await;
        self.store.watch(changes, positioned).await
    }

    async fn write_spec(
        &self,
        key: &ServiceKey,
        changes: &SpecChanges,
        precondition: Precondition,
    ) -> Result<SpecWrite, CloudError> {
        self.gate.pass().await;
        self.store.write_spec(key, changes, precondition).await
    }
}

#[async_trait]
impl<S, E, L, T> Ecs for Pausable<S, E, L, T>
where
    S: Send + Sync,
    E: Ecs,
    L: Send + Sync,
    T: Send + Sync,
{
    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<(String, ServiceState)>, CloudError> {
        self.gate.pass().await;
        self.ecs.describe_services(cluster, services).await
    }

    async fn create_task_set(
        &self,
        key: &ServiceKey,
        request: &CreateTaskSet,
    ) -> Result<TaskSet, CloudError> {
        self.gate.pass().await;
        self.gate.mutated();
        self.ecs.create_task_set(key, request).await
    }

    async fn set_primary(&self, key: &ServiceKey, task_set_arn: &str) -> Result<(), CloudError> {
        self.gate.pass().await;
        self.gate.mutated();
        self.ecs.set_primary(key, task_set_arn).await
    }

    async fn delete_task_set(
        &self,
        key: &ServiceKey,
        task_set_arn: &str,
    ) -> Result<(), CloudError> {
        self.gate.pass().await;
        self.gate.mutated();
        self.ecs.delete_task_set(key, task_set_arn).await
    }

    async fn stopped_tasks(&self, key: &ServiceKey, task_set_arn: &str) -> Result<u32, CloudError> {
        self.gate.pass().await;
        self.ecs.stopped_tasks(key, task_set_arn).await
    }
}

#[async_trait]
impl<S, E, L, T> LoadBalancer for Pausable<S, E, L, T>
where
    S: Send + Sync,
    E: Send + Sync,
    L: LoadBalancer,
    T: Send + Sync,
{
    async fn weights(&self, route: &Route) -> Result<Weights, CloudError> {
        self.gate.pass().await;
        self.lb.weights(route).await
    }

    async fn set_weights(&self, route: &Route, weights: &Weights) -> Result<(), CloudError> {
        self.gate.pass().await;
        self.gate.mutated();
        self.lb.set_weights(route, weights).await
    }

    async fn stickiness(&self, route: &Route) -> Result<Stickiness, CloudError> {
        self.gate.pass().await;
        self.lb.stickiness(route).await
    }

    async fn set_stickiness(
        &self,
        route: &Route,
        stickiness: Stickiness,
    ) -> Result<(), CloudError> {
        self.gate.pass().await;
        self.gate.mutated();
        self.lb.set_stickiness(route, stickiness).await
    }

    async fn target_health(&self, target_group: &str) -> Result<TargetCounts, CloudError> {
        self.gate.pass().await;
        self.lb.target_health(target_group).await
    }
}

#[async_trait]
impl<S, E, L, T> Leases for Pausable<S, E, L, T>
where
    S: Send + Sync,
    E: Send + Sync,
    L: Send + Sync,
    T: Leases,
{
    async fn read(&self) -> Result<LeaseView, CloudError> {
        self.gate.pass().await;
        self.leases.read().await
    }

    async fn heartbeat(&self, replica: &str) -> Result<(), CloudError> {
        self.gate.pass().await;
        self.leases.heartbeat(replica).await
    }

    async fn leave(&self, replica: &str) -> Result<(), CloudError> {
        self.gate.pass().await;
        self.leases.leave(replica).await
    }

    async fn acquire(
        &self,
        shard: Shard,
        shards: u32,
        replica: &str,
        seen: Option<&ShardLease>,
    ) -> Result<Option<Fence>, CloudError> {
        self.gate.pass().await;
        self.leases.acquire(shard, shards, replica, seen).await
    }

    async fn renew(&self, fence: &Fence) -> Result<bool, CloudError> {
        self.gate.pass().await;
        self.leases.renew(fence).await
    }

    async fn release(&self, fence: &Fence) -> Result<bool, CloudError> {
        self.gate.pass().await;
        self.leases.release(fence).await
    }

    async fn acquire_feed(
        &self,
        slot: FeedSlot,
        replica: &str,
        seen: Option<&FeedLease>,
    ) -> Result<Option<FeedFence>, CloudError> {
        self.gate.pass().await;
        self.leases.acquire_feed(slot, replica, seen).await
    }

    async fn renew_feed(&self, fence: &FeedFence) -> Result<bool, CloudError> {
        self.gate.pass().await;
        self.leases.renew_feed(fence).await
    }

    async fn mark_feed(&self, fence: &FeedFence, reading: bool) -> Result<bool, CloudError> {
        self.gate.pass().await;
        self.leases.mark_feed(fence, reading).await
    }

    async fn release_feed(&self, fence: &FeedFence) -> Result<bool, CloudError> {
        self.gate.pass().await;
        self.leases.release_feed(fence).await
    }
}

/// The relay items live in the lease table.
#[async_trait]
impl<S, E, L, T> Relay for Pausable<S, E, L, T>
where
    S: Send + Sync,
    E: Send + Sync,
    L: Send + Sync,
    T: Relay,
{
    async fn publish(
        &self,
        slot: FeedSlot,
        shard: Shard,
        changes: &[Change],
    ) -> Result<(), CloudError> {
        self.gate.pass().await;
        self.leases.publish(slot, shard, changes).await
    }

    async fn poll(&self, shards: &[Shard]) -> Result<RelayRead, CloudError> {
        self.gate.pass().await;
        self.leases.poll(shards).await
    }
}
