//! The lease keeper: every heartbeat it says the replica is alive, renews
//! the leases it holds, reads all of them, and takes or hands back shards
//! so that each live replica holds about a fair share; and, when the relay
//! is on, takes a free feed lease if it reads no stream yet. A second task
//! schedules the services of shards as they are gained.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cloud::lease::Shard;
use crate::cloud::{Clock, CloudError, DesiredStore, Fence, Leases};

use super::balance::{self, Inputs, Observations};
use super::queue::WorkQueue;
use super::readership::Readership;
use super::shards::{LeaseConfig, Ownership};
use crate::cloud::lease::LeaseView;

pub struct Keeper {
    pub leases: Arc<dyn Leases>,
    pub ownership: Arc<Ownership>,
    pub config: LeaseConfig,
    pub clock: Arc<dyn Clock>,
    /// Present when replicas share one reading of the change stream
    /// through the relay.
    pub readership: Option<Arc<Readership>>,
}

impl Keeper {
    /// Keeps the leases until `stop`, then hands back every one it holds,
    /// so that another replica takes over at once instead of after the
    /// lease time. `stop` comes only after the passes in flight finished.
    pub async fn run(self, stop: CancellationToken) {
        let mut seen = Observations::default();
        let mut refused = None;
        loop {
            self.tick(&mut seen, &mut refused).await;
            // Monotonic time: a stopped or stepped clock port must not
            // stop the heartbeat.
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(self.config.heartbeat()) => {}
            }
        }
        for fence in self.ownership.fences() {
            self.release(&fence).await;
        }
        // The change feed has stopped by now, so another may read in its place.
        if let Some(readership) = &self.readership
            && let Some(fence) = readership.held()
        {
            match self.leases.release_feed(&fence).await {
                Ok(_) => {
                    readership.lost();
                    tracing::info!(feed_slot = fence.slot, "released feed slot {}", fence.slot);
                }
                Err(e) => warn("releasing the feed lease failed", &e),
            }
        }
        if let Err(e) = self.leases.leave(&self.config.replica).await {
            warn("leaving the lease table failed", &e);
        }
    }

    async fn tick(&self, seen: &mut Observations, refused: &mut Option<String>) {
        let replica = &self.config.replica;
        if let Err(e) = self.leases.heartbeat(replica).await {
            warn("the heartbeat failed", &e);
        }
        for fence in self.ownership.fences() {
            // After the status writes already queued on the lease item,
            // never beside them (see Ownership::lease_item_turn).
            let turn = self.ownership.lease_item_turn(fence.shard).await;
            let sent = self.sent();
            let renewed = self.leases.renew(&fence).await;
            drop(turn);
            match renewed {
                Ok(true) => self.ownership.renewed(&fence, sent, self.config.ttl),
                Ok(false) => {
                    self.ownership.lost(fence.shard);
                    tracing::warn!(
                        shard = fence.shard,
                        token = fence.token,
                        "the lease of shard {} was taken by another replica; its services are left to it",
                        fence.shard
                    );
                }
                // The lease runs down on its own; nothing acts under it
                // once it is within the margin of its end.
                Err(e) => warn("renewing a lease failed", &e),
            }
        }
        self.renew_feed().await;
        let view = match self.leases.read().await {
            Ok(view) => view,
            Err(e) => {
                warn("reading the leases failed", &e);
                if let Some(readership) = &self.readership {
                    readership.settle();
                }
                return;
            }
        };
        let now = Instant::now();
        seen.observe(&view, now);
        self.take_feed(&view, seen, now).await;
        let held: BTreeSet<Shard> = self.ownership.fences().iter().map(|f| f.shard).collect();
        let keeping = self.ownership.keeping();
        let plan = balance::plan(
            &view,
            seen,
            now,
            &Inputs {
                me: replica,
                shards: self.config.shards,
                ttl: self.config.ttl,
                keeping: &keeping,
                held: &held,
            },
        );
        if plan.refused != *refused {
            if let Some(why) = &plan.refused {
                tracing::error!("{why}");
            }
            refused.clone_from(&plan.refused);
        }
        for shard in plan.release {
            tracing::info!(
                shard,
                "handing shard {shard} back: more than a fair share is held"
            );
            self.ownership.drain(shard);
        }
        for fence in self.ownership.drained() {
            self.release(&fence).await;
        }
        for (shard, item) in plan.acquire {
            let sent = self.sent();
            let shards = self.config.shards;
            match self
                .leases
                .acquire(shard, shards, replica, item.as_ref())
                .await
            {
                Ok(Some(fence)) => {
                    tracing::info!(shard, token = fence.token, "acquired shard {shard}");
                    self.ownership.gained(fence, sent, self.config.ttl);
                }
                Ok(None) => tracing::debug!(shard, "another replica took shard {shard} first"),
                Err(e) => warn("acquiring a lease failed", &e),
            }
        }
    }

    async fn renew_feed(&self) {
        let Some(readership) = &self.readership else {
            return;
        };
        let Some(fence) = readership.held() else {
            return;
        };
        let sent = self.sent();
        match self.leases.renew_feed(&fence).await {
            Ok(true) => readership.renewed(&fence, sent, self.config.ttl),
            Ok(false) => {
                tracing::warn!(
                    feed_slot = fence.slot,
                    token = fence.token,
                    "feed slot {} was taken by another replica; it reads the change stream in this one's place",
                    fence.slot
                );
                readership.lost();
            }
            // Runs down on its own; the feed stops reading a margin
            // before its end.
            Err(e) => warn("renewing the feed lease failed", &e),
        }
    }

    /// Takes a free (or expired) feed lease when this replica holds none,
    /// then tells the change feed whether to read the stream or follow the
    /// relay.
    async fn take_feed(&self, view: &LeaseView, seen: &Observations, now: Instant) {
        let Some(readership) = &self.readership else {
            return;
        };
        if readership.held().is_none() {
            let me = &self.config.replica;
            for (slot, item) in balance::feed_slots(view, seen, now, me, self.config.ttl) {
                let sent = self.sent();
                match self.leases.acquire_feed(slot, me, item.as_ref()).await {
                    Ok(Some(fence)) => {
                        tracing::info!(
                            feed_slot = slot,
                            token = fence.token,
                            "acquired feed slot {slot}"
                        );
                        readership.gained(fence, sent, self.config.ttl);
                        break;
                    }
                    Ok(None) => {
                        tracing::debug!(
                            feed_slot = slot,
                            "another replica took feed slot {slot} first"
                        )
                    }
                    Err(e) => {
                        warn("acquiring a feed lease failed", &e);
                        break;
                    }
                }
            }
        }
        readership.settle();
    }

    /// When a lease write is sent: the lease lasts from here, on both clocks.
    fn sent(&self) -> (Instant, crate::time::Timestamp) {
        (Instant::now(), self.clock.now())
    }

    async fn release(&self, fence: &Fence) {
        match self.leases.release(fence).await {
            Ok(_) => {
                self.ownership.lost(fence.shard);
                tracing::info!(shard = fence.shard, "released shard {}", fence.shard);
            }
            // Kept as draining: released at the next heartbeat, or it
            // expires by itself.
            Err(e) => warn("releasing a lease failed", &e),
        }
    }
}

/// Schedules the services of each newly gained shard, until `stop`.
pub async fn schedule_gained(
    store: Arc<dyn DesiredStore>,
    queue: Arc<WorkQueue>,
    ownership: Arc<Ownership>,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = ownership.gain.notified() => {}
        }
        let gained = ownership.take_gained();
        if gained.is_empty() {
            continue;
        }
        match store.list().await {
            Ok(records) => {
                let now = clock.now();
                let mut count = 0;
                for record in records {
                    if gained.contains(&ownership.shard(&record.key)) {
                        queue.schedule_due(record.key, now);
                        count += 1;
                    }
                }
                tracing::info!(shards = ?gained, services = count, "scheduled the services of gained shards");
            }
            // The periodic resync schedules them; it only lists what this
            // replica owns by then.
            Err(e) => warn("listing the services of gained shards failed", &e),
        }
    }
}

fn warn(what: &str, e: &CloudError) {
    tracing::warn!(
        operation = e.operation,
        error_kind = e.kind.as_str(),
        request_id = e.request_id.as_deref().unwrap_or(""),
        "{what}: {e}"
    );
}
