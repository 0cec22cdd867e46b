//! Strict parsing: every mistake names its field and the fix.

use serde_json::json;

use super::fixture::record;
use crate::rollout::{ServiceKey, Strategy, Version, parse_record};

fn key() -> ServiceKey {
    ServiceKey::new("prod", "web")
}

fn error_of(body: serde_json::Value) -> String {
    parse_record(&key(), &body).unwrap_err().to_string()
}

#[test]
fn a_complete_record_parses_with_defaults() {
    let spec = parse_record(&key(), &record("web:2", json!("all_at_once"))).unwrap();
    assert_eq!(spec.version, Version::TaskDefinition("web:2".into()));
    assert_eq!(spec.strategy, Strategy::AllAtOnce);
    assert!(spec.auto_promote);
    assert!(!spec.paused);
}

#[test]
fn an_unknown_field_is_named() {
    let mut body = record("web:2", json!("all_at_once"));
    body["stratgy"] = json!("all_at_once");
    let e = error_of(body);
    assert!(e.contains("stratgy"), "{e}");
}

#[test]
fn a_nested_mistake_names_its_path() {
    let e = error_of(record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "5 parsecs"}),
    ));
    assert!(e.contains("strategy.interval"), "{e}");
    let e = error_of(record(
        "web:2",
        json!({"type": "canary", "percent": 0, "interval": "5m"}),
    ));
    assert!(
        e.contains("strategy.percent") && e.contains("1 to 99"),
        "{e}"
    );
    let e = error_of(record("web:2", json!({"type": "canery"})));
    assert!(e.contains("strategy") && e.contains("canary"), "{e}");
    let e = error_of(record("web:2", json!("ECSCanary")));
    assert!(e.contains("CodeDeployDefault"), "{e}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut body = record("web", json!("all_at_once"));
    body["target_groups"] = json!(["arn:aws:elasticloadbalancing:x:targetgroup/a/1"]);
    body.as_object_mut().unwrap().remove("container");
    let e = error_of(body);
    for field in ["task_definition", "target_groups", "container"] {
        assert!(
            e.contains(&format!("`{field}`")),
            "{field} missing from: {e}"
        );
    }
}

#[test]
fn version_needs_exactly_one_of_task_definition_or_image() {
    let mut body = record("web:2", json!("all_at_once"));
    body["image"] = json!("repo/web:2");
    assert!(error_of(body.clone()).contains("exactly one"));
    body.as_object_mut().unwrap().remove("task_definition");
    let spec = parse_record(&key(), &body).unwrap();
    assert_eq!(
        spec.version,
        Version::Image {
            image: "repo/web:2".into(),
            container: "app".into()
        }
    );
}

#[test]
fn a_task_definition_without_revision_is_refused_with_the_form_to_use() {
    let e = error_of(record("web", json!("all_at_once")));
    assert!(e.contains("family:revision"), "{e}");
    assert!(
        parse_record(
            &key(),
            &record(
                "arn:aws:ecs:us-east-1:1:task-definition/web:7",
                json!("all_at_once")
            )
        )
        .is_ok()
    );
}

#[test]
fn the_key_attribute_must_match_the_record_key() {
    let mut body = record("web:2", json!("all_at_once"));
    body["service"] = json!("prod/other");
    assert!(error_of(body).contains("does not match"));
}

#[test]
fn a_wrong_type_names_the_field() {
    let mut body = record("web:2", json!("all_at_once"));
    body["paused"] = json!("yes");
    let e = error_of(body);
    assert!(e.contains("paused"), "{e}");
}

#[test]
fn an_after_test_traffic_hook_needs_a_test_route() {
    let mut body = record("web:2", json!("all_at_once"));
    body["hooks"] = json!({"after_test_traffic": {"url": "https://hooks.example/check"}});
    let e = error_of(body.clone());
    assert!(e.contains("hooks.after_test_traffic"), "{e}");
    assert!(e.contains("test_listener"), "{e}");
    body["test_listener"] = json!(super::fixture::TEST);
    assert!(parse_record(&key(), &body).is_ok());
}
