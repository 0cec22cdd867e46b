//! Concurrency limits over the simulated cloud: the real controller loop
//! with `per_cluster = 2`, five services of one cluster given new versions
//! a second apart, sampled every second on a paused tokio clock.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use cutover::cloud::{Clock, DesiredStore, ScaledClock};
use cutover::controller::{Controller, ControllerConfig, Limits};
use cutover::metrics::Metrics;
use cutover::rollout::{Phase, ServiceKey};
use cutover::sim::{DEFAULT_EPOCH, Faults, ServiceSetup, SimCloud};

fn gauge(text: &str, name: &str) -> i64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the metrics"))
}

#[tokio::test(start_paused = true)]
async fn at_most_two_per_cluster_in_flight_and_the_rest_start_in_the_order_written() {
    let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(DEFAULT_EPOCH, 1.0));
    let sim = SimCloud::builder(23)
        .clock(Arc::clone(&clock))
        .faults(Faults::none())
        .build();
    let keys: Vec<ServiceKey> = (1..=5)
        .map(|n| ServiceKey::new("prod", format!("svc-{n}")))
        .collect();
    let mut setups = Vec::new();
    for key in &keys {
        let s = sim.add_service(ServiceSetup::new(key.clone())).unwrap();
        let family = &key.service;
        sim.put_spec(key, s.record(&format!("{family}:1"), json!("all_at_once")));
        setups.push(s);
    }
    let metrics = Arc::new(Metrics::new().unwrap());
    let controller = Controller::new(
        Arc::new(sim.clone()),
        Arc::new(sim.clone()),
        Arc::new(sim.clone()),
        Arc::clone(&clock),
        ControllerConfig {
            poll_interval: Duration::from_secs(5),
            resync_interval: Duration::from_secs(60),
            seed: 23,
            ..ControllerConfig::default()
        },
    )
    .with_metrics(Arc::clone(&metrics))
    .with_limits(Limits {
        per_cluster: Some(2),
        ..Limits::default()
    });
    let handle = controller.handle();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(controller.run(shutdown.clone()));
    assert!(handle.synced().await);

    // Everything steady on version 1 first.
    for _ in 0..120 {
        let mut steady = 0;
        for key in &keys {
            let r = DesiredStore::get(&sim, key).await.unwrap().unwrap();
            steady += usize::from(r.status.is_some_and(|s| s.phase() == Phase::Steady));
        }
        if steady == keys.len() {
            break;
        }
        clock.sleep(Duration::from_secs(1)).await;
    }

    // New versions, a second apart, in an order that is not the keys'.
    let written = [3, 1, 4, 0, 2];
    for &i in &written {
        let family = &keys[i].service;
        let body = setups[i].record(
            &format!("{family}:2"),
            json!({"type": "linear", "percent": 50, "interval": "30s"}),
        );
        sim.put_spec(&keys[i], body);
        clock.sleep(Duration::from_secs(1)).await;
    }

    // Each rollout's start, as it stored it.
    let mut started: Vec<usize> = Vec::new();
    let mut starts: Vec<(cutover::time::Timestamp, usize)> = Vec::new();
    let mut queued_seen: BTreeSet<usize> = BTreeSet::new();
    let mut most_in_flight = 0;
    let mut most_queued = 0;
    let mut done = false;
    for _ in 0..3_600 {
        let mut in_flight = 0;
        let mut steady_on_2 = 0;
        for (i, key) in keys.iter().enumerate() {
            let r = DesiredStore::get(&sim, key).await.unwrap().unwrap();
            let Some(status) = r.status else { continue };
            if let Some(r) = &status.rollout {
                in_flight += 1;
                if !started.contains(&i) {
                    started.push(i);
                    starts.push((r.started_at, i));
                }
            }
            if status.message.starts_with("queued: ") {
                assert!(
                    status.message.contains("limit: 2 per cluster prod"),
                    "{}",
                    status.message
                );
                queued_seen.insert(i);
            }
            // Steady again after its rollout: on version 2.
            if started.contains(&i) && status.phase() == Phase::Steady && status.rollout.is_none() {
                steady_on_2 += 1;
            }
        }
        assert!(in_flight <= 2, "{in_flight} rollouts in flight in prod");
        most_in_flight = most_in_flight.max(in_flight);
        let text = metrics.render().unwrap();
        assert!(gauge(&text, "cutover_rollouts_in_flight") <= 2, "{text}");
        most_queued = most_queued.max(gauge(&text, "cutover_rollouts_queued"));
        if steady_on_2 == keys.len() {
            done = true;
            break;
        }
        clock.sleep(Duration::from_secs(1)).await;
    }
    let phases: Vec<_> = {
        let mut v = Vec::new();
        for key in &keys {
            let r = DesiredStore::get(&sim, key).await.unwrap().unwrap();
            v.push(r.status.map(|s| (s.phase(), s.message)));
        }
        v
    };
    assert!(done, "not all steady on version 2: {phases:?}");
    assert_eq!(most_in_flight, 2);
    starts.sort();
    let order: Vec<usize> = starts.iter().map(|(_, i)| *i).collect();
    assert_eq!(order, written.to_vec(), "started in the order written");
    // The three written last waited, and said so.
    assert_eq!(
        queued_seen,
        written[2..].iter().copied().collect::<BTreeSet<_>>()
    );
    assert!(most_queued >= 1, "the queue showed in the metrics");
    let text = metrics.render().unwrap();
    assert_eq!(gauge(&text, "cutover_rollouts_in_flight"), 0, "{text}");
    assert_eq!(gauge(&text, "cutover_rollouts_queued"), 0, "{text}");
    shutdown.cancel();
    run.await.unwrap();
}
