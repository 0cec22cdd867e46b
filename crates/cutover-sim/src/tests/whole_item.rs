//! The real controller over the simulated cloud when a writer replaces the
//! whole item (PutItem): the status goes with it, and the controller takes
//! over from what the live service shows.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::cloud::DesiredStore;
use crate::controller::{Controller, ControllerConfig, EventReceiver};
use crate::rollout::{Event, Phase, Status};

struct Running {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    events: EventReceiver,
}

fn start(sim: &SimCloud) -> Running {
    let controller = Controller::new(
        Arc::new(sim.clone()),
        Arc::new(sim.clone()),
        Arc::new(sim.clone()),
        sim.clock(),
        ControllerConfig {
            poll_interval: secs(5),
            resync_interval: secs(60),
            seed: 11,
            ..ControllerConfig::default()
        },
    );
    let events = controller.subscribe();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(controller.run(shutdown.clone()));
    Running {
        shutdown,
        task,
        events,
    }
}

async fn status(sim: &SimCloud) -> Option<Status> {
    DesiredStore::get(sim, &key())
        .await
        .ok()
        .flatten()
        .and_then(|r| r.status)
}

fn record(arns: &ServiceArns, version: &str) -> Value {
    let mut body = arns.record(
        version,
        json!({"type": "linear", "percent": 50, "interval": "1m"}),
    );
    body["bake"] = json!("30m");
    body
}

/// Rolls `web:2` out until it bakes as the primary with all the traffic.
async fn baking(sim: &SimCloud, arns: &ServiceArns) {
    sim.put_spec(&arns.key, record(arns, "web:2"));
    for _ in 0..200 {
        sim.run_for(secs(5)).await;
        let primary_is_green = match sim.service(&arns.key) {
            ServiceState::Found(s) => s
                .primary()
                .is_some_and(|p| p.target_group.as_deref() == Some(arns.green())),
            ServiceState::Missing | ServiceState::ClusterMissing => false,
        };
        let phase = status(sim).await.map(|s| s.phase());
        if primary_is_green && phase == Some(Phase::Baking) {
            return;
        }
    }
    panic!("web:2 never baked: {:?}", status(sim).await);
}

/// The blue share of production, each time it changed, until the service is
/// steady on one task set again.
async fn blue_shares_until_steady(sim: &SimCloud, arns: &ServiceArns) -> Vec<u32> {
    let mut shares = vec![];
    for _ in 0..600 {
        sim.run_for(secs(1)).await;
        let share = sim
            .visible_weights(arns.production.arn())
            .map_or(0, |w| w.percent(arns.blue()));
        if shares.last() != Some(&share) {
            shares.push(share);
        }
        let one =
            matches!(sim.service(&arns.key), ServiceState::Found(s) if s.task_sets.len() == 1);
        let steady = status(sim)
            .await
            .is_some_and(|s| s.phase() == Phase::Steady && s.rollout.is_none());
        if one && steady {
            return shares;
        }
    }
    panic!("not steady: {:?}\n{:?}", status(sim).await, sim.event_log());
}

/// Writing `web:1` back while `web:2` bakes, as a whole item or as an
/// update of the one field: traffic returns to blue in one change, and blue
/// serves as the primary again. Nothing is created, nothing shifts by steps.
async fn write_back_while_baking(whole_item: bool) {
    let sim = super::sim(60);
    let arns = web(&sim);
    let running = start(&sim);
    baking(&sim, &arns).await;

    let written = sim.now();
    if whole_item {
        sim.put_item(&arns.key, record(&arns, "web:1"));
        // The status went with the put, as it does in DynamoDB.
        assert_eq!(status(&sim).await, None);
    } else {
        sim.put_spec(&arns.key, record(&arns, "web:1"));
    }
    let shares = blue_shares_until_steady(&sim, &arns).await;
    // Sampled each second from the write: the change back may already
    // show at the first sample.
    assert!(
        shares == [0, 100] || shares == [100],
        "one weight change back: {shares:?}"
    );
    let ServiceState::Found(svc) = sim.service(&arns.key) else {
        panic!("the service is gone");
    };
    assert_eq!(
        svc.primary().map(|p| p.arn.clone()),
        arns.initial_task_set.clone(),
        "the task set that served before is primary again"
    );
    let created = sim
        .event_log()
        .iter()
        .filter(|e| e.text.contains("created task set"))
        .count();
    assert_eq!(created, 1, "only web:2 was ever created");
    let after = status(&sim).await.unwrap();
    let replayed: Vec<_> = after
        .history
        .iter()
        .filter(|t| t.at >= written && matches!(t.to, Phase::Shifting | Phase::Baking))
        .collect();
    assert!(replayed.is_empty(), "{replayed:?}");

    running.shutdown.cancel();
    running.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_whole_item_put_of_the_previous_version_while_baking_switches_back_at_once() {
    write_back_while_baking(true).await;
}

#[tokio::test(start_paused = true)]
async fn an_update_of_the_version_back_while_baking_switches_back_at_once() {
    write_back_while_baking(false).await;
}

#[tokio::test(start_paused = true)]
async fn a_whole_item_put_mid_shift_is_an_adoption_not_a_new_rollout() {
    let sim = super::sim(61);
    let arns = web(&sim);
    let mut running = start(&sim);
    let body = record(&arns, "web:2");
    sim.put_spec(&arns.key, body.clone());
    for _ in 0..200 {
        sim.run_for(secs(5)).await;
        let half = sim
            .visible_weights(arns.production.arn())
            .is_some_and(|w| w.percent(arns.green()) == 50);
        if half
            && status(&sim)
                .await
                .is_some_and(|s| s.weights == Some((50, 50)))
        {
            break;
        }
    }
    while running.events.try_recv().is_ok() {}

    // The same record again, as a whole item: only the status is lost.
    sim.put_item(&arns.key, body);
    sim.run_for(secs(20)).await;
    let mut events = vec![];
    while let Ok((_, e)) = running.events.try_recv() {
        events.push(e);
    }
    let adopted: Vec<&Event> = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::RolloutAdopted {
                    phase: Phase::Shifting,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(adopted.len(), 1, "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::RolloutStarted { .. })
                || matches!(e, Event::Transition(t) if t.from == Phase::Steady)),
        "{events:?}"
    );
    let share = sim
        .visible_weights(arns.production.arn())
        .map_or(0, |w| w.percent(arns.green()));
    assert!(share >= 50, "the weights did not move back: {share}");
    let s = status(&sim).await.unwrap();
    assert_eq!(s.phase(), Phase::Shifting);
    assert_eq!(
        s.active.map(|a| a.target_group),
        Some(arns.blue().to_string()),
        "blue serves the rest"
    );
    assert_eq!(
        s.candidate.map(|c| c.target_group),
        Some(arns.green().to_string()),
        "the adopted candidate is named"
    );

    running.shutdown.cancel();
    running.task.await.unwrap();
}
