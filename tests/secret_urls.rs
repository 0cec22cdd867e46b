//! A URL that fails validation in a record (a hook, an HTTP gate, a
//! Prometheus address, a notification) is never echoed whole: user info,
//! path and query are often the secret. The record is refused as invalid,
//! and the status, its history, the logs and `GET /v1/services` show at
//! most the URL's scheme and host.

#[path = "http_client/mod.rs"]
mod http_client;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use cutover::cloud::{Clock, DesiredStore, ScaledClock};
use cutover::controller::{Controller, ControllerConfig};
use cutover::http::{self, ApiState};
use cutover::metrics::Metrics;
use cutover::rollout::{Phase, ServiceKey};
use cutover::sim::{DEFAULT_EPOCH, Faults, ServiceSetup, SimCloud};

/// The parts of the URLs below that must never be shown.
const SECRETS: [&str; 4] = ["alice", "s3cretPW", "SECRETPATH", "SECRETTOKEN"];
const BAD: &str = "ftp://alice:s3cretPW@hooks.example.com/SECRETPATH?token=SECRETTOKEN";

/// Everything the controller logs, as text.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows {secret:?}: {text}");
    }
}

#[tokio::test(start_paused = true)]
async fn urls_that_fail_validation_show_only_their_scheme_and_host() {
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(DEFAULT_EPOCH, 1.0));
    let sim = SimCloud::builder(5)
        .clock(Arc::clone(&clock))
        .faults(Faults::none())
        .build();
    let key = ServiceKey::new("prod", "web");
    let arns = sim.add_service(ServiceSetup::new(key.clone())).unwrap();
    let mut body = arns.record("web:2", json!("all_at_once"));
    body["hooks"] = json!({"before_install": {"url": BAD}});
    body["gates"] = json!({
        "http": [{"name": "ready", "url": BAD, "expect_status": 200}],
        "prometheus": [{"name": "errors", "address": BAD, "query": "up", "max": 1}],
    });
    body["notifications"] = json!([{"url": BAD}]);
    sim.put_spec(&key, body);

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
    );
    let metrics = Arc::new(Metrics::new().unwrap());
    let router = http::router(ApiState {
        store: Arc::new(sim.clone()),
        lb: Arc::new(sim.clone()),
        controller: controller.handle(),
        metrics,
        clock: Arc::clone(&clock),
        token: None,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(http::serve(listener, router, shutdown.clone()));
    tokio::spawn(controller.run(shutdown.clone()));

    let mut status = None;
    for _ in 0..60 {
        clock.sleep(Duration::from_secs(5)).await;
        sim.advance();
        let record = DesiredStore::get(&sim, &key).await.unwrap().unwrap();
        if record
            .status
            .as_ref()
            .is_some_and(|s| s.phase() == Phase::Invalid)
        {
            status = record.status;
            break;
        }
    }
    let status = status.expect("the record is refused as invalid");
    // Each field at fault is named, with the scheme and host it has.
    for field in [
        "hooks.before_install.url",
        "gates.http[0].url",
        "gates.prometheus[0].address",
        "notifications[0].url",
    ] {
        assert!(
            status.message.contains(field),
            "{field}: {}",
            status.message
        );
    }
    assert!(status.message.contains("\"ftp\""), "{}", status.message);
    assert!(
        status.message.contains("hooks.example.com"),
        "{}",
        status.message
    );
    assert_no_secret("the status", &serde_json::to_string(&status).unwrap());

    let listed = http_client::get(addr, "/v1/services").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(listed.body.contains("hooks.example.com"), "{}", listed.body);
    assert_no_secret("GET /v1/services", &listed.body);
    let one = http_client::get(addr, "/v1/services/prod/web").await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_no_secret("GET /v1/services/prod/web", &one.body);

    shutdown.cancel();
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logged.contains("prod/web"),
        "the controller logged: {logged}"
    );
    assert_no_secret("the logs", &logged);
}
