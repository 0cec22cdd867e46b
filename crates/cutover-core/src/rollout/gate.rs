//! Analysis gates declared in a record, the readings the controller takes of
//! them, and the pure rule that turns readings into "go on", "wait" or
//! "roll back". Taking a reading is IO and happens outside this module.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::quote::{not_an_http_url, quote};
use super::strategy::humantime_serde_compat as dur;
use crate::time::Timestamp;

/// The built-in gate: the candidate's target group keeps enough healthy targets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetHealthGate {
    /// Healthy targets needed, as a percentage of the candidate's desired count.
    pub min_healthy_percent: u8,
    /// Consecutive failing checks that fail the rollout. Above 1 by default:
    /// one look can catch a target between its last passing check and ECS
    /// replacing its task.
    pub failure_threshold: u32,
    /// How long a shortfall with no failing target (tasks ECS is starting
    /// or replacing, targets still `initial`) is waited out before it counts
    /// as failing: long enough for a routine task replacement or an auto
    /// scaling step, short enough that a crash loop still rolls back.
    #[serde(with = "dur")]
    pub grace: Duration,
}

/// The longest grace a record may ask for.
pub const MAX_HEALTH_GRACE: Duration = Duration::from_secs(30 * 60);

/// A replacement task takes up to a minute or so to start, and its target is
/// `initial` until it passes HealthyThresholdCount checks in a row, one per
/// HealthCheckIntervalSeconds: 5 × 30 s = 150 s with an HTTP target group's
/// defaults (CreateTargetGroup,
/// https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html).
/// Five minutes covers both, with room for a slow image pull.
pub const DEFAULT_HEALTH_GRACE: Duration = Duration::from_secs(300);

impl Default for TargetHealthGate {
    fn default() -> Self {
        TargetHealthGate {
            min_healthy_percent: 100,
            failure_threshold: 2,
            grace: DEFAULT_HEALTH_GRACE,
        }
    }
}

fn default_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_threshold() -> u32 {
    2
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_status() -> Option<u16> {
    Some(200)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Post,
}

/// A JSON field the answer must hold, by JSON pointer (`/status`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonExpect {
    pub pointer: String,
    pub equals: serde_json::Value,
}

/// GET or POST a URL and check the answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGate {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub method: HttpMethod,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default = "default_status")]
    pub expect_status: Option<u16>,
    #[serde(default)]
    pub expect_body: Option<String>,
    #[serde(default)]
    pub expect_json: Option<JsonExpect>,
    #[serde(default = "default_interval", with = "dur")]
    pub interval: Duration,
    #[serde(default = "default_threshold")]
    pub failure_threshold: u32,
    #[serde(default = "default_timeout", with = "dur")]
    pub timeout: Duration,
}

/// What an empty or NaN query result means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoData {
    #[default]
    Fail,
    Pass,
    /// Neither: wait for data (the progress deadline still runs).
    Wait,
}

/// A PromQL query whose scalar result is compared with a threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusGate {
    pub name: String,
    /// The Prometheus server, e.g. `http://prometheus:9090`.
    pub address: String,
    pub query: String,
    /// Passes while the result is at most this.
    #[serde(default)]
    pub max: Option<f64>,
    /// Passes while the result is at least this.
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub on_empty: NoData,
    #[serde(default)]
    pub on_nan: NoData,
    #[serde(default = "default_interval", with = "dur")]
    pub interval: Duration,
    #[serde(default = "default_threshold")]
    pub failure_threshold: u32,
    #[serde(default = "default_timeout", with = "dur")]
    pub timeout: Duration,
}

/// Any of these CloudWatch alarms in ALARM fails the gate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchGate {
    pub alarms: Vec<String>,
    #[serde(default = "default_interval", with = "dur")]
    pub interval: Duration,
    #[serde(default = "default_threshold")]
    pub failure_threshold: u32,
    #[serde(default = "default_timeout", with = "dur")]
    pub timeout: Duration,
}

/// Candidate tasks that stop during the rollout, like ECS's deployment
/// circuit breaker: this many failed tasks fail the rollout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskFailureGate {
    pub threshold: u32,
}

