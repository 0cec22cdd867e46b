//! Records of services in other regions and accounts: the key says where,
//! `region` and `role_arn` must agree with it.

use serde_json::{Value, json};

use crate::rollout::{Scope, ServiceKey, parse_record};

const ACCOUNT: &str = "210987654321";

fn elsewhere(region: &str) -> Value {
    let lb = format!("arn:aws:elasticloadbalancing:{region}:{ACCOUNT}");
    json!({
        "service": format!("{region}:{ACCOUNT}:prod/web"),
        "task_definition": "web:2",
        "container": "app",
        "container_port": 8080,
        "production_listener": format!("{lb}:listener/app/shop/1/2"),
        "target_groups": [format!("{lb}:targetgroup/blue/1"), format!("{lb}:targetgroup/green/2")],
        "region": region,
        "role_arn": format!("arn:aws:iam::{ACCOUNT}:role/cutover-target"),
    })
}

fn key(body: &Value) -> ServiceKey {
    body["service"].as_str().unwrap().parse().unwrap()
}

#[test]
fn a_record_in_another_account_parses_with_its_role() {
    let body = elsewhere("eu-west-1");
    let spec = parse_record(&key(&body), &body).unwrap();
    assert_eq!(
        spec.key.scope,
        Scope::Account {
            region: "eu-west-1".into(),
            account: ACCOUNT.into()
        }
    );
    assert_eq!(
        spec.role_arn.as_deref(),
        Some("arn:aws:iam::210987654321:role/cutover-target")
    );
}

#[test]
fn scope_fields_do_not_change_the_revision() {
    let body = elsewhere("eu-west-1");
    let mut bare = body.clone();
    bare.as_object_mut().unwrap().remove("role_arn");
    bare.as_object_mut().unwrap().remove("region");
    let k = key(&body);
    assert_eq!(
        parse_record(&k, &body).unwrap().revision,
        parse_record(&k, &bare).unwrap().revision
    );
}

#[test]
fn a_role_in_another_account_is_refused_naming_both_fields() {
    let mut body = elsewhere("eu-west-1");
    body["role_arn"] = json!("arn:aws:iam::111122223333:role/cutover-target");
    let e = parse_record(&key(&body), &body).unwrap_err().to_string();
    assert!(
        e.contains("field `role_arn`") && e.contains("key (`service`)"),
        "{e}"
    );
    assert!(e.contains("111122223333") && e.contains(ACCOUNT), "{e}");
}

#[test]
fn a_region_field_that_disagrees_with_the_key_is_refused() {
    let mut body = elsewhere("eu-west-1");
    body["region"] = json!("us-east-1");
    let e = parse_record(&key(&body), &body).unwrap_err().to_string();
    assert!(e.contains("field `region`"), "{e}");
}

#[test]
fn load_balancer_arns_in_another_region_than_the_key_are_refused() {
    let mut body = elsewhere("eu-west-1");
    body["service"] = json!(format!("us-east-1:{ACCOUNT}:prod/web"));
    body.as_object_mut().unwrap().remove("region");
    let e = parse_record(&key(&body), &body).unwrap_err().to_string();
    for field in [
        "production_listener",
        "target_groups[0]",
        "target_groups[1]",
    ] {
        assert!(e.contains(&format!("field `{field}`")), "{field}: {e}");
    }
}

#[test]
fn a_wrongly_typed_role_is_named() {
    let mut body = elsewhere("eu-west-1");
    body["role_arn"] = json!(42);
    let e = parse_record(&key(&body), &body).unwrap_err().to_string();
    assert!(e.contains("field `role_arn`"), "{e}");
}

#[test]
fn codedeploy_is_refused_outside_the_home_account_and_region() {
    let mut body = elsewhere("eu-west-1");
    for f in ["production_listener", "target_groups", "container_port"] {
        body.as_object_mut().unwrap().remove(f);
    }
    body["driver"] = json!("codedeploy");
    body["codedeploy"] = json!({"application": "a", "deployment_group": "g"});
    let e = parse_record(&key(&body), &body).unwrap_err().to_string();
    assert!(
        e.contains("field `driver`") && e.contains("own account"),
        "{e}"
    );
}

#[test]
fn a_cloudwatch_gate_is_refused_outside_the_home_account_and_region() {
    let mut body = elsewhere("eu-west-1");
    body["gates"] = json!({"cloudwatch": {"alarms": ["web-5xx"]}});
    let e = parse_record(&key(&body), &body).unwrap_err().to_string();
    assert!(
        e.contains("field `gates.cloudwatch`") && e.contains("own account"),
        "{e}"
    );
}
