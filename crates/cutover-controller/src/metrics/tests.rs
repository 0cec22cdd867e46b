use std::time::Duration;

use super::*;
use crate::cloud::calls::{CallKey, Outcome as CallOutcome};
use crate::rollout::status::Rollout;
use crate::rollout::{Revision, RolloutId};
use crate::time::Timestamp;

/// The value of the series named exactly `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn rollout_id() -> RolloutId {
    RolloutId {
        revision: Revision::from_raw("0123abcd"),
        attempt: 1,
    }
}

#[test]
fn each_registry_is_its_own_and_reports_the_version() {
    let a = Metrics::new().unwrap();
    let b = Metrics::new().unwrap();
    a.event(&Event::RolloutStarted {
        rollout: rollout_id(),
    });
    let version = env!("CARGO_PKG_VERSION");
    let text = b.render().unwrap();
    assert_eq!(value(&text, "cutover_rollouts_started_total"), Some(0.0));
    assert_eq!(
        value(
            &text,
            &format!("cutover_build_info{{version=\"{version}\"}}")
        ),
        Some(1.0)
    );
    let text = a.render().unwrap();
    assert_eq!(value(&text, "cutover_rollouts_started_total"), Some(1.0));
}

#[test]
fn finished_rollouts_are_counted_and_timed_by_outcome() {
    let m = Metrics::new().unwrap();
    m.event(&Event::RolloutFinished {
        rollout: rollout_id(),
        outcome: Outcome::RolledBack,
        duration: Duration::from_secs(200),
    });
    let text = m.render().unwrap();
    let finished = |o: &str| {
        value(
            &text,
            &format!("cutover_rollouts_finished_total{{outcome=\"{o}\"}}"),
        )
    };
    assert_eq!(finished("rolled_back"), Some(1.0));
    assert_eq!(finished("promoted"), Some(0.0), "known outcomes start at 0");
    assert_eq!(
        value(
            &text,
            "cutover_rollout_duration_seconds_bucket{outcome=\"rolled_back\",le=\"300\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "cutover_rollout_duration_seconds_bucket{outcome=\"rolled_back\",le=\"120\"}"
        ),
        Some(0.0)
    );
}

#[test]
fn gate_checks_are_counted_by_result() {
    let m = Metrics::new().unwrap();
    for passed in [true, true, false] {
        m.event(&Event::GateEvaluated {
            gate: "target_health",
            passed,
        });
    }
    let text = m.render().unwrap();
    let gate = |r: &str| {
        value(
            &text,
            &format!("cutover_gate_evaluations_total{{gate=\"target_health\",result=\"{r}\"}}"),
        )
    };
    assert_eq!(gate("pass"), Some(2.0));
    assert_eq!(gate("fail"), Some(1.0));
}

#[test]
fn the_phase_gauge_has_one_series_per_phase_and_follows_the_status_until_the_record_goes() {
    let m = Metrics::new().unwrap();
    let key = ServiceKey::new("prod", "web");
    let status = Status {
        weights: Some((90, 10)),
        phase_since: Timestamp(1_700_000_000_000),
        rollout: Some(Rollout {
            step: 2,
            ..Rollout::new(rollout_id(), None, "tg".into(), Timestamp(0))
        }),
        ..Status::default()
    }
    .with_phase(Phase::Shifting);
    m.service(&key, &status);
    let text = m.render().unwrap();
    let phase = |p: &str| {
        value(
            &text,
            &format!("cutover_service_phase{{phase=\"{p}\",service=\"prod/web\"}}"),
        )
    };
    assert_eq!(phase("Shifting"), Some(1.0));
    assert_eq!(phase("Steady"), Some(0.0));
    let series = text
        .lines()
        .filter(|l| l.starts_with("cutover_service_phase{"))
        .count();
    assert_eq!(series, Phase::ALL.len());
    let weight = "cutover_service_candidate_weight{service=\"prod/web\"}";
    assert_eq!(value(&text, weight), Some(10.0));
    let steps = "cutover_service_steps_completed{service=\"prod/web\"}";
    assert_eq!(value(&text, steps), Some(2.0));
    let since = "cutover_service_phase_since_timestamp_seconds{service=\"prod/web\"}";
    assert_eq!(value(&text, since), Some(1_700_000_000.0));

    m.service_gone(&key);
    let text = m.render().unwrap();
    assert!(!text.contains("prod/web"), "{text}");
}

#[test]
fn aws_calls_are_exported_with_throttles_and_latency_per_operation() {
    let calls = ApiCalls::new();
    let key = |outcome| CallKey {
        service: "ecs",
        operation: "DescribeServices",
        outcome,
    };
    calls.record(key(CallOutcome::Ok), Duration::from_millis(20));
    calls.record(key(CallOutcome::Ok), Duration::from_millis(20));
    calls.record(key(CallOutcome::Throttled), Duration::from_millis(400));
    let m = Metrics::new().unwrap();
    m.export_api_calls(&calls).unwrap();
    // Counted after registration too: the collector reads at scrape time.
    calls.record(key(CallOutcome::Error), Duration::from_secs(3));
    let text = m.render().unwrap();
    let labels = "operation=\"DescribeServices\",service=\"ecs\"";
    for (outcome, n) in [("ok", 2.0), ("throttled", 1.0), ("error", 1.0)] {
        let series = format!(
            "cutover_aws_requests_total{{operation=\"DescribeServices\",outcome=\"{outcome}\",service=\"ecs\"}}"
        );
        assert_eq!(value(&text, &series), Some(n), "{series}\n{text}");
    }
    let throttles = format!("cutover_aws_throttles_total{{{labels}}}");
    assert_eq!(value(&text, &throttles), Some(1.0));
    let count = format!("cutover_aws_request_duration_seconds_count{{{labels}}}");
    assert_eq!(value(&text, &count), Some(4.0));
    let fast = format!("cutover_aws_request_duration_seconds_bucket{{{labels},le=\"0.025\"}}");
    assert_eq!(value(&text, &fast), Some(2.0));
    let all = format!("cutover_aws_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}}");
    assert_eq!(value(&text, &all), Some(4.0));
}

#[test]
fn names_follow_the_prometheus_conventions() {
    let calls = ApiCalls::new();
    calls.record(
        CallKey {
            service: "ecs",
            operation: "DescribeServices",
            outcome: CallOutcome::Ok,
        },
        Duration::from_millis(1),
    );
    let m = Metrics::new().unwrap();
    m.export_api_calls(&calls).unwrap();
    m.reconciled(Duration::from_millis(3));
    m.detected(Duration::from_secs(1));
    m.reconcile_failed("observe", "throttled");
    for family in m.registry().gather() {
        let name = family.name();
        assert!(name.starts_with("cutover_"), "{name}");
        match family.get_field_type() {
            prometheus::proto::MetricType::COUNTER => {
                assert!(name.ends_with("_total"), "{name}")
            }
            prometheus::proto::MetricType::HISTOGRAM => {
                assert!(name.ends_with("_seconds"), "{name}")
            }
            _ => assert!(!name.ends_with("_total"), "{name}"),
        }
        assert!(!family.help().is_empty(), "{name} has no help");
    }
}

#[test]
fn a_fresh_controller_exports_every_failure_counter_and_duration_histogram_at_zero() {
    let text = Metrics::new().unwrap().render().unwrap();
    for stage in ["read_record", "observe", "command", "write_status"] {
        for kind in [
            "throttled",
            "transient",
            "not_found",
            "invalid",
            "denied",
            "other",
        ] {
            let series =
                format!("cutover_reconcile_errors_total{{kind=\"{kind}\",stage=\"{stage}\"}}");
            assert_eq!(value(&text, &series), Some(0.0), "{series}:\n{text}");
        }
    }
    assert_eq!(
        value(
            &text,
            "cutover_reconcile_errors_total{kind=\"panic\",stage=\"panic\"}"
        ),
        Some(0.0)
    );
    for outcome in Outcome::ALL {
        let o = outcome.as_str();
        for series in [
            format!("cutover_rollout_duration_seconds_count{{outcome=\"{o}\"}}"),
            format!("cutover_rollout_duration_seconds_bucket{{outcome=\"{o}\",le=\"+Inf\"}}"),
        ] {
            assert_eq!(value(&text, &series), Some(0.0), "{series}:\n{text}");
        }
    }
}
