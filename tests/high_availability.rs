//! Several replicas of the controller on one simulated cloud, on a paused
//! clock: the shards spread over the replicas, a killed replica's services
//! are taken over within the lease time, no task set is created twice, and a
//! replica that stalled past its lease can neither write nor act.

#[path = "ha/pausable.rs"]
mod pausable;
#[path = "ha/replicas.rs"]
mod replicas;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;

use cutover::cloud::{Clock, ScaledClock};
use cutover::controller::ControllerConfig;
use cutover::rollout::{Phase, ServiceKey};
use cutover::sim::{DEFAULT_EPOCH, Faults, ServiceSetup, SimCloud};

use pausable::{Gate, Pausable};
use replicas::{Replica, lease, spread};

const SHARDS: u32 = 16;
const TTL: Duration = Duration::from_secs(20);
const HEARTBEAT: Duration = Duration::from_secs(5);

type SimPorts = Pausable<SimCloud, SimCloud, SimCloud, SimCloud>;

fn ports(sim: &SimCloud) -> SimPorts {
    Pausable {
        gate: Arc::new(Gate::default()),
        store: sim.clone(),
        ecs: sim.clone(),
        lb: sim.clone(),
        leases: sim.clone(),
    }
}

fn config(concurrency: usize) -> ControllerConfig {
    ControllerConfig {
        poll_interval: Duration::from_secs(5),
        resync_interval: Duration::from_secs(60),
        concurrency,
        backoff_base: Duration::from_millis(500),
        backoff_max: Duration::from_secs(30),
        ..ControllerConfig::default()
    }
}

fn start(sim: &SimCloud, clock: &Arc<dyn Clock>, name: &str, concurrency: usize) -> Replica {
    Replica::start(
        name,
        ports(sim),
        Arc::clone(clock),
        lease(name, SHARDS, TTL),
        config(concurrency),
    )
}

/// A cloud with `n` services, each a canary slow enough to be in flight
/// when a replica dies.
fn world(n: usize) -> (SimCloud, Arc<dyn Clock>, Vec<cutover::sim::ServiceArns>) {
    let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(DEFAULT_EPOCH, 1.0));
    let sim = SimCloud::builder(11)
        .clock(Arc::clone(&clock))
        .faults(Faults::none())
        .build();
    let services = (0..n)
        .map(|i| {
            let key = ServiceKey::new("ha", format!("svc{i}"));
            sim.add_service(ServiceSetup {
                desired_count: 2,
                ..ServiceSetup::new(key)
            })
            .expect("service setup")
        })
        .collect();
    (sim, clock, services)
}

fn write_records(sim: &SimCloud, services: &[cutover::sim::ServiceArns]) {
    for s in services {
        let mut body = s.record(
            &format!("{}:2", s.key.service),
            json!({"type": "canary", "percent": 20, "interval": "2m"}),
        );
        body["bake"] = json!("2m");
        sim.put_spec(&s.key, body);
    }
}

fn phase(sim: &SimCloud, key: &ServiceKey) -> Option<Phase> {
    sim.records()
        .into_iter()
        .find(|r| &r.key == key)
        .and_then(|r| r.status)
        .map(|s| s.phase())
}

/// Runs the world until every service is Steady on its new version.
async fn until_steady(sim: &SimCloud, services: &[cutover::sim::ServiceArns], limit: Duration) {
    let start = sim.now();
    loop {
        let done = sim.records().iter().all(|r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.phase() == Phase::Steady && s.rollout.is_none())
                && r.status.as_ref().is_some_and(|s| s.history.len() > 2)
        });
        if done && sim.records().len() == services.len() {
            return;
        }
        assert!(
            sim.now().since(start) < limit,
            "not every service is Steady after {limit:?}: {:#?}",
            sim.records()
                .iter()
                .filter_map(|r| r.status.as_ref().map(|s| (&r.key, s)))
                .filter(|(_, s)| s.phase() != Phase::Steady || s.rollout.is_some())
                .map(|(key, s)| (
                    key.to_string(),
                    s.phase(),
                    s.message.clone(),
                    s.failed.as_ref().map(|f| f.reason.clone()),
                    s.history
                        .iter()
                        .map(|t| format!("{} {:?}->{:?} {}", t.at, t.from, t.to, t.reason))
                        .collect::<Vec<_>>()
                ))
                .collect::<Vec<_>>()
        );
        sim.run_for(Duration::from_secs(1)).await;
    }
}

