use std::collections::BTreeSet;

use super::*;
use crate::cloud::lease::FeedLease;
use crate::cloud::relay::{RELAY_KEEP, RelayItem};
use crate::rollout::ServiceKey;
use crate::time::Timestamp;

fn reader(slot: FeedSlot, token: u64, opened: u64) -> FeedLease {
    FeedLease {
        slot,
        holder: Some(format!("r{slot}")),
        token,
        beat: 1,
        opened,
        reading: true,
    }
}

fn change(service: &str) -> Change {
    Change {
        key: ServiceKey::new("prod", service),
        at: Some(Timestamp(7)),
    }
}

/// The relay as the readers left it: per shard, per slot, a log.
#[derive(Default)]
struct Relayed(BTreeMap<Shard, RelayItem>);

impl Relayed {
    fn publish(&mut self, slot: FeedSlot, shard: Shard, services: &[&str]) {
        let changes: Vec<Change> = services.iter().map(|s| change(s)).collect();
        let item = self.0.entry(shard).or_insert_with(|| RelayItem {
            shard,
            ..RelayItem::default()
        });
        item.logs.entry(slot).or_default().append(&changes);
    }

    fn read(&self, feeds: &[FeedLease]) -> RelayRead {
        RelayRead {
            items: self.0.values().cloned().collect(),
            feeds: feeds.to_vec(),
        }
    }
}

fn held(shards: &[Shard]) -> BTreeSet<Shard> {
    shards.iter().copied().collect()
}

fn services(polled: &Polled) -> Vec<&str> {
    polled
        .changes
        .iter()
        .map(|c| c.key.service.as_str())
        .collect()
}

#[test]
fn the_first_poll_takes_a_position_and_the_next_brings_what_changed() {
    let mut relay = Relayed::default();
    relay.publish(0, 1, &["old"]);
    let feeds = [reader(0, 1, 1)];
    let mut f = Follower::default();
    let first = f.apply(&relay.read(&feeds), &held(&[1, 2]));
    assert_eq!(first.coverage, Coverage::Renewed, "every record is listed");
    assert!(
        first.changes.is_empty(),
        "what came before is in the listing"
    );
    assert!(first.list.is_empty());

    relay.publish(0, 1, &["a", "b"]);
    relay.publish(0, 2, &["c"]);
    relay.publish(0, 3, &["not held"]);
    let next = f.apply(&relay.read(&feeds), &held(&[1, 2]));
    assert_eq!(next.coverage, Coverage::Unbroken);
    assert_eq!(services(&next), ["a", "b", "c"]);
    assert_eq!(next.changes[0].at, Some(Timestamp(7)), "the write's time");
    assert!(next.list.is_empty());
    let quiet = f.apply(&relay.read(&feeds), &held(&[1, 2]));
    assert!(quiet.changes.is_empty(), "each change once");
}

#[test]
fn a_follower_that_fell_behind_lists_that_shard() {
    let mut relay = Relayed::default();
    let feeds = [reader(0, 1, 1)];
    let mut f = Follower::default();
    f.apply(&relay.read(&feeds), &held(&[1, 2]));
    let burst: Vec<String> = (0..RELAY_KEEP + 1).map(|i| format!("s{i}")).collect();
    let burst: Vec<&str> = burst.iter().map(String::as_str).collect();
    relay.publish(0, 1, &burst);
    relay.publish(0, 2, &["fine"]);
    let polled = f.apply(&relay.read(&feeds), &held(&[1, 2]));
    assert_eq!(polled.list, BTreeSet::from([1]));
    assert_eq!(services(&polled), ["fine"], "shard 2 kept up");
    // Caught up: the next change of shard 1 comes through the relay again.
    relay.publish(0, 1, &["after"]);
    let polled = f.apply(&relay.read(&feeds), &held(&[1, 2]));
    assert_eq!(services(&polled), ["after"]);
    assert!(polled.list.is_empty());
}

#[test]
fn a_shard_seen_for_the_first_time_is_listed_once() {
    let mut relay = Relayed::default();
    let feeds = [reader(0, 1, 1)];
    let mut f = Follower::default();
    f.apply(&relay.read(&feeds), &held(&[1]));
    relay.publish(0, 2, &["before"]);
    let gained = f.apply(&relay.read(&feeds), &held(&[1, 2]));
    assert_eq!(gained.list, BTreeSet::from([2]));
    assert!(
        gained.changes.is_empty(),
        "the listing covers what came before"
    );
    relay.publish(0, 2, &["after"]);
    let next = f.apply(&relay.read(&feeds), &held(&[1, 2]));
    assert_eq!(services(&next), ["after"]);
    assert!(next.list.is_empty());
    // Handed on and taken back: listed again.
    f.apply(&relay.read(&feeds), &held(&[1]));
    let back = f.apply(&relay.read(&feeds), &held(&[1, 2]));
    assert_eq!(back.list, BTreeSet::from([2]));
}

#[test]
fn one_reader_reading_throughout_covers_the_other_being_replaced() {
    let mut relay = Relayed::default();
    let mut f = Follower::default();
    f.apply(
        &relay.read(&[reader(0, 1, 1), reader(1, 1, 1)]),
        &held(&[1]),
    );
    // Slot 1's reader died and another took its slot: slot 0 read on.
    relay.publish(0, 1, &["a"]);
    let polled = f.apply(
        &relay.read(&[reader(0, 1, 1), reader(1, 2, 1)]),
        &held(&[1]),
    );
    assert_eq!(polled.coverage, Coverage::Unbroken);
    assert_eq!(services(&polled), ["a"]);
    // Both relay the next change: it comes twice, and runs once.
    relay.publish(0, 1, &["b"]);
    relay.publish(1, 1, &["b"]);
    let both = f.apply(
        &relay.read(&[reader(0, 1, 1), reader(1, 2, 1)]),
        &held(&[1]),
    );
    assert_eq!(services(&both), ["b", "b"]);
}

#[test]
fn a_lone_reader_replaced_or_reopened_means_every_record_is_listed() {
    let relay = Relayed::default();
    let mut f = Follower::default();
    f.apply(&relay.read(&[reader(0, 1, 1)]), &held(&[1]));
    let taken_over = f.apply(&relay.read(&[reader(0, 2, 1)]), &held(&[1]));
    assert_eq!(taken_over.coverage, Coverage::Renewed);
    let reopened = f.apply(&relay.read(&[reader(0, 2, 2)]), &held(&[1]));
    assert_eq!(reopened.coverage, Coverage::Renewed);
    let steady = f.apply(&relay.read(&[reader(0, 2, 2)]), &held(&[1]));
    assert_eq!(steady.coverage, Coverage::Unbroken);
}

#[test]
fn nobody_reading_is_uncovered_and_reading_again_is_renewed() {
    let mut relay = Relayed::default();
    let mut f = Follower::default();
    f.apply(&relay.read(&[reader(0, 1, 1)]), &held(&[1]));
    let mut stopped = reader(0, 1, 1);
    stopped.reading = false;
    let mut released = reader(1, 4, 2);
    released.holder = None;
    let none = f.apply(&relay.read(&[stopped, released]), &held(&[1]));
    assert_eq!(none.coverage, Coverage::Uncovered);
    // What is relayed meanwhile still comes through.
    relay.publish(0, 1, &["late"]);
    let back = f.apply(&relay.read(&[reader(0, 1, 2)]), &held(&[1]));
    assert_eq!(back.coverage, Coverage::Renewed);
    assert_eq!(services(&back), ["late"]);
    assert!(
        back.list.is_empty(),
        "a renewed coverage lists every record"
    );
}
