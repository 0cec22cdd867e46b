//! The CloudWatch gate against the emulator: alarms made with
//! PutMetricAlarm and moved with SetAlarmState, and the shared batcher
//! turning gates of two services that ask at once into one DescribeAlarms.
//! The SDK reaches the emulator through a protocol-translating proxy (see
//! `cloudwatch_proxy`).

#[path = "cloudwatch_proxy/mod.rs"]
mod cloudwatch_proxy;
mod support;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};

use cutover::aws::calls::ApiCalls;
use cutover::aws::cloudwatch::CloudWatchAlarms;
use cutover::checks::{AlarmBatcher, LiveChecks, Pacing};
use cutover::cloud::{Checks, SystemClock};
use cutover::rollout::ServiceKey;
use cutover::rollout::gate::{CloudWatchGate, Probe, Verdict};

async fn put_alarm(cw: &aws_sdk_cloudwatch::Client, name: &str) {
    cw.put_metric_alarm()
        .alarm_name(name)
        .namespace("AWS/ApplicationELB")
        .metric_name("HTTPCode_Target_5XX_Count")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(10.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
    cw.set_alarm_state()
        .alarm_name(name)
        .state_value(StateValue::Ok)
        .state_reason("quiet")
        .send()
        .await
        .unwrap();
}

fn gate(alarms: &[&str]) -> Probe {
    Probe::CloudWatch(CloudWatchGate {
        alarms: alarms.iter().map(|a| a.to_string()).collect(),
        interval: Duration::from_secs(1),
        failure_threshold: 1,
        timeout: Duration::from_secs(5),
    })
}

#[tokio::test]
async fn alarms_decide_the_gate_and_gates_asking_at_once_share_one_call() {
    let emulator = support::emulator::exclusive().await;
    // Sets the test's dummy credentials; the SDK config points at the proxy.
    let _ = support::aws::config(&emulator).await;
    let proxy = cloudwatch_proxy::start(emulator.endpoint()).await;
    let sdk = cutover::aws::sdk_config(&cutover::aws::Endpoint {
        region: Some(support::aws::REGION.to_string()),
        url: Some(proxy),
    })
    .await;
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    for name in ["web-5xx", "web-latency", "api-5xx"] {
        put_alarm(&cw, name).await;
    }
    let calls = ApiCalls::new();
    let alarms = AlarmBatcher::new(
        Arc::new(CloudWatchAlarms::new(&sdk, &calls)),
        Arc::new(SystemClock),
        Pacing::default(),
    );
    let client = cutover::checks::client().unwrap();
    let checks = LiveChecks::new(client, Arc::new(SystemClock)).with_alarms(alarms);
    let (web, api) = (
        ServiceKey::new("prod", "web"),
        ServiceKey::new("prod", "api"),
    );
    let (web_gate, api_gate) = (
        gate(&["web-5xx", "web-latency"]),
        gate(&["api-5xx", "web-5xx"]),
    );

    let (w, a) = tokio::join!(checks.read(&web, &web_gate), checks.read(&api, &api_gate));
    assert_eq!(w.verdict, Verdict::Pass, "{}", w.detail);
    assert_eq!(a.verdict, Verdict::Pass, "{}", a.detail);
    assert_eq!(calls.count("cloudwatch", "DescribeAlarms"), 1);

    cw.set_alarm_state()
        .alarm_name("web-latency")
        .state_value(StateValue::Alarm)
        .state_reason("p99 above 800ms for 1 datapoint")
        .send()
        .await
        .unwrap();
    // Within the gates' interval the answer is still the cached one.
    let cached = checks.read(&web, &web_gate).await;
    assert_eq!(cached.verdict, Verdict::Pass);
    assert_eq!(calls.count("cloudwatch", "DescribeAlarms"), 1);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (w, a) = tokio::join!(checks.read(&web, &web_gate), checks.read(&api, &api_gate));
    assert_eq!(w.verdict, Verdict::Fail);
    assert_eq!(
        w.detail,
        "alarm web-latency is in ALARM: p99 above 800ms for 1 datapoint"
    );
    assert_eq!(a.verdict, Verdict::Pass, "{}", a.detail);
    assert_eq!(calls.count("cloudwatch", "DescribeAlarms"), 2);

    let missing = checks
        .read(&web, &gate(&["web-5xx", "no-such-alarm"]))
        .await;
    assert_eq!(missing.verdict, Verdict::Fail);
    assert_eq!(missing.detail, "alarm no-such-alarm does not exist");
}
