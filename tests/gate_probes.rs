//! Readings of HTTP and Prometheus gates, and hook calls, against real
//! HTTP servers on loopback.

#[path = "endpoints/mod.rs"]
mod endpoints;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use cutover::checks::{HookPolicy, LiveChecks};
use cutover::cloud::{Checks, SystemClock};
use cutover::rollout::gate::{
    Assessment, HttpGate, HttpMethod, JsonExpect, NoData, Probe, PrometheusGate, Reading, Verdict,
    assess,
};
use cutover::rollout::hook::{HookAnswer, HookPayload, HookPoint};
use cutover::rollout::{Revision, RolloutId, ServiceKey};
use cutover::time::Timestamp;

use endpoints::{Endpoint, Reply, empty_vector, refused, scalar};

fn checks() -> LiveChecks {
    LiveChecks::new(cutover::checks::client().unwrap(), Arc::new(SystemClock)).with_hook_policy(
        HookPolicy {
            timeout: Duration::from_millis(300),
            attempts: 3,
            backoff: Duration::from_millis(20),
        },
    )
}

fn key() -> ServiceKey {
    ServiceKey::new("prod", "web")
}

fn http_gate(url: String) -> HttpGate {
    HttpGate {
        name: "smoke".into(),
        url,
        method: HttpMethod::Get,
        body: None,
        expect_status: Some(200),
        expect_body: None,
        expect_json: None,
        interval: Duration::from_secs(1),
        failure_threshold: 2,
        timeout: Duration::from_millis(300),
    }
}

fn prometheus_gate(address: String) -> PrometheusGate {
    PrometheusGate {
        name: "errors".into(),
        address,
        query: r#"sum(rate(http_requests_total{code=~"5.."}[1m]))"#.into(),
        max: Some(0.05),
        min: None,
        on_empty: NoData::Fail,
        on_nan: NoData::Fail,
        interval: Duration::from_secs(1),
        failure_threshold: 1,
        timeout: Duration::from_millis(300),
    }
}

async fn read(probe: Probe) -> Reading {
    checks().read(&key(), &probe).await
}

