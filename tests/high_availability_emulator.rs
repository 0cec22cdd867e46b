//! Shard leases and fenced status writes on the emulator's DynamoDB: the
//! lease table's conditional writes, then replicas whose records, change
//! feed, leases and status writes all go through DynamoDB (ECS and the load
//! balancer come from the simulated cloud on a real-time clock, since the
//! emulator runs no tasks).

#[path = "ha/pausable.rs"]
mod pausable;
#[path = "ha/replicas.rs"]
mod replicas;
mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use serde_json::json;

use cutover::aws::{DynamoLeases, DynamoStore};
use cutover::cloud::lease::shard_of;
use cutover::cloud::relay::RELAY_KEEP;
use cutover::cloud::{Change, Clock, DesiredStore, Fence, Leases, Relay, ScaledClock, StatusWrite};
use cutover::controller::ControllerConfig;
use cutover::rollout::{Phase, ServiceKey, Status};
use cutover::sim::{DEFAULT_EPOCH, Faults, HealthCheck, ServiceArns, ServiceSetup, SimCloud};

use pausable::{Gate, Pausable};
use replicas::{Replica, lease, spread};
use support::emulator::{Exclusive, exclusive};

const TABLE: &str = "cutover-desired";
const LEASE_TABLE: &str = "cutover-leases";
const SHARDS: u32 = 8;
const TTL: Duration = Duration::from_secs(2);

struct Fixture {
    _emulator: Exclusive,
    config: aws_config::SdkConfig,
}

async fn fixture() -> Fixture {
    let emulator = exclusive().await;
    let config = support::aws::config(&emulator).await;
    DynamoStore::new(&config, TABLE)
        .create_table()
        .await
        .expect("desired table");
    DynamoLeases::new(&config, LEASE_TABLE)
        .create_table()
        .await
        .expect("lease table");
    Fixture {
        _emulator: emulator,
        config,
    }
}

impl Fixture {
    fn leases(&self) -> DynamoLeases {
        DynamoLeases::new(&self.config, LEASE_TABLE)
    }

    fn store(&self) -> DynamoStore {
        DynamoStore::new(&self.config, TABLE)
            .with_leases(self.leases())
            .with_poll_interval(Duration::from_millis(100))
    }

    async fn put(&self, body: &serde_json::Value) {
        let item = serde_dynamo::to_item(body).expect("record as an item");
        Client::new(&self.config)
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item))
            .send()
            .await
            .expect("PutItem");
    }
}

fn status(message: &str) -> Status {
    Status {
        message: message.into(),
        ..Status::default()
    }
}

