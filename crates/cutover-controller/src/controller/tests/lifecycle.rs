//! The loop as a whole: first sync, the change feed, concurrency, shutdown,
//! and replaying a run from its seed.

use crate::cloud::{CloudError, ErrorKind};
use crate::rollout::{Phase, Weights};

use super::fakes::{Call, key, listener, record, target_group};
use super::*;

fn blue(name: &str) -> Weights {
    Weights::pair(
        &target_group(name, "blue"),
        100,
        &target_group(name, "green"),
        0,
    )
}

fn transient(operation: &'static str) -> CloudError {
    CloudError::new(ErrorKind::Transient, operation, "Service unavailable")
}

#[tokio::test(start_paused = true)]
async fn the_first_full_sync_is_reported_once_every_record_is_scheduled() {
    let h = Harness::new();
    h.cloud.put(&key("a"), record("a", &[]));
    h.cloud.put(&key("b"), record("b", &[]));
    h.cloud.fail("list", transient("dynamodb:Scan"), Some(2));
    let run = h.start(config());
    h.sleep(Duration::from_millis(100)).await;
    assert!(!run.handle.is_synced());

    assert!(run.handle.synced().await);
    assert_eq!(h.cloud.calls("list"), 3);
    h.sleep(secs(30)).await;
    assert_eq!(h.phase(&key("a")), Some(Phase::Steady));
    assert_eq!(h.phase(&key("b")), Some(Phase::Steady));
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_write_just_after_readiness_is_seen_however_slowly_the_feed_opens() {
    let h = Harness::new();
    h.cloud.put(&key("a"), record("a", &[]));
    h.cloud.state().watch_delay = secs(5);
    let run = h.start(config());
    h.sleep(secs(2)).await;
    assert!(!run.handle.is_synced(), "not ready while the feed opens");
    assert_eq!(h.cloud.calls("list"), 0, "the listing waits for the feed");

    assert!(run.handle.synced().await);
    // Written the moment readiness turned: the feed must report it, as the
    // next resync is an hour away.
    h.cloud.put(&key("b"), record("b", &[]));
    h.sleep(secs(30)).await;
    assert_eq!(h.phase(&key("a")), Some(Phase::Steady));
    assert_eq!(h.phase(&key("b")), Some(Phase::Steady));
    assert_eq!(h.cloud.calls("list"), 1);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_change_from_the_feed_is_reconciled_without_waiting_for_a_resync() {
    let h = Harness::new();
    h.cloud.put(&key("web"), record("web", &[]));
    let run = h.start(config());
    h.sleep(secs(30)).await;
    assert_eq!(h.phase(&key("web")), Some(Phase::Steady));

    h.cloud.put(&key("web"), record("web", &[("goal", "blue")]));
    h.sleep(secs(30)).await;
    assert_eq!(h.cloud.weights(&listener("web")), Some(blue("web")));
    assert_eq!(h.phase(&key("web")), Some(Phase::Steady));
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_change_feed_is_reopened_and_resync_covers_the_gap() {
    let h = Harness::new();
    h.cloud.state().watch_failures = 3;
    h.cloud.put(&key("web"), record("web", &[]));
    let run = h.start(config());
    h.sleep(secs(60)).await;
    assert_eq!(h.cloud.calls("watch"), 4);
    assert_eq!(h.phase(&key("web")), Some(Phase::Steady));

    h.cloud.put(&key("web"), record("web", &[("goal", "blue")]));
    h.sleep(secs(30)).await;
    assert_eq!(h.cloud.weights(&listener("web")), Some(blue("web")));
    run.stop().await;
}

/// A stream disabled and enabled again is a new stream: the feed on the old
/// one fails, and what was written before the new one is read reaches the
/// controller only by a listing, which must not wait for the next resync
/// (an hour here).
#[tokio::test(start_paused = true)]
async fn a_feed_opened_again_after_it_failed_lists_every_record_for_the_writes_it_missed() {
    let h = Harness::new();
    h.cloud.put(&key("web"), record("web", &[]));
    let run = h.start(config());
    assert!(run.handle.synced().await);
    h.sleep(secs(30)).await;
    assert_eq!(h.phase(&key("web")), Some(Phase::Steady));
    assert_eq!(h.cloud.calls("list"), 1);

    h.cloud.cut_feed();
    h.cloud.put(&key("web"), record("web", &[("goal", "blue")]));
    h.sleep(secs(60)).await;
    assert_eq!(h.cloud.calls("watch"), 2, "the feed was opened again");
    assert_eq!(
        h.cloud.calls("list"),
        2,
        "and every record listed once more"
    );
    assert_eq!(h.cloud.weights(&listener("web")), Some(blue("web")));

    // A healthy feed causes no further listing before the resync.
    h.sleep(secs(600)).await;
    assert_eq!(h.cloud.calls("list"), 2);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn workers_bound_how_many_services_are_reconciled_at_once() {
    let h = Harness::new();
    let names = ["a", "b", "c", "d", "e", "f"];
    for name in names {
        h.cloud.put(&key(name), record(name, &[]));
    }
    h.cloud.state().describe_delay = secs(5);
    let run = h.start(ControllerConfig {
        concurrency: 2,
        ..config()
    });
    h.sleep(secs(120)).await;

    assert_eq!(h.cloud.state().most_describing, 2);
    for name in names {
        assert_eq!(h.phase(&key(name)), Some(Phase::Steady), "{name}");
    }
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_a_reconcile_in_flight_finish_and_takes_no_new_work() {
    let h = Harness::new();
    h.cloud.put(&key("a"), record("a", &[]));
    h.cloud.put(&key("b"), record("b", &[]));
    h.cloud.state().set_weights_delay = secs(30);
    let run = h.start(ControllerConfig {
        concurrency: 1,
        ..config()
    });
    h.sleep(secs(5)).await;
    assert_eq!(run.handle.in_flight(), 1);

    run.stop().await;
    assert!(
        h.clock.now() >= EPOCH + secs(30),
        "stop waited for the pass"
    );
    assert_eq!(h.phase(&key("a")), Some(Phase::Shifting));
    assert_eq!(h.cloud.status(&key("b")), None);
    assert_eq!(h.cloud.calls("describe_services"), 1);
}

/// Several services under injected faults; returns every call the cloud saw.
async fn faulty_run(seed: u64) -> Vec<Call> {
    let h = Harness::new();
    for name in ["a", "b", "c", "d", "e"] {
        h.cloud.put(&key(name), record(name, &[]));
    }
    let throttled = CloudError::new(
        ErrorKind::Throttled,
        "elasticloadbalancing:ModifyListener",
        "Rate exceeded",
    );
    h.cloud.fail("set_weights", throttled, Some(7));
    h.cloud.fail(
        "describe_services",
        transient("ecs:DescribeServices"),
        Some(4),
    );
    h.cloud.state().interference.insert(key("c"), 2);
    let run = h.start(ControllerConfig {
        concurrency: 3,
        seed,
        ..config()
    });
    h.sleep(secs(300)).await;
    run.stop().await;
    for name in ["a", "b", "c", "d", "e"] {
        assert_eq!(h.phase(&key(name)), Some(Phase::Steady), "{name}");
    }
    h.cloud.state().calls.clone()
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_replays_the_same_calls_at_the_same_times() {
    let first = faulty_run(11).await;
    let second = faulty_run(11).await;
    assert_eq!(first, second);
    let other = faulty_run(12).await;
    assert_ne!(first, other, "the seed should steer the retry jitter");
}
