//! The HTTP API over the DynamoDB desired store in the emulator: an
//! authenticated promote writes the record's `control` attribute, naming
//! the rollout and the step that await it.

mod support;

#[path = "http_client/mod.rs"]
mod http_client;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use cutover::aws::DynamoStore;
use cutover::cloud::{
    Clock, DesiredStore, Precondition, SpecChanges, SpecWrite, StatusWrite, SystemClock,
};
use cutover::controller::{Controller, ControllerConfig};
use cutover::http::{self, ApiState, ApiToken};
use cutover::metrics::Metrics;
use cutover::rollout::{Phase, RolloutId, ServiceKey, Status};
use cutover::sim::SimCloud;
use cutover::time::Timestamp;

use support::emulator::exclusive;

const TABLE: &str = "cutover-desired";
const TOKEN: &str = "contract-token-5f2d";
const TG_BLUE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-blue/1";
const TG_GREEN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/2";
const LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2";

fn record() -> SpecChanges {
    [
        ("task_definition", json!("web:2")),
        ("container", json!("app")),
        ("container_port", json!(8080)),
        ("production_listener", json!(LISTENER)),
        ("target_groups", json!([TG_BLUE, TG_GREEN])),
        (
            "strategy",
            json!({"type": "steps", "steps": [{"set_weight": 10}, "pause_until_promoted"]}),
        ),
        ("control", json!({"abort": "ffffffff#1"})),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Some(v)))
    .collect()
}

/// Built from JSON, as the table holds it, so fields a status gains later
/// take their defaults here too.
fn awaiting(id: &RolloutId, now: Timestamp) -> Status {
    let rollout = json!({
        "id": id,
        "started_at": now,
        "from": null,
        "target_group": TG_GREEN,
        "step": 1,
        "step_started_at": now,
        "progress_at": now,
    });
    Status {
        phase_since: now,
        weights: Some((90, 10)),
        rollout: Some(serde_json::from_value(rollout).expect("a rollout")),
        ..Status::default()
    }
    .with_phase(Phase::AwaitingPromotion)
}

#[tokio::test]
async fn an_authenticated_promote_writes_the_control_attribute_to_the_table() {
    let emulator = exclusive().await;
    let config = support::aws::config(&emulator).await;
    let dynamo = DynamoStore::new(&config, TABLE);
    dynamo.create_table().await.unwrap();
    let store: Arc<dyn DesiredStore> = Arc::new(dynamo);
    let key = ServiceKey::new("prod", "web");

    let written = store
        .write_spec(&key, &record(), Precondition::Absent)
        .await
        .unwrap();
    assert!(matches!(written, SpecWrite::Written { .. }), "{written:?}");
    let stored = store.get(&key).await.unwrap().expect("the record");
    let id: RolloutId = "0123abcd#1".parse().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let status = awaiting(&id, clock.now());
    let w = store
        .write_status(&key, stored.status_version, &status)
        .await
        .unwrap();
    assert!(matches!(w, StatusWrite::Written { .. }), "{w:?}");

    // ECS and the load balancer are not needed to write a request; the
    // simulated cloud stands in for them.
    let sim = SimCloud::builder(1).build();
    let controller = Controller::new(
        Arc::clone(&store),
        Arc::new(sim.clone()),
        Arc::new(sim.clone()),
        Arc::clone(&clock),
        ControllerConfig::default(),
    );
    let router = http::router(ApiState {
        store: Arc::clone(&store),
        lb: Arc::new(sim),
        controller: controller.handle(),
        metrics: Arc::new(Metrics::new().unwrap()),
        clock,
        token: Some(ApiToken::new(TOKEN).unwrap()),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(http::serve(listener, router, shutdown.clone()));

    let path = "/v1/services/prod/web/promote";
    let refused = http_client::post(addr, path, None, "").await;
    assert_eq!(refused.status, 401, "{}", refused.body);

    let body = json!({"rollout": id.to_string()}).to_string();
    let r = http_client::post(addr, path, Some(TOKEN), &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["rollout"], json!("0123abcd#1"));

    let after = store.get(&key).await.unwrap().expect("the record");
    assert_eq!(
        after.body["control"],
        json!({"abort": "ffffffff#1", "promote": {"rollout": "0123abcd#1", "step": 1}}),
        "the promote is added beside the other request"
    );
    assert_ne!(
        after.body.get("updated_at"),
        stored.body.get("updated_at"),
        "the store stamps the write"
    );
    assert_eq!(
        after.status,
        Some(status),
        "the status is the controller's alone"
    );

    let view = http_client::get(addr, "/v1/services/prod/web").await;
    assert_eq!(view.status, 200, "{}", view.body);
    let view: Value = view.json();
    assert_eq!(view["status"]["phase"], "AwaitingPromotion");
    assert!(view["live"].get("error").is_some(), "{view}");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}
