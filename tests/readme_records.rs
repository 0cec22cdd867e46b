//! The records the README shows as JSON are records cutover accepts, and
//! each says what the text around it says.

use serde_json::Value;

use cutover::rollout::driver_kind::DriverKind;
use cutover::rollout::service_deployment::NativeStrategy;
use cutover::rollout::{ServiceKey, Spec, parse_record};

const README: &str = include_str!("../README.md");

/// Every ```json block of the README whose value is a record: an object
/// whose `service` is a plain string and that names a version (hook and
/// notification payloads name a service too; items in DynamoDB's typed
/// form are checked by `records_awscli.rs`).
fn readme_records() -> Vec<Value> {
    README
        .split("```json\n")
        .skip(1)
        .filter_map(|block| block.split("\n```").next())
        .filter_map(|text| serde_json::from_str::<Value>(text).ok())
        .filter(|v| v.get("service").is_some_and(Value::is_string))
        .filter(|v| v.get("task_definition").is_some() || v.get("image").is_some())
        .collect()
}

fn parsed(record: &Value) -> Spec {
    let key = record["service"].as_str().expect("a key");
    let parsed: ServiceKey = key.parse().unwrap_or_else(|e| panic!("{e}"));
    parse_record(&parsed, record)
        .unwrap_or_else(|e| panic!("the README's record {key} is refused: {e}"))
}

#[test]
fn every_record_in_the_readme_is_valid() {
    let records = readme_records();
    assert!(records.len() >= 3, "{records:#?}");
    for r in &records {
        parsed(r);
    }
}

#[test]
fn the_readmes_ecs_native_record_is_a_canary_ecs_runs() {
    let native: Vec<Spec> = readme_records()
        .iter()
        .filter(|r| r["driver"] == "ecs_native")
        .map(parsed)
        .collect();
    assert_eq!(native.len(), 1, "one ecs_native example");
    let DriverKind::EcsNative(n) = &native[0].driver else {
        panic!("{:?}", native[0].driver)
    };
    assert_eq!(
        n.strategy,
        NativeStrategy::Canary {
            percent: 10,
            bake_minutes: 5
        }
    );
    assert_eq!(n.bake_minutes, 10);
    assert_eq!(n.pause_timeout_minutes, 60);
}

#[test]
fn the_readmes_record_in_another_account_names_its_role_there() {
    let elsewhere: Vec<Spec> = readme_records()
        .iter()
        .filter(|r| r.get("role_arn").is_some())
        .map(parsed)
        .collect();
    assert_eq!(elsewhere.len(), 1, "one record in another account");
    let spec = &elsewhere[0];
    assert_eq!(spec.key.scope.account(), Some("210987654321"));
    assert_eq!(spec.key.scope.region(), Some("eu-west-1"));
    assert!(
        spec.role_arn
            .as_deref()
            .is_some_and(|r| r.contains("210987654321"))
    );
}

#[test]
fn the_readmes_release_is_one_cutover_accepts_with_the_waves_it_describes() {
    let releases: Vec<Value> = README
        .split("```json\n")
        .skip(1)
        .filter_map(|block| block.split("\n```").next())
        .filter_map(|text| serde_json::from_str::<Value>(text).ok())
        .filter(|v| {
            v.get("service")
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with("release:"))
        })
        .collect();
    assert_eq!(releases.len(), 1, "{releases:#?}");
    let release = cutover::fleet::parse_release(&releases[0])
        .unwrap_or_else(|e| panic!("the README's release is refused: {e}"));
    // 40 members: 2, then 25% (10), then the rest.
    assert_eq!(
        cutover::fleet::wave_sizes(&release.waves, 40),
        vec![2, 10, 40]
    );
}