/// The task failures that fail a candidate when the record sets no
/// `gates.task_failures`: ECS's deployment circuit breaker's threshold, half
/// the desired count at most 200
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeploymentCircuitBreaker.html),
/// which ECS does not apply to task sets of an `EXTERNAL` deployment
/// controller, so cutover counts in its place. Half rounds down: AWS does
/// not say which way, and down rolls back a failing version sooner.
///
/// The circuit breaker's floor is 3; cutover's is 2. A rolling deployment's
/// failed task is replaced before it takes traffic, while a failed task of
/// a candidate that serves production is a share of production without a
/// target until its replacement passes its checks. One failure is churn (a
/// crash now and then); a second says the version keeps failing, and a
/// single-task candidate would otherwise go through a whole bake between
/// failures.
pub fn circuit_breaker_threshold(desired: u32) -> u32 {
    (desired / 2).clamp(2, 200)
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gates {
    pub target_health: TargetHealthGate,
    pub http: Vec<HttpGate>,
    pub prometheus: Vec<PrometheusGate>,
    pub cloudwatch: Option<CloudWatchGate>,
    pub task_failures: Option<TaskFailureGate>,
}

/// One gate the controller must take readings of.
#[derive(Clone, Debug, PartialEq)]
pub enum Probe {
    Http(HttpGate),
    Prometheus(PrometheusGate),
    CloudWatch(CloudWatchGate),
}

impl Probe {
    pub fn name(&self) -> &str {
        match self {
            Probe::Http(g) => &g.name,
            Probe::Prometheus(g) => &g.name,
            Probe::CloudWatch(_) => "cloudwatch",
        }
    }

    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Http(_) => "http",
            Probe::Prometheus(_) => "prometheus",
            Probe::CloudWatch(_) => "cloudwatch",
        }
    }

    pub fn interval(&self) -> Duration {
        match self {
            Probe::Http(g) => g.interval,
            Probe::Prometheus(g) => g.interval,
            Probe::CloudWatch(g) => g.interval,
        }
    }

    pub fn timeout(&self) -> Duration {
        match self {
            Probe::Http(g) => g.timeout,
            Probe::Prometheus(g) => g.timeout,
            Probe::CloudWatch(g) => g.timeout,
        }
    }

    pub fn failure_threshold(&self) -> u32 {
        match self {
            Probe::Http(g) => g.failure_threshold,
            Probe::Prometheus(g) => g.failure_threshold,
            Probe::CloudWatch(g) => g.failure_threshold,
        }
    }
}

impl Gates {
    /// The gates that need readings from outside, in a stable order.
    pub fn probes(&self) -> Vec<Probe> {
        let mut v: Vec<Probe> = self.http.iter().cloned().map(Probe::Http).collect();
        v.extend(self.prometheus.iter().cloned().map(Probe::Prometheus));
        v.extend(self.cloudwatch.iter().cloned().map(Probe::CloudWatch));
        v
    }

    /// Checks names and parameters; errors name the field.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut bad = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, g) in self.http.iter().enumerate() {
            let f = format!("gates.http[{i}]");
            if !(g.url.starts_with("http://") || g.url.starts_with("https://")) {
                bad.push((format!("{f}.url"), not_an_http_url(&g.url)));
            }
            if g.expect_status.is_none() && g.expect_body.is_none() && g.expect_json.is_none() {
                bad.push((
                    f.clone(),
                    "expects nothing: set expect_status, expect_body or expect_json".into(),
                ));
            }
            check_common(
                &mut bad,
                &f,
                &g.name,
                g.failure_threshold,
                g.timeout,
                g.interval,
                &mut names,
            );
        }
        for (i, g) in self.prometheus.iter().enumerate() {
            let f = format!("gates.prometheus[{i}]");
            if !(g.address.starts_with("http://") || g.address.starts_with("https://")) {
                bad.push((format!("{f}.address"), not_an_http_url(&g.address)));
            }
            if g.query.trim().is_empty() {
                bad.push((
                    format!("{f}.query"),
                    "is empty: give a PromQL query with a scalar result".into(),
                ));
            }
            if g.max.is_none() && g.min.is_none() {
                bad.push((
                    f.clone(),
                    "has no threshold: set max (pass while at most) or min (pass while at least)"
                        .into(),
                ));
            }
            check_common(
                &mut bad,
                &f,
                &g.name,
                g.failure_threshold,
                g.timeout,
                g.interval,
                &mut names,
            );
        }
        if let Some(g) = &self.cloudwatch {
            if g.alarms.is_empty() {
                bad.push((
                    "gates.cloudwatch.alarms".into(),
                    "is empty: name at least one alarm".into(),
                ));
            }
            check_common(
                &mut bad,
                "gates.cloudwatch",
                "cloudwatch",
                g.failure_threshold,
                g.timeout,
                g.interval,
                &mut names,
            );
        }
        if let Some(g) = &self.task_failures
            && g.threshold == 0
        {
            bad.push((
                "gates.task_failures.threshold".into(),
                "must be at least 1".into(),
            ));
        }
        bad
    }
}

