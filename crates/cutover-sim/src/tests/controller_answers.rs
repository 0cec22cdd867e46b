//! Every record gets an answer in its status, whatever is wrong with it: a
//! key that is not `<cluster>/<service>`, a cluster that does not exist, or
//! a record so large that its status barely fits beside it. The real loop
//! over the simulated cloud, on a paused clock.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cloud::{Clock, DesiredStore, Ecs, LoadBalancer, ScaledClock};
use crate::controller::{Controller, ControllerConfig};
use crate::rollout::status::Transition;
use crate::rollout::{Phase, ServiceKey, Status};
use crate::{ITEM_LIMIT, ServiceArns, ServiceSetup, SimCloud};

use super::{EPOCH, secs};

const DESCRIBE: &str = "ecs:DescribeServices";
const WRITE: &str = "dynamodb:UpdateItem";

fn config() -> ControllerConfig {
    ControllerConfig {
        poll_interval: secs(10),
        resync_interval: secs(60),
        concurrency: 2,
        backoff_base: secs(1),
        backoff_max: secs(60),
        seed: 3,
    }
}

struct World {
    sim: SimCloud,
    web: ServiceArns,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl World {
    fn start(config: ControllerConfig) -> World {
        let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(EPOCH, 1.0));
        let sim = SimCloud::builder(11).clock(Arc::clone(&clock)).build();
        let web = sim
            .add_service(ServiceSetup::new(ServiceKey::new("prod", "web")))
            .expect("a new service can be added");
        let controller = Controller::new(
            Arc::new(sim.clone()) as Arc<dyn DesiredStore>,
            Arc::new(sim.clone()) as Arc<dyn Ecs>,
            Arc::new(sim.clone()) as Arc<dyn LoadBalancer>,
            clock,
            config,
        );
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(controller.run(shutdown.clone()));
        World {
            sim,
            web,
            shutdown,
            task,
        }
    }

    fn record(&self) -> Value {
        self.web.record("web:1", json!("all_at_once"))
    }

    async fn run_for(&self, d: Duration) {
        let end = self.sim.now() + d;
        while self.sim.now() < end {
            self.sim.run_for(secs(1)).await;
        }
    }

    async fn status(&self, key: &ServiceKey) -> Option<Status> {
        self.sim
            .get(key)
            .await
            .ok()
            .flatten()
            .and_then(|r| r.status)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

const BAD_KEYS: [&str; 4] = ["prod", "a/b/c", "/web", "prod/we\u{7}b"];

#[tokio::test(start_paused = true)]
async fn a_record_with_a_bad_key_gets_an_invalid_status_once_and_blocks_no_one() {
    let w = World::start(config());
    for given in BAD_KEYS {
        w.sim
            .put_unkeyed(given, json!({"task_definition": "web:2"}));
    }
    // The first resync and three more.
    w.run_for(secs(200)).await;

    let listing = w.sim.scan().await.unwrap();
    assert_eq!(listing.unkeyed.len(), BAD_KEYS.len(), "no item was added");
    assert!(listing.records.is_empty(), "no status write made a record");
    for item in &listing.unkeyed {
        let status = item.status.as_ref().expect("every bad key has a status");
        assert_eq!(status.phase(), Phase::Invalid, "{:?}", item.given);
        assert!(status.message.contains("`service`"), "{}", status.message);
        assert!(
            status.message.contains("<cluster>/<service>"),
            "{}",
            status.message
        );
    }
    // Each was written to once, not at every resync.
    assert_eq!(w.sim.call_count(WRITE), BAD_KEYS.len() as u64);

    // A record written beside them is reconciled as ever.
    w.sim.put_spec(&w.web.key, w.record());
    w.run_for(secs(60)).await;
    assert_eq!(
        w.status(&w.web.key).await.map(|s| s.phase()),
        Some(Phase::Steady)
    );
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_status_write_for_a_bad_key_never_makes_an_item() {
    let w = World::start(config());
    let gone = w
        .sim
        .write_unkeyed_status("prod", 0, &Status::default())
        .await
        .unwrap();
    assert_eq!(gone, crate::cloud::StatusWrite::Gone);
    assert!(w.sim.scan().await.unwrap().unkeyed.is_empty());
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_cluster_that_does_not_exist_is_invalid_and_not_described_every_poll() {
    let w = World::start(config());
    let key = ServiceKey::new("nocluster", "web");
    let mut body = w.record();
    body["service"] = json!(key.to_string());
    w.sim.put_spec(&key, body);
    w.run_for(secs(600)).await;

    let status = w.status(&key).await.expect("a status is written");
    assert_eq!(status.phase(), Phase::Invalid);
    assert!(
        status
            .message
            .starts_with("ECS cluster nocluster not found"),
        "{}",
        status.message
    );
    // 60 polls in ten minutes; it is looked at on the ten resyncs and once
    // when it was written.
    let described = w.sim.call_count(DESCRIBE);
    assert!(described <= 12, "{described} DescribeServices calls");
    w.stop().await;
}

/// A status of `kb` kilobytes of history, as a long-lived service gathers.
fn long_history(kb: usize) -> Value {
    let mut status = Status::default();
    for i in 0..20 {
        status.record(Transition {
            at: EPOCH,
            from: Phase::Steady,
            to: Phase::Invalid,
            reason: format!("{i}: {}", "r".repeat(kb * 1024 / 20)),
            revision: None,
        });
    }
    serde_json::to_value(&status).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_status_that_does_not_fit_beside_a_large_record_is_stored_trimmed() {
    let w = World::start(config());
    let mut body = w.record();
    // Messages quote a short prefix of a value, so the status grows with
    // its history, not with the record. Every stored status is bounded (20
    // transitions of at most 1 KB of reason each), yet 390 KB of record and
    // that history still pass the item's 400 KB.
    body["strategy"] = json!("s".repeat(390_000));
    body["status"] = long_history(95);
    w.sim.put_item(&w.web.key, body);
    w.run_for(secs(600)).await;

    let status = w.status(&w.web.key).await.expect("the record has a status");
    assert_eq!(status.phase(), Phase::Invalid);
    // The refused write was stored trimmed (the note says so); once the
    // long history is gone a later pass's status fits whole, and may
    // replace the note.
    assert!(!status.message.is_empty());
    let kept: usize = status.history.iter().map(|t| t.reason.len()).sum();
    assert!(kept < 4 * 1024, "{kept} bytes of history kept");
    assert!(status.history.len() <= 6, "{}", status.history.len());
    // Refused once, stored trimmed once; later passes find it stored.
    let writes = w.sim.call_count(WRITE);
    assert!(writes <= 2 + 2 * 10, "{writes} status writes");
    w.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_record_that_leaves_no_room_for_a_status_backs_off() {
    let w = World::start(ControllerConfig {
        resync_interval: secs(3600),
        ..config()
    });
    let mut body = w.record();
    // A record that fills its item: room for nothing, not even a trimmed
    // status (a hundred bytes are left; the smallest status takes more).
    body["description"] = json!("");
    let size = crate::item_size(
        body.as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v)),
    );
    body["description"] = json!("d".repeat(ITEM_LIMIT - size - 100));
    w.sim.put_spec(&w.web.key, body);
    w.run_for(secs(600)).await;

    assert_eq!(w.status(&w.web.key).await, None);
    // A pass every 10 s poll would try 120 writes in ten minutes; with
    // backoff (1 s doubling to 60 s, jittered) it is at most 25 passes.
    let writes = w.sim.call_count(WRITE);
    assert!(writes >= 2, "{writes} status writes");
    assert!(writes <= 2 * 25, "{writes} status writes");
    w.stop().await;
}
