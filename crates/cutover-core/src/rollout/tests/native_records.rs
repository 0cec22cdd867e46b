//! `driver = "ecs_native"` in the record: the strategy, bake and progress
//! deadline become ECS's own, and every field ECS owns is refused by name.

use serde_json::{Value, json};

use super::fixture::{BLUE, GREEN, PROD, record};
use super::native::native_record;
use crate::rollout::revision::Revision;
use crate::rollout::service_deployment::NativeStrategy;
use crate::rollout::{ServiceKey, Spec, Version, parse_record};

fn key() -> ServiceKey {
    ServiceKey::new("prod", "web")
}

fn spec(body: &Value) -> Spec {
    parse_record(&key(), body).unwrap_or_else(|e| panic!("{e}"))
}

fn problems(body: Value) -> String {
    parse_record(&key(), &body).unwrap_err().to_string()
}

fn with_strategy(strategy: Value) -> Value {
    native_record("web:2", strategy)
}

#[test]
fn strategies_map_onto_ecss_with_the_bake_and_the_pause_timeout() {
    for (strategy, want, name) in [
        (
            json!("all_at_once"),
            NativeStrategy::BlueGreen,
            "BLUE_GREEN",
        ),
        (
            json!({"type": "canary", "percent": 10, "interval": "5m"}),
            NativeStrategy::Canary {
                percent: 10,
                bake_minutes: 5,
            },
            "CANARY",
        ),
        (
            json!({"type": "linear", "percent": 20, "interval": "1m"}),
            NativeStrategy::Linear {
                percent: 20,
                bake_minutes: 1,
            },
            "LINEAR",
        ),
    ] {
        let s = spec(&with_strategy(strategy));
        assert_eq!(s.driver.name(), "ecs_native");
        assert!(!s.driver.shifts_traffic() && s.driver.codedeploy().is_none());
        let n = s.driver.native().expect("an ecs_native record");
        assert_eq!(n.strategy, want);
        assert_eq!(n.strategy.name(), name);
        // bake = "2m", progress_deadline = "5m".
        assert_eq!((n.bake_minutes, n.pause_timeout_minutes), (2, 5));
    }
}

#[test]
fn a_step_list_that_is_a_canary_or_linear_is_run_as_one() {
    let canary = with_strategy(json!({"type": "steps", "steps": [
        {"set_weight": 10}, {"pause": "5m"}, {"set_weight": 100},
    ]}));
    assert_eq!(
        spec(&canary).driver.native().unwrap().strategy,
        NativeStrategy::Canary {
            percent: 10,
            bake_minutes: 5
        }
    );
    let linear = with_strategy(json!({"type": "steps", "steps": [
        {"set_weight": 25}, {"pause": "2m"}, {"set_weight": 50}, {"pause": "2m"},
        {"set_weight": 75}, {"pause": "2m"}, {"set_weight": 100},
    ]}));
    assert_eq!(
        spec(&linear).driver.native().unwrap().strategy,
        NativeStrategy::Linear {
            percent: 25,
            bake_minutes: 2
        }
    );
}

#[test]
fn an_uneven_step_list_is_refused_and_names_the_driver_that_runs_it() {
    let e = problems(with_strategy(json!({"type": "steps", "steps": [
        {"set_weight": 10}, {"pause": "5m"}, {"set_weight": 50}, {"pause": "5m"},
        {"set_weight": 100},
    ]})));
    assert!(
        e.contains("field `strategy.steps`") && e.contains("driver = \"ecs\""),
        "{e}"
    );
}

#[test]
fn a_linear_step_below_ecss_smallest_is_refused() {
    let e = problems(with_strategy(
        json!({"type": "linear", "percent": 2, "interval": "1m"}),
    ));
    assert!(
        e.contains("field `strategy.percent`") && e.contains("use 3 to"),
        "{e}"
    );
    spec(&with_strategy(
        json!({"type": "linear", "percent": 3, "interval": "1m"}),
    ));
}