#[tokio::test]
async fn lease_writes_are_conditional_and_a_lost_lease_fences_the_status() {
    let f = fixture().await;
    let leases = f.leases();
    let store = f.store();
    let key = ServiceKey::new("prod", "checkout");
    f.put(&json!({"service": key.to_string(), "task_definition": "web:1"}))
        .await;
    let shard = shard_of(&key, SHARDS);

    let a = leases.acquire(shard, SHARDS, "a", None).await.unwrap();
    let a = a.expect("a free shard is taken");
    assert_eq!(a.token, 1);
    let late = leases.acquire(shard, SHARDS, "b", None).await.unwrap();
    assert_eq!(late, None, "only one of two racing replicas wins");
    assert!(leases.renew(&a).await.unwrap());
    let view = leases.read().await.unwrap();
    let seen = view.shards.iter().find(|l| l.shard == shard).cloned();
    let seen = seen.expect("the lease item");
    assert_eq!(
        (seen.holder.as_deref(), seen.token, seen.shards),
        (Some("a"), 1, SHARDS)
    );

    let written = store
        .write_status_fenced(&key, 0, &status("by a"), &a)
        .await;
    assert_eq!(written.unwrap(), StatusWrite::Written { version: 1 });
    let stale_version = store
        .write_status_fenced(&key, 0, &status("stale"), &a)
        .await;
    assert_eq!(stale_version.unwrap(), StatusWrite::Conflict);

    // b takes over the lease as a read it: a's fence is worthless from now on.
    let b = leases
        .acquire(shard, SHARDS, "b", Some(&seen))
        .await
        .unwrap();
    let b = b.expect("taken over");
    assert_eq!(b.token, 2);
    assert!(!leases.renew(&a).await.unwrap());
    assert!(!leases.release(&a).await.unwrap());
    let fenced = store
        .write_status_fenced(&key, 1, &status("late a"), &a)
        .await;
    assert_eq!(fenced.unwrap(), StatusWrite::Fenced);
    let record = store.get(&key).await.unwrap().expect("record");
    assert_eq!(record.status.map(|s| s.message), Some("by a".into()));
    let by_b = store
        .write_status_fenced(&key, 1, &status("by b"), &b)
        .await;
    assert_eq!(by_b.unwrap(), StatusWrite::Written { version: 2 });

    let gone = ServiceKey::new("prod", "gone");
    let fence = leases
        .acquire(shard_of(&gone, SHARDS), SHARDS, "b", None)
        .await
        .unwrap()
        .or_else(|| (shard_of(&gone, SHARDS) == shard).then(|| b.clone()));
    let fence: Fence = fence.expect("b holds gone's shard");
    let missing = store
        .write_status_fenced(&gone, 0, &status("x"), &fence)
        .await;
    assert_eq!(missing.unwrap(), StatusWrite::Gone);

    // Released: free for anyone, with a token that keeps growing.
    assert!(leases.release(&b).await.unwrap());
    let view = leases.read().await.unwrap();
    let freed = view.shards.iter().find(|l| l.shard == shard).cloned();
    let freed = freed.expect("the lease item");
    assert_eq!(freed.holder, None);
    let c = leases
        .acquire(shard, SHARDS, "c", Some(&freed))
        .await
        .unwrap();
    assert_eq!(c.map(|f| f.token), Some(3));

    leases.heartbeat("a").await.unwrap();
    leases.heartbeat("a").await.unwrap();
    let members = leases.read().await.unwrap().members;
    assert_eq!(members.len(), 1);
    assert_eq!((members[0].replica.as_str(), members[0].beat), ("a", 2));
    leases.leave("a").await.unwrap();
    assert!(leases.read().await.unwrap().members.is_empty());
}

fn change(service: &str) -> Change {
    Change {
        key: ServiceKey::new("prod", service),
        at: Some(cutover::time::Timestamp(1_700_000_000_123)),
    }
}

