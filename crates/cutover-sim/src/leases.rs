//! The lease table: shard leases and replica heartbeats, with the same
//! conditional writes as the DynamoDB lease table, and status writes fenced
//! by a lease.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::SimCloud;
use super::faults::ApiGroup;
use super::in_flight::{ItemRef, plain_write_conflict};
use super::world::World;
use crate::cloud::lease::{FeedFence, FeedLease, FeedSlot, LeaseView, Member, Shard, ShardLease};
use crate::cloud::relay::RelayItem;
use crate::cloud::{CloudError, Fence, Leases, StatusWrite};
use crate::rollout::{ServiceKey, Status};

#[derive(Debug, Default)]
pub(crate) struct LeaseTable {
    shards: BTreeMap<Shard, ShardLease>,
    members: BTreeMap<String, u64>,
    feeds: BTreeMap<FeedSlot, FeedLease>,
    /// The relay items, by shard.
    pub relay: BTreeMap<Shard, RelayItem>,
    /// Status writes refused because the writer's lease was gone.
    pub fenced_writes: u64,
}

impl LeaseTable {
    fn holds(&self, fence: &Fence) -> bool {
        self.shards.get(&fence.shard).is_some_and(|l| {
            l.holder.as_deref() == Some(fence.holder.as_str()) && l.token == fence.token
        })
    }

    fn view(&self) -> LeaseView {
        LeaseView {
            shards: self.shards.values().cloned().collect(),
            members: self
                .members
                .iter()
                .map(|(replica, beat)| Member {
                    replica: replica.clone(),
                    beat: *beat,
                })
                .collect(),
            feeds: self.feeds.values().cloned().collect(),
        }
    }

    pub fn feeds(&self) -> Vec<FeedLease> {
        self.feeds.values().cloned().collect()
    }

    fn holds_feed(&self, fence: &FeedFence) -> bool {
        self.feeds.get(&fence.slot).is_some_and(|l| {
            l.holder.as_deref() == Some(fence.holder.as_str()) && l.token == fence.token
        })
    }

    fn acquire_feed(
        &mut self,
        slot: FeedSlot,
        replica: &str,
        seen: Option<&FeedLease>,
    ) -> Option<FeedFence> {
        let current = self.feeds.get(&slot);
        let (token, beat) = take(
            current.map(|c| (c.token, c.beat)),
            seen.map(|s| (s.token, s.beat)),
        )?;
        let opened = current.map_or(0, |c| c.opened);
        self.feeds.insert(
            slot,
            FeedLease {
                slot,
                holder: Some(replica.to_string()),
                token,
                beat,
                opened,
                reading: false,
            },
        );
        Some(FeedFence {
            slot,
            holder: replica.to_string(),
            token,
        })
    }

    /// Applies `change` to the feed lease if `fence` holds it.
    fn touch_feed(&mut self, fence: &FeedFence, change: impl FnOnce(&mut FeedLease)) -> bool {
        if !self.holds_feed(fence) {
            return false;
        }
        self.feeds.get_mut(&fence.slot).map(change).is_some()
    }

    fn acquire(
        &mut self,
        shard: Shard,
        shards: u32,
        replica: &str,
        seen: Option<&ShardLease>,
    ) -> Option<Fence> {
        let (token, beat) = take(
            self.shards.get(&shard).map(|c| (c.token, c.beat)),
            seen.map(|s| (s.token, s.beat)),
        )?;
        self.shards.insert(
            shard,
            ShardLease {
                shard,
                holder: Some(replica.to_string()),
                token,
                beat,
                shards,
            },
        );
        Some(Fence {
            shard,
            holder: replica.to_string(),
            token,
        })
    }

    /// Changes the beat (and frees the shard when `release`) if `fence` holds it.
    fn touch(&mut self, fence: &Fence, release: bool) -> bool {
        if !self.holds(fence) {
            return false;
        }
        let Some(lease) = self.shards.get_mut(&fence.shard) else {
            return false;
        };
        lease.beat += 1;
        if release {
            lease.holder = None;
        }
        true
    }
}

/// The token and beat a take writes, given the lease's (token, beat) now
/// and as the taker last read it: `None` when it moved since (or appeared,
/// or went), as DynamoDB's condition on the write refuses it.
fn take(current: Option<(u64, u64)>, seen: Option<(u64, u64)>) -> Option<(u64, u64)> {
    match (current, seen) {
        (None, None) => Some((1, 1)),
        (Some(c), Some(s)) if c == s => Some((s.0 + 1, s.1 + 1)),
        _ => None,
    }
}

impl World {
    /// A status write under a lease: refused, without looking at the record,
    /// when the lease is not held under `fence` any more.
    fn write_status_fenced(
        &mut self,
        key: &ServiceKey,
        expected: u64,
        status: &Status,
        fence: &Fence,
    ) -> Result<StatusWrite, CloudError> {
        if !self.leases.holds(fence) {
            self.leases.fenced_writes += 1;
            self.log(format!(
                "{key}: status write by {} refused: it no longer holds shard {} with token {}",
                fence.holder, fence.shard, fence.token
            ));
            return Ok(StatusWrite::Fenced);
        }
        self.write_status(key, expected, status)
    }
}

impl SimCloud {
    /// Every lease and heartbeat, without cost or faults.
    pub fn leases(&self) -> LeaseView {
        self.world().leases.view()
    }

    /// Status writes refused so far because the writer had lost its lease.
    pub fn fenced_writes(&self) -> u64 {
        self.world().leases.fenced_writes
    }

