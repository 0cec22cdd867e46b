//! Where a replica's work comes from: the store, the change feed's state,
//! the queue it schedules into, and, when replicas share one reading of
//! the change stream, the relay. The feed (`feed.rs`) and the relay's
//! follower (`relay.rs`) both drive these.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::detect::Detection;
use super::health::StoreHealth;
use super::queue::WorkQueue;
use super::readership::Readership;
use super::shards::Ownership;
use super::unkeyed::Unkeyed;
use crate::cloud::relay::Relay;
use crate::cloud::{Clock, DesiredStore, Leases};
use crate::rollout::ServiceKey;

/// Where the change feed stands, as the first listing needs to know: a
/// listing only proves that nothing was missed if it started while the feed
/// already held its position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedState {
    /// Opening: a write now may or may not be delivered.
    Opening,
    /// Every write from now on will be delivered. The number counts the
    /// times the feed has taken its position: a feed opened again after it
    /// failed missed whatever was written in between, so a new number calls
    /// for a new listing.
    Positioned(u64),
    /// The last attempt failed; it is opened again after a backoff.
    Down,
}

pub struct Sources {
    pub store: Arc<dyn DesiredStore>,
    pub queue: Arc<WorkQueue>,
    pub clock: Arc<dyn Clock>,
    pub health: Arc<StoreHealth>,
    pub detection: Arc<Detection>,
    /// Only keys of shards held, when replicas share the services.
    pub ownership: Option<Arc<Ownership>>,
    pub unkeyed: Unkeyed,
    /// Told of every listed rollout in flight, when concurrency limits are
    /// set: a replica that just started, or just took a shard over, counts
    /// them from its first listing, not from each one's first pass.
    pub admissions: Option<Arc<super::admission::Admissions>>,
    /// Told of the releases every listing finds.
    pub releases: Arc<super::releases::Releases>,
    /// Present when replicas share one reading of the change stream: only
    /// feed lease holders read it, and relay it to the others.
    pub relay: Option<RelayFeed>,
}

impl Sources {
    /// Whether this replica drives `key`: always, unless replicas share
    /// the services.
    pub(super) fn owns(&self, key: &ServiceKey) -> bool {
        self.ownership.as_ref().is_none_or(|o| o.owns(key))
    }
}

/// Counts for the metrics.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub polls: AtomicU64,
    /// Shards whose records were listed because the relay could not say
    /// what changed (first seen, or fallen behind).
    pub listed: AtomicU64,
}

/// What the change feed needs to share one reading of the stream.
pub struct RelayFeed {
    pub relay: Arc<dyn Relay>,
    pub leases: Arc<dyn Leases>,
    pub readership: Arc<Readership>,
    /// How often a follower polls.
    pub poll: Duration,
    pub stats: Arc<RelayStats>,
}
