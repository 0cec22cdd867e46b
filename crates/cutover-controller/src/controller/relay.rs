//! Following the relay: what a replica that does not read the change stream
//! makes of each poll of its shards' relay items (see
//! [`crate::cloud::relay`]), and the loop that polls them.
//!
//! Besides the changes, a poll says which readers stood behind them. A
//! reader's reading is named by its feed slot, lease token and `opened`
//! count, which moves each time its stream feed takes a new position. If
//! one reading seen at the last poll is still going, it read every write
//! in between and relayed it; if none is, writes in between may have
//! reached no reader, and every record is listed again (as when the
//! controller's own stream feed reopens).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::sources::{FeedState, RelayFeed, Sources};
use crate::cloud::lease::{FeedSlot, Shard};
use crate::cloud::relay::{RelayRead, Since};
use crate::cloud::{Change, CloudError};

/// One reader's unbroken reading of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Reading {
    slot: FeedSlot,
    token: u64,
    opened: u64,
}

/// Whether the readers behind a poll read every write since the last one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// A reading seen at the last poll is still going.
    Unbroken,
    /// Readers read now, but none of them read unbroken since the last
    /// poll (or this is the first): every record must be listed.
    Renewed,
    /// Nobody reads the stream now.
    Uncovered,
}

/// What to do after a poll.
#[derive(Debug, PartialEq, Eq)]
pub struct Polled {
    pub coverage: Coverage,
    /// Changes to records of the shards held, each once per reader that
    /// relayed it.
    pub changes: Vec<Change>,
    /// Shards whose records must be listed: first seen, or more changed
    /// than their logs kept. Empty unless the coverage is unbroken (a
    /// renewed one lists everything anyway).
    pub list: BTreeSet<Shard>,
}

/// What a follower has seen of the relay.
#[derive(Debug, Default)]
pub struct Follower {
    /// The last number seen of each reader slot's log, per shard held.
    seen: BTreeMap<Shard, BTreeMap<FeedSlot, u64>>,
    readings: BTreeSet<Reading>,
}

impl Follower {
    /// Takes in a poll of the relay items of `held`.
    pub fn apply(&mut self, read: &RelayRead, held: &BTreeSet<Shard>) -> Polled {
        let readings: BTreeSet<Reading> = read
            .feeds
            .iter()
            .filter(|f| f.holder.is_some() && f.reading)
            .map(|f| Reading {
                slot: f.slot,
                token: f.token,
                opened: f.opened,
            })
            .collect();
        let coverage = if readings.is_empty() {
            Coverage::Uncovered
        } else if readings.intersection(&self.readings).next().is_some() {
            Coverage::Unbroken
        } else {
            Coverage::Renewed
        };
        self.readings = readings;
        self.seen.retain(|shard, _| held.contains(shard));
        let items: BTreeMap<Shard, _> = read.items.iter().map(|i| (i.shard, &i.logs)).collect();
        let mut polled = Polled {
            coverage,
            changes: Vec::new(),
            list: BTreeSet::new(),
        };
        for shard in held {
            let logs = items.get(shard).copied();
            let numbers = || {
                logs.map(|l| l.iter().map(|(slot, log)| (*slot, log.seq)).collect())
                    .unwrap_or_default()
            };
            let Some(seen) = self.seen.get_mut(shard) else {
                // First seen: what came before is in the records.
                self.seen.insert(*shard, numbers());
                if coverage == Coverage::Unbroken {
                    polled.list.insert(*shard);
                }
                continue;
            };
            for (slot, log) in logs.into_iter().flatten() {
                let last = seen.entry(*slot).or_default();
                match log.since(*last) {
                    Since::Changes(new) => polled.changes.extend(new.into_iter().map(|r| Change {
                        key: r.key.clone(),
                        at: r.at,
                    })),
                    Since::Behind => {
                        polled.list.insert(*shard);
                    }
                }
                *last = log.seq;
            }
        }
        if coverage != Coverage::Unbroken {
            polled.list.clear();
        }
        polled
    }
}

/// How following the relay ended.
pub enum Followed {
    Shutdown,
    /// This replica may read the stream itself now.
    Reader,
}

