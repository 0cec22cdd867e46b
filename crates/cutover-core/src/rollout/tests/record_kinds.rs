//! Every field takes only its own kinds of value, whoever wrote the record:
//! a wrong one is refused at its path, in DynamoDB's words, and every fault
//! of a record is named in the one message.

use serde_json::{Value, json};

use super::fixture::{PROD, TEST, record};
use crate::rollout::quote::QUOTE_LIMIT;
use crate::rollout::schema::{NoJsonForm, PathPart, Unreadable};
use crate::rollout::spec::PROBLEMS_SHOWN;
use crate::rollout::{ServiceKey, parse_record, parse_written};

fn key() -> ServiceKey {
    ServiceKey::new("prod", "web")
}

fn valid() -> Value {
    record("web:2", json!("all_at_once"))
}

fn with(field: &str, value: Value) -> Value {
    let mut body = valid();
    body[field] = value;
    body
}

fn error_of(body: &Value) -> String {
    match parse_record(&key(), body) {
        Ok(spec) => panic!("accepted: {spec:?}"),
        Err(e) => e.to_string(),
    }
}

/// No message speaks Rust or prints a float in exponent form.
fn assert_in_users_words(e: &str) {
    for rust in [
        "expected ",
        "invalid type",
        "u8",
        "u16",
        "u32",
        "u64",
        "struct",
        "Gates",
        "e+",
        "e41",
        "<attribute",
    ] {
        assert!(!e.contains(rust), "{rust:?} in: {e}");
    }
}

#[test]
fn a_list_where_a_map_is_expected_is_refused_not_read_by_position() {
    let hook = json!({"url": "https://hooks.example/x"});
    for (field, value) in [
        ("hooks", json!([hook])),
        ("network", json!([["subnet-1"], ["sg-1"], false])),
        ("gates", json!([{"min_healthy_percent": 50}])),
        ("control", json!([{"rollout": "abc#1", "step": 1}])),
    ] {
        let e = error_of(&with(field, value));
        assert!(
            e.starts_with(&format!("field `{field}`: is a list (L): write a map (M)")),
            "{field}: {e}"
        );
        assert_in_users_words(&e);
    }
    let mut body = valid();
    body["gates"] = json!({"target_health": [50, 2]});
    let e = error_of(&body);
    assert!(
        e.starts_with("field `gates.target_health`: is a list (L): write a map (M)"),
        "{e}"
    );
}

#[test]
fn each_kind_of_field_refuses_the_other_kinds() {
    // (field, a value of a wrong kind, what the message asks for)
    let cases = [
        ("container", json!(7), "write a string (S)"),
        ("container", json!(["app"]), "write a string (S)"),
        (
            "container_port",
            json!("8080"),
            "write a whole number (N) from 1 to 65535",
        ),
        ("paused", json!("yes"), "write true or false (BOOL)"),
        ("auto_promote", json!(1), "write true or false (BOOL)"),
        (
            "target_groups",
            json!({"blue": "arn:…"}),
            "write a list (L) of the two target group ARNs (S)",
        ),
        ("bake", json!(true), "write a duration such as \"90s\""),
        ("bake", json!({"m": 5}), "write a duration such as \"90s\""),
        ("strategy", json!(10), "write a strategy name (S)"),
        ("strategy", json!(["canary"]), "write a strategy name (S)"),
        ("labels", json!(["team"]), "write a map (M)"),
        (
            "notifications",
            json!({"url": "https://x"}),
            "write a list (L)",
        ),
    ];
    for (field, value, wanted) in cases {
        let e = error_of(&with(field, value.clone()));
        assert!(
            e.starts_with(&format!("field `{field}`: is a ")) && e.contains(wanted),
            "{field} = {value}: {e}"
        );
        assert_in_users_words(&e);
    }
    let e = error_of(&with("labels", json!({"team": 7})));
    assert!(
        e.starts_with("field `labels.team`: is a number (N): write a string (S)"),
        "{e}"
    );
}