    pub(crate) async fn fenced_status_write(
        &self,
        key: &ServiceKey,
        expected: u64,
        status: &Status,
        fence: &Fence,
    ) -> Result<StatusWrite, CloudError> {
        const OP: &str = "dynamodb:TransactWriteItems";
        // The transaction touches the lease item (its ConditionCheck) and the record.
        let flight = self.arrive(
            vec![ItemRef::Lease(fence.shard), ItemRef::record(key)],
            true,
        );
        let verdict = self.call(ApiGroup::Store, OP).await?;
        if flight.conflicted() {
            self.world().log(format!(
                "{key}: status write by {} cancelled: a write on shard {}'s lease or on the record was in flight",
                fence.holder, fence.shard
            ));
            self.world().in_flight.cancelled(key, expected, status);
            return self.reply(OP, verdict, Ok(StatusWrite::Contended));
        }
        let result = {
            let mut w = self.world();
            let result = w.write_status_fenced(key, expected, status, fence);
            if result.is_ok() {
                w.in_flight.answered(key, expected, status);
            }
            result
        };
        self.reply(OP, verdict, result)
    }
}

#[async_trait]
impl Leases for SimCloud {
    async fn read(&self) -> Result<LeaseView, CloudError> {
        self.call(ApiGroup::Store, "dynamodb:Scan").await?;
        Ok(self.world().leases.view())
    }

    async fn heartbeat(&self, replica: &str) -> Result<(), CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        let verdict = self.call(ApiGroup::Store, OP).await?;
        *self
            .world()
            .leases
            .members
            .entry(replica.to_string())
            .or_default() += 1;
        self.reply(OP, verdict, Ok(()))
    }

    async fn leave(&self, replica: &str) -> Result<(), CloudError> {
        const OP: &str = "dynamodb:DeleteItem";
        let verdict = self.call(ApiGroup::Store, OP).await?;
        self.world().leases.members.remove(replica);
        self.reply(OP, verdict, Ok(()))
    }

    async fn acquire(
        &self,
        shard: Shard,
        shards: u32,
        replica: &str,
        seen: Option<&ShardLease>,
    ) -> Result<Option<Fence>, CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        let flight = self.arrive(vec![ItemRef::Lease(shard)], false);
        let verdict = self.call(ApiGroup::Store, OP).await?;
        if flight.conflicted() {
            return Err(plain_write_conflict(OP));
        }
        let acquired = {
            let mut w = self.world();
            let acquired = w.leases.acquire(shard, shards, replica, seen);
            if let Some(f) = &acquired {
                w.log(format!(
                    "{replica} acquired shard {shard} with token {}",
                    f.token
                ));
            }
            acquired
        };
        self.reply(OP, verdict, Ok(acquired))
    }

    async fn renew(&self, fence: &Fence) -> Result<bool, CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        let flight = self.arrive(vec![ItemRef::Lease(fence.shard)], false);
        let verdict = self.call(ApiGroup::Store, OP).await?;
        if flight.conflicted() {
            return Err(plain_write_conflict(OP));
        }
        let renewed = self.world().leases.touch(fence, false);
        self.reply(OP, verdict, Ok(renewed))
    }

    async fn release(&self, fence: &Fence) -> Result<bool, CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        let flight = self.arrive(vec![ItemRef::Lease(fence.shard)], false);
        let verdict = self.call(ApiGroup::Store, OP).await?;
        if flight.conflicted() {
            return Err(plain_write_conflict(OP));
        }
        let released = {
            let mut w = self.world();
            let released = w.leases.touch(fence, true);
            if released {
                w.log(format!("{} released shard {}", fence.holder, fence.shard));
            }
            released
        };
        self.reply(OP, verdict, Ok(released))
    }

    // Feed lease items are never part of a transaction, so their writes
    // cannot conflict.
    async fn acquire_feed(
        &self,
        slot: FeedSlot,
        replica: &str,
        seen: Option<&FeedLease>,
    ) -> Result<Option<FeedFence>, CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        let verdict = self.call(ApiGroup::Store, OP).await?;
        let acquired = {
            let mut w = self.world();
            let acquired = w.leases.acquire_feed(slot, replica, seen);
            if let Some(f) = &acquired {
                w.log(format!(
                    "{replica} acquired feed slot {slot} with token {}: it reads the change stream",
                    f.token
                ));
            }
            acquired
        };
        self.reply(OP, verdict, Ok(acquired))
    }

    async fn renew_feed(&self, fence: &FeedFence) -> Result<bool, CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        let verdict = self.call(ApiGroup::Store, OP).await?;
        let renewed = self.world().leases.touch_feed(fence, |l| l.beat += 1);
        self.reply(OP, verdict, Ok(renewed))
    }

    async fn mark_feed(&self, fence: &FeedFence, reading: bool) -> Result<bool, CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        let verdict = self.call(ApiGroup::Store, OP).await?;
        let marked = self.world().leases.touch_feed(fence, |l| {
            l.reading = reading;
            if reading {
                l.opened += 1;
            }
        });
        self.reply(OP, verdict, Ok(marked))
    }

    async fn release_feed(&self, fence: &FeedFence) -> Result<bool, CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        let verdict = self.call(ApiGroup::Store, OP).await?;
        let released = {
            let mut w = self.world();
            let released = w.leases.touch_feed(fence, |l| {
                l.beat += 1;
                l.reading = false;
                l.holder = None;
            });
            if released {
                w.log(format!(
                    "{} released feed slot {}",
                    fence.holder, fence.slot
                ));
            }
            released
        };
        self.reply(OP, verdict, Ok(released))
    }
}
