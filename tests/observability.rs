//! What operators see of a rollout: the metrics a simulated rollout leaves,
//! and that the shipped dashboard and alert rules only use metrics the
//! daemon exports. (Its log lines are tested in `transition_logs.rs`.)

use std::collections::BTreeSet;
use std::time::Duration;

use cutover::aws::calls::{ApiCalls, CallKey, Outcome};
use cutover::rollout::Phase;
use cutover::sim::{FaultProfile, Faults};

#[path = "observed_rollout/mod.rs"]
mod observed_rollout;

use observed_rollout::rollout;

const DASHBOARD: &str = include_str!("../deploy/observability/grafana-dashboard.json");
const RULES: &str = include_str!("../deploy/observability/prometheus-rules.yml");

/// The value of the series named exactly `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(start_paused = true)]
async fn a_promoted_rollout_shows_in_the_metrics() {
    let text = rollout(Faults::none(), &ApiCalls::new()).await;
    let v = |series: &str| value(&text, series).unwrap_or_else(|| panic!("{series}:\n{text}"));
    assert_eq!(v("cutover_rollouts_started_total"), 1.0);
    assert_eq!(
        v("cutover_rollouts_finished_total{outcome=\"promoted\"}"),
        1.0
    );
    assert_eq!(
        v("cutover_rollouts_finished_total{outcome=\"rolled_back\"}"),
        0.0
    );
    assert_eq!(
        v("cutover_rollout_duration_seconds_count{outcome=\"promoted\"}"),
        1.0
    );
    for phase in Phase::ALL {
        let series = format!("cutover_service_phase{{phase=\"{phase}\",service=\"prod/web\"}}");
        let want = if phase == Phase::Steady { 1.0 } else { 0.0 };
        assert_eq!(v(&series), want, "{series}");
    }
    assert_eq!(
        v("cutover_service_candidate_weight{service=\"prod/web\"}"),
        0.0
    );
    assert_eq!(
        v("cutover_service_steps_completed{service=\"prod/web\"}"),
        0.0
    );
    assert!(
        v("cutover_gate_evaluations_total{gate=\"target_health\",result=\"pass\"}") > 0.0,
        "the candidate's health was checked while it had traffic"
    );
    assert!(v("cutover_reconcile_duration_seconds_count") > 0.0);
    assert_eq!(
        v("cutover_detection_latency_seconds_count"),
        1.0,
        "one write, one first action"
    );
    assert!(
        v("cutover_detection_latency_seconds_bucket{le=\"5\"}") >= 1.0,
        "the change feed made it prompt"
    );
    assert_eq!(v("cutover_workqueue_in_flight"), 0.0);
    assert!(text.contains("cutover_workqueue_depth "), "{text}");
    assert!(text.contains("cutover_workqueue_oldest_item_age_seconds "));
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("cutover_reconcile_errors_total{"))
        .collect();
    assert!(!errors.is_empty(), "the failure counters start at zero");
    assert!(
        errors.iter().all(|l| l.ends_with(" 0")),
        "no faults, no errors: {errors:?}"
    );
}

const README: &str = include_str!("../README.md");

/// The metric names in the first column of the README's metrics table.
fn documented_metrics() -> BTreeSet<String> {
    let table = README
        .split("| metric | labels | meaning |")
        .nth(1)
        .expect("the README has a metrics table");
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1))
        .flat_map(|cell| cell.split('`').skip(1).step_by(2))
        .map(str::to_string)
        .collect()
}