fn holders(sim: &SimCloud) -> Vec<(u32, Option<String>)> {
    sim.leases()
        .shards
        .into_iter()
        .map(|l| (l.shard, l.holder))
        .collect()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn three_replicas_share_the_shards_and_survive_one_dying() {
    let (sim, clock, services) = world(12);
    let a = start(&sim, &clock, "a", 4);
    let b = start(&sim, &clock, "b", 4);
    let c = start(&sim, &clock, "c", 4);
    sim.run_for(Duration::from_secs(30)).await;
    spread(&[&a, &b, &c], SHARDS).unwrap_or_else(|e| panic!("{e}; leases {:?}", holders(&sim)));

    write_records(&sim, &services);
    sim.run_for(Duration::from_secs(40)).await;
    let in_flight: Vec<_> = services
        .iter()
        .filter(|s| phase(&sim, &s.key).is_some_and(|p| p != Phase::Steady))
        .collect();
    assert!(!in_flight.is_empty(), "rollouts are under way when c dies");

    let orphaned = c.shards();
    let killed_at = sim.now();
    c.kill();
    // Within the lease time (and the heartbeat that notices it), the two
    // others hold every shard again, a fair share each.
    loop {
        if spread(&[&a, &b], SHARDS).is_ok() {
            break;
        }
        let waited = sim.now().since(killed_at);
        assert!(
            waited <= TTL + 2 * HEARTBEAT,
            "c's shards {orphaned:?} not taken over after {waited:?}: a {:?}, b {:?}",
            a.shards(),
            b.shards()
        );
        sim.run_for(Duration::from_secs(1)).await;
    }

    until_steady(&sim, &services, Duration::from_secs(3600)).await;
    assert_eq!(
        sim.call_count("ecs:CreateTaskSet"),
        services.len() as u64,
        "each candidate task set was created exactly once"
    );
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    assert_eq!(sim.fenced_writes(), 0, "nobody wrote without its lease");
    a.stop().await;
    b.stop().await;
    // A graceful stop hands every lease back and leaves the table.
    let left = sim.leases();
    assert!(left.shards.iter().all(|l| l.holder.is_none()), "{left:?}");
    assert!(left.members.iter().all(|m| m.replica == "c"), "{left:?}");
}

/// The services a replica's `/metrics` shows a phase for.
fn services_shown(r: &Replica) -> BTreeSet<String> {
    let text = r.metrics.render().expect("metrics render");
    text.lines()
        .filter(|l| l.starts_with("cutover_service_phase{"))
        .filter_map(|l| l.split("service=\"").nth(1)?.split('"').next())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_replica_that_hands_shards_on_stops_exporting_their_services() {
    let (sim, clock, services) = world(12);
    let all: BTreeSet<String> = services.iter().map(|s| s.key.to_string()).collect();
    let a = start(&sim, &clock, "a", 4);
    sim.run_for(Duration::from_secs(30)).await;
    write_records(&sim, &services);
    sim.run_for(Duration::from_secs(20)).await;
    assert_eq!(services_shown(&a), all, "a drives every service alone");

    let b = start(&sim, &clock, "b", 4);
    let joined = sim.now();
    while spread(&[&a, &b], SHARDS).is_err() {
        assert!(
            sim.now().since(joined) <= TTL + 2 * HEARTBEAT,
            "the shards did not spread: a {:?}, b {:?}",
            a.shards(),
            b.shards()
        );
        sim.run_for(Duration::from_secs(1)).await;
    }
    // b reconciles what it took; a scrape of a shows only what it kept.
    sim.run_for(Duration::from_secs(10)).await;
    let (on_a, on_b) = (services_shown(&a), services_shown(&b));
    assert!(!on_b.is_empty(), "b shows the services it took");
    assert!(
        on_a.is_disjoint(&on_b),
        "a still shows services b drives: {:?}",
        on_a.intersection(&on_b).collect::<Vec<_>>()
    );
    assert_eq!(
        on_a.union(&on_b).cloned().collect::<BTreeSet<_>>(),
        all,
        "together they show every service once"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_replica_stalled_past_its_lease_can_neither_write_nor_act() {
    let (sim, clock, services) = world(6);
    // One worker, so that when it stalls at a status write nothing else of
    // this replica is in flight.
    let a = start(&sim, &clock, "a", 1);
    let b = start(&sim, &clock, "b", 4);
    sim.run_for(Duration::from_secs(30)).await;
    spread(&[&a, &b], SHARDS).unwrap_or_else(|e| panic!("{e}"));
    let a_services: BTreeSet<ServiceKey> = services
        .iter()
        .map(|s| s.key.clone())
        .filter(|k| a.handle.shards().unwrap_or_default().contains(&shard(k)))
        .collect();
    assert!(!a_services.is_empty(), "a drives some of the services");

    // a creates a candidate task set, then stalls before storing the
    // status that says so (its first status write, which stores the
    // rollout, comes before the create).
    a.gate.close_at_next_status_write();
    write_records(&sim, &services);
    while !a.gate.is_closed() {
        sim.run_for(Duration::from_millis(100)).await;
    }
    let stalled_at = sim.now();
    let acted_before = a.gate.mutations.load(Ordering::SeqCst);
    assert!(acted_before > 0, "a acted before it stalled");

    // b notices that a's leases stand still and takes every shard.
    while b.shards().len() < SHARDS as usize {
        let waited = sim.now().since(stalled_at);
        assert!(
            waited <= TTL + 2 * HEARTBEAT,
            "b took only {:?}",
            b.shards()
        );
        sim.run_for(Duration::from_secs(1)).await;
    }

    // a wakes up: its status write is refused, and it sends nothing to ECS
    // or the load balancer.
    a.gate.open();
    sim.run_for(Duration::from_millis(500)).await;
    assert_eq!(
        a.gate.fenced.load(Ordering::SeqCst),
        1,
        "the late write was refused"
    );
    assert_eq!(sim.fenced_writes(), 1);
    assert_eq!(
        a.gate.mutations.load(Ordering::SeqCst),
        acted_before,
        "no AWS action after the lease was lost"
    );
    assert!(
        a.shards().is_empty(),
        "a knows it holds nothing: {:?}",
        a.shards()
    );

    // b finishes every rollout, adopting the task set a created; later the
    // shards are shared again.
    until_steady(&sim, &services, Duration::from_secs(3600)).await;
    assert_eq!(sim.call_count("ecs:CreateTaskSet"), services.len() as u64);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    sim.run_for(TTL * 2).await;
    spread(&[&a, &b], SHARDS).unwrap_or_else(|e| panic!("{e}"));
    a.stop().await;
    b.stop().await;
}

fn shard(key: &ServiceKey) -> u32 {
    cutover::cloud::lease::shard_of(key, SHARDS)
}

/// A fleet rollout on a store that models DynamoDB's transaction
/// conflicts: every status write checks its shard's lease item, which the
/// lease renewals write, in a transaction. With about 60 services per shard
/// writing at once, such writes would cancel each other (and starve some
/// services past their progress deadline) unless the holder takes turns at
/// each lease item. No lease may change hands, no status write may be lost
/// to a conflict, and every service ends Steady.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_fleet_rollout_under_transaction_conflicts_keeps_every_lease_and_every_write() {
    let (sim, clock, services) = world(1000);
    // DynamoDB's usual latency: writes overlap, so conflicts happen.
    sim.set_faults(Faults::default());
    let a = start(&sim, &clock, "a", 8);
    let b = start(&sim, &clock, "b", 8);
    sim.run_for(Duration::from_secs(30)).await;
    spread(&[&a, &b], SHARDS).unwrap_or_else(|e| panic!("{e}"));
    let tokens = |sim: &SimCloud| -> Vec<(u32, u64)> {
        sim.leases()
            .shards
            .iter()
            .map(|l| (l.shard, l.token))
            .collect()
    };
    let balanced = tokens(&sim);

    write_records(&sim, &services);
    until_steady(&sim, &services, Duration::from_secs(3 * 3600)).await;
    eprintln!(
        "transaction conflicts: {}, lost: {}",
        sim.transaction_conflicts(),
        sim.status_writes_lost_to_conflicts()
    );
    assert_eq!(tokens(&sim), balanced, "a lease changed hands");
    assert_eq!(sim.status_writes_lost_to_conflicts(), 0);
    assert_eq!(sim.fenced_writes(), 0);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    a.stop().await;
    b.stop().await;
}

/// Like `config`, with a resync too rare to cover a change within these
/// tests: what reaches a replica comes through the stream or the relay.
fn rare_resync() -> ControllerConfig {
    ControllerConfig {
        resync_interval: Duration::from_secs(3600),
        ..config(4)
    }
}

fn start_replicas(sim: &SimCloud, clock: &Arc<dyn Clock>, n: usize) -> Vec<Replica> {
    (0..n)
        .map(|i| {
            let name = format!("r{i}");
            Replica::start(
                &name,
                ports(sim),
                Arc::clone(clock),
                lease(&name, SHARDS, TTL),
                rare_resync(),
            )
        })
        .collect()
}

fn readers(replicas: &[&Replica]) -> Vec<String> {
    replicas
        .iter()
        .filter(|r| r.handle.reads_stream())
        .map(|r| r.name.clone())
        .collect()
}

/// Writes a first record for `service` and waits until a replica acted on
/// it (its first status); returns how long that took.
async fn acted_on(
    sim: &SimCloud,
    service: &cutover::sim::ServiceArns,
    limit: Duration,
) -> Duration {
    write_records(sim, std::slice::from_ref(service));
    let written = sim.now();
    while phase(sim, &service.key).is_none() {
        let waited = sim.now().since(written);
        assert!(
            waited <= limit,
            "{} not acted on within {limit:?}",
            service.key
        );
        sim.run_for(Duration::from_millis(100)).await;
    }
    sim.now().since(written)
}

/// A service whose shard `r` holds and that has no record yet.
fn unwritten_service_of<'a>(
    sim: &SimCloud,
    r: &Replica,
    services: &'a [cutover::sim::ServiceArns],
) -> &'a cutover::sim::ServiceArns {
    let held = r.shards();
    services
        .iter()
        .find(|s| held.contains(&shard(&s.key)) && phase(sim, &s.key).is_none())
        .unwrap_or_else(|| panic!("{} holds {held:?} and no unwritten service", r.name))
}

/// At most two replicas read the stream, however many run; the others hear
/// of changes to their shards through the relay within about a second; and
/// when a reader dies, another replica takes its feed lease and nothing
/// written meanwhile is lost.
async fn only_two_replicas_read_the_stream(n: usize) {
    let (sim, clock, services) = world(60);
    let replicas = start_replicas(&sim, &clock, n);
    let all: Vec<&Replica> = replicas.iter().collect();
    sim.run_for(Duration::from_secs(30)).await;
    spread(&all, SHARDS).unwrap_or_else(|e| panic!("{e}; leases {:?}", holders(&sim)));
    assert_eq!(readers(&all).len(), 2, "readers: {:?}", readers(&all));
    assert_eq!(sim.stream_readers(), 2);

    // A change to a service a follower holds reaches it through the relay.
    let follower = all
        .iter()
        .find(|r| !r.handle.reads_stream())
        .expect("a follower");
    let service = unwritten_service_of(&sim, follower, &services);
    let took = acted_on(&sim, service, Duration::from_secs(5)).await;
    assert!(took <= Duration::from_secs(3), "the relay took {took:?}");
    assert!(follower.handle.relay_polls() > 0);
    let text = follower.metrics.render().expect("metrics");
    assert!(text.contains("\ncutover_stream_reader 0\n"), "{text}");

    // A reader dies; writes go on while its feed lease runs out.
    let dead = all
        .iter()
        .position(|r| r.handle.reads_stream())
        .expect("a reader");
    let mut replicas = replicas;
    let killed = replicas.remove(dead);
    let killed_name = killed.name.clone();
    killed.kill();
    let killed_at = sim.now();
    let survivors: Vec<&Replica> = replicas.iter().collect();
    let mut written = Vec::new();
    for s in services
        .iter()
        .filter(|s| phase(&sim, &s.key).is_none())
        .take(20)
    {
        write_records(&sim, std::slice::from_ref(s));
        written.push(s.key.clone());
        sim.run_for(Duration::from_millis(700)).await;
    }
    // Another replica reads in its place within the lease time.
    loop {
        if readers(&survivors).len() == 2 && spread(&survivors, SHARDS).is_ok() {
            break;
        }
        let waited = sim.now().since(killed_at);
        assert!(
            waited <= TTL + 3 * HEARTBEAT,
            "{killed_name}'s feed lease not taken over after {waited:?}: readers {:?}",
            readers(&survivors)
        );
        sim.run_for(Duration::from_secs(1)).await;
    }
    let feeds = sim.feed_leases();
    assert!(
        feeds
            .iter()
            .all(|f| f.reading && f.holder.as_deref() != Some(&killed_name)),
        "{feeds:?}"
    );
    // Every write made meanwhile was acted on, long before any resync.
    sim.run_for(Duration::from_secs(10)).await;
    let unseen: Vec<&ServiceKey> = written
        .iter()
        .filter(|k| phase(&sim, k).is_none())
        .collect();
    assert!(unseen.is_empty(), "never acted on: {unseen:?}");

    // The relay goes on for the followers left.
    if let Some(follower) = survivors.iter().find(|r| !r.handle.reads_stream()) {
        let service = unwritten_service_of(&sim, follower, &services);
        let took = acted_on(&sim, service, Duration::from_secs(5)).await;
        assert!(took <= Duration::from_secs(3), "the relay took {took:?}");
    }
    assert!(
        sim.most_stream_readers() <= 2,
        "{} replicas read the stream at once",
        sim.most_stream_readers()
    );
    assert_eq!(sim.stream_readers_throttled(), 0, "no third reader tried");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    for r in replicas {
        r.stop().await;
    }
    assert_eq!(sim.stream_readers(), 0);
    assert!(sim.feed_leases().iter().all(|f| f.holder.is_none()));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn with_three_replicas_two_read_the_stream_and_relay_it() {
    only_two_replicas_read_the_stream(3).await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn with_four_replicas_two_read_the_stream_and_relay_it() {
    only_two_replicas_read_the_stream(4).await;
}

/// Both readers lose their place in the stream at once (an outage, the
/// stream's iterators expiring): a write made before they read again
/// reached nobody through the stream, so a follower that sees both readings
/// renewed lists its records, and acts on it well before the resync.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_follower_lists_its_records_when_no_reader_read_throughout() {
    let (sim, clock, services) = world(40);
    let replicas = start_replicas(&sim, &clock, 3);
    let all: Vec<&Replica> = replicas.iter().collect();
    sim.run_for(Duration::from_secs(30)).await;
    let follower = *all
        .iter()
        .find(|r| !r.handle.reads_stream())
        .expect("a follower");
    let listings = follower.handle.relay_listings();

    sim.break_change_feeds();
    // Written while neither reader holds a position in the stream.
    let service = unwritten_service_of(&sim, follower, &services);
    write_records(&sim, std::slice::from_ref(service));
    let written = sim.now();
    while phase(&sim, &service.key).is_none() {
        let waited = sim.now().since(written);
        assert!(
            waited <= Duration::from_secs(60),
            "not acted on after {waited:?}"
        );
        sim.run_for(Duration::from_millis(200)).await;
    }
    assert_eq!(readers(&all).len(), 2);
    assert_eq!(
        follower.handle.relay_listings(),
        listings,
        "every record was listed, not shard by shard"
    );
    assert!(sim.most_stream_readers() <= 2);
    for r in replicas {
        r.stop().await;
    }
}
