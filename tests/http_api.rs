//! The HTTP API in front of a running controller over the simulated cloud:
//! a real axum server on loopback, a paused tokio clock for the controller.

#[path = "http_client/mod.rs"]
mod http_client;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use cutover::cloud::{Clock, DesiredStore, ScaledClock};
use cutover::controller::{Controller, ControllerConfig, ControllerHandle};
use cutover::http::{self, ApiState, ApiToken};
use cutover::metrics::Metrics;
use cutover::rollout::{Phase, ServiceKey};
use cutover::sim::{DEFAULT_EPOCH, Faults, ServiceSetup, SimCloud};

use http_client::{get, post};

const TOKEN: &str = "test-token-0123456789";

struct Api {
    sim: SimCloud,
    clock: Arc<dyn Clock>,
    addr: SocketAddr,
    handle: ControllerHandle,
    controller: Option<Controller>,
    shutdown: CancellationToken,
}

fn web() -> ServiceKey {
    ServiceKey::new("prod", "web")
}

fn steady() -> ServiceKey {
    ServiceKey::new("prod", "api")
}

/// `prod/web` rolls out `web:2` and waits for a promotion before its last
/// step; `prod/api` already runs what its record asks for.
async fn api(token: Option<&str>) -> Api {
    let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(DEFAULT_EPOCH, 1.0));
    let sim = SimCloud::builder(11)
        .clock(Arc::clone(&clock))
        .faults(Faults::none())
        .build();
    let w = sim.add_service(ServiceSetup::new(web())).unwrap();
    let mut body = w.record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "1m"}),
    );
    body["auto_promote"] = json!(false);
    sim.put_spec(&web(), body);
    let a = sim.add_service(ServiceSetup::new(steady())).unwrap();
    sim.put_spec(&steady(), a.record("api:1", json!("all_at_once")));

    let metrics = Arc::new(Metrics::new().unwrap());
    let controller = Controller::new(
        Arc::new(sim.clone()),
        Arc::new(sim.clone()),
        Arc::new(sim.clone()),
        Arc::clone(&clock),
        ControllerConfig {
            poll_interval: Duration::from_secs(5),
            resync_interval: Duration::from_secs(60),
            seed: 11,
            ..ControllerConfig::default()
        },
    )
    .with_metrics(Arc::clone(&metrics));
    let handle = controller.handle();
    metrics.export_queue(&handle).unwrap();
    let router = http::router(ApiState {
        store: Arc::new(sim.clone()),
        lb: Arc::new(sim.clone()),
        controller: handle.clone(),
        metrics,
        clock: Arc::clone(&clock),
        token: token.map(|t| ApiToken::new(t).unwrap()),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(http::serve(listener, router, shutdown.clone()));
    Api {
        sim,
        clock,
        addr,
        handle,
        controller: Some(controller),
        shutdown,
    }
}

impl Api {
    async fn start(&mut self) {
        if let Some(c) = self.controller.take() {
            tokio::spawn(c.run(self.shutdown.clone()));
        }
        assert!(self.handle.synced().await);
    }

    async fn phase(&self, key: &ServiceKey) -> Option<Phase> {
        let record = DesiredStore::get(&self.sim, key).await.ok()??;
        record.status.map(|s| s.phase())
    }

    async fn wait_for(&self, key: &ServiceKey, phase: Phase) {
        for _ in 0..400 {
            if self.phase(key).await == Some(phase) {
                return;
            }
            self.clock.sleep(Duration::from_secs(5)).await;
        }
        panic!("{key} never reached {phase}: {:?}", self.phase(key).await);
    }

    async fn body(&self, key: &ServiceKey) -> Value {
        DesiredStore::get(&self.sim, key)
            .await
            .unwrap()
            .unwrap()
            .body
    }
}

fn error_of(r: &http_client::Response) -> String {
    let v = r.json();
    assert!(v["message"].is_string(), "{v}");
    v["error"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(start_paused = true)]
async fn readiness_waits_for_the_first_full_sync() {
    let mut api = api(None).await;
    let r = get(api.addr, "/readyz").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["reason"], "not_synced", "{}", r.body);
    assert_eq!(get(api.addr, "/healthz").await.status, 200, "alive anyway");
    api.start().await;
    let r = get(api.addr, "/readyz").await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(start_paused = true)]
async fn actions_are_forbidden_while_no_token_is_configured() {
    let mut api = api(None).await;
    api.start().await;
    api.wait_for(&web(), Phase::AwaitingPromotion).await;
    let r = post(api.addr, "/v1/services/prod/web/promote", Some(TOKEN), "").await;
    assert_eq!(r.status, 403);
    assert_eq!(error_of(&r), "mutations_disabled");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("CUTOVER_API_TOKEN")
    );
    assert!(api.body(&web()).await.get("control").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_missing_or_wrong_token_is_unauthorized_and_the_right_one_promotes() {
    let mut api = api(Some(TOKEN)).await;
    api.start().await;
    api.wait_for(&web(), Phase::AwaitingPromotion).await;
    let path = "/v1/services/prod/web/promote";

    let missing = post(api.addr, path, None, "").await;
    assert_eq!(missing.status, 401);
    assert_eq!(error_of(&missing), "unauthorized");
    assert!(missing.header("www-authenticate").is_some());
    let wrong = post(api.addr, path, Some("not-the-token"), "").await;
    assert_eq!(wrong.status, 401);
    assert!(!wrong.body.contains(TOKEN));
    assert!(api.body(&web()).await.get("control").is_none());

    let r = post(api.addr, path, Some(TOKEN), "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rollout = r.json()["rollout"].as_str().unwrap().to_string();
    let control = &api.body(&web()).await["control"];
    assert_eq!(control["promote"]["rollout"], json!(rollout), "{control}");
    assert!(control["promote"]["step"].is_u64(), "{control}");
    api.wait_for(&web(), Phase::Steady).await;
}

#[tokio::test(start_paused = true)]
async fn an_unknown_service_is_not_found() {
    let mut api = api(Some(TOKEN)).await;
    api.start().await;
    let r = get(api.addr, "/v1/services/prod/nothing").await;
    assert_eq!(r.status, 404);
    assert_eq!(error_of(&r), "not_found");
    let r = post(api.addr, "/v1/services/prod/nothing/pause", Some(TOKEN), "").await;
    assert_eq!(r.status, 404);
    let r = get(api.addr, "/v2/anything").await;
    assert_eq!((r.status, error_of(&r).as_str()), (404, "not_found"));
}

#[tokio::test(start_paused = true)]
async fn actions_that_do_not_apply_now_are_conflicts() {
    let mut api = api(Some(TOKEN)).await;
    api.start().await;
    api.wait_for(&steady(), Phase::Steady).await;
    for action in ["promote", "abort", "retry"] {
        let path = format!("/v1/services/prod/api/{action}");
        let r = post(api.addr, &path, Some(TOKEN), "").await;
        assert_eq!(r.status, 409, "{action}: {}", r.body);
        assert_eq!(error_of(&r), "conflict");
    }
    api.wait_for(&web(), Phase::AwaitingPromotion).await;
    let stale = json!({"rollout": "00000000#9"}).to_string();
    let r = post(
        api.addr,
        "/v1/services/prod/web/promote",
        Some(TOKEN),
        &stale,
    )
    .await;
    assert_eq!(r.status, 409, "a request for another rollout: {}", r.body);
}

/// POSTs `size` bytes with the token. The server may answer before it has
/// read them all and close the connection: what it said still counts.
async fn post_oversized(addr: SocketAddr, path: &str, size: usize) -> http_client::Response {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        if stream.write_all(&chunk[..n]).await.is_err() {
            break;
        }
        left -= n;
    }
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("an answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    http_client::Response {
        status,
        headers: Vec::new(),
        body: body.to_string(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_ten_megabyte_body_is_refused_in_json() {
    let mut api = api(Some(TOKEN)).await;
    api.start().await;
    for path in [
        "/v1/services/prod/web/pause",
        "/v1/services/prod/web/hooks/after_test_traffic",
    ] {
        let r = post_oversized(api.addr, path, 10 * 1024 * 1024).await;
        assert_eq!(r.status, 413, "{path}: {}", r.body);
        assert_eq!(error_of(&r), "body_too_large", "{path}");
        assert!(r.json()["message"].as_str().unwrap().contains("64 KiB"));
    }
    assert_ne!(
        api.body(&web()).await["paused"],
        json!(true),
        "nothing was written"
    );
}

#[tokio::test(start_paused = true)]
async fn malformed_paths_and_bodies_are_bad_requests() {
    let mut api = api(Some(TOKEN)).await;
    api.start().await;
    for (path, body) in [
        ("/v1/services/prod/web/frobnicate", ""),
        ("/v1/services/prod/we%20b/pause", ""),
        ("/v1/services/prod/web/pause", "{"),
        ("/v1/services/prod/web/pause", "[1]"),
        ("/v1/services/prod/web/pause", r#"{"step": 1}"#),
        (
            "/v1/services/prod/web/pause",
            r#"{"rollout": "no-attempt"}"#,
        ),
    ] {
        let r = post(api.addr, path, Some(TOKEN), body).await;
        assert_eq!(r.status, 400, "{path} {body}: {}", r.body);
        assert_eq!(error_of(&r), "bad_request");
    }
    let r = get(api.addr, "/v1/services/prod/we%20b").await;
    assert_eq!(r.status, 400, "{}", r.body);
    // Unauthenticated callers learn nothing about the path.
    let r = post(api.addr, "/v1/services/prod/web/frobnicate", None, "").await;
    assert_eq!(r.status, 401);
}

#[tokio::test(start_paused = true)]
async fn pause_and_resume_write_the_record_and_the_rollout_follows() {
    let mut api = api(Some(TOKEN)).await;
    api.start().await;
    api.wait_for(&web(), Phase::AwaitingPromotion).await;
    let r = post(api.addr, "/v1/services/prod/web/pause", Some(TOKEN), "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(api.body(&web()).await["paused"], json!(true));
    api.wait_for(&web(), Phase::Paused).await;
    let r = post(api.addr, "/v1/services/prod/web/resume", Some(TOKEN), "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    api.wait_for(&web(), Phase::AwaitingPromotion).await;
}

#[tokio::test(start_paused = true)]
async fn services_show_their_status_and_one_service_its_live_weights() {
    let mut api = api(None).await;
    api.start().await;
    api.wait_for(&web(), Phase::AwaitingPromotion).await;
    let list = get(api.addr, "/v1/services").await;
    assert_eq!(list.status, 200);
    let services = list.json()["services"].as_array().unwrap().clone();
    let names: Vec<&str> = services
        .iter()
        .filter_map(|s| s["service"].as_str())
        .collect();
    assert_eq!(names, ["prod/api", "prod/web"]);
    let web_view = &services[1];
    assert_eq!(web_view["status"]["phase"], "AwaitingPromotion");
    assert_eq!(web_view["record"]["valid"], true);
    // Not paused, so `resume` is not offered.
    assert_eq!(
        web_view["actions"],
        json!(["promote", "abort", "pause"]),
        "{web_view}"
    );

    let one = get(api.addr, "/v1/services/prod/web").await;
    assert_eq!(one.status, 200, "{}", one.body);
    let weights = one.json()["live"]["production"].clone();
    let total: u64 = weights
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(total, 100, "{weights}");
    assert!(
        weights.as_object().unwrap().values().any(|w| w == 10),
        "{weights}"
    );
}

#[tokio::test(start_paused = true)]
async fn metrics_are_served_in_the_text_format() {
    let mut api = api(None).await;
    api.start().await;
    api.wait_for(&steady(), Phase::Steady).await;
    let r = get(api.addr, "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert!(r.body.contains("cutover_build_info{version="), "{}", r.body);
    assert!(
        r.body
            .contains("cutover_service_phase{phase=\"Steady\",service=\"prod/api\"} 1"),
        "{}",
        r.body
    );
    assert!(r.body.contains("cutover_workqueue_depth"), "{}", r.body);
}

/// ECS weighs a native service's routes itself: the service's view says so
/// instead of reading a production route the record does not name.
#[tokio::test(start_paused = true)]
async fn a_service_ecs_deploys_itself_shows_that_ecs_owns_its_traffic() {
    let api = api(None).await;
    let pay = ServiceKey::new("prod", "pay");
    let p = api
        .sim
        .add_service(ServiceSetup::native(pay.clone()))
        .unwrap();
    api.sim
        .put_spec(&pay, p.native_record("pay:2", json!("all_at_once")));
    let one = get(api.addr, "/v1/services/prod/pay").await;
    assert_eq!(one.status, 200, "{}", one.body);
    let live = &one.json()["live"];
    assert!(live["ecs_native"].is_string(), "{live}");
    assert!(live.get("error").is_none(), "{live}");
}

#[tokio::test(start_paused = true)]
async fn the_fleet_wide_halt_holds_rollouts_within_a_poll_and_lifting_it_lets_them_go_on() {
    let mut api = api(Some(TOKEN)).await;
    api.start().await;
    api.wait_for(&web(), Phase::AwaitingPromotion).await;
    let body = r#"{"reason": "INC-4411: checkout errors", "by": "oncall"}"#;
    // Without the token nothing is halted, and nothing is said about it.
    let r = http_client::request(api.addr, "POST", "/v1/halt", None, body).await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = http_client::request(api.addr, "DELETE", "/v1/halt", None, "").await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = http_client::request(api.addr, "POST", "/v1/halt", Some(TOKEN), "{}").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["message"].as_str().unwrap().contains("`reason`"));
    assert_eq!(
        get(api.addr, "/v1/halt").await.json()["halted"],
        json!(false)
    );

    let r = http_client::request(api.addr, "POST", "/v1/halt", Some(TOKEN), body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let halted_at = api.clock.now();
    // A second halt leaves the first one, reason and all.
    let again = r#"{"reason": "something else"}"#;
    let r = http_client::request(api.addr, "POST", "/v1/halt", Some(TOKEN), again).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["reason"], json!("INC-4411: checkout errors"));

    api.wait_for(&web(), Phase::Paused).await;
    // Within a poll (5 s) and the pass after it.
    assert!(
        api.clock.now().since(halted_at) <= Duration::from_secs(15),
        "{:?}",
        api.clock.now().since(halted_at)
    );
    let record = DesiredStore::get(&api.sim, &web()).await.unwrap().unwrap();
    let status = record.status.unwrap();
    assert!(
        status.message.contains("INC-4411: checkout errors"),
        "{}",
        status.message
    );
    let shown = get(api.addr, "/v1/halt").await.json();
    assert_eq!(shown["halted"], json!(true));
    assert_eq!(shown["by"], json!("oncall"));
    let metrics = get(api.addr, "/metrics").await.body;
    assert!(metrics.contains("cutover_fleet_halted 1"), "{metrics}");
    assert!(
        metrics.contains(
            r#"cutover_fleet_halt_info{by="oncall",reason="INC-4411: checkout errors"} 1"#
        ),
        "{metrics}"
    );

    let r = http_client::request(api.addr, "DELETE", "/v1/halt", Some(TOKEN), "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    api.wait_for(&web(), Phase::AwaitingPromotion).await;
    let metrics = get(api.addr, "/metrics").await.body;
    assert!(metrics.contains("cutover_fleet_halted 0"), "{metrics}");
    assert!(!metrics.contains("cutover_fleet_halt_info{"), "{metrics}");
    let r = http_client::request(api.addr, "DELETE", "/v1/halt", Some(TOKEN), "").await;
    assert_eq!(r.status, 200, "lifting twice is harmless: {}", r.body);
}