#[test]
fn every_fault_is_named_in_one_message() {
    let mut body = valid();
    body["container_port"] = json!(70000);
    body["stratgy"] = json!("canary");
    body["task_definition"] = json!("web");
    body["hooks"] = json!([{"url": "https://hooks.example/x"}]);
    body["target_groups"] = json!(["arn:aws:elasticloadbalancing:x:targetgroup/a/1"]);
    let e = error_of(&body);
    for part in [
        "field `container_port`: must be from 1 to 65535",
        "field `stratgy`: is not a field of the record: remove it, or did you mean `strategy`?",
        "field `task_definition`: \"web\" does not name a fixed revision",
        "field `hooks`: is a list (L)",
        "field `target_groups`: has 1 entries",
    ] {
        assert!(e.contains(part), "{part:?} missing from: {e}");
    }
    assert_in_users_words(&e);
}

#[test]
fn out_of_range_numbers_say_the_range_whatever_their_size() {
    for port in [
        json!(0),
        json!(70000),
        json!(-1),
        json!(1e41),
        json!(u64::MAX),
    ] {
        let e = error_of(&with("container_port", port.clone()));
        assert_eq!(
            e, "field `container_port`: must be from 1 to 65535",
            "{port}"
        );
    }
    let e = error_of(&with("container_port", json!(8080.5)));
    assert_eq!(
        e,
        "field `container_port`: must be a whole number from 1 to 65535"
    );
    let e = error_of(&with(
        "strategy",
        json!({"type": "canary", "percent": 1e41, "interval": "5m"}),
    ));
    assert_eq!(e, "field `strategy.percent`: must be from 1 to 99");
    let mut body = valid();
    body["gates"] = json!({"target_health": {"failure_threshold": 0}});
    assert_eq!(
        error_of(&body),
        "field `gates.target_health.failure_threshold`: must be at least 1"
    );
    // A whole number written with a fraction of zero is that number.
    let spec = parse_record(&key(), &with("container_port", json!(8080.0))).unwrap();
    assert_eq!(spec.traffic.container_port, 8080);
}

#[test]
fn values_without_a_json_form_are_named_with_the_type_written() {
    let at = |field: &str| vec![PathPart::Field(field.to_string())];
    let cases = [
        (
            "target_groups",
            NoJsonForm::StringSet,
            "field `target_groups`: is a string set (SS), which has no order: write a list (L) of the two target group ARNs (S)",
        ),
        (
            "container",
            NoJsonForm::Binary,
            "field `container`: is binary (B): write a string (S)",
        ),
        (
            "container_port",
            NoJsonForm::NumberSet,
            "field `container_port`: is a number set (NS): write a whole number (N) from 1 to 65535",
        ),
        (
            "labels",
            NoJsonForm::BinarySet,
            "field `labels`: is a binary set (BS): write a map (M)",
        ),
    ];
    for (field, written_as, message) in cases {
        // The store leaves null where the value has no JSON form.
        let body = with(field, Value::Null);
        let e = parse_written(
            &key(),
            &body,
            &[Unreadable {
                path: at(field),
                written_as,
            }],
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with(message), "{e}");
    }
    // Inside a value of any kind (an expected JSON value), and in a
    // timestamp.
    let mut body = valid();
    body["gates"] = json!({"http": [{"name": "smoke", "url": "https://x/", "expect_json": {"pointer": "/a", "equals": {"b": null}}}]});
    body["updated_at"] = Value::Null;
    let equals = ["gates", "http"]
        .map(|f| PathPart::Field(f.into()))
        .into_iter()
        .chain([PathPart::Index(0)])
        .chain(["expect_json", "equals", "b"].map(|f| PathPart::Field(f.into())))
        .collect();
    let e = parse_written(
        &key(),
        &body,
        &[
            Unreadable {
                path: equals,
                written_as: NoJsonForm::Binary,
            },
            Unreadable {
                path: at("updated_at"),
                written_as: NoJsonForm::StringSet,
            },
        ],
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "field `gates.http[0].expect_json.equals.b`: is binary (B): write a value with a JSON form; \
         field `updated_at`: is a string set (SS): write an RFC 3339 time (S) or seconds since 1970 (N)"
    );
    // Nested, in a list.
    let mut body = valid();
    body["target_groups"][1] = Value::Null;
    let e = parse_written(
        &key(),
        &body,
        &[Unreadable {
            path: vec![PathPart::Field("target_groups".into()), PathPart::Index(1)],
            written_as: NoJsonForm::Binary,
        }],
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "field `target_groups[1]`: is binary (B): write a string (S)"
    );
}