#[tokio::test]
async fn an_http_gate_passes_when_every_expectation_holds() {
    let server = Endpoint::answering(200, r#"{"status": "ok", "version": "2"}"#).await;
    let mut gate = http_gate(server.url("/health"));
    gate.method = HttpMethod::Post;
    gate.body = Some(r#"{"probe": true}"#.into());
    gate.expect_body = Some("version".into());
    gate.expect_json = Some(JsonExpect {
        pointer: "/status".into(),
        equals: json!("ok"),
    });
    let r = read(Probe::Http(gate)).await;
    assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
    let sent = &server.requests()[0];
    assert_eq!(
        (sent.method.as_str(), sent.body.as_str()),
        ("POST", r#"{"probe": true}"#)
    );
}

#[tokio::test]
async fn an_http_gate_fails_saying_why() {
    let server = Endpoint::answering(503, "overloaded").await;
    let r = read(Probe::Http(http_gate(server.url("/health")))).await;
    assert_eq!(
        (r.verdict, r.detail.as_str()),
        (Verdict::Fail, "status 503, expected 200")
    );

    let r = read(Probe::Http(http_gate(refused("/health").await))).await;
    assert_eq!(
        (r.verdict, r.detail.as_str()),
        (Verdict::Fail, "connection refused")
    );
}

#[tokio::test]
async fn an_http_gate_times_out_at_its_timeout() {
    let server =
        Endpoint::start(|_, _| Reply::new(200, "late").after(Duration::from_secs(5))).await;
    let start = Instant::now();
    let r = read(Probe::Http(http_gate(server.url("/slow")))).await;
    assert_eq!(
        (r.verdict, r.detail.as_str()),
        (Verdict::Fail, "timed out after 300ms")
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_flapping_gate_fails_only_at_its_threshold_of_failures_in_a_row() {
    // pass, fail, pass, fail, fail
    let server = Endpoint::start(|i, _| match i {
        1 | 3 | 4 => Reply::new(500, ""),
        _ => Reply::new(200, ""),
    })
    .await;
    let probe = Probe::Http(http_gate(server.url("/health")));
    let mut state = BTreeMap::new();
    let mut verdicts = Vec::new();
    let mut outcomes = Vec::new();
    for i in 0..5 {
        let mut r = read(probe.clone()).await;
        // Readings are told apart by time; these come too fast for the clock.
        r.at = Timestamp(1_000 * (i + 1));
        verdicts.push(r.verdict);
        let readings = BTreeMap::from([("smoke".to_string(), r)]);
        outcomes.push(assess(
            std::slice::from_ref(&probe),
            &readings,
            &mut state,
            Timestamp(0),
        ));
    }
    use Verdict::{Fail, Pass};
    assert_eq!(verdicts, [Pass, Fail, Pass, Fail, Fail]);
    assert!(
        outcomes[..4].iter().all(|a| *a == Assessment::Pass),
        "{outcomes:?}"
    );
    assert!(matches!(&outcomes[4], Assessment::Fail { gate, .. } if gate == "smoke"));
}

#[tokio::test]
async fn a_prometheus_gate_compares_the_value_with_its_bounds() {
    let server =
        Endpoint::start(|i, _| Reply::new(200, scalar(if i == 0 { "0.01" } else { "0.2" }))).await;
    let gate = prometheus_gate(format!("{}/", server.url("")));
    let r = read(Probe::Prometheus(gate.clone())).await;
    assert_eq!(
        (r.verdict, r.detail.as_str()),
        (Verdict::Pass, "value 0.01 (max 0.05)")
    );
    let r = read(Probe::Prometheus(gate)).await;
    assert_eq!(
        (r.verdict, r.detail.as_str()),
        (Verdict::Fail, "value 0.2 is above max 0.05")
    );
    let uri = &server.requests()[0].uri;
    assert!(
        uri.starts_with("/api/v1/query?query=sum%28rate%28"),
        "{uri}"
    );
}

#[tokio::test]
async fn a_prometheus_gate_follows_its_rules_for_empty_and_nan_results() {
    let empty = Endpoint::answering(200, &empty_vector()).await;
    let nan = Endpoint::answering(200, &scalar("NaN")).await;
    let mut gate = prometheus_gate(empty.url(""));
    let expect = [
        (NoData::Fail, Verdict::Fail),
        (NoData::Pass, Verdict::Pass),
        (NoData::Wait, Verdict::Inconclusive),
    ];
    for (rule, verdict) in expect {
        gate.address = empty.url("");
        gate.on_empty = rule;
        let r = read(Probe::Prometheus(gate.clone())).await;
        assert_eq!(r.verdict, verdict, "on_empty {rule:?}: {}", r.detail);
        gate.address = nan.url("");
        gate.on_nan = rule;
        gate.on_empty = NoData::Fail;
        let r = read(Probe::Prometheus(gate.clone())).await;
        assert_eq!(r.verdict, verdict, "on_nan {rule:?}: {}", r.detail);
        assert!(r.detail.contains("NaN"), "{}", r.detail);
    }
}

#[tokio::test]
async fn a_prometheus_gate_fails_on_refused_queries_timeouts_and_a_down_server() {
    let bad = Endpoint::answering(
        400,
        r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#,
    )
    .await;
    let r = read(Probe::Prometheus(prometheus_gate(bad.url("")))).await;
    assert_eq!(
        r.detail,
        "Prometheus refused the query: bad_data: parse error at char 5"
    );
    let slow =
        Endpoint::start(|_, _| Reply::new(200, scalar("0")).after(Duration::from_secs(5))).await;
    let r = read(Probe::Prometheus(prometheus_gate(slow.url("")))).await;
    assert_eq!(
        (r.verdict, r.detail.as_str()),
        (Verdict::Fail, "Prometheus: timed out after 300ms")
    );
    let r = read(Probe::Prometheus(prometheus_gate(refused("").await))).await;
    assert_eq!(
        (r.verdict, r.detail.as_str()),
        (Verdict::Fail, "Prometheus: connection refused")
    );
}

fn payload() -> HookPayload {
    HookPayload {
        service: "prod/web".into(),
        hook: HookPoint::AfterTestTraffic,
        rollout: RolloutId {
            revision: Revision::from_raw("0123abcd"),
            attempt: 1,
        },
        revision: "0123abcd".into(),
        phase: "Testing".into(),
        weights: (100, 0),
        report_to: "/v1/services/prod/web/hooks/after_test_traffic".into(),
    }
}

#[tokio::test]
async fn a_hook_gets_the_payload_and_its_verdict_is_returned() {
    let hook = Endpoint::answering(
        200,
        r#"{"verdict": "fail", "detail": "checkout smoke test: 3 of 20 failed"}"#,
    )
    .await;
    let answer = checks()
        .call_hook(&hook.url("/smoke"), &payload())
        .await
        .unwrap();
    assert_eq!(
        answer,
        Some((
            HookAnswer::Fail,
            "checkout smoke test: 3 of 20 failed".into()
        ))
    );
    let sent = hook.requests()[0].json();
    assert_eq!(sent["hook"], "after_test_traffic");
    assert_eq!(sent["rollout"], "0123abcd#1");
    assert_eq!(
        sent["report_to"],
        "/v1/services/prod/web/hooks/after_test_traffic"
    );
}

#[tokio::test]
async fn a_hook_that_accepts_reports_later() {
    let hook = Endpoint::answering(202, "").await;
    let answer = checks()
        .call_hook(&hook.url("/smoke"), &payload())
        .await
        .unwrap();
    assert_eq!(answer, None);
    assert_eq!(hook.hits(), 1);
}

#[tokio::test]
async fn a_hook_that_keeps_failing_is_retried_a_bounded_number_of_times_then_fails() {
    let hook = Endpoint::answering(503, "").await;
    let answer = checks()
        .call_hook(&hook.url("/smoke"), &payload())
        .await
        .unwrap();
    assert_eq!(
        answer,
        Some((HookAnswer::Fail, "hook unreachable: it answered 503".into()))
    );
    assert_eq!(hook.hits(), 3);

    let flaky = Endpoint::start(|i, _| match i {
        0 => Reply::new(502, ""),
        _ => Reply::new(200, r#"{"verdict": "pass"}"#),
    })
    .await;
    let answer = checks()
        .call_hook(&flaky.url("/smoke"), &payload())
        .await
        .unwrap();
    assert_eq!(answer, Some((HookAnswer::Pass, String::new())));
}

#[tokio::test]
async fn a_hook_endpoint_that_is_down_or_hangs_fails_instead_of_erring() {
    let answer = checks()
        .call_hook(&refused("/smoke").await, &payload())
        .await
        .unwrap();
    assert_eq!(
        answer,
        Some((
            HookAnswer::Fail,
            "hook unreachable: connection refused".into()
        ))
    );

    let hung = Endpoint::start(|_, _| Reply::new(200, "").after(Duration::from_secs(30))).await;
    let start = Instant::now();
    let answer = checks()
        .call_hook(&hung.url("/smoke"), &payload())
        .await
        .unwrap();
    assert_eq!(
        answer,
        Some((
            HookAnswer::Fail,
            "hook unreachable: timed out after 300ms".into()
        ))
    );
    assert_eq!(hung.hits(), 3);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_hook_that_answers_something_else_fails_at_once() {
    let hook = Endpoint::answering(404, "no such hook").await;
    let answer = checks()
        .call_hook(&hook.url("/smoke"), &payload())
        .await
        .unwrap();
    assert_eq!(
        answer,
        Some((
            HookAnswer::Fail,
            "the hook answered 404, not 200 or 202".into()
        ))
    );
    assert_eq!(hook.hits(), 1);
}
