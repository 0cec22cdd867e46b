use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::cloud::lease::{FeedLease, FeedSlot, Member};

const TTL: Duration = Duration::from_secs(20);

fn lease(shard: Shard, holder: Option<&str>, beat: u64) -> ShardLease {
    ShardLease {
        shard,
        holder: holder.map(str::to_string),
        token: 1,
        beat,
        shards: 4,
    }
}

fn member(name: &str, beat: u64) -> Member {
    Member {
        replica: name.into(),
        beat,
    }
}

fn inputs<'a>(keeping: &'a BTreeSet<Shard>) -> Inputs<'a> {
    Inputs {
        me: "a",
        shards: 4,
        ttl: TTL,
        keeping,
        held: keeping,
    }
}

fn shards(plan: &Plan) -> BTreeSet<Shard> {
    plan.acquire.iter().map(|(s, _)| *s).collect()
}

#[test]
fn a_lone_replica_takes_every_shard_at_once() {
    let now = Instant::now();
    let view = LeaseView {
        shards: vec![lease(2, None, 5)],
        members: vec![member("a", 1)],
        ..LeaseView::default()
    };
    let mut seen = Observations::default();
    seen.observe(&view, now);
    let p = plan(&view, &seen, now, &inputs(&BTreeSet::new()));
    assert_eq!(shards(&p), BTreeSet::from([0, 1, 2, 3]));
    let released = p.acquire.iter().find(|(s, _)| *s == 2);
    assert_eq!(
        released,
        Some(&(2, Some(lease(2, None, 5)))),
        "taken as seen"
    );
}

#[test]
fn a_held_lease_is_taken_only_after_its_beat_stood_still_for_the_lease_time() {
    let start = Instant::now();
    let view = LeaseView {
        shards: (0..4).map(|s| lease(s, Some("b"), 7)).collect(),
        members: vec![member("b", 3)],
        ..LeaseView::default()
    };
    let mut seen = Observations::default();
    seen.observe(&view, start);
    let none = BTreeSet::new();
    assert!(
        plan(&view, &seen, start + TTL / 2, &inputs(&none))
            .acquire
            .is_empty()
    );
    // b is gone: its heartbeat and its leases stood still for the lease time.
    let later = start + TTL;
    seen.observe(&view, later);
    assert_eq!(shards(&plan(&view, &seen, later, &inputs(&none))).len(), 4);
}

#[test]
fn a_renewed_lease_restarts_the_observation() {
    let start = Instant::now();
    let mut view = LeaseView {
        shards: vec![lease(0, Some("b"), 7)],
        members: vec![member("b", 3)],
        ..LeaseView::default()
    };
    let mut seen = Observations::default();
    seen.observe(&view, start);
    view.shards[0].beat = 8;
    seen.observe(&view, start + TTL / 2);
    let none = BTreeSet::new();
    let p = plan(&view, &seen, start + TTL, &inputs(&none));
    assert!(!shards(&p).contains(&0), "{p:?}");
}

#[test]
fn a_replica_above_its_fair_share_hands_back_its_highest_shards() {
    let now = Instant::now();
    let view = LeaseView {
        shards: (0..4).map(|s| lease(s, Some("a"), 1)).collect(),
        members: vec![member("a", 1), member("b", 1), member("c", 1)],
        ..LeaseView::default()
    };
    let mut seen = Observations::default();
    seen.observe(&view, now);
    let mine = BTreeSet::from([0, 1, 2, 3]);
    let p = plan(&view, &seen, now, &inputs(&mine));
    // Three replicas: a fair share of four shards is two.
    assert_eq!(p.release, vec![3, 2]);
    assert!(p.acquire.is_empty());
}

#[test]
fn a_replica_takes_free_shards_only_up_to_its_fair_share() {
    let now = Instant::now();
    let view = LeaseView {
        shards: vec![],
        members: vec![member("a", 1), member("b", 1)],
        ..LeaseView::default()
    };
    let mut seen = Observations::default();
    seen.observe(&view, now);
    let p = plan(&view, &seen, now, &inputs(&BTreeSet::new()));
    assert_eq!(p.acquire.len(), 2);
}

#[test]
fn a_live_replica_with_another_shard_count_stops_any_acquisition() {
    let now = Instant::now();
    let mut other = lease(0, Some("b"), 1);
    other.shards = 8;
    let view = LeaseView {
        shards: vec![other],
        members: vec![member("b", 1)],
        ..LeaseView::default()
    };
    let mut seen = Observations::default();
    seen.observe(&view, now);
    let p = plan(&view, &seen, now, &inputs(&BTreeSet::new()));
    assert!(p.acquire.is_empty());
    assert!(p.refused.is_some_and(|r| r.contains("8 shards")));
}

fn feed(slot: FeedSlot, holder: Option<&str>, beat: u64) -> FeedLease {
    FeedLease {
        slot,
        holder: holder.map(str::to_string),
        token: 1,
        beat,
        opened: 0,
        reading: holder.is_some(),
    }
}

fn slots(offered: &[(FeedSlot, Option<FeedLease>)]) -> Vec<FeedSlot> {
    offered.iter().map(|(s, _)| *s).collect()
}

#[test]
fn a_replica_may_take_a_free_feed_slot_and_never_a_live_one() {
    let start = Instant::now();
    let mut seen = Observations::default();
    let none = LeaseView::default();
    seen.observe(&none, start);
    let mut both = slots(&feed_slots(&none, &seen, start, "a", TTL));
    both.sort_unstable();
    assert_eq!(both, [0, 1], "no item yet: both are free");

    let view = LeaseView {
        feeds: vec![feed(0, Some("b"), 4), feed(1, None, 9)],
        ..LeaseView::default()
    };
    seen.observe(&view, start);
    let offered = feed_slots(&view, &seen, start, "a", TTL);
    assert_eq!(offered, vec![(1, Some(feed(1, None, 9)))], "taken as seen");

    let full = LeaseView {
        feeds: vec![feed(0, Some("b"), 4), feed(1, Some("c"), 9)],
        ..LeaseView::default()
    };
    seen.observe(&full, start);
    let later = start + TTL - Duration::from_secs(1);
    assert!(feed_slots(&full, &seen, later, "a", TTL).is_empty());
}

#[test]
fn a_feed_slot_whose_beat_stood_still_for_the_lease_time_may_be_taken() {
    let start = Instant::now();
    let mut seen = Observations::default();
    let view = LeaseView {
        feeds: vec![feed(0, Some("b"), 4), feed(1, Some("c"), 9)],
        ..LeaseView::default()
    };
    seen.observe(&view, start);
    let moved = LeaseView {
        feeds: vec![feed(0, Some("b"), 5), feed(1, Some("c"), 9)],
        ..LeaseView::default()
    };
    let later = start + TTL;
    seen.observe(&moved, later);
    let offered = feed_slots(&moved, &seen, later, "a", TTL);
    assert_eq!(slots(&offered), [1], "c stopped renewing, b did not");
}