#[test]
fn null_is_refused_where_a_value_is_expected() {
    for field in ["test_listener", "bake", "hooks", "paused"] {
        let e = error_of(&with(field, Value::Null));
        assert!(
            e.starts_with(&format!("field `{field}`: is null (NULL): write "))
                && e.ends_with(", or leave the field out"),
            "{e}"
        );
    }
    // Where null has a meaning of its own, it is taken.
    let mut body = valid();
    body["gates"] = json!({"http": [{
        "name": "smoke", "url": "https://smoke.example/", "expect_status": null,
        "expect_json": {"pointer": "/ok", "equals": null}, "expect_body": "ok"
    }]});
    let spec = parse_record(&key(), &body).unwrap();
    assert_eq!(spec.gates.http[0].expect_status, None);
}

#[test]
fn nested_maps_are_checked_field_by_field() {
    let mut body = valid();
    body["hooks"] = json!({"before_install": {"timeout": "1m"}, "before_lunch": {}});
    body["control"] = json!({"abort": "not-a-rollout", "hooks": {"after_install": {"rollout": "abc#1", "verdict": "maybe"}}});
    body["gates"] = json!({"http": [{"name": "smoke", "url": "https://x/", "method": "PUT", "interval": "soon"}]});
    let e = error_of(&body);
    for part in [
        "field `hooks.before_install.url`: is missing: give a string (S)",
        "field `hooks.before_lunch`: is not a field of `hooks`: remove it",
        "field `control.abort`: \"not-a-rollout\" is not a rollout id",
        "field `control.hooks.after_install.verdict`: \"maybe\" is not one of pass, fail",
        "field `gates.http[0].method`: \"PUT\" is not one of GET, POST",
        "field `gates.http[0].interval`: \"soon\" is not a duration",
    ] {
        assert!(e.contains(part), "{part:?} missing from: {e}");
    }
    assert_in_users_words(&e);
}

#[test]
fn strategies_and_their_steps_are_checked_by_type() {
    let e = error_of(&with(
        "strategy",
        json!({"type": "canary", "percent": 10, "interval": "5m", "steps": []}),
    ));
    assert_eq!(
        e,
        "field `strategy.steps`: is not a field of a canary strategy: remove it"
    );
    let e = error_of(&with(
        "strategy",
        json!({"type": "steps", "steps": [{"set_weight": 10, "pause": "5m"}, {"set_weight": "20"}, "pause"]}),
    ));
    for part in [
        "field `strategy.steps[0]`: has 2 fields: a step is exactly one of",
        "field `strategy.steps[1].set_weight`: is a string (S): write a whole number (N) from 0 to 100",
        "field `strategy.steps[2]`: is a string (S): write a step",
    ] {
        assert!(e.contains(part), "{part:?} missing from: {e}");
    }
    let spec = parse_record(
        &key(),
        &with(
            "strategy",
            json!({"type": "steps", "steps": [{"set_weight": 10}, {"pause": 60}, "pause_until_promoted"]}),
        ),
    )
    .unwrap();
    assert_eq!(spec.steps().len(), 4);
}

