//! The real controller over the simulated cloud, going back and forth
//! between versions: ECS remembers every `CreateTaskSet` client token, so
//! each candidate needs one of its own.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::cloud::DesiredStore;
use crate::controller::{Controller, ControllerConfig};
use crate::rollout::{Phase, Status};

fn start(sim: &SimCloud) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let controller = Controller::new(
        Arc::new(sim.clone()),
        Arc::new(sim.clone()),
        Arc::new(sim.clone()),
        sim.clock(),
        ControllerConfig {
            poll_interval: secs(5),
            resync_interval: secs(60),
            seed: 7,
            ..ControllerConfig::default()
        },
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(controller.run(shutdown.clone()));
    (shutdown, task)
}

async fn status(sim: &SimCloud) -> Option<Status> {
    DesiredStore::get(sim, &key())
        .await
        .ok()
        .flatten()
        .and_then(|r| r.status)
}

fn record(arns: &ServiceArns, version: &str) -> Value {
    let mut body = arns.record(version, json!("all_at_once"));
    body["bake"] = json!("30s");
    body
}

fn primary_runs(sim: &SimCloud, version: &str) -> bool {
    matches!(sim.service(&key()), ServiceState::Found(s)
        if s.task_sets.len() == 1
            && s.primary().is_some_and(|p| p.task_definition.ends_with(&format!("/{version}"))))
}

/// Writes `version` and waits until it serves alone, steady.
async fn roll_out(sim: &SimCloud, arns: &ServiceArns, version: &str) {
    sim.put_spec(&arns.key, record(arns, version));
    for _ in 0..400 {
        sim.run_for(secs(5)).await;
        let steady = status(sim).await.is_some_and(|s| {
            s.phase() == Phase::Steady && s.rollout.is_none() && s.message.contains(version)
        });
        if steady && primary_runs(sim, version) {
            return;
        }
    }
    panic!(
        "{version} never became steady: {:?}\n{}",
        status(sim)
            .await
            .map(|s| (s.phase(), s.message, s.last_error)),
        sim.event_log()
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test(start_paused = true)]
async fn a_version_rolled_out_again_after_another_gets_a_task_set_of_its_own() {
    let sim = super::sim(31);
    let arns = web(&sim);
    let (shutdown, task) = start(&sim);
    roll_out(&sim, &arns, "web:2").await;
    roll_out(&sim, &arns, "web:3").await;
    roll_out(&sim, &arns, "web:2").await;
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_version_superseded_then_written_again_gets_a_task_set_of_its_own() {
    let sim = super::sim(32);
    let arns = web(&sim);
    let (shutdown, task) = start(&sim);
    roll_out(&sim, &arns, "web:2").await;
    // web:3 is created, then superseded by web:2 before it serves.
    sim.put_spec(&arns.key, record(&arns, "web:3"));
    for _ in 0..100 {
        sim.run_for(secs(1)).await;
        if matches!(sim.service(&key()), ServiceState::Found(s) if s.task_sets.len() == 2) {
            break;
        }
    }
    roll_out(&sim, &arns, "web:2").await;
    // The same revision from the same task set, a second time.
    roll_out(&sim, &arns, "web:3").await;
    shutdown.cancel();
    task.await.unwrap();
}
