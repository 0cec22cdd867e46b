//! One canary rollout over the simulated cloud with metrics attached, shared
//! by the tests of what operators see.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use cutover::aws::calls::ApiCalls;
use cutover::cloud::{Clock, DesiredStore, ScaledClock};
use cutover::controller::{Controller, ControllerConfig};
use cutover::metrics::Metrics;
use cutover::rollout::{Phase, ServiceKey};
use cutover::sim::{DEFAULT_EPOCH, Faults, ServiceSetup, SimCloud};

pub fn web() -> ServiceKey {
    ServiceKey::new("prod", "web")
}

/// Rolls `web:2` out to `prod/web` with a canary on the simulated cloud, to
/// the end, and returns the metrics as scraped afterwards.
pub async fn rollout(faults: Faults, calls: &ApiCalls) -> String {
    let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(DEFAULT_EPOCH, 1.0));
    let sim = SimCloud::builder(5)
        .clock(Arc::clone(&clock))
        .faults(faults)
        .build();
    let arns = sim.add_service(ServiceSetup::new(web())).unwrap();
    let metrics = Arc::new(Metrics::new().unwrap());
    metrics.export_api_calls(calls).unwrap();
    let controller = Controller::new(
        Arc::new(sim.clone()),
        Arc::new(sim.clone()),
        Arc::new(sim.clone()),
        Arc::clone(&clock),
        ControllerConfig {
            poll_interval: Duration::from_secs(5),
            resync_interval: Duration::from_secs(60),
            seed: 5,
            ..ControllerConfig::default()
        },
    )
    .with_metrics(Arc::clone(&metrics));
    metrics.export_queue(&controller.handle()).unwrap();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(controller.run(shutdown.clone()));
    // Written once the controller runs, as a team would.
    clock.sleep(Duration::from_secs(30)).await;
    let record = arns.record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "1m"}),
    );
    sim.put_spec(&web(), record);
    let mut done = false;
    for _ in 0..500 {
        clock.sleep(Duration::from_secs(5)).await;
        let status = DesiredStore::get(&sim, &web())
            .await
            .ok()
            .flatten()
            .and_then(|r| r.status);
        if status.is_some_and(|s| s.phase() == Phase::Steady && s.history.len() > 1) {
            done = true;
            break;
        }
    }
    // One more pass, so the gauges show the settled state.
    clock.sleep(Duration::from_secs(60)).await;
    shutdown.cancel();
    running.await.unwrap();
    assert!(done, "the rollout did not finish: {:?}", sim.event_log());
    metrics.render().unwrap()
}