#[test]
fn control_characters_are_escaped_in_field_names_and_values() {
    let mut body = valid();
    body["bad\nfield"] = json!(1);
    body["task_definition"] = json!("web\u{1b}[31m");
    body["labels"] = json!({"te\tam": 1});
    let e = error_of(&body);
    assert!(!e.chars().any(char::is_control), "{e:?}");
    assert!(e.contains("field `bad\\nfield`"), "{e}");
    assert!(e.contains("\"web\\u{1b}[31m\""), "{e}");
    assert!(e.contains("field `labels.te\\tam`"), "{e}");
}

#[test]
fn messages_quote_only_a_short_prefix_of_any_value() {
    let huge = "x".repeat(300_000);
    let e = error_of(&with("strategy", json!(huge)));
    assert!(
        e.starts_with(&format!(
            "field `strategy`: \"{}…\" is not a known strategy name",
            "x".repeat(QUOTE_LIMIT)
        )),
        "{}",
        &e[..200]
    );
    assert!(e.len() < 1000, "{} bytes", e.len());

    // Long field names, and many faults, do not grow the message either.
    let mut body = valid();
    body[huge.as_str()] = json!(1);
    body["target_groups"] = json!(vec![json!(1); 10_000]);
    let e = error_of(&body);
    assert!(e.len() < 8 * 1024, "{} bytes", e.len());
    assert!(
        e.ends_with(&format!("; and {} more", 10_001 - PROBLEMS_SHOWN)),
        "{e}"
    );
}

#[test]
fn progress_deadline_has_a_minimum_of_thirty_seconds() {
    let e = error_of(&with("progress_deadline", json!("29s")));
    assert!(
        e.starts_with("field `progress_deadline`: is shorter than 30s"),
        "{e}"
    );
    let spec = parse_record(&key(), &with("progress_deadline", json!(30))).unwrap();
    assert_eq!(spec.progress_deadline.as_secs(), 30);
}

#[test]
fn the_documented_kinds_are_accepted() {
    let mut body = valid();
    body["test_listener"] = json!(TEST);
    body["production_listener"] = json!(PROD);
    body["bake"] = json!(900);
    body["strategy"] = json!({"type": "linear", "percent": 10, "interval": "1m"});
    body["labels"] = json!({"team": "payments"});
    body["network"] = json!({"subnets": ["subnet-1"], "assign_public_ip": true});
    body["capacity_provider_strategy"] = json!([{"provider": "FARGATE_SPOT", "weight": 1}]);
    body["gates"] = json!({
        "target_health": {"min_healthy_percent": 50},
        "prometheus": [{"name": "errors", "address": "http://prom:9090", "query": "up", "max": 0.5, "on_empty": "wait"}],
        "cloudwatch": {"alarms": ["web-5xx"], "interval": 30},
        "task_failures": {"threshold": 3},
    });
    body["hooks"] =
        json!({"after_test_traffic": {"url": "https://hooks.example/", "timeout": "2m"}});
    body["notifications"] = json!([{"url": "https://chat.example/", "format": "slack"}]);
    body["control"] = json!({"promote": {"rollout": "abc#1", "step": 2}, "hooks": {"after_test_traffic": {"rollout": "abc#1", "verdict": "pass"}}});
    body["updated_at"] = json!(1_700_000_000);
    let spec = parse_record(&key(), &body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.bake.as_secs(), 900);
    assert_eq!(spec.gates.target_health.min_healthy_percent, 50);
    assert_eq!(spec.labels["team"], "payments");
}

#[test]
fn the_readme_states_the_bounds_messages_keep() {
    let readme = include_str!("../../../../../README.md");
    for promise in [
        format!("at most the first {QUOTE_LIMIT} characters of any value or field name"),
        format!("lists at most {PROBLEMS_SHOWN} problems"),
    ] {
        assert!(
            readme.contains(&promise),
            "the README does not say {promise:?}"
        );
    }
}