/// The metric families a scrape shows (no histogram series suffixes).
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_readme_metrics_table_lists_exactly_what_the_daemon_exports() {
    let calls = ApiCalls::new();
    calls.record(
        CallKey {
            service: "dynamodb",
            operation: "Scan",
            outcome: Outcome::Ok,
        },
        Duration::from_millis(5),
    );
    let mut exported = families(&rollout(Faults::none(), &calls).await);
    // The request budgets, wired as `cutover run` wires them.
    let budgeted = cutover::metrics::Metrics::new().unwrap();
    let clock: std::sync::Arc<dyn cutover::cloud::Clock> = std::sync::Arc::new(
        cutover::cloud::ScaledClock::new(cutover::sim::DEFAULT_EPOCH, 1.0),
    );
    budgeted
        .export_budgets(&cutover::cloud::budget::ApiBudgets::new(
            &cutover::cloud::budget::BudgetConfig::default(),
            clock,
        ))
        .unwrap();
    // A halt and a release: their series exist only while there is one.
    budgeted.halt(Some(&cutover::rollout::halt::Halt {
        reason: "INC-1".into(),
        by: None,
        since: None,
    }));
    budgeted.release("release:r", &cutover::fleet::ReleaseStatus::default());
    exported.extend(families(&budgeted.render().unwrap()));

    let documented = documented_metrics();
    let undocumented: Vec<&String> = exported.difference(&documented).collect();
    let stale: Vec<&String> = documented.difference(&exported).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "exported but not in the README's table: {undocumented:?}; in the table but not exported: {stale:?}"
    );
}

/// Metric names a scrape shows, with the series names of histograms.
fn exported(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        names.insert(name.to_string());
        if kind == "histogram" || kind == "summary" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    names
}

/// Every `cutover_…` identifier in a text (PromQL in JSON or YAML).
fn referenced(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("cutover_"))
        .map(str::to_string)
        .collect()
}

fn exprs_of_dashboard() -> Vec<String> {
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    panels
        .iter()
        .filter_map(|p| p["targets"].as_array())
        .flatten()
        .map(|t| {
            t["expr"]
                .as_str()
                .expect("every target has an expr")
                .to_string()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_dashboard_and_the_alert_rules_use_only_exported_metrics() {
    // Over the simulated cloud no SDK call is made, so the AWS collector is
    // given the kinds of attempt the interceptor records.
    let calls = ApiCalls::new();
    for outcome in Outcome::ALL {
        let key = CallKey {
            service: "ecs",
            operation: "DescribeServices",
            outcome,
        };
        calls.record(key, Duration::from_millis(40));
    }
    // Throttled reads make some passes fail, so the error counter shows.
    let faults = Faults {
        ecs_read: FaultProfile::flaky(0.3, 0.0),
        ..Faults::none()
    };
    let text = rollout(faults, &calls).await;
    let exported = exported(&text);
    assert!(
        exported.contains("cutover_reconcile_errors_total"),
        "{text}"
    );
    assert!(exported.contains("cutover_aws_throttles_total"), "{text}");

    let dashboard = exprs_of_dashboard();
    assert!(dashboard.len() >= 10, "{dashboard:?}");
    let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(RULES).expect("rules are YAML");
    let rules = rules["groups"][0]["rules"]
        .as_sequence()
        .expect("a group of rules")
        .clone();
    for rule in &rules {
        let name = rule["alert"].as_str().expect("every rule is an alert");
        assert!(rule["expr"].as_str().is_some(), "{name}");
        assert!(rule["labels"]["severity"].as_str().is_some(), "{name}");
        assert!(rule["annotations"]["summary"].as_str().is_some(), "{name}");
    }

    let used: BTreeSet<String> = referenced(DASHBOARD)
        .union(&referenced(RULES))
        .cloned()
        .collect();
    let unknown: Vec<&String> = used.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "referenced but not exported: {unknown:?}\nexported: {exported:?}"
    );
    for wanted in [
        "cutover_service_phase",
        "cutover_service_candidate_weight",
        "cutover_rollouts_finished_total",
        "cutover_reconcile_duration_seconds_bucket",
        "cutover_aws_requests_total",
        "cutover_aws_throttles_total",
        "cutover_workqueue_depth",
        "cutover_detection_latency_seconds_bucket",
    ] {
        assert!(
            referenced(DASHBOARD).contains(wanted),
            "the dashboard lacks {wanted}"
        );
    }
    let alerts: Vec<&str> = rules.iter().filter_map(|r| r["alert"].as_str()).collect();
    for wanted in [
        "CutoverRollbackHappened",
        "CutoverRolloutStuck",
        "CutoverReconcileErrors",
        "CutoverAwsThrottling",
    ] {
        assert!(alerts.contains(&wanted), "no {wanted} alert: {alerts:?}");
    }
}
