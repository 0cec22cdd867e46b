use clap::Parser;

use super::*;
use crate::rollout::parse_record;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    set: SetArgs,
}

fn args(extra: &[&str]) -> SetArgs {
    let mut argv = vec!["set", "prod/web"];
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).expect("valid arguments").set
}

fn body(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("an object")
}

#[test]
fn a_task_definition_replaces_an_image_and_only_differences_are_written() {
    let current = body(json!({
        "service": "prod/web", "image": "web:1", "container": "app", "bake": "5m"
    }));
    let c = changes(
        &args(&[
            "--task-definition",
            "web:7",
            "--container",
            "app",
            "--bake",
            "5m",
        ]),
        &current,
    );
    assert_eq!(
        c,
        SpecChanges::from([
            ("task_definition".into(), Some(json!("web:7"))),
            ("image".into(), None),
        ])
    );
}

#[test]
fn repeating_a_command_changes_nothing() {
    let current = body(json!({"service": "prod/web", "task_definition": "web:7"}));
    assert!(changes(&args(&["--task-definition", "web:7"]), &current).is_empty());
}

#[test]
fn strategies_are_names_or_json_maps() {
    let a = args(&[
        "--image",
        "x",
        "--strategy",
        r#"{"type":"canary","percent":10,"interval":"5m"}"#,
    ]);
    assert_eq!(
        a.strategy,
        Some(json!({"type": "canary", "percent": 10, "interval": "5m"}))
    );
    let a = args(&["--image", "x", "--strategy", "all_at_once"]);
    assert_eq!(a.strategy, Some(json!("all_at_once")));
    let argv = ["set", "prod/web", "--image", "x", "--strategy", "{nope"];
    assert!(Cli::try_parse_from(argv).is_err());
}

#[test]
fn labels_merge_and_an_empty_value_removes_one() {
    let current = body(json!({"labels": {"team": "a", "tier": "1"}}));
    let c = changes(
        &args(&["--image", "x", "--label", "team=b", "--label", "tier="]),
        &current,
    );
    assert_eq!(c["labels"], Some(json!({"team": "b"})));
}

#[test]
fn usage_errors_are_clap_errors() {
    for argv in [
        vec!["set", "prod/web"],
        vec!["set", "no-slash", "--image", "x"],
        vec![
            "set",
            "prod/web",
            "--image",
            "x",
            "--task-definition",
            "web:1",
        ],
        vec![
            "set",
            "prod/web",
            "--image",
            "x",
            "--security-groups",
            "sg-1",
        ],
    ] {
        assert!(Cli::try_parse_from(&argv).is_err(), "{argv:?}");
    }
}

#[test]
fn a_new_record_needs_its_wiring() {
    assert_eq!(
        missing_wiring(&args(&["--image", "x", "--container", "app"])),
        [
            "--production-listener or --production-rule",
            "--target-groups",
            "--container-port"
        ]
    );
}

#[test]
fn an_invalid_result_is_caught_before_writing_with_the_field_named() {
    let key: ServiceKey = "prod/web".parse().unwrap();
    let new = body_of(&key, None);
    let a = args(&[
        "--image",
        "web:2",
        "--container",
        "app",
        "--container-port",
        "8080",
        "--production-listener",
        "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/x/1/2",
        "--target-groups",
        "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/a/1,arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/b/2",
        "--strategy",
        r#"{"type":"canary","percent":150,"interval":"5m"}"#,
    ]);
    let err = parse_record(&key, &apply(&new, &changes(&a, &new))).unwrap_err();
    assert!(
        err.to_string().contains("field `strategy.percent`"),
        "{err}"
    );
}

#[test]
fn auto_promote_is_a_flag_with_a_negation_and_takes_an_explicit_value() {
    let current = body(json!({"service": "prod/web", "image": "web:1"}));
    let written = |extra: &[&str]| {
        let mut argv = vec!["--image", "web:1"];
        argv.extend_from_slice(extra);
        changes(&args(&argv), &current).remove("auto_promote")
    };
    assert_eq!(written(&["--auto-promote"]), Some(Some(json!(true))));
    assert_eq!(written(&["--no-auto-promote"]), Some(Some(json!(false))));
    assert_eq!(written(&["--auto-promote=false"]), Some(Some(json!(false))));
    // The last one given wins, as with any pair of switches.
    assert_eq!(
        written(&["--no-auto-promote", "--auto-promote"]),
        Some(Some(json!(true)))
    );
    assert_eq!(
        written(&["--auto-promote", "--no-auto-promote"]),
        Some(Some(json!(false)))
    );
    assert_eq!(written(&[]), None);
    // A bare flag before another flag does not swallow it.
    let a = args(&["--auto-promote", "--image", "web:2"]);
    assert_eq!(a.auto_promote, Some(true));
    assert_eq!(a.image.as_deref(), Some("web:2"));
    // Nor the service name after it: a value needs `=`.
    let a = Cli::try_parse_from(["set", "--auto-promote", "prod/web", "--image", "web:2"])
        .expect("the service after a bare flag")
        .set;
    assert_eq!(a.auto_promote, Some(true));
    assert_eq!(a.service.key.to_string(), "prod/web");
}

#[test]
fn a_container_port_reaches_the_records_parser_as_given() {
    let current = body(json!({"service": "prod/web", "image": "web:1"}));
    for (given, stored) in [
        ("8080", json!(8080)),
        ("70000", json!(70000)),
        ("-1", json!(-1)),
        ("http", json!("http")),
    ] {
        let a = args(&["--image", "web:1", "--container-port", given]);
        assert_eq!(
            changes(&a, &current).remove("container_port"),
            Some(Some(stored)),
            "{given}"
        );
    }
}
