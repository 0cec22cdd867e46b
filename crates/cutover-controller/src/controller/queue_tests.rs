use std::sync::Mutex;

use super::*;
use crate::cloud::ScaledClock;

const EPOCH: Timestamp = Timestamp(1_700_000_000_000);

fn setup() -> (Arc<dyn Clock>, Arc<WorkQueue>) {
    let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(EPOCH, 1.0));
    let queue = WorkQueue::new(Arc::clone(&clock));
    (clock, queue)
}

fn key(name: &str) -> ServiceKey {
    ServiceKey::new("prod", name)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test(start_paused = true)]
async fn a_key_is_queued_once_and_the_earlier_due_time_wins() {
    let (_, queue) = setup();
    queue.schedule(key("web"), EPOCH + secs(10));
    queue.schedule(key("web"), EPOCH + secs(5));
    queue.schedule(key("web"), EPOCH + secs(20));
    assert_eq!(queue.depth(), 1);
    assert_eq!(queue.due(&key("web")), Some(EPOCH + secs(5)));
}

#[tokio::test(start_paused = true)]
async fn keys_are_taken_in_due_order_and_not_before_they_are_due() {
    let (clock, queue) = setup();
    queue.schedule(key("a"), EPOCH + secs(30));
    queue.schedule(key("b"), EPOCH + secs(10));
    queue.schedule(key("c"), EPOCH + secs(20));
    queue.schedule(key("d"), EPOCH + secs(20));
    let mut taken = Vec::new();
    for _ in 0..4 {
        let Some(lease) = queue.next().await else {
            panic!("queue closed unexpectedly");
        };
        let due = match lease.key().service.as_str() {
            "a" => secs(30),
            "b" => secs(10),
            _ => secs(20),
        };
        assert!(clock.now() >= EPOCH + due, "{} taken early", lease.key());
        taken.push(lease.key().service.clone());
    }
    assert_eq!(taken, ["b", "c", "d", "a"]);
}

#[tokio::test(start_paused = true)]
async fn new_earlier_work_wakes_a_sleeping_worker() {
    let (clock, queue) = setup();
    queue.schedule(key("later"), EPOCH + secs(3600));
    let worker = tokio::spawn({
        let queue = Arc::clone(&queue);
        async move { queue.next().await.map(|l| l.key().clone()) }
    });
    clock.sleep(secs(1)).await;
    queue.schedule_now(key("now"));
    let taken = worker.await.ok().flatten();
    assert_eq!(taken, Some(key("now")));
    assert!(clock.now() < EPOCH + secs(3600));
}

#[derive(Default)]
struct Runs {
    running: BTreeMap<ServiceKey, u32>,
    most_at_once: u32,
    most_keys_at_once: usize,
    finished: Vec<ServiceKey>,
}

