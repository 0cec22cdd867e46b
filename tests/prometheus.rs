//! The shipped dashboard and alert rules against a real Prometheus: it
//! scrapes the `cutover run` binary (against the local AWS emulator) through
//! one rollout and one rollback, loads the rules, and every expression of
//! every dashboard panel must return at least one series that is not NaN.
//! `promtool` checks the rules and a scrape.
//!
//! Prometheus comes from Debian's package, installed by
//! `scripts/prometheus install`; where it cannot be had, the test says so in
//! one line and skips.

mod support;
// Shared with the other end-to-end tests, which use more of it.
#[allow(dead_code)]
#[path = "e2e/world.rs"]
mod world;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use world::{Daemon, World, init_table};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const SCRAPE: &str = "1s";

/// Installs the pinned package if it can; the reason if it cannot.
fn prometheus_installed() -> Result<(), String> {
    let out = Command::new(Path::new(ROOT).join("scripts/prometheus"))
        .arg("install")
        .output()
        .map_err(|e| format!("scripts/prometheus could not run: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&out.stderr);
    Err(why.lines().last().unwrap_or("no reason given").to_string())
}

struct Prometheus {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, target: &str) -> Prometheus {
        let rules = Path::new(ROOT).join("deploy/observability/prometheus-rules.yml");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: {SCRAPE}\n  evaluation_interval: {SCRAPE}\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: cutover\n    static_configs:\n      - targets: ['{target}']\n",
                rules.display()
            ),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus starts");
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An instant query through the HTTP API.
    async fn query(&self, expr: &str) -> Value {
        let response = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", expr)])
            .send()
            .await
            .unwrap_or_else(|e| panic!("querying {expr}: {e}\n{}", self.logs()));
        response.json().await.unwrap()
    }

    async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = reqwest::get(format!("{}/-/ready", self.url)).await;
            if up.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus not ready within 30 s:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An expression as Grafana would send it: every variable and interval
/// macro replaced by what the dashboard would use for this short run.
fn as_grafana_sends(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("${__range}", "10m")
        .replace("$__range", "10m")
        .replace("$__interval", SCRAPE)
        .replace("${service}", ".*")
        .replace("$service", ".*")
}

fn phase(status: &Option<Value>) -> String {
    status
        .as_ref()
        .and_then(|s| s["phase"].as_str())
        .unwrap_or("-")
        .to_string()
}

async fn candidate(w: &World) -> bool {
    w.task_sets()
        .await
        .iter()
        .any(|(_, ext, _)| ext.as_deref().is_some_and(|e| e.starts_with("cutover:")))
}

/// Waits until the record's rollout has ended in `goal`, playing ECS's part
/// (registering the candidate's targets) only if `healthy`.
async fn until_phase(w: &World, daemon: &Daemon, goal: &str, healthy: bool) {
    let start = Instant::now();
    let mut registered = false;
    loop {
        let status = w.status().await;
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "no {goal} within 90 s: {status:?}\n{}",
            daemon.logs()
        );
        if healthy && !registered && candidate(w).await {
            w.register_targets(&w.green.clone(), 20).await;
            registered = true;
        }
        if phase(&status) == goal && status.as_ref().is_some_and(|s| s["rollout"].is_null()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_expression_has_data_after_a_rollout_and_a_rollback() {
    if let Err(why) = prometheus_installed() {
        eprintln!("SKIPPED: the Prometheus test needs the Debian package prometheus: {why}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("cutover-prometheus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let w = world::world().await;
    init_table(&w.endpoint());
    let daemon = Daemon::start(&w.endpoint());
    let started = Instant::now();
    while !daemon.logs().contains("listen=") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let prometheus = Prometheus::start(&dir, &daemon.address());
    prometheus.ready().await;

    // One rollout to the end...
    w.put_record(&w.record(
        "web:2",
        json!({"type": "canary", "percent": 30, "interval": "3s"}),
        "60s",
    ))
    .await;
    until_phase(&w, &daemon, "Steady", true).await;
    // ...and one whose candidate never gets a healthy target: the old
    // version's group is emptied first, so the rollback back onto it has
    // nothing to rely on but its deadline.
    w.elb
        .deregister_targets()
        .target_group_arn(&w.blue)
        .targets(
            aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                .id("10.0.10.1")
                .port(8080)
                .build(),
        )
        .targets(
            aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                .id("10.0.10.2")
                .port(8080)
                .build(),
        )
        .send()
        .await
        .unwrap();
    w.put_record(&w.record("web:1", json!("all_at_once"), "30s"))
        .await;
    until_phase(&w, &daemon, "Failed", false).await;
    // A few more scrapes, so that every rate() has two samples past the end.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(ROOT).join("deploy/observability/grafana-dashboard.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    let mut empty = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let Some(expr) = target["expr"].as_str() else {
                continue;
            };
            let sent = as_grafana_sends(expr);
            let answer = prometheus.query(&sent).await;
            assert_eq!(answer["status"], "success", "{sent}: {answer}");
            let series = answer["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let numbers = series
                .iter()
                .filter_map(|s| s["value"][1].as_str())
                .filter(|v| *v != "NaN")
                .count();
            if numbers == 0 {
                empty.push(format!(
                    "{} | {sent} -> {}",
                    panel["title"].as_str().unwrap_or("?"),
                    answer["data"]
                ));
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} expressions in the dashboard");
    assert!(
        empty.is_empty(),
        "expressions with no series that is a number:\n{}",
        empty.join("\n")
    );

    // Prometheus loaded every rule and evaluates it without error.
    let rules: Value = reqwest::get(format!("{}/api/v1/rules", prometheus.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let loaded: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect();
    assert!(loaded.len() >= 5, "{rules}");
    for rule in loaded {
        assert_eq!(rule["health"], "ok", "{rule}");
    }

    // promtool: the rules as shipped, and the exposition as served.
    let rules_file = Path::new(ROOT).join("deploy/observability/prometheus-rules.yml");
    let out = Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&rules_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let scrape = daemon.get("/metrics").await;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = promtool.stdin.take().unwrap();
        stdin.write_all(scrape.as_bytes()).unwrap();
    }
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    drop(prometheus);
    let exit = daemon.stop();
    assert!(exit.success(), "exit {exit:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
