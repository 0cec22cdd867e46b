//! Which shards this replica holds, and whether a lease is still safe to act
//! under. Validity is judged on two clocks: tokio's monotonic one, which a
//! wall-clock step cannot move, and the clock port, so that a simulated or
//! frozen clock cannot stretch a lease either. Whichever runs out first wins.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::act::{self, CommandFailed, Ports};
use crate::cloud::lease::{Shard, shard_of, shard_of_text};
use crate::cloud::{Clock, Fence};
use crate::rollout::hook::{HookPoint, HookVerdict};
use crate::rollout::{Command, ServiceKey};
use crate::time::Timestamp;

/// How a replica takes part in sharing the services.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// This replica's name in the lease table; unique among live replicas.
    pub replica: String,
    /// How many shards services are divided into; every replica must agree.
    pub shards: u32,
    /// How long a lease lasts without renewal.
    pub ttl: Duration,
    /// How often a replica that does not read the change stream polls the
    /// relay items of the shards it holds.
    pub relay_poll: Duration,
}

impl LeaseConfig {
    /// Renewals come four times per lease time, so two can fail in a row
    /// and the lease still holds.
    pub fn heartbeat(&self) -> Duration {
        self.ttl / 4
    }

    /// A command starts only while the lease has at least this long to
    /// run: room for the call to reach AWS and for clock rates to differ.
    pub fn margin(&self) -> Duration {
        self.ttl / 4
    }
}

#[derive(Debug)]
struct Held {
    fence: Fence,
    until: Instant,
    until_clock: Timestamp,
    /// Being handed back: no new pass starts, the lease is released once
    /// the passes under it have finished.
    draining: bool,
    in_flight: usize,
}

pub struct Ownership {
    shards: u32,
    margin: Duration,
    clock: Arc<dyn Clock>,
    held: Mutex<BTreeMap<Shard, Held>>,
    gained: Mutex<BTreeSet<Shard>>,
    /// Wakes whoever schedules the keys of newly gained shards.
    pub(super) gain: Notify,
    /// One turn per shard at writing through its lease item (see
    /// [`Ownership::lease_item_turn`]).
    turns: Mutex<BTreeMap<Shard, Arc<tokio::sync::Mutex<()>>>>,
}

