//! The relay: how replicas that do not read the records' change stream learn
//! of changes to the records of the shards they hold, through the lease
//! table alone (no replica talks to another).
//!
//! Every stream reader (a feed lease holder, at most
//! [`FEED_READERS`](super::lease::FEED_READERS)) appends each change it reads
//! to a small item per shard (`relay/007`), in a log of its own slot: a
//! sequence number that grows by one per change, and the most recent
//! changes with their numbers. A follower polls the items of the shards it
//! holds and schedules what is newer than what it last saw; when more is new
//! than a log keeps, it lists the shard's records instead, so no write goes
//! unseen.
//!
//! Relay items are apart from the shard lease items on purpose: a fenced
//! status write checks its shard's lease item in a transaction, which a
//! relay write on the same item would cancel.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::lease::{FeedLease, FeedSlot, Shard};
use super::{Change, CloudError};
use crate::rollout::ServiceKey;
use crate::time::Timestamp;

/// Changes a log keeps. A follower polls about once a second, so this is
/// how many changes one shard may take in a second before its followers
/// list the shard's records instead (one paginated `Scan`). Small, because
/// the keeper's `Scan` of the lease table reads every relay item at each
/// heartbeat: with keys of 40 characters an item of two full logs is about
/// 4 KB; with the longest keys ECS allows (511 bytes), about 35 KB.
pub const RELAY_KEEP: usize = 32;

/// One change as a log keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relayed {
    pub seq: u64,
    pub key: ServiceKey,
    /// When the record was written, as the stream said (for the detection
    /// latency).
    pub at: Option<Timestamp>,
}

/// What one stream reader slot relayed for one shard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayLog {
    /// How many changes were ever relayed here; the last one's number.
    pub seq: u64,
    /// The most recent of them, oldest first, at most [`RELAY_KEEP`], with
    /// consecutive numbers ending at `seq`.
    pub recent: Vec<Relayed>,
}

/// What a follower makes of a log, given the last number it saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Since<'a> {
    /// Every change after it, oldest first (none when nothing is new).
    Changes(Vec<&'a Relayed>),
    /// Some of the changes after it are no longer kept (or the log went
    /// back, replaced by hand): list the shard's records instead.
    Behind,
}

impl RelayLog {
    /// Appends `changes` with the next numbers, dropping the oldest past
    /// [`RELAY_KEEP`].
    pub fn append(&mut self, changes: &[Change]) {
        for change in changes {
            self.seq += 1;
            self.recent.push(Relayed {
                seq: self.seq,
                key: change.key.clone(),
                at: change.at,
            });
        }
        let excess = self.recent.len().saturating_sub(RELAY_KEEP);
        self.recent.drain(..excess);
    }

    /// The changes numbered after `seen`.
    pub fn since(&self, seen: u64) -> Since<'_> {
        if self.seq < seen {
            return Since::Behind;
        }
        let new: Vec<&Relayed> = self.recent.iter().filter(|r| r.seq > seen).collect();
        // Every number from `seen` on, each once: an entry a reader could
        // not decode counts as missing, never as nothing new.
        let complete = new.len() as u64 == self.seq - seen
            && new.iter().zip(seen + 1..).all(|(r, want)| r.seq == want);
        if complete {
            Since::Changes(new)
        } else {
            Since::Behind
        }
    }
}

/// A shard's relay item: one log per stream reader slot that ever wrote it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayItem {
    pub shard: Shard,
    pub logs: BTreeMap<FeedSlot, RelayLog>,
}

/// One poll: the relay items of the shards asked for (a shard without an
/// item yet has none here), and the feed leases, read together so that a
/// follower knows which readers stood behind what it read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayRead {
    pub items: Vec<RelayItem>,
    pub feeds: Vec<FeedLease>,
}

/// Where the relay items live (the lease table).
#[async_trait]
pub trait Relay: Send + Sync {
    /// Appends `changes`, all to records of `shard`, to `slot`'s log in the
    /// shard's relay item.
    async fn publish(
        &self,
        slot: FeedSlot,
        shard: Shard,
        changes: &[Change],
    ) -> Result<(), CloudError>;
    /// The relay items of `shards` and every feed lease, in one consistent
    /// read.
    async fn poll(&self, shards: &[Shard]) -> Result<RelayRead, CloudError>;
}

/// The key of a shard's relay item (`relay/007`), and back.
pub fn relay_item(shard: Shard) -> String {
    format!("relay/{shard:03}")
}

pub fn parse_relay_item(name: &str) -> Option<Shard> {
    name.strip_prefix("relay/")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(i: usize) -> Change {
        Change {
            key: ServiceKey::new("prod", format!("svc{i}")),
            at: Some(Timestamp(i as i64)),
        }
    }

    fn keys(since: Since<'_>) -> Vec<String> {
        match since {
            Since::Changes(c) => c.iter().map(|r| r.key.service.clone()).collect(),
            Since::Behind => panic!("behind"),
        }
    }

    #[test]
    fn a_log_keeps_only_the_most_recent_changes_with_consecutive_numbers() {
        let mut log = RelayLog::default();
        let changes: Vec<Change> = (1..=1000).map(change).collect();
        for chunk in changes.chunks(7) {
            log.append(chunk);
        }
        assert_eq!(log.seq, 1000);
        assert_eq!(log.recent.len(), RELAY_KEEP);
        let seqs: Vec<u64> = log.recent.iter().map(|r| r.seq).collect();
        let want: Vec<u64> = (1000 - RELAY_KEEP as u64 + 1..=1000).collect();
        assert_eq!(seqs, want);
        assert_eq!(log.recent[RELAY_KEEP - 1].key, change(1000).key);
        assert_eq!(log.recent[RELAY_KEEP - 1].at, Some(Timestamp(1000)));
    }

    #[test]
    fn a_follower_gets_what_came_after_the_number_it_saw() {
        let mut log = RelayLog::default();
        assert_eq!(log.since(0), Since::Changes(vec![]));
        log.append(&[change(1), change(2), change(3)]);
        assert_eq!(keys(log.since(0)), ["svc1", "svc2", "svc3"]);
        assert_eq!(keys(log.since(2)), ["svc3"]);
        assert_eq!(keys(log.since(3)), Vec::<String>::new());
    }

    #[test]
    fn a_follower_that_fell_behind_by_more_than_the_log_keeps_is_told_so() {
        let mut log = RelayLog::default();
        let changes: Vec<Change> = (1..=RELAY_KEEP + 5).map(change).collect();
        log.append(&changes);
        // It saw 4: 5 is gone, so what it has not seen is not all here.
        assert_eq!(log.since(4), Since::Behind);
        // It saw 5: 6 onwards are all kept.
        assert_eq!(keys(log.since(5)).len(), RELAY_KEEP);
        assert_eq!(keys(log.since(5))[0], "svc6");
    }

    #[test]
    fn a_missing_entry_in_the_middle_means_behind() {
        let mut log = RelayLog::default();
        log.append(&[change(1), change(2), change(3)]);
        log.recent.remove(1);
        assert_eq!(log.since(0), Since::Behind);
        assert_eq!(keys(log.since(2)), ["svc3"]);
    }

    #[test]
    fn a_log_that_went_back_means_behind() {
        let mut log = RelayLog::default();
        log.append(&[change(1)]);
        assert_eq!(log.since(9), Since::Behind, "numbers never go back");
    }

    #[test]
    fn relay_item_names_round_trip() {
        assert_eq!(relay_item(7), "relay/007");
        assert_eq!(parse_relay_item(&relay_item(1023)), Some(1023));
        assert_eq!(parse_relay_item("shard/007"), None);
    }
}