/// Workers that hold each key for `hold` and record what overlapped.
fn spawn_workers(
    queue: &Arc<WorkQueue>,
    clock: &Arc<dyn Clock>,
    workers: usize,
    hold: Duration,
    runs: &Arc<Mutex<Runs>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..workers)
        .map(|_| {
            let (queue, clock, runs) = (Arc::clone(queue), Arc::clone(clock), Arc::clone(runs));
            tokio::spawn(async move {
                while let Some(lease) = queue.next().await {
                    {
                        let mut r = runs.lock().unwrap();
                        let n = r.running.entry(lease.key().clone()).or_default();
                        *n += 1;
                        let n = *n;
                        r.most_at_once = r.most_at_once.max(n);
                        let busy = r.running.values().filter(|n| **n > 0).count();
                        r.most_keys_at_once = r.most_keys_at_once.max(busy);
                    }
                    clock.sleep(hold).await;
                    {
                        let mut r = runs.lock().unwrap();
                        if let Some(n) = r.running.get_mut(lease.key()) {
                            *n -= 1;
                        }
                        r.finished.push(lease.key().clone());
                    }
                    lease.finish(None);
                }
            })
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_key_rescheduled_while_in_flight_runs_again_after_and_never_twice_at_once() {
    let (clock, queue) = setup();
    let runs = Arc::new(Mutex::new(Runs::default()));
    let workers = spawn_workers(&queue, &clock, 4, secs(10), &runs);
    queue.schedule_now(key("web"));
    clock.sleep(secs(1)).await;
    assert_eq!(queue.in_flight(), 1);
    // Three changes arrive while the first pass runs.
    for _ in 0..3 {
        queue.schedule_now(key("web"));
    }
    assert_eq!(queue.depth(), 1);
    clock.sleep(secs(60)).await;
    queue.close();
    for w in workers {
        w.await.unwrap();
    }
    let runs = runs.lock().unwrap();
    assert_eq!(runs.most_at_once, 1);
    assert_eq!(runs.finished, [key("web"), key("web")]);
}

#[tokio::test(start_paused = true)]
async fn workers_bound_how_many_keys_run_at_once() {
    let (clock, queue) = setup();
    let runs = Arc::new(Mutex::new(Runs::default()));
    let workers = spawn_workers(&queue, &clock, 2, secs(5), &runs);
    for name in ["a", "b", "c", "d", "e"] {
        queue.schedule_now(key(name));
    }
    clock.sleep(secs(60)).await;
    queue.close();
    for w in workers {
        w.await.unwrap();
    }
    let runs = runs.lock().unwrap();
    assert_eq!(runs.most_keys_at_once, 2);
    assert_eq!(runs.finished.len(), 5);
}

#[tokio::test(start_paused = true)]
async fn finishing_a_lease_requeues_at_the_earlier_of_its_own_and_any_new_due_time() {
    let (_, queue) = setup();
    queue.schedule_now(key("web"));
    let lease = queue.next().await.unwrap();
    queue.schedule(key("web"), EPOCH + secs(30));
    lease.finish(Some(EPOCH + secs(90)));
    assert_eq!(queue.due(&key("web")), Some(EPOCH + secs(30)));

    let lease = queue.next().await.unwrap();
    lease.finish(None);
    assert_eq!(queue.due(&key("web")), None);
    assert_eq!(queue.depth(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_closed_queue_hands_out_nothing_but_in_flight_leases_still_release() {
    let (_, queue) = setup();
    queue.schedule_now(key("a"));
    queue.schedule_now(key("b"));
    let lease = queue.next().await.unwrap();
    queue.close();
    assert!(queue.next().await.is_none());
    lease.finish(None);
    assert_eq!(queue.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn depth_and_the_age_of_the_oldest_due_key_are_reported() {
    let (clock, queue) = setup();
    assert_eq!(queue.oldest_due_age(), Duration::ZERO);
    queue.schedule(key("a"), EPOCH + secs(5));
    queue.schedule(key("b"), EPOCH + secs(100));
    assert_eq!(queue.depth(), 2);
    assert_eq!(queue.oldest_due_age(), Duration::ZERO);
    clock.sleep(secs(15)).await;
    let age = queue.oldest_due_age();
    assert!(age >= secs(10) && age < secs(11), "{age:?}");
}

fn listed(name: &str, version: u64) -> StoredRecord {
    StoredRecord {
        key: key(name),
        body: serde_json::json!({}),
        status: None,
        status_version: version,
        written_at: None,
        unreadable: Vec::new(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_pass_gets_the_record_its_listing_read_when_nothing_moved_since() {
    let (clock, queue) = setup();
    let mark = queue.mark();
    queue.schedule_listed(listed("web", 7), clock.now(), mark);
    let mut lease = queue.next().await.unwrap();
    match lease.take_trigger() {
        Trigger::Listed(r) => assert_eq!(r.status_version, 7),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_listing_older_than_the_last_pass_or_change_is_not_handed_on() {
    let (clock, queue) = setup();
    // A pass ran (and may have written the status) after the listing began.
    let mark = queue.mark();
    queue.schedule_now(key("ran"));
    queue.next().await.unwrap().finish(None);
    queue.schedule_listed(listed("ran", 1), clock.now(), mark);
    // A change arrived after the listing was handed on.
    let mark = queue.mark();
    queue.schedule_listed(listed("changed", 1), clock.now(), mark);
    queue.schedule_now(key("changed"));
    let mut seen = BTreeMap::new();
    for _ in 0..2 {
        let mut lease = queue.next().await.unwrap();
        let trigger = lease.take_trigger();
        seen.insert(lease.key().service.clone(), format!("{trigger:?}"));
    }
    assert_eq!(seen["ran"], "Due");
    assert_eq!(seen["changed"], "Changed");
}

#[tokio::test(start_paused = true)]
async fn a_key_in_flight_runs_again_without_the_listed_record() {
    let (clock, queue) = setup();
    queue.schedule_now(key("web"));
    let lease = queue.next().await.unwrap();
    let mark = queue.mark();
    queue.schedule_listed(listed("web", 3), clock.now(), mark);
    lease.finish(None);
    let mut again = queue.next().await.unwrap();
    assert!(matches!(again.take_trigger(), Trigger::Due));
}

#[tokio::test(start_paused = true)]
async fn a_change_and_a_wake_up_go_before_a_resyncs_backlog() {
    let (clock, queue) = setup();
    let mark = queue.mark();
    for i in 0..100 {
        queue.schedule_listed(listed(&format!("steady-{i:03}"), 1), clock.now(), mark);
    }
    // A rollout's pass asks to run again in a second.
    queue.schedule_now(key("rolling"));
    let lease = queue.next().await.unwrap();
    assert_eq!(lease.key().service, "rolling");
    lease.finish(Some(clock.now() + secs(1)));
    clock.sleep(secs(2)).await;
    // A record written after the resync listed everything.
    queue.schedule_now(key("written"));
    let order: Vec<String> = {
        let mut order = vec![];
        for _ in 0..4 {
            let lease = queue.next().await.unwrap();
            order.push(lease.key().service.clone());
            lease.finish(None);
        }
        order
    };
    assert_eq!(order, ["written", "rolling", "steady-000", "steady-001"]);
    // A key keeps its most urgent lane: listing it again does not demote it.
    queue.schedule_now(key("steady-050"));
    queue.schedule_listed(listed("steady-050", 1), clock.now(), queue.mark());
    assert_eq!(queue.next().await.unwrap().key().service, "steady-050");
}

#[tokio::test(start_paused = true)]
async fn drift_checks_leave_workers_free_for_changes() {
    let (clock, queue) = setup();
    queue.limit_listed(2);
    let mark = queue.mark();
    for i in 0..10 {
        queue.schedule_listed(listed(&format!("steady-{i}"), 1), clock.now(), mark);
    }
    let first = queue.next().await.unwrap();
    let _second = queue.next().await.unwrap();
    // Two drift checks run; a third worker gets nothing until one ends...
    let mut third = tokio::spawn({
        let queue = Arc::clone(&queue);
        async move { queue.next().await.map(|l| l.key().service.clone()) }
    });
    clock.sleep(secs(1)).await;
    assert!(!third.is_finished());
    // ...unless a change arrives,
    queue.schedule_now(key("written"));
    assert_eq!((&mut third).await.unwrap().as_deref(), Some("written"));
    // and a finished drift check makes room for the next.
    let fourth = tokio::spawn({
        let queue = Arc::clone(&queue);
        async move { queue.next().await.map(|l| l.key().service.clone()) }
    });
    clock.sleep(secs(1)).await;
    assert!(!fourth.is_finished());
    first.finish(None);
    assert_eq!(fourth.await.unwrap().as_deref(), Some("steady-2"));
}