#[tokio::test]
async fn feed_leases_are_conditional_and_relay_items_keep_each_readers_recent_changes() {
    let f = fixture().await;
    let leases = f.leases();
    let a = leases.acquire_feed(0, "a", None).await.unwrap();
    let a = a.expect("a free feed slot is taken");
    assert_eq!(a.token, 1);
    let late = leases.acquire_feed(0, "b", None).await.unwrap();
    assert_eq!(late, None, "only one of two racing replicas wins");
    assert!(leases.mark_feed(&a, true).await.unwrap());
    assert!(leases.renew_feed(&a).await.unwrap());
    let view = leases.read().await.unwrap();
    assert_eq!(view.feeds.len(), 1);
    let seen = view.feeds[0].clone();
    assert_eq!(
        (
            seen.holder.as_deref(),
            seen.token,
            seen.beat,
            seen.opened,
            seen.reading
        ),
        (Some("a"), 1, 2, 1, true)
    );

    // Each reader appends to its own log in the shard's relay item.
    leases
        .publish(0, 5, &[change("a"), change("b")])
        .await
        .unwrap();
    leases.publish(1, 5, &[change("x")]).await.unwrap();
    // The slot's previous holder wrote in between: the next write finds
    // the log is not what it last wrote, reads it again, and loses nothing.
    f.leases().publish(0, 5, &[change("c")]).await.unwrap();
    leases.publish(0, 5, &[change("d")]).await.unwrap();
    let burst: Vec<Change> = (0..100).map(|i| change(&format!("s{i}"))).collect();
    leases.publish(0, 6, &burst).await.unwrap();

    // 152 keys: more than one BatchGetItem takes.
    let shards: Vec<u32> = (0..150).collect();
    let read = leases.poll(&shards).await.unwrap();
    let shard_of_items: Vec<u32> = read.items.iter().map(|i| i.shard).collect();
    assert_eq!(
        shard_of_items,
        [5, 6],
        "shards without changes have no item"
    );
    let five = &read.items[0].logs;
    let services = |slot: u32| -> Vec<String> {
        five[&slot]
            .recent
            .iter()
            .map(|r| r.key.service.clone())
            .collect()
    };
    assert_eq!(five[&0].seq, 4);
    assert_eq!(services(0), ["a", "b", "c", "d"]);
    assert_eq!(five[&0].recent[0].at, change("a").at);
    assert_eq!((five[&1].seq, services(1)), (1, vec!["x".to_string()]));
    let six = &read.items[1].logs[&0];
    assert_eq!((six.seq, six.recent.len()), (100, RELAY_KEEP));
    assert_eq!(six.recent[0].seq, 100 - RELAY_KEEP as u64 + 1);
    assert_eq!(read.feeds, vec![seen.clone()]);

    // Taken over as seen: the old holder can neither renew nor mark, and
    // the new one is not reading until its feed takes a position.
    let b = leases.acquire_feed(0, "b", Some(&seen)).await.unwrap();
    let b = b.expect("taken over");
    assert_eq!(b.token, 2);
    assert!(!leases.renew_feed(&a).await.unwrap());
    assert!(!leases.mark_feed(&a, true).await.unwrap());
    let now = leases.poll(&[]).await.unwrap().feeds;
    assert_eq!(
        (now[0].holder.as_deref(), now[0].reading, now[0].opened),
        (Some("b"), false, 1)
    );
    assert!(leases.release_feed(&b).await.unwrap());
    let view = leases.read().await.unwrap();
    assert_eq!(view.feeds[0].holder, None);
    assert!(!view.feeds[0].reading);
    assert!(
        view.shards.is_empty() && view.members.is_empty(),
        "relay items are neither leases nor heartbeats: {view:?}"
    );
}

/// ECS and the load balancer on a real-time clock, quick enough for a test.
fn cloud(n: usize) -> (SimCloud, Arc<dyn Clock>, Vec<ServiceArns>) {
    let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(DEFAULT_EPOCH, 1.0));
    let sim = SimCloud::builder(5)
        .clock(Arc::clone(&clock))
        .faults(Faults::none())
        .task_start(Duration::from_millis(50), Duration::from_millis(150))
        .health_check(HealthCheck {
            interval: Duration::from_millis(200),
            healthy_threshold: 1,
            unhealthy_threshold: 2,
        })
        .visibility_delay(Duration::ZERO, Duration::from_millis(100))
        .deregistration_delay(Duration::from_millis(200))
        .build();
    let services = (0..n)
        .map(|i| {
            let key = ServiceKey::new("ha", format!("svc{i}"));
            sim.add_service(ServiceSetup::new(key)).expect("service")
        })
        .collect();
    (sim, clock, services)
}

fn start(f: &Fixture, sim: &SimCloud, clock: &Arc<dyn Clock>, name: &str, n: usize) -> Replica {
    let ports = Pausable {
        gate: Arc::new(Gate::default()),
        store: f.store(),
        ecs: sim.clone(),
        lb: sim.clone(),
        leases: f.leases(),
    };
    let config = ControllerConfig {
        poll_interval: Duration::from_millis(300),
        resync_interval: Duration::from_secs(5),
        concurrency: n,
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_secs(2),
        ..ControllerConfig::default()
    };
    Replica::start(
        name,
        ports,
        Arc::clone(clock),
        lease(name, SHARDS, TTL),
        config,
    )
}

