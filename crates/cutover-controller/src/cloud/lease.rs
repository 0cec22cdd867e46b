//! Shard leases: how several replicas split the services between them.
//!
//! Every service hashes into one of a fixed number of shards. A replica
//! reconciles only the services of shards whose lease it holds. Each lease
//! item carries a fencing token that grows with every acquisition, and the
//! controller's status writes are conditional on the lease still naming the
//! writer with that token, so a replica that lost a shard cannot write.
//!
//! Stored leases hold no times: a lease is expired when an observer has seen
//! the same `beat` for a whole lease time on its own clock. That keeps the
//! scheme independent of clock skew between replicas.
//!
//! Feed leases (`feed/0`, `feed/1`) work the same way and say which
//! replicas read the records' change stream: at most [`FEED_READERS`]. The
//! others learn of changes through the relay (see [`super::relay`]).

use async_trait::async_trait;

use super::CloudError;
use crate::rollout::ServiceKey;

/// A shard's number, `0..shards`.
pub type Shard = u32;

/// Proof of holding a shard's lease, passed along with every fenced write.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fence {
    pub shard: Shard,
    pub holder: String,
    /// Grows with every acquisition of the shard, whoever acquires it.
    pub token: u64,
}

/// One shard's lease item, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardLease {
    pub shard: Shard,
    /// `None` once released.
    pub holder: Option<String>,
    pub token: u64,
    /// Changes with every write to the item: an unchanged beat means nobody
    /// renewed the lease.
    pub beat: u64,
    /// How many shards the acquirer divides services into. Replicas that
    /// disagree would split the services differently, so a replica never
    /// takes leases while another one's live leases say otherwise.
    pub shards: u32,
}

/// A replica's heartbeat item: how replicas learn how many of them share
/// the shards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub replica: String,
    pub beat: u64,
}

/// How many replicas may read the records' change stream at once.
/// DynamoDB Streams advises no more than two processes reading one stream
/// shard at the same time, and throttles beyond that
/// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html#Streams.Processing);
/// every reader reads every stream shard, so two readers in all.
pub const FEED_READERS: u32 = 2;

/// One of the [`FEED_READERS`] places of a stream reader, `0..FEED_READERS`.
pub type FeedSlot = u32;

/// A feed lease item, as read: who may read the change stream in this
/// slot, and whether its reading holds a position now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedLease {
    pub slot: FeedSlot,
    /// `None` once released.
    pub holder: Option<String>,
    pub token: u64,
    /// Changes with every renewal, as a shard lease's does.
    pub beat: u64,
    /// Grows each time the holder's change feed takes its position: a
    /// reader whose `opened` moved may have missed writes in between.
    pub opened: u64,
    /// The holder's change feed holds its position now, and it relays what
    /// it reads.
    pub reading: bool,
}

/// Proof of holding a feed lease.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FeedFence {
    pub slot: FeedSlot,
    pub holder: String,
    pub token: u64,
}

/// Every lease item and every heartbeat, read at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseView {
    pub shards: Vec<ShardLease>,
    pub members: Vec<Member>,
    pub feeds: Vec<FeedLease>,
}

