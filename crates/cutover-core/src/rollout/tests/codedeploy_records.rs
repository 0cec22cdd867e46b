//! `driver` and `codedeploy` in the record: strict, and every problem named.

use serde_json::json;

use super::codedeploy::cd_record;
use super::fixture::record;
use crate::rollout::driver_kind::DriverKind;
use crate::rollout::hook::HookPoint;
use crate::rollout::{ServiceKey, parse_record};

fn key() -> ServiceKey {
    ServiceKey::new("prod", "web")
}

fn problems(body: serde_json::Value) -> String {
    parse_record(&key(), &body).unwrap_err().to_string()
}

#[test]
fn a_codedeploy_record_names_its_group_and_needs_no_load_balancer_wiring() {
    let mut body = cd_record("web:2");
    body["strategy"] = json!("CodeDeployDefault.ECSCanary10Percent5Minutes");
    body["codedeploy"]["hooks"] =
        json!({"after_test_traffic": "arn:aws:lambda:us-east-1:1:function:smoke"});
    let spec = parse_record(&key(), &body).unwrap();
    let DriverKind::CodeDeploy(t) = &spec.driver else {
        panic!("not a CodeDeploy record: {:?}", spec.driver)
    };
    assert_eq!(
        (t.application.as_str(), t.deployment_group.as_str()),
        ("web-app", "web-dg")
    );
    assert_eq!(
        t.deployment_config.as_deref(),
        Some("CodeDeployDefault.ECSCanary10Percent5Minutes")
    );
    assert_eq!(t.hooks.len(), 1);
    assert!(t.hooks.contains_key(&HookPoint::AfterTestTraffic));
}

#[test]
fn a_canary_map_becomes_codedeploys_own_configuration_or_is_refused() {
    let mut body = cd_record("web:2");
    body["strategy"] = json!({"type": "linear", "percent": 10, "interval": "3m"});
    let spec = parse_record(&key(), &body).unwrap();
    assert_eq!(
        spec.driver
            .codedeploy()
            .unwrap()
            .deployment_config
            .as_deref(),
        Some("CodeDeployDefault.ECSLinear10PercentEvery3Minutes")
    );
    body["strategy"] = json!({"type": "canary", "percent": 20, "interval": "3m"});
    let e = problems(body);
    assert!(
        e.contains("field `strategy`") && e.contains("CodeDeploy has no configuration"),
        "{e}"
    );
}

#[test]
fn fields_the_deployment_group_owns_are_refused_by_name() {
    let mut body = cd_record("web:2");
    body["production_listener"] =
        json!("arn:aws:elasticloadbalancing:us-east-1:1:listener/app/web/1/80");
    body["bake"] = json!("5m");
    body["gates"] = json!({"task_failures": {"threshold": 2}});
    let e = problems(body);
    for field in ["production_listener", "bake", "gates.task_failures"] {
        assert!(
            e.contains(&format!("field `{field}`: is not used with driver")),
            "{field}: {e}"
        );
    }
}

#[test]
fn the_group_must_be_named_and_fields_are_strict() {
    let mut body = cd_record("web:2");
    body["codedeploy"] = json!({"application": "web-app"});
    assert!(
        problems(body.clone()).contains("deployment_group"),
        "{}",
        problems(body.clone())
    );
    body["codedeploy"] = json!({"application": "web-app", "deployment_group": "dg", "region": "x"});
    let e = problems(body.clone());
    assert!(e.contains("codedeploy") && e.contains("region"), "{e}");
    body["codedeploy"] = json!({"application": " ", "deployment_group": "dg"});
    assert!(problems(body.clone()).contains("field `codedeploy.application`"));
    body.as_object_mut().unwrap().remove("codedeploy");
    assert!(problems(body).contains("field `codedeploy`: is missing"));
}

#[test]
fn hooks_must_be_lambda_functions_at_known_points() {
    let mut body = cd_record("web:2");
    body["codedeploy"]["hooks"] = json!({"before_install": "https://hooks.example/x"});
    assert!(problems(body.clone()).contains("field `codedeploy.hooks.before_install`"));
    body["codedeploy"]["hooks"] = json!({"AllowTraffic": "arn:aws:lambda:us-east-1:1:function:f"});
    let e = problems(body);
    assert!(e.contains("codedeploy.hooks"), "{e}");
}

#[test]
fn an_unknown_driver_or_a_stray_codedeploy_map_is_refused() {
    let mut body = cd_record("web:2");
    body["driver"] = json!("argo");
    assert!(problems(body).contains("field `driver`: \"argo\" is not a driver"));
    let mut ecs = record("web:2", json!("all_at_once"));
    ecs["codedeploy"] = json!({"application": "a", "deployment_group": "b"});
    assert!(problems(ecs).contains("field `codedeploy`: is only read with driver"));
}

#[test]
fn the_driver_changes_the_revision_of_a_codedeploy_record_only() {
    let ecs = record("web:2", json!("all_at_once"));
    let mut explicit = ecs.clone();
    explicit["driver"] = json!("ecs");
    let a = parse_record(&key(), &ecs).unwrap();
    let b = parse_record(&key(), &explicit).unwrap();
    assert_eq!(a.revision, b.revision);
    let cd = parse_record(&key(), &cd_record("web:2")).unwrap();
    let mut other_group = cd_record("web:2");
    other_group["codedeploy"]["deployment_group"] = json!("web-dg-2");
    let other = parse_record(&key(), &other_group).unwrap();
    assert_ne!(cd.revision, other.revision);
}
