//! Acceptance: a full controller over the simulated cloud, with a record
//! that declares a Prometheus gate (a fake Prometheus) and an
//! `after_test_traffic` hook (a fake webhook). The candidate is rolled back
//! when the gate says no, rolled back when the hook says no, and promoted
//! when both say yes.

#[path = "endpoints/mod.rs"]
mod endpoints;
#[path = "gated/mod.rs"]
mod gated;

use std::time::Duration;

use serde_json::{Value, json};

use cutover::rollout::Phase;

use endpoints::{Endpoint, scalar};
use gated::Rig;

const WITHIN: Duration = Duration::from_secs(25);

struct Outcome {
    rig: Rig,
    prometheus: Endpoint,
    hook: Endpoint,
}

/// Rolls `web:2` out with the gate's query answering `error_rate` and the
/// hook answering `verdict`.
async fn roll(seed: u64, error_rate: &str, verdict: &str) -> (Outcome, cutover::rollout::Status) {
    let prometheus = Endpoint::answering(200, &scalar(error_rate)).await;
    let hook = Endpoint::answering(
        200,
        &json!({"verdict": verdict, "detail": format!("smoke tests say {verdict}")}).to_string(),
    )
    .await;
    let rig = Rig::start(seed).await;
    rig.deploy(json!({
        "gates": {"prometheus": [{
            "name": "error-rate",
            "address": prometheus.url(""),
            "query": "sum(rate(http_requests_total{service=\"web\",code=~\"5..\"}[1m])) / sum(rate(http_requests_total{service=\"web\"}[1m]))",
            "max": 0.01,
            "interval": "1s",
            "failure_threshold": 2,
            "timeout": "1s"
        }]},
        "hooks": {"after_test_traffic": {"url": hook.url("/smoke"), "timeout": "30s"}}
    }));
    let status = rig.settled(WITHIN).await;
    (
        Outcome {
            rig,
            prometheus,
            hook,
        },
        status,
    )
}

fn rollback_reason(status: &cutover::rollout::Status) -> String {
    status
        .failed
        .as_ref()
        .map(|f| f.reason.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_candidate_the_prometheus_gate_rejects_is_rolled_back() {
    let (o, status) = roll(31, "0.2", "pass").await;
    assert_eq!(status.phase(), Phase::Failed, "{status:#?}");
    let why = rollback_reason(&status);
    assert!(why.contains("error-rate"), "{why}");
    assert!(why.contains("value 0.2 is above max 0.01"), "{why}");
    // The gate failed before the hook's turn came.
    assert_eq!(o.hook.hits(), 0);
    assert!(o.prometheus.hits() >= 2);
    assert_eq!(o.rig.production(), (100, 0));
    o.rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_candidate_the_hook_rejects_is_rolled_back() {
    let (o, status) = roll(32, "0.001", "fail").await;
    assert_eq!(status.phase(), Phase::Failed, "{status:#?}");
    let why = rollback_reason(&status);
    assert!(
        why.contains("hook after_test_traffic failed: smoke tests say fail"),
        "{why}"
    );
    assert_eq!(o.hook.hits(), 1, "a hook is called once per rollout");
    let payload: Value = o.hook.requests()[0].json();
    assert_eq!(payload["service"], "prod/web");
    assert_eq!(payload["hook"], "after_test_traffic");
    assert_eq!(payload["phase"], "Testing");
    assert_eq!(o.rig.production(), (100, 0));
    o.rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_candidate_both_accept_is_promoted() {
    let (o, status) = roll(33, "0.001", "pass").await;
    assert_eq!(status.phase(), Phase::Steady, "{status:#?}");
    assert_eq!(status.stable_revision, status.observed_revision);
    let phases: Vec<Phase> = status.history.iter().map(|t| t.to).collect();
    for p in [
        Phase::Testing,
        Phase::Shifting,
        Phase::Baking,
        Phase::Finalizing,
    ] {
        assert!(phases.contains(&p), "{phases:?}");
    }
    assert_eq!(o.hook.hits(), 1);
    // The gate was asked while the candidate was tested, shifted to and baked.
    assert!(o.prometheus.hits() >= 3, "{}", o.prometheus.hits());
    assert_eq!(o.rig.production(), (0, 100));
    o.rig.stop().await;
}