/// Where leases are stored. Every write is conditional, so two replicas
/// racing for a shard cannot both win.
#[async_trait]
pub trait Leases: Send + Sync {
    /// Every shard lease and replica heartbeat (a consistent read).
    async fn read(&self) -> Result<LeaseView, CloudError>;
    /// Tells the others that `replica` is alive (changes its beat).
    async fn heartbeat(&self, replica: &str) -> Result<(), CloudError>;
    /// Takes `shard` for `replica`, only if its item is still as `seen`
    /// (`None`: there is no item yet). The new token is one more than the
    /// seen one. `None` when someone else changed the item first.
    async fn acquire(
        &self,
        shard: Shard,
        shards: u32,
        replica: &str,
        seen: Option<&ShardLease>,
    ) -> Result<Option<Fence>, CloudError>;
    /// Removes the replica's heartbeat, so the others count one replica
    /// fewer at once (when it stops gracefully).
    async fn leave(&self, replica: &str) -> Result<(), CloudError>;
    /// Changes the beat, only if the lease is still held under `fence`;
    /// false when it is not.
    async fn renew(&self, fence: &Fence) -> Result<bool, CloudError>;
    /// Frees the shard, keeping its token so the next holder's is greater;
    /// false when the lease was not held under `fence` any more.
    async fn release(&self, fence: &Fence) -> Result<bool, CloudError>;
    /// Takes feed slot `slot` for `replica`, only if its item is still as
    /// `seen` (`None`: no item yet); as [`Leases::acquire`] does a shard.
    async fn acquire_feed(
        &self,
        slot: FeedSlot,
        replica: &str,
        seen: Option<&FeedLease>,
    ) -> Result<Option<FeedFence>, CloudError>;
    /// Changes the feed lease's beat, only if it is still held under
    /// `fence`; false when it is not.
    async fn renew_feed(&self, fence: &FeedFence) -> Result<bool, CloudError>;
    /// Says whether the holder's change feed holds its position now
    /// (`reading`, which also counts one more `opened`) or not; false when
    /// the lease is not held under `fence` any more.
    async fn mark_feed(&self, fence: &FeedFence, reading: bool) -> Result<bool, CloudError>;
    /// Frees the feed slot (not reading any more), keeping its token; false
    /// when it was not held under `fence` any more.
    async fn release_feed(&self, fence: &FeedFence) -> Result<bool, CloudError>;
}

/// The shard of a service: a stable hash of `<cluster>/<service>`, so that
/// every replica and every version of cutover agree on it.
pub fn shard_of(key: &ServiceKey, shards: u32) -> Shard {
    shard_of_text(&key.to_string(), shards)
}

/// The shard of any `service` attribute, a service's key or not.
pub fn shard_of_text(text: &str, shards: u32) -> Shard {
    (stable_hash(text) % u64::from(shards.max(1))) as Shard
}

/// FNV-1a: unlike std's hasher, fixed across processes, platforms and
/// Rust versions.
pub fn stable_hash(text: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    text.bytes().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// The key of a shard's lease item (`shard/007`), and back.
pub fn shard_item(shard: Shard) -> String {
    format!("shard/{shard:03}")
}

pub fn parse_shard_item(name: &str) -> Option<Shard> {
    name.strip_prefix("shard/")?.parse().ok()
}

/// The key of a replica's heartbeat item, and back.
pub fn member_item(replica: &str) -> String {
    format!("replica/{replica}")
}

pub fn parse_member_item(name: &str) -> Option<&str> {
    name.strip_prefix("replica/").filter(|r| !r.is_empty())
}

/// The key of a feed lease item (`feed/0`), and back.
pub fn feed_item(slot: FeedSlot) -> String {
    format!("feed/{slot}")
}

pub fn parse_feed_item(name: &str) -> Option<FeedSlot> {
    name.strip_prefix("feed/")?
        .parse()
        .ok()
        .filter(|s| *s < FEED_READERS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_always_falls_in_the_same_shard() {
        let key = ServiceKey::new("prod", "checkout");
        // Pinned: a change here would move services between shards when
        // replicas of two versions run side by side.
        assert_eq!(shard_of(&key, 16), shard_of(&key, 16));
        assert_eq!(shard_of(&key, 1), 0);
        assert_eq!(shard_of(&ServiceKey::new("a", "b"), 1_000_000), 742_689);
    }

    #[test]
    fn services_spread_over_the_shards() {
        let mut counts = [0u32; 16];
        for i in 0..1600 {
            counts[shard_of(&ServiceKey::new("prod", format!("svc{i}")), 16) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (60..=140).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn item_names_round_trip() {
        assert_eq!(parse_shard_item(&shard_item(7)), Some(7));
        assert_eq!(parse_member_item(&member_item("host-1")), Some("host-1"));
        assert_eq!(parse_shard_item("replica/x"), None);
        assert_eq!(parse_member_item("replica/"), None);
        assert_eq!(parse_feed_item(&feed_item(1)), Some(1));
        assert_eq!(parse_feed_item("feed/2"), None, "only two readers");
        assert_eq!(parse_feed_item("shard/001"), None);
    }
}