impl Ownership {
    pub fn new(config: &LeaseConfig, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Ownership {
            shards: config.shards.max(1),
            margin: config.margin(),
            clock,
            held: Mutex::new(BTreeMap::new()),
            gained: Mutex::new(BTreeSet::new()),
            gain: Notify::new(),
            turns: Mutex::new(BTreeMap::new()),
        })
    }

    /// Waits for this replica's turn to send a write that touches `shard`'s
    /// lease item: a fenced status write (whose `ConditionCheck` reads it)
    /// or a renewal. DynamoDB cancels a transaction that touches an item
    /// another transaction or write is working on (`TransactionConflict`,
    /// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling),
    /// so fenced writes sent at once for the services of one shard would
    /// cancel each other and the renewals. Only the holder writes through a
    /// held lease item, so taking turns here leaves nothing of cutover's own
    /// to conflict with; a write of someone else's in flight on the record
    /// is what a cancelled write is retried for. Turns are first come,
    /// first served, so a renewal waits for the writes already queued only.
    pub async fn lease_item_turn(&self, shard: Shard) -> tokio::sync::OwnedMutexGuard<()> {
        let turn = {
            let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(turns.entry(shard).or_default())
        };
        turn.lock_owned().await
    }

    pub fn shard(&self, key: &ServiceKey) -> Shard {
        shard_of(key, self.shards)
    }

    /// Whether this replica should reconcile `key` now.
    pub fn owns(&self, key: &ServiceKey) -> bool {
        self.owns_shard(self.shard(key))
    }

    /// Whether this replica answers the item whose `service` attribute is
    /// `given`, not a service's key: the shard the same hash of the text
    /// would give a key.
    pub fn owns_text(&self, given: &str) -> bool {
        self.owns_shard(shard_of_text(given, self.shards))
    }

    fn owns_shard(&self, shard: Shard) -> bool {
        self.lock()
            .get(&shard)
            .is_some_and(|h| !h.draining && self.valid(h))
    }

    /// Whether the lease of `key`'s shard is still held (being handed back
    /// included): what this replica last saw of the service is current.
    pub fn holds(&self, key: &ServiceKey) -> bool {
        self.shards().contains(&self.shard(key))
    }

    /// Starts a pass over `key` under its shard's lease, if it is held, not
    /// being handed back, and safe for a while yet.
    pub fn enter(self: &Arc<Self>, key: &ServiceKey) -> Option<Claim> {
        let shard = self.shard(key);
        let mut held = self.lock();
        let h = held.get_mut(&shard)?;
        if h.draining || !self.valid(h) {
            return None;
        }
        h.in_flight += 1;
        Some(Claim {
            ownership: Arc::clone(self),
            fence: h.fence.clone(),
        })
    }

    /// Shards whose leases are held and have not run out, draining ones
    /// included.
    pub fn shards(&self) -> Vec<Shard> {
        let now = (Instant::now(), self.clock.now());
        self.lock()
            .iter()
            .filter(|(_, h)| now.0 < h.until && now.1 < h.until_clock)
            .map(|(s, _)| *s)
            .collect()
    }

    /// Shards held and not being handed back.
    pub(super) fn keeping(&self) -> BTreeSet<Shard> {
        self.lock()
            .iter()
            .filter(|(_, h)| !h.draining)
            .map(|(s, _)| *s)
            .collect()
    }

    pub(super) fn fences(&self) -> Vec<Fence> {
        self.lock().values().map(|h| h.fence.clone()).collect()
    }

    /// A renewal sent at `sent` succeeded.
    pub(super) fn renewed(&self, fence: &Fence, sent: (Instant, Timestamp), ttl: Duration) {
        if let Some(h) = self.lock().get_mut(&fence.shard)
            && h.fence == *fence
        {
            h.until = sent.0 + ttl;
            h.until_clock = sent.1 + ttl;
        }
    }

    pub(super) fn gained(&self, fence: Fence, sent: (Instant, Timestamp), ttl: Duration) {
        let shard = fence.shard;
        self.lock().insert(
            shard,
            Held {
                fence,
                until: sent.0 + ttl,
                until_clock: sent.1 + ttl,
                draining: false,
                in_flight: 0,
            },
        );
        self.gained
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(shard);
        self.gain.notify_one();
    }

    /// Shards gained since the last call.
    pub(super) fn take_gained(&self) -> BTreeSet<Shard> {
        std::mem::take(&mut *self.gained.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(super) fn lost(&self, shard: Shard) {
        self.lock().remove(&shard);
    }

    pub(super) fn drain(&self, shard: Shard) {
        if let Some(h) = self.lock().get_mut(&shard) {
            h.draining = true;
        }
    }

    /// Leases being handed back that no pass uses any more.
    pub(super) fn drained(&self) -> Vec<Fence> {
        self.lock()
            .values()
            .filter(|h| h.draining && h.in_flight == 0)
            .map(|h| h.fence.clone())
            .collect()
    }

    fn valid(&self, h: &Held) -> bool {
        Instant::now() + self.margin < h.until && self.clock.now() + self.margin < h.until_clock
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Shard, Held>> {
        // Every critical section is a few map operations; a panic in one
        // leaves the map consistent.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A pass under a lease. While it lives, the lease is not handed back.
pub struct Claim {
    ownership: Arc<Ownership>,
    fence: Fence,
}

impl Claim {
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// This pass's turn at writing through the shard's lease item.
    pub async fn lease_item_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.ownership.lease_item_turn(self.fence.shard).await
    }

    /// Whether a command may still be sent under this lease: it is held
    /// with the same token and has more than the safety margin left.
    pub fn valid(&self) -> bool {
        let held = self.ownership.lock();
        held.get(&self.fence.shard)
            .is_some_and(|h| h.fence == self.fence && self.ownership.valid(h))
    }
}

impl Claim {
    /// Returns once no command may leave under this claim any more: the
    /// lease was lost, retaken under another token, or came within the
    /// margin of its end on either clock. A renewal pushes that moment
    /// later, so this looks again at least every second.
    async fn lapsed(&self) {
        loop {
            let next = {
                let held = self.ownership.lock();
                let Some(h) = held
                    .get(&self.fence.shard)
                    .filter(|h| h.fence == self.fence && self.ownership.valid(h))
                else {
                    return;
                };
                let margin = self.ownership.margin;
                let now = Instant::now();
                // The clock port's time left, counted on the monotonic clock.
                let by_clock = h.until_clock.since(self.ownership.clock.now() + margin);
                (h.until - margin)
                    .min(now + by_clock)
                    .min(now + LAPSE_CHECK)
            };
            tokio::time::sleep_until(next).await;
        }
    }
}

/// How often a command waiting on its way out (for a request budget, or
/// inside a slow call) looks whether its lease still holds.
const LAPSE_CHECK: Duration = Duration::from_secs(1);

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(h) = self.ownership.lock().get_mut(&self.fence.shard)
            && h.fence == self.fence
        {
            h.in_flight = h.in_flight.saturating_sub(1);
        }
    }
}

/// Why a pass's commands stopped.
#[derive(Debug)]
pub enum Stop {
    Failed(CommandFailed),
    /// The lease is lost or too close to its end to send another command.
    LeaseEnding,
}

/// Runs the commands in order, each only while `claim`'s lease is still
/// safe to act under: a pass that stalled (a slow hook, a paused process)
/// stops instead of acting under a lease another replica may now hold.
pub async fn execute(
    ports: &Ports<'_>,
    key: &ServiceKey,
    commands: &[Command],
    claim: Option<&Claim>,
) -> Result<Vec<(HookPoint, HookVerdict)>, Stop> {
    let Some(claim) = claim else {
        return act::execute(ports, key, commands)
            .await
            .map_err(Stop::Failed);
    };
    let mut answers = Vec::new();
    for command in commands {
        if !claim.valid() {
            tracing::warn!(
                shard = claim.fence().shard,
                command = command.kind(),
                "the lease of shard {} is lost or about to run out: sending no further command",
                claim.fence().shard
            );
            return Err(Stop::LeaseEnding);
        }
        // A command may wait for its request budget, or be retried inside a
        // slow call, for longer than the lease has left: it is abandoned
        // then, before it leaves, so it never reaches AWS after another
        // replica may have taken the shard. A request already on the wire
        // is the residual risk the README names.
        let answer = tokio::select! {
            biased;
            answer = act::execute(ports, key, std::slice::from_ref(command)) => answer,
            () = claim.lapsed() => {
                tracing::warn!(
                    shard = claim.fence().shard,
                    command = command.kind(),
                    "the lease of shard {} ran within its margin while a {} waited to be sent: abandoning it and sending no further command",
                    claim.fence().shard,
                    command.kind()
                );
                return Err(Stop::LeaseEnding);
            }
        };
        answers.extend(answer.map_err(Stop::Failed)?);
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ScaledClock;

    fn config() -> LeaseConfig {
        LeaseConfig {
            replica: "a".into(),
            shards: 1,
            ttl: Duration::from_secs(20),
            relay_poll: Duration::from_secs(1),
        }
    }

    fn fence(token: u64) -> Fence {
        Fence {
            shard: 0,
            holder: "a".into(),
            token,
        }
    }

    /// A clock port that stands still, as a replica's might when its
    /// process is stopped and resumed.
    struct Frozen(Timestamp);

    #[async_trait::async_trait]
    impl Clock for Frozen {
        fn now(&self) -> Timestamp {
            self.0
        }
        async fn sleep_until(&self, _t: Timestamp) {
            std::future::pending::<()>().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_is_usable_until_the_margin_before_it_runs_out() {
        let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(Timestamp(0), 1.0));
        let own = Ownership::new(&config(), Arc::clone(&clock));
        let key = ServiceKey::new("c", "s");
        assert!(own.enter(&key).is_none(), "nothing held yet");
        own.gained(fence(1), (Instant::now(), clock.now()), config().ttl);
        let claim = own.enter(&key).expect("held");
        tokio::time::sleep(Duration::from_secs(14)).await;
        assert!(claim.valid() && own.owns(&key));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!claim.valid(), "within the margin of the end");
        assert!(own.enter(&key).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_frozen_clock_port_does_not_stretch_a_lease() {
        let frozen: Arc<dyn Clock> = Arc::new(Frozen(Timestamp(0)));
        let own = Ownership::new(&config(), Arc::clone(&frozen));
        own.gained(fence(1), (Instant::now(), frozen.now()), config().ttl);
        let claim = own.enter(&ServiceKey::new("c", "s")).expect("held");
        tokio::time::sleep(Duration::from_secs(16)).await;
        assert!(!claim.valid(), "the monotonic clock ran out");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_retaken_with_a_new_token_invalidates_older_claims() {
        let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(Timestamp(0), 1.0));
        let own = Ownership::new(&config(), Arc::clone(&clock));
        let key = ServiceKey::new("c", "s");
        own.gained(fence(1), (Instant::now(), clock.now()), config().ttl);
        let old = own.enter(&key).expect("held");
        own.lost(0);
        own.gained(fence(3), (Instant::now(), clock.now()), config().ttl);
        assert!(!old.valid());
        assert!(own.enter(&key).is_some_and(|c| c.valid()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_draining_lease_is_released_only_after_its_passes_finish() {
        let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(Timestamp(0), 1.0));
        let own = Ownership::new(&config(), Arc::clone(&clock));
        let key = ServiceKey::new("c", "s");
        own.gained(fence(1), (Instant::now(), clock.now()), config().ttl);
        let claim = own.enter(&key).expect("held");
        own.drain(0);
        assert!(own.enter(&key).is_none(), "no new pass while draining");
        assert!(own.drained().is_empty(), "a pass is still under it");
        assert!(claim.valid(), "the pass in flight may finish");
        drop(claim);
        assert_eq!(own.drained(), vec![fence(1)]);
    }
}