#[test]
fn an_interval_of_part_of_a_minute_is_refused() {
    let e = problems(with_strategy(
        json!({"type": "canary", "percent": 10, "interval": "90s"}),
    ));
    assert!(
        e.contains("field `strategy.interval`") && e.contains("not whole minutes"),
        "{e}"
    );
}

#[test]
fn a_bake_over_a_day_is_refused() {
    let mut body = with_strategy(json!("all_at_once"));
    body["bake"] = json!("24h");
    assert_eq!(spec(&body).driver.native().unwrap().bake_minutes, 1440);
    body["bake"] = json!("25h");
    let e = problems(body);
    assert!(e.contains("field `bake`") && e.contains("1440"), "{e}");
}

#[test]
fn a_progress_deadline_over_fourteen_days_is_refused() {
    let mut body = with_strategy(json!("all_at_once"));
    body["progress_deadline"] = json!("14days");
    assert_eq!(
        spec(&body).driver.native().unwrap().pause_timeout_minutes,
        20_160
    );
    body["progress_deadline"] = json!("15days");
    let e = problems(body);
    assert!(
        e.contains("field `progress_deadline`") && e.contains("14 days"),
        "{e}"
    );
}

#[test]
fn fields_ecs_owns_are_refused_by_name() {
    let mut body = with_strategy(json!("all_at_once"));
    body["target_groups"] = json!([BLUE, GREEN]);
    body["production_listener"] = json!(PROD);
    body["gates"] = json!({"task_failures": {"threshold": 2}});
    let e = problems(body);
    for field in ["target_groups", "production_listener"] {
        assert!(
            e.contains(&format!(
                "field `{field}`: is not used with driver = \"ecs_native\": ECS owns"
            )),
            "{field}: {e}"
        );
    }
    assert!(
        e.contains(
            "field `gates.task_failures`: is not used with driver = \"ecs_native\": ECS replaces"
        ),
        "{e}"
    );
}

/// ECS's blue/green has no circuit breaker: the target health gate is the
/// new revision's health check, and a record may tune it.
#[test]
fn the_target_health_gate_is_kept_under_ecs_native() {
    let mut body = with_strategy(json!("all_at_once"));
    body["gates"] = json!({"target_health": {"min_healthy_percent": 50}});
    let spec = parse_record(&ServiceKey::new("prod", "web"), &body).expect("valid");
    assert_eq!(spec.gates.target_health.min_healthy_percent, 50);
}

#[test]
fn no_container_or_port_is_needed_but_an_image_needs_its_container() {
    let s = spec(&with_strategy(json!("all_at_once")));
    assert_eq!(s.version, Version::TaskDefinition("web:2".into()));
    let mut body = with_strategy(json!("all_at_once"));
    body.as_object_mut().unwrap().remove("task_definition");
    body["image"] = json!("repo/web:2");
    let e = problems(body.clone());
    assert!(e.contains("field `container`: is missing"), "{e}");
    body["container"] = json!("app");
    assert_eq!(
        spec(&body).version,
        Version::Image {
            image: "repo/web:2".into(),
            container: "app".into()
        }
    );
}

#[test]
fn the_driver_is_part_of_the_revision() {
    // What the revision of the same wiring is under driver = "ecs": the
    // digest of the version, traffic and placement alone.
    let under_ecs = |s: &Spec| {
        Revision::digest(&json!({
            "version": s.version,
            "traffic": s.traffic,
            "placement": s.placement,
        }))
    };
    let ecs = spec(&record("web:2", json!("all_at_once")));
    assert_eq!(ecs.revision, under_ecs(&ecs), "how driver ecs digests it");
    let native = spec(&with_strategy(json!("all_at_once")));
    assert_ne!(native.revision, under_ecs(&native));
    assert_ne!(
        native.revision,
        spec(&native_record("web:3", json!("all_at_once"))).revision
    );
}

#[test]
fn an_unknown_driver_is_refused_and_ecs_native_is_named() {
    let mut body = with_strategy(json!("all_at_once"));
    body["driver"] = json!("ecs-native");
    let e = problems(body);
    assert!(
        e.contains("field `driver`") && e.contains("\"ecs_native\""),
        "{e}"
    );
}