fn check_common(
    bad: &mut Vec<(String, String)>,
    field: &str,
    name: &str,
    threshold: u32,
    timeout: Duration,
    interval: Duration,
    names: &mut std::collections::BTreeSet<String>,
) {
    if name.trim().is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bad.push((
            format!("{field}.name"),
            format!("{} must be 1-64 letters, digits, '-' or '_'", quote(name)),
        ));
    } else if ["target_health", "task_failures"].contains(&name) || !names.insert(name.to_string())
    {
        bad.push((
            format!("{field}.name"),
            format!("{} is used twice: gate names must be unique", quote(name)),
        ));
    }
    if threshold == 0 {
        bad.push((
            format!("{field}.failure_threshold"),
            "must be at least 1".into(),
        ));
    }
    if timeout.is_zero() || timeout > Duration::from_secs(60) {
        bad.push((
            format!("{field}.timeout"),
            "must be between 1ms and 60s".into(),
        ));
    }
    if interval < Duration::from_secs(1) {
        bad.push((format!("{field}.interval"), "must be at least 1s".into()));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// No data yet: neither passes nor fails.
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// One reading of one gate, taken by the controller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub at: Timestamp,
    pub verdict: Verdict,
    pub detail: String,
}

/// What the status remembers of a gate during a rollout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateState {
    /// The newest reading already counted, so none is counted twice.
    pub last_at: Option<Timestamp>,
    pub consecutive_failures: u32,
    pub last_pass: Option<Timestamp>,
    pub detail: String,
}

/// What the gates say right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assessment {
    /// Every gate passed since `since`.
    Pass,
    /// Some gate has no passing reading since `since` yet.
    Wait(String),
    /// A gate failed `failure_threshold` times in a row.
    Fail { gate: String, detail: String },
}

/// Counts new readings into `state` and judges the gates. A step may move on
/// only once every gate passed at least once after the step began.
pub fn assess(
    probes: &[Probe],
    readings: &BTreeMap<String, Reading>,
    state: &mut BTreeMap<String, GateState>,
    since: Timestamp,
) -> Assessment {
    let mut waiting = Vec::new();
    for probe in probes {
        let name = probe.name();
        let s = state.entry(name.to_string()).or_default();
        if let Some(r) = readings.get(name)
            && s.last_at.is_none_or(|t| r.at > t)
        {
            s.last_at = Some(r.at);
            s.detail = r.detail.clone();
            match r.verdict {
                Verdict::Pass => {
                    s.consecutive_failures = 0;
                    s.last_pass = Some(r.at);
                }
                Verdict::Fail => s.consecutive_failures += 1,
                Verdict::Inconclusive => {}
            }
        }
        if s.consecutive_failures >= probe.failure_threshold() {
            return Assessment::Fail {
                gate: name.to_string(),
                detail: format!(
                    "{} failed checks in a row: {}",
                    s.consecutive_failures, s.detail
                ),
            };
        }
        if s.last_pass.is_none_or(|t| t < since) {
            waiting.push(if s.detail.is_empty() {
                format!("{name} (no reading yet)")
            } else {
                format!("{name} ({})", s.detail)
            });
        }
    }
    if waiting.is_empty() {
        Assessment::Pass
    } else {
        Assessment::Wait(format!("waiting for gates to pass: {}", waiting.join(", ")))
    }
}
