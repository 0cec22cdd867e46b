//! Fleet releases end to end: the real controller over the simulated
//! cloud, a release written through the API, its waves, its failure budget
//! halting it, and a resume after the failing service was fixed.

#[path = "http_client/mod.rs"]
mod http_client;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use cutover::cloud::releases;
use cutover::cloud::{Clock, DesiredStore, ScaledClock};
use cutover::controller::{Controller, ControllerConfig};
use cutover::fleet::{Outcome, ReleasePhase, ReleaseStatus};
use cutover::http::{self, ApiState, ApiToken};
use cutover::metrics::Metrics;
use cutover::rollout::{Phase, ServiceKey};
use cutover::sim::{BadVersion, DEFAULT_EPOCH, Faults, ServiceSetup, SimCloud};

const TOKEN: &str = "test-token-0123456789";
const SERVICES: usize = 6;

fn key(i: usize) -> ServiceKey {
    ServiceKey::new("prod", format!("svc-{i}"))
}

async fn status(sim: &SimCloud) -> Option<ReleaseStatus> {
    releases::get(sim, "patch-1").await.ok()??.status
}

/// Waves settle in order: no member of a wave has a rollout before every
/// member of the waves before it settled.
fn check_wave_order(s: &ReleaseStatus, phases: &BTreeMap<ServiceKey, Phase>) {
    let mut earlier_settled = true;
    for wave in &s.waves {
        if !earlier_settled {
            for m in &wave.members {
                assert!(
                    matches!(m.outcome, Outcome::Pending),
                    "{} of a later wave moved before the wave before settled: {:?} ({:?})",
                    m.service,
                    m.outcome,
                    phases.get(&m.service)
                );
            }
        }
        earlier_settled &= wave.settled();
    }
}

#[tokio::test(start_paused = true)]
async fn a_release_rolls_in_waves_halts_on_its_budget_and_goes_on_after_a_fix() {
    let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(DEFAULT_EPOCH, 1.0));
    let sim = SimCloud::builder(7)
        .clock(Arc::clone(&clock))
        .faults(Faults::none())
        .build();
    for i in 0..SERVICES {
        let arns = sim.add_service(ServiceSetup::new(key(i))).unwrap();
        let mut body = arns.record(
            &format!("svc-{i}:1"),
            json!({"type": "canary", "percent": 20, "interval": "30s"}),
        );
        body["labels"] = json!({"tier": "web"});
        body["bake"] = json!("30s");
        sim.put_spec(&key(i), body);
    }
    // The release's image breaks svc-3 only (its own configuration, say):
    // the image registers svc-3:2, which never becomes healthy.
    sim.mark_task_definition_bad("svc-3:2", BadVersion::NeverHealthy);

    let metrics = Arc::new(Metrics::new().unwrap());
    let controller = Controller::new(
        Arc::new(sim.clone()),
        Arc::new(sim.clone()),
        Arc::new(sim.clone()),
        Arc::clone(&clock),
        ControllerConfig {
            poll_interval: Duration::from_secs(5),
            resync_interval: Duration::from_secs(60),
            seed: 7,
            ..ControllerConfig::default()
        },
    )
    .with_metrics(Arc::clone(&metrics));
    let handle = controller.handle();
    let router = http::router(ApiState {
        store: Arc::new(sim.clone()),
        lb: Arc::new(sim.clone()),
        controller: handle.clone(),
        metrics: Arc::clone(&metrics),
        clock: Arc::clone(&clock),
        token: Some(ApiToken::new(TOKEN).unwrap()),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(http::serve(listener, router, shutdown.clone()));
    tokio::spawn(controller.run(shutdown.clone()));
    assert!(handle.synced().await);

    let release = json!({
        "selector": {"tier": "web"},
        "set": {"image": "registry.example/app:2", "container": "app"},
        "waves": [{"services": 1}, {"services": 4}, {"percent": 100}],
        "bake_between": "1m",
        "failure_budget": {"services": 0},
        "on_halt": "pause",
    });
    // A bad release is refused by name, before anything is written.
    let mut bad = release.clone();
    bad["waves"] = json!([{"percent": 0}]);
    let r = http_client::request(
        addr,
        "POST",
        "/v1/releases/patch-1",
        Some(TOKEN),
        &bad.to_string(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["message"].as_str().unwrap().contains("waves"),
        "{}",
        r.body
    );
    let r = http_client::request(
        addr,
        "POST",
        "/v1/releases/patch-1",
        None,
        &release.to_string(),
    )
    .await;
    assert_eq!(r.status, 401);
    let r = http_client::request(
        addr,
        "POST",
        "/v1/releases/patch-1",
        Some(TOKEN),
        &release.to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Rolls until the budget halts it (svc-3 is in the second wave).
    let mut halted = None;
    for _ in 0..400 {
        clock.sleep(Duration::from_secs(5)).await;
        let phases: BTreeMap<ServiceKey, Phase> = sim
            .records()
            .into_iter()
            .filter_map(|r| Some((r.key.clone(), r.status?.phase())))
            .collect();
        if let Some(s) = status(&sim).await {
            check_wave_order(&s, &phases);
            if matches!(s.phase, ReleasePhase::Halted { .. }) {
                halted = Some(s);
                break;
            }
        }
    }
    let halted = halted.expect("the failure budget halts the release");
    assert_eq!(halted.counts.failed, 1, "{}", halted.message);
    assert_eq!(halted.waves[0].members.len(), 1);
    // The third wave never started.
    assert!(
        halted.waves[2]
            .members
            .iter()
            .all(|m| m.outcome == Outcome::Pending),
        "{:?}",
        halted.waves[2]
    );
    for m in &halted.waves[2].members {
        let record = DesiredStore::get(&sim, &m.service).await.unwrap().unwrap();
        assert_ne!(
            record.body["image"],
            json!("registry.example/app:2"),
            "{} was written",
            m.service
        );
    }
    let shown = http_client::get(addr, "/v1/releases/patch-1").await.json();
    assert_eq!(shown["status"]["phase"]["name"], json!("halted"), "{shown}");
    let scraped = http_client::get(addr, "/metrics").await.body;
    assert!(
        scraped.contains(r#"cutover_release_phase{phase="halted",release="patch-1"} 1"#),
        "{scraped}"
    );

    // The fix, then a resume: the failure is forgiven and retried.
    sim.mark_task_definition_good("svc-3:2");
    let r =
        http_client::request(addr, "POST", "/v1/releases/patch-1/resume", Some(TOKEN), "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut done = None;
    for _ in 0..600 {
        clock.sleep(Duration::from_secs(5)).await;
        if let Some(s) = status(&sim).await
            && s.phase == ReleasePhase::Completed
        {
            done = Some(s);
            break;
        }
    }
    let done = done.expect("the release completes after the fix");
    assert_eq!(done.counts.succeeded, SERVICES, "{}", done.message);
    for i in 0..SERVICES {
        let record = DesiredStore::get(&sim, &key(i)).await.unwrap().unwrap();
        assert_eq!(record.status.unwrap().phase(), Phase::Steady, "svc-{i}");
        assert_eq!(record.body["image"], json!("registry.example/app:2"));
    }
    let listed: Value = http_client::get(addr, "/v1/releases").await.json();
    assert_eq!(listed["releases"][0]["name"], json!("patch-1"));
    shutdown.cancel();
}
