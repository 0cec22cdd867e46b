//! Whether this replica reads the records' change stream: only while it
//! holds a feed lease that is still safe to read under, judged on both
//! clocks as a shard lease is (see [`super::shards`]). At most
//! [`FEED_READERS`](crate::cloud::lease::FEED_READERS) replicas do; the
//! others follow the relay.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::shards::LeaseConfig;
use crate::cloud::Clock;
use crate::cloud::lease::FeedFence;
use crate::time::Timestamp;

/// What this replica does about the change stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Before the lease keeper's first look at the feed leases.
    Undecided,
    /// Reads the stream under this feed lease, and relays what it reads.
    Reader(FeedFence),
    /// Learns of changes from the relay.
    Follower,
}

#[derive(Debug)]
struct Held {
    fence: FeedFence,
    until: Instant,
    until_clock: Timestamp,
}

pub struct Readership {
    margin: Duration,
    clock: Arc<dyn Clock>,
    held: Mutex<Option<Held>>,
    role: watch::Sender<Role>,
}

/// How often a reader looks whether its feed lease still holds, when
/// nothing else wakes it: a renewal pushes the end later.
const LAPSE_CHECK: Duration = Duration::from_secs(1);

impl Readership {
    pub fn new(config: &LeaseConfig, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Readership {
            margin: config.margin(),
            clock,
            held: Mutex::new(None),
            role: watch::Sender::new(Role::Undecided),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Option<Held>> {
        // Each critical section replaces or reads one value.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn valid(&self, h: &Held) -> bool {
        Instant::now() + self.margin < h.until && self.clock.now() + self.margin < h.until_clock
    }

    /// The feed lease this replica holds, safe to read under or not (to
    /// renew it, or hand it back).
    pub(super) fn held(&self) -> Option<FeedFence> {
        self.lock().as_ref().map(|h| h.fence.clone())
    }

    /// The feed lease to read the stream under now, if one is held and
    /// more than the safety margin from its end.
    pub fn reading(&self) -> Option<FeedFence> {
        self.lock()
            .as_ref()
            .filter(|h| self.valid(h))
            .map(|h| h.fence.clone())
    }

    /// Whether this replica reads the stream now (as last settled).
    pub fn reads(&self) -> bool {
        matches!(*self.role.borrow(), Role::Reader(_))
    }

    pub fn role(&self) -> watch::Receiver<Role> {
        self.role.subscribe()
    }

    /// Waits until the keeper has looked at the feed leases once.
    pub async fn decided(&self) {
        let mut role = self.role.subscribe();
        // The sender lives as long as `self`.
        let _ = role.wait_for(|r| *r != Role::Undecided).await;
    }

    /// A feed lease was taken with a write sent at `sent`.
    pub(super) fn gained(&self, fence: FeedFence, sent: (Instant, Timestamp), ttl: Duration) {
        *self.lock() = Some(Held {
            fence,
            until: sent.0 + ttl,
            until_clock: sent.1 + ttl,
        });
    }

    /// A renewal of `fence` sent at `sent` succeeded.
    pub(super) fn renewed(&self, fence: &FeedFence, sent: (Instant, Timestamp), ttl: Duration) {
        if let Some(h) = self.lock().as_mut()
            && h.fence == *fence
        {
            h.until = sent.0 + ttl;
            h.until_clock = sent.1 + ttl;
        }
    }

    /// The feed lease is gone: taken by another replica, or handed back.
    pub(super) fn lost(&self) {
        *self.lock() = None;
        self.settle();
    }

    /// Tells the change feed what the lease allows now: reading, or
    /// following the relay. Logs each change of role.
    pub(super) fn settle(&self) {
        let role = match self.reading() {
            Some(fence) => Role::Reader(fence),
            None => Role::Follower,
        };
        self.role.send_if_modified(|now| {
            if *now == role {
                return false;
            }
            match &role {
                Role::Reader(fence) => tracing::info!(
                    feed_slot = fence.slot,
                    token = fence.token,
                    "this replica reads the change stream (feed slot {}) and relays its changes to the others",
                    fence.slot
                ),
                _ => tracing::info!(
                    "this replica does not read the change stream: it follows the relay of its shards' changes"
                ),
            }
            *now = role;
            true
        });
    }

    /// Returns once the stream may no longer be read under `fence`: the
    /// lease was lost, retaken under another token, or came within the
    /// margin of its end on either clock.
    pub async fn lapsed(&self, fence: &FeedFence) {
        loop {
            let next = {
                let held = self.lock();
                let Some(h) = held.as_ref().filter(|h| h.fence == *fence && self.valid(h)) else {
                    return;
                };
                let now = Instant::now();
                let by_clock = h.until_clock.since(self.clock.now() + self.margin);
                (h.until - self.margin)
                    .min(now + by_clock)
                    .min(now + LAPSE_CHECK)
            };
            tokio::time::sleep_until(next).await;
        }
    }
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

    fn fence() -> FeedFence {
        FeedFence {
            slot: 1,
            holder: "a".into(),
            token: 3,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_replica_reads_the_stream_only_while_its_feed_lease_is_safe() {
        let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(Timestamp(0), 1.0));
        let r = Readership::new(&config(), Arc::clone(&clock));
        assert_eq!(*r.role().borrow(), Role::Undecided);
        r.settle();
        assert_eq!(*r.role().borrow(), Role::Follower);
        r.gained(fence(), (Instant::now(), clock.now()), config().ttl);
        r.settle();
        assert!(r.reads());
        let lapsed = tokio::time::timeout(Duration::from_secs(14), r.lapsed(&fence())).await;
        assert!(lapsed.is_err(), "still safe 14 s in");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(r.reading(), None, "within the margin of the end");
        r.lapsed(&fence()).await;
        r.settle();
        assert!(!r.reads());
        assert_eq!(r.held(), Some(fence()), "held, to hand back or renew");
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_keeps_the_reader_reading() {
        let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(Timestamp(0), 1.0));
        let r = Readership::new(&config(), Arc::clone(&clock));
        r.gained(fence(), (Instant::now(), clock.now()), config().ttl);
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(5)).await;
            r.renewed(&fence(), (Instant::now(), clock.now()), config().ttl);
        }
        assert_eq!(r.reading(), Some(fence()));
        r.lost();
        assert_eq!(r.reading(), None);
        assert_eq!(*r.role().borrow(), Role::Follower);
    }
}
