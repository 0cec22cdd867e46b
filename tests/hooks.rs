//! Lifecycle hooks through a whole controller over the simulated cloud: a
//! hook that accepts and reports its verdict later through the API, one
//! that never reports, and one whose endpoint is down.

#[path = "endpoints/mod.rs"]
mod endpoints;
#[path = "gated/mod.rs"]
mod gated;
#[path = "http_client/mod.rs"]
mod http_client;

use std::time::Duration;

use serde_json::json;

use cutover::rollout::Phase;

use endpoints::{Endpoint, refused};
use gated::{Rig, TOKEN};
use http_client::post;

const WITHIN: Duration = Duration::from_secs(20);

fn hook(url: String, timeout: &str) -> serde_json::Value {
    json!({"hooks": {"after_test_traffic": {"url": url, "timeout": timeout}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hook_that_accepts_then_reports_pass_through_the_api_lets_the_rollout_go_on() {
    let endpoint = Endpoint::answering(202, "").await;
    let rig = Rig::start(41).await;
    rig.deploy(hook(endpoint.url("/smoke"), "30s"));
    let waiting = rig
        .until(WITHIN, |s| {
            s.message
                .contains("waiting for the after_test_traffic hook")
        })
        .await;
    assert_eq!(waiting.phase(), Phase::Testing);
    let payload = endpoint.requests()[0].json();
    let rollout = payload["rollout"].as_str().unwrap().to_string();
    let report_to = payload["report_to"].as_str().unwrap().to_string();
    assert_eq!(report_to, "/v1/services/prod/web/hooks/after_test_traffic");

    let verdict = |rollout: &str, verdict: &str| {
        json!({"rollout": rollout, "verdict": verdict, "detail": "load test green"}).to_string()
    };
    // Not the rollout in flight: refused, and nothing is written.
    let stale = post(
        rig.api,
        &report_to,
        Some(TOKEN),
        &verdict("ffffffff#1", "fail"),
    )
    .await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    let anonymous = post(rig.api, &report_to, None, &verdict(&rollout, "pass")).await;
    assert_eq!(anonymous.status, 401);
    let unknown_point = "/v1/services/prod/web/hooks/after_lunch";
    let bad = post(
        rig.api,
        unknown_point,
        Some(TOKEN),
        &verdict(&rollout, "pass"),
    )
    .await;
    assert_eq!(bad.status, 400);
    let nobody = "/v1/services/prod/nobody/hooks/after_test_traffic";
    let missing = post(rig.api, nobody, Some(TOKEN), &verdict(&rollout, "pass")).await;
    assert_eq!(missing.status, 404);
    let malformed = post(rig.api, &report_to, Some(TOKEN), r#"{"verdict": "pass"}"#).await;
    assert_eq!(malformed.status, 400);

    let ok = post(rig.api, &report_to, Some(TOKEN), &verdict(&rollout, "pass")).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["verdict"], "pass");
    let status = rig.settled(WITHIN).await;
    assert_eq!(status.phase(), Phase::Steady, "{status:#?}");
    assert_eq!(
        endpoint.hits(),
        1,
        "the hook is called once, not on every poll"
    );
    // The record keeps the verdict, next to the other control requests.
    let record = rig.sim.records().into_iter().next().unwrap();
    assert_eq!(
        record.body["control"]["hooks"]["after_test_traffic"]["verdict"],
        "pass"
    );
    assert_eq!(rig.production(), (0, 100));
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_fail_verdict_rolls_back() {
    let endpoint = Endpoint::answering(202, "").await;
    let rig = Rig::start(42).await;
    rig.deploy(hook(endpoint.url("/smoke"), "30s"));
    rig.until(WITHIN, |_| endpoint.hits() == 1).await;
    let payload = endpoint.requests()[0].json();
    let body =
        json!({"rollout": payload["rollout"], "verdict": "fail", "detail": "p99 latency doubled"});
    let path = payload["report_to"].as_str().unwrap();
    let r = post(rig.api, path, Some(TOKEN), &body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let status = rig.settled(WITHIN).await;
    assert_eq!(status.phase(), Phase::Failed);
    let why = &status.failed.as_ref().unwrap().reason;
    assert!(
        why.contains("hook after_test_traffic failed: p99 latency doubled"),
        "{why}"
    );
    assert_eq!(rig.production(), (100, 0));
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hook_that_never_reports_rolls_back_at_its_timeout() {
    let endpoint = Endpoint::answering(202, "").await;
    let rig = Rig::start(43).await;
    rig.deploy(hook(endpoint.url("/smoke"), "1s"));
    let status = rig.settled(WITHIN).await;
    assert_eq!(status.phase(), Phase::Failed);
    let why = &status.failed.as_ref().unwrap().reason;
    assert!(
        why.contains("hook after_test_traffic failed: no verdict within 1s"),
        "{why}"
    );
    assert_eq!(endpoint.hits(), 1);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hook_endpoint_that_is_down_rolls_back_instead_of_holding_the_rollout() {
    let rig = Rig::start(44).await;
    rig.deploy(hook(refused("/smoke").await, "10m"));
    let status = rig.settled(WITHIN).await;
    assert_eq!(status.phase(), Phase::Failed);
    let why = &status.failed.as_ref().unwrap().reason;
    assert!(
        why.contains("hook unreachable: connection refused"),
        "{why}"
    );
    assert_eq!(rig.production(), (100, 0));
    rig.stop().await;
}
