//! Notifications of rollout events: what the endpoints receive in each
//! format, a dead endpoint that costs bounded retries and never the
//! rollout, and a full queue that drops instead of waiting.

#[path = "endpoints/mod.rs"]
mod endpoints;
#[path = "gated/mod.rs"]
mod gated;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use cutover::metrics::Metrics;
use cutover::notice::Notify;
use cutover::notify::{Notifier, NotifyPolicy};
use cutover::rollout::spec::{Notification, NotificationFormat};
use cutover::rollout::{Event, Phase, Revision, RolloutId, Status};
use cutover::time::Timestamp;

use endpoints::{Endpoint, Reply, refused};
use gated::{Rig, web};

const WITHIN: Duration = Duration::from_secs(20);

fn counted(metrics: &Metrics, format: &str, result: &str) -> u64 {
    let text = metrics.render().unwrap();
    let line = format!("cutover_notifications_total{{format=\"{format}\",result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(line.as_str()))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_promoted_rollout_is_told_in_json_and_in_slack_words() {
    let json_endpoint = Endpoint::answering(200, "").await;
    let slack = Endpoint::answering(200, "ok").await;
    let rig = Rig::start(51).await;
    rig.deploy(json!({"notifications": [
        {"url": json_endpoint.url("/events")},
        {"url": slack.url("/services/T000/B000/XXXX"), "format": "slack"}
    ]}));
    assert_eq!(rig.settled(WITHIN).await.phase(), Phase::Steady);
    let metrics = rig.stop().await;

    let events: Vec<Value> = json_endpoint.requests().iter().map(|r| r.json()).collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["rollout_started", "step_completed", "promoted"],
        "{events:#?}"
    );
    let promoted = &events[2];
    assert_eq!(promoted["service"], "prod/web");
    assert_eq!(promoted["phase"]["to"], "Steady");
    assert_eq!(promoted["weights"], json!({"active": 100, "candidate": 0}));
    let rollout = promoted["rollout"].as_str().unwrap();
    let revision = promoted["revision"].as_str().unwrap();
    assert!(rollout.starts_with(revision), "{rollout} {revision}");
    assert!(promoted["at"].as_str().unwrap().ends_with('Z'));
    let step = &events[1];
    assert_eq!(step["weights"], json!({"active": 0, "candidate": 100}));
    assert_eq!(step["step"], 0);

    let texts: Vec<String> = slack
        .requests()
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts.len(), 3);
    assert_eq!(texts[0], format!("prod/web: rollout {rollout} started"));
    assert!(
        texts[1].contains("100% of production traffic"),
        "{}",
        texts[1]
    );
    assert!(texts[2].contains("promoted"), "{}", texts[2]);
    assert_eq!(counted(&metrics, "json", "sent"), 3);
    assert_eq!(counted(&metrics, "slack", "sent"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rollback_is_told_with_its_reason() {
    let json_endpoint = Endpoint::answering(200, "").await;
    let rig = Rig::start(52).await;
    rig.deploy(json!({
        "notifications": [{"url": json_endpoint.url("/events")}],
        "hooks": {"after_install": {"url": refused("/hook").await}}
    }));
    assert_eq!(rig.settled(WITHIN).await.phase(), Phase::Failed);
    rig.stop().await;
    let events: Vec<Value> = json_endpoint.requests().iter().map(|r| r.json()).collect();
    let to_rolling_back = events
        .iter()
        .find(|e| e["event"] == "transition" && e["phase"]["to"] == "RollingBack")
        .unwrap_or_else(|| panic!("{events:#?}"));
    let reason = to_rolling_back["reason"].as_str().unwrap();
    assert!(
        reason.contains("hook after_install failed: hook unreachable"),
        "{reason}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "transition" && e["phase"]["to"] == "Failed")
    );
    // Notices are delivered concurrently, so they may arrive out of order;
    // each carries its `at` for the receiver to order them.
    assert!(
        events
            .iter()
            .any(|e| ["rolled_back", "failed"].contains(&e["event"].as_str().unwrap_or(""))),
        "{events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_endpoint_costs_bounded_retries_and_the_rollout_still_completes() {
    let failing = Endpoint::answering(503, "").await;
    let rig = Rig::start(53).await;
    rig.deploy(json!({"notifications": [
        {"url": failing.url("/events")},
        {"url": refused("/events").await, "format": "slack"}
    ]}));
    assert_eq!(rig.settled(WITHIN).await.phase(), Phase::Steady);
    let metrics = rig.stop().await;
    // Three notices (started, step, promoted), each tried three times.
    assert_eq!(failing.hits(), 9);
    assert_eq!(counted(&metrics, "json", "failed"), 3);
    assert_eq!(counted(&metrics, "slack", "failed"), 3);
    assert_eq!(counted(&metrics, "json", "sent"), 0);
}

#[tokio::test]
async fn a_full_queue_drops_notices_and_counts_them() {
    let slow = Endpoint::start(|_, _| Reply::new(200, "").after(Duration::from_millis(300))).await;
    let metrics = Arc::new(Metrics::new().unwrap());
    let policy = NotifyPolicy {
        queue: 2,
        concurrency: 1,
        ..gated::quick_notify()
    };
    let client = cutover::checks::client().unwrap();
    let (notifier, courier) = Notifier::start(client, policy, Some(Arc::clone(&metrics)));
    let to = [Notification {
        url: slow.url("/events"),
        format: NotificationFormat::Json,
    }];
    let events: Vec<Event> = (1..=10)
        .map(|attempt| Event::RolloutStarted {
            rollout: RolloutId {
                revision: Revision::from_raw("0123abcd"),
                attempt,
            },
        })
        .collect();
    let start = std::time::Instant::now();
    let status = Status::default();
    notifier.notify(&web(), &to, &events, Phase::Steady, &status, Timestamp(0));
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "notify must not wait"
    );
    drop(notifier);
    courier.finish(Duration::from_secs(10)).await;
    let sent = counted(&metrics, "json", "sent");
    let dropped = counted(&metrics, "json", "dropped");
    assert_eq!(sent + dropped, 10);
    assert!(dropped >= 6, "sent {sent}, dropped {dropped}");
    assert_eq!(slow.hits() as u64, sent);
}