/// Follows the relay until this replica may read the stream itself, or
/// shutdown. `opened` counts the feed's positions, as the stream feed does.
pub async fn follow(
    sources: &Sources,
    relay: &RelayFeed,
    state: &watch::Sender<FeedState>,
    opened: &mut u64,
    shutdown: &CancellationToken,
) -> Followed {
    let Some(ownership) = &sources.ownership else {
        // The relay comes with the shard leases; without them there are
        // no shards to follow, and nothing to do but wait.
        tracing::error!("the relay is on without shard leases: no change reaches this replica");
        shutdown.cancelled().await;
        return Followed::Shutdown;
    };
    let mut role = relay.readership.role();
    let mut follower = Follower::default();
    let mut failing: Option<CloudError> = None;
    // Shards to list, kept until a listing succeeds.
    let mut unlisted = BTreeSet::new();
    loop {
        if relay.readership.reading().is_some() {
            return Followed::Reader;
        }
        let held: BTreeSet<Shard> = ownership.shards().into_iter().collect();
        let shards: Vec<Shard> = held.iter().copied().collect();
        match relay.relay.poll(&shards).await {
            Ok(read) => {
                if failing.take().is_some() {
                    tracing::info!("the relay answers again");
                }
                relay.stats.polls.fetch_add(1, Ordering::Relaxed);
                let mut polled = follower.apply(&read, &held);
                if polled.coverage == Coverage::Renewed {
                    // Every record is listed now anyway.
                    unlisted.clear();
                }
                unlisted.extend(std::mem::take(&mut polled.list));
                unlisted.retain(|s| held.contains(s));
                polled.list = std::mem::take(&mut unlisted);
                if let Err(left) = take(sources, relay, state, opened, polled).await {
                    unlisted = left;
                }
            }
            Err(e) => {
                // Nothing is lost meanwhile: the logs keep what changed,
                // and a follower that fell too far behind lists instead.
                if failing.is_none() {
                    tracing::warn!(
                        operation = e.operation,
                        error_kind = e.kind.as_str(),
                        request_id = e.request_id.as_deref().unwrap_or(""),
                        "polling the relay failed: {e}"
                    );
                }
                failing = Some(e);
            }
        }
        let next = sources.clock.now() + relay.poll;
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Followed::Shutdown,
            // Only a change wakes it: the role may still say Reader for a
            // lease that just lapsed, until the keeper settles it.
            _ = role.changed() => {}
            _ = sources.clock.sleep_until(next) => {}
        }
    }
}

/// Acts on one poll: the feed state, the changes, the listings. The
/// shards still to list when listing them failed.
async fn take(
    sources: &Sources,
    relay: &RelayFeed,
    state: &watch::Sender<FeedState>,
    opened: &mut u64,
    polled: Polled,
) -> Result<(), BTreeSet<Shard>> {
    let was = *state.borrow();
    match polled.coverage {
        Coverage::Renewed => {
            *opened += 1;
            state.send_replace(FeedState::Positioned(*opened));
            if matches!(was, FeedState::Positioned(_)) {
                tracing::info!(
                    "the replicas reading the change stream changed, and none read throughout: listing every record for what may have reached no one"
                );
            } else {
                tracing::info!("following the relay of the change stream");
            }
        }
        Coverage::Uncovered => {
            if was != FeedState::Down {
                tracing::warn!(
                    "no replica reads the change stream now: changes wait for a reader to take a feed lease (then every record is listed) or for the resync"
                );
            }
            state.send_replace(FeedState::Down);
        }
        Coverage::Unbroken => {}
    }
    let now = sources.clock.now();
    for change in polled.changes {
        if let Some(at) = change.at {
            sources.detection.changed(&change.key, at);
        }
        if sources.owns(&change.key) {
            sources.queue.schedule(change.key, now);
        }
    }
    let Some(ownership) = &sources.ownership else {
        return Ok(());
    };
    if polled.list.is_empty() {
        return Ok(());
    }
    tracing::debug!(shards = ?polled.list, "listing the records of shards the relay cannot tell about");
    match sources.store.list().await {
        Ok(records) => {
            relay
                .stats
                .listed
                .fetch_add(polled.list.len() as u64, Ordering::Relaxed);
            let now = sources.clock.now();
            for record in records {
                if polled.list.contains(&ownership.shard(&record.key)) && sources.owns(&record.key)
                {
                    sources.queue.schedule_due(record.key, now);
                }
            }
            Ok(())
        }
        // Listed again after the next poll.
        Err(e) => {
            tracing::warn!(
                operation = e.operation,
                error_kind = e.kind.as_str(),
                request_id = e.request_id.as_deref().unwrap_or(""),
                "listing the records of shards the relay fell behind on failed: {e}"
            );
            Err(polled.list)
        }
    }
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
