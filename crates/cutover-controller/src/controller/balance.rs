//! What a replica should do with the shard leases after reading them: which
//! it may take, which it should hand back. No IO; the keeper carries it out.
//!
//! Expiry is observed, never computed from stored times: a lease (or a
//! replica's heartbeat) whose beat this replica has seen unchanged for a
//! whole lease time was not renewed in that time, whatever the clocks of
//! the replicas say.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::cloud::lease::{
    FEED_READERS, FeedLease, FeedSlot, LeaseView, Shard, ShardLease, stable_hash,
};

/// When this replica first saw each lease and heartbeat as it is now.
#[derive(Debug, Default)]
pub struct Observations {
    shards: BTreeMap<Shard, ((u64, u64), Instant)>,
    members: BTreeMap<String, (u64, Instant)>,
    feeds: BTreeMap<FeedSlot, ((u64, u64), Instant)>,
}

impl Observations {
    /// Records a read that returned at `now`: a change seen for the first
    /// time counts from the moment the read returned, which is no earlier
    /// than the write it shows.
    pub fn observe(&mut self, view: &LeaseView, now: Instant) {
        let shards: BTreeMap<_, _> = view
            .shards
            .iter()
            .map(|l| {
                let state = (l.token, l.beat);
                let since = match self.shards.get(&l.shard) {
                    Some((seen, since)) if *seen == state => *since,
                    _ => now,
                };
                (l.shard, (state, since))
            })
            .collect();
        let members = view
            .members
            .iter()
            .map(|m| {
                let since = match self.members.get(&m.replica) {
                    Some((beat, since)) if *beat == m.beat => *since,
                    _ => now,
                };
                (m.replica.clone(), (m.beat, since))
            })
            .collect();
        let feeds = view
            .feeds
            .iter()
            .map(|l| {
                let state = (l.token, l.beat);
                let since = match self.feeds.get(&l.slot) {
                    Some((seen, since)) if *seen == state => *since,
                    _ => now,
                };
                (l.slot, (state, since))
            })
            .collect();
        self.shards = shards;
        self.members = members;
        self.feeds = feeds;
    }

    fn feed_expired(&self, slot: FeedSlot, now: Instant, ttl: Duration) -> bool {
        self.feeds
            .get(&slot)
            .is_some_and(|(_, since)| now.duration_since(*since) >= ttl)
    }

    fn shard_expired(&self, shard: Shard, now: Instant, ttl: Duration) -> bool {
        self.shards
            .get(&shard)
            .is_some_and(|(_, since)| now.duration_since(*since) >= ttl)
    }

    /// Replicas other than `me` whose heartbeat moved within the lease time.
    fn others_alive(&self, me: &str, now: Instant, ttl: Duration) -> usize {
        self.members
            .iter()
            .filter(|(name, (_, since))| *name != me && now.duration_since(*since) < ttl)
            .count()
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Take these, each only if its item is still as seen.
    pub acquire: Vec<(Shard, Option<ShardLease>)>,
    /// Hand these back: more than a fair share is held.
    pub release: Vec<Shard>,
    /// Why nothing may be taken now, when that is so.
    pub refused: Option<String>,
}

pub struct Inputs<'a> {
    pub me: &'a str,
    pub shards: u32,
    pub ttl: Duration,
    /// Shards held and not being handed back.
    pub keeping: &'a BTreeSet<Shard>,
    /// Shards held, draining ones included.
    pub held: &'a BTreeSet<Shard>,
}

/// A fair share is ⌈shards / live replicas⌉.
pub fn plan(view: &LeaseView, seen: &Observations, now: Instant, i: &Inputs<'_>) -> Plan {
    let shards = i.shards.max(1);
    let alive = 1 + seen.others_alive(i.me, now, i.ttl);
    let fair = shards.div_ceil(alive as u32) as usize;
    let mut plan = Plan::default();
    if i.keeping.len() > fair {
        // The highest shards go back, so replicas agree on which they keep.
        plan.release = i
            .keeping
            .iter()
            .rev()
            .take(i.keeping.len() - fair)
            .copied()
            .collect();
        return plan;
    }
    let foreign = view.shards.iter().find(|l| {
        l.holder.is_some()
            && l.shards != 0
            && l.shards != shards
            && !seen.shard_expired(l.shard, now, i.ttl)
    });
    if let Some(l) = foreign {
        plan.refused = Some(format!(
            "{} holds shard {} of {} shards, and this replica divides services into {}: \
             it takes no shard until every replica uses the same `shards`",
            l.holder.as_deref().unwrap_or("?"),
            l.shard,
            l.shards,
            shards
        ));
        return plan;
    }
    let items: BTreeMap<Shard, &ShardLease> = view.shards.iter().map(|l| (l.shard, l)).collect();
    let mut free = Vec::new();
    let mut expired = Vec::new();
    // Each replica starts looking at its own offset, so replicas starting
    // together mostly ask for different shards.
    let offset = (stable_hash(i.me) % u64::from(shards)) as Shard;
    for n in 0..shards {
        let shard = (n + offset) % shards;
        if i.held.contains(&shard) {
            continue;
        }
        match items.get(&shard) {
            None => free.push((shard, None)),
            Some(l) if l.holder.is_none() => free.push((shard, Some((*l).clone()))),
            Some(l) if seen.shard_expired(shard, now, i.ttl) => {
                expired.push((shard, Some((*l).clone())))
            }
            Some(_) => {}
        }
    }
    let wanted = fair.saturating_sub(i.keeping.len());
    plan.acquire = free.into_iter().chain(expired).take(wanted).collect();
    plan
}

/// The feed slots a replica that reads no stream may take, in the order to
/// try them (each only if its item is still as seen): free ones, then those
/// whose beat stood still for a lease time. Each replica starts at its own
/// slot, so two replicas starting together mostly ask for different ones.
pub fn feed_slots(
    view: &LeaseView,
    seen: &Observations,
    now: Instant,
    me: &str,
    ttl: Duration,
) -> Vec<(FeedSlot, Option<FeedLease>)> {
    let items: BTreeMap<FeedSlot, &FeedLease> = view.feeds.iter().map(|l| (l.slot, l)).collect();
    let offset = (stable_hash(me) % u64::from(FEED_READERS)) as FeedSlot;
    let mut free = Vec::new();
    let mut expired = Vec::new();
    for n in 0..FEED_READERS {
        let slot = (n + offset) % FEED_READERS;
        match items.get(&slot) {
            None => free.push((slot, None)),
            Some(l) if l.holder.is_none() => free.push((slot, Some((*l).clone()))),
            Some(l) if seen.feed_expired(slot, now, ttl) => {
                expired.push((slot, Some((*l).clone())))
            }
            Some(_) => {}
        }
    }
    free.into_iter().chain(expired).collect()
}

#[cfg(test)]
#[path = "balance_tests.rs"]
mod tests;