async fn write_records(f: &Fixture, services: &[ServiceArns]) {
    for s in services {
        let mut body = s.record(
            &format!("{}:2", s.key.service),
            json!({"type": "canary", "percent": 20, "interval": "2s"}),
        );
        body["bake"] = json!("1s");
        f.put(&body).await;
    }
}

async fn wait_for(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn all_steady(store: &DynamoStore, n: usize) -> bool {
    let Ok(records) = store.list().await else {
        return false;
    };
    records.len() == n
        && records.iter().all(|r| {
            r.status.as_ref().is_some_and(|s| {
                s.phase() == Phase::Steady && s.rollout.is_none() && s.history.len() > 2
            })
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_table_and_a_killed_ones_services_move_within_the_lease_time() {
    let f = fixture().await;
    let (sim, clock, services) = cloud(6);
    let a = start(&f, &sim, &clock, "a", 2);
    let b = start(&f, &sim, &clock, "b", 2);
    let c = start(&f, &sim, &clock, "c", 2);
    wait_for("three replicas share the shards", TTL * 5, async || {
        spread(&[&a, &b, &c], SHARDS).is_ok()
    })
    .await;
    wait_for("two of them read the stream", TTL * 5, async || {
        [&a, &b, &c]
            .iter()
            .filter(|r| r.handle.reads_stream())
            .count()
            == 2
    })
    .await;
    wait_for("the third follows the relay", TTL * 5, async || {
        [&a, &b, &c]
            .iter()
            .any(|r| !r.handle.reads_stream() && r.handle.relay_polls() > 0)
    })
    .await;

    write_records(&f, &services).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let killed = Instant::now();
    c.kill();
    wait_for("a and b take over c's shards", TTL * 3, async || {
        spread(&[&a, &b], SHARDS).is_ok()
    })
    .await;
    let moved_after = killed.elapsed();
    assert!(
        moved_after >= TTL / 2,
        "not before c's leases could expire: {moved_after:?}"
    );

    let store = f.store();
    wait_for(
        "every rollout ends Steady",
        Duration::from_secs(60),
        async || all_steady(&store, services.len()).await,
    )
    .await;
    assert_eq!(sim.call_count("ecs:CreateTaskSet"), services.len() as u64);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_paused_past_its_lease_is_refused_by_dynamodb_and_acts_no_more() {
    let f = fixture().await;
    let (sim, clock, services) = cloud(6);
    let a = start(&f, &sim, &clock, "a", 1);
    let b = start(&f, &sim, &clock, "b", 2);
    wait_for("two replicas share the shards", TTL * 5, async || {
        spread(&[&a, &b], SHARDS).is_ok()
    })
    .await;

    a.gate.close_at_next_status_write();
    write_records(&f, &services).await;
    wait_for(
        "a stalls before a status write",
        Duration::from_secs(20),
        async || a.gate.is_closed(),
    )
    .await;
    let acted = a.gate.mutations.load(Ordering::SeqCst);
    wait_for("b takes every shard", TTL * 4, async || {
        b.shards().len() == SHARDS as usize
    })
    .await;

    a.gate.open();
    // The late write reaches DynamoDB when the stalled pass resumes; on a
    // loaded machine that can take longer than any fixed pause.
    wait_for(
        "a's late write reaches DynamoDB",
        Duration::from_secs(20),
        async || a.gate.fenced.load(Ordering::SeqCst) > 0,
    )
    .await;
    assert_eq!(
        a.gate.fenced.load(Ordering::SeqCst),
        1,
        "DynamoDB refused the late write"
    );
    assert_eq!(
        a.gate.mutations.load(Ordering::SeqCst),
        acted,
        "no AWS action after resuming"
    );

    let store = f.store();
    wait_for(
        "every rollout ends Steady",
        Duration::from_secs(60),
        async || all_steady(&store, services.len()).await,
    )
    .await;
    assert_eq!(sim.call_count("ecs:CreateTaskSet"), services.len() as u64);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    a.stop().await;
    b.stop().await;
}
