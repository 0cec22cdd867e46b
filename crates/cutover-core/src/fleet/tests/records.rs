//! The release record: refused with every problem at its field; members
//! from keys and the selector, fixed at the start; `set` as a record takes
//! it.

use serde_json::{Value, json};

use super::fixture::{Fleet, NEW, key, release, written};
use crate::fleet::{FailureBudget, OnHalt, Outcome, ReleasePhase, WaveSize, parse_release};

fn problems(record: Value) -> Vec<(String, String)> {
    parse_release(&record)
        .expect_err("refused")
        .problems
        .into_iter()
        .map(|p| (p.field, p.message))
        .collect()
}

#[test]
fn a_full_release_record_reads_as_written() {
    let r = parse_release(&json!({
        "service": "release:base-image-2026-12",
        "services": ["prod/api", "prod/web", "prod/api"],
        "selector": {"tier": "web"},
        "set": {"image": NEW, "container": "app"},
        "waves": [{"services": 1}, {"percent": 25}, {"percent": 100}],
        "bake_between": "10m",
        "failure_budget": {"services": 2, "percent": 5},
        "on_halt": "rollback",
        "paused": false,
        "abort": false,
        "resume": "r1",
        "updated_at": "2026-12-01T00:00:00Z",
        "status_version": 4,
    }))
    .unwrap();
    assert_eq!(r.services.len(), 2);
    assert_eq!(
        r.waves,
        [
            WaveSize::Services(1),
            WaveSize::Percent(25),
            WaveSize::Percent(100)
        ]
    );
    assert_eq!(r.bake_between, std::time::Duration::from_secs(600));
    assert_eq!(
        r.failure_budget,
        FailureBudget {
            services: Some(2),
            percent: Some(5)
        }
    );
    assert_eq!(r.on_halt, OnHalt::Rollback);
    assert_eq!(r.resume.as_deref(), Some("r1"));

    let r = parse_release(&json!({"services": ["a/b"], "set": {"task_definition": "app:7"}, "waves": [{"percent": 100}], "bake_between": 90})).unwrap();
    assert_eq!(r.bake_between, std::time::Duration::from_secs(90));
    assert_eq!(
        r.failure_budget.allowed(100),
        0,
        "no budget halts on the first failure"
    );
    assert_eq!(r.on_halt, OnHalt::Pause);
}

#[test]
fn invalid_release_records_name_each_field_and_the_fix() {
    let base =
        || json!({"services": ["prod/web"], "set": {"image": NEW}, "waves": [{"percent": 100}]});
    let with = |k: &str, v: Value| {
        let mut r = base();
        r[k] = v;
        r
    };
    let without = |k: &str| {
        let mut r = base();
        r.as_object_mut().unwrap().remove(k);
        r
    };
    for (record, want) in [
        (
            json!("release"),
            vec![("", "is a string (S): write a map (M)")],
        ),
        (
            without("services"),
            vec![("services", "is missing: list the services")],
        ),
        (with("services", json!([])), vec![("services", "is empty")]),
        (
            with("services", json!("prod/web")),
            vec![("services", "is a string (S): write a list (L)")],
        ),
        (
            with("services", json!(["prod", 7])),
            vec![
                (
                    "services[0]",
                    "\"prod\" is not a service key: there is no '/'",
                ),
                ("services[1]", "is a number (N): write a service key"),
            ],
        ),
        (
            with("selector", json!({})),
            vec![("selector", "is empty, and would choose every service")],
        ),
        (
            with("selector", json!({"tier": 3})),
            vec![("selector.tier", "is a number (N): write a label value (S)")],
        ),
        (without("set"), vec![("set", "is missing")]),
        (
            with("set", json!({"container": "app"})),
            vec![("set", "names no version: give `image` or `task_definition`")],
        ),
        (
            with("set", json!({"image": NEW, "task_definition": "app:7"})),
            vec![("set.image", "is given together with `set.task_definition`")],
        ),
        (
            with("set", json!({"image": NEW, "strategy": "canary"})),
            vec![(
                "set.strategy",
                "is not an attribute a release sets: use image, task_definition, container",
            )],
        ),
        (
            with("set", json!({"image": "two words"})),
            vec![("set.image", "is not an image reference")],
        ),
        (
            with("set", json!({"task_definition": "app:latest"})),
            vec![("set.task_definition", "does not name a fixed revision")],
        ),
        (
            with("set", json!({"image": 5})),
            vec![("set.image", "is a number (N): write a string (S)")],
        ),
        (
            without("waves"),
            vec![("waves", "is missing: give the waves")],
        ),
        (
            with("waves", json!([])),
            vec![("waves", "has 0 waves: give 1 to 20")],
        ),
        (
            with(
                "waves",
                json!((1..=21).map(|n| json!({"services": n})).collect::<Vec<_>>()),
            ),
            vec![("waves", "has 21 waves")],
        ),
        (
            with("waves", json!([{"percent": 0}])),
            vec![("waves[0].percent", "must be from 1 to 100")],
        ),
        (
            with("waves", json!([{"percent": 150}])),
            vec![("waves[0].percent", "must be from 1 to 100")],
        ),
        (
            with("waves", json!([{"services": 0}])),
            vec![("waves[0].services", "must be at least 1")],
        ),
        (
            with("waves", json!([{"services": 1, "percent": 5}])),
            vec![("waves[0]", "has 2 fields: a wave is exactly one of")],
        ),
        (
            with("waves", json!([{"count": 1}])),
            vec![(
                "waves[0].count",
                "is not a wave size: use services or percent",
            )],
        ),
        (
            with("waves", json!([5])),
            vec![("waves[0]", "is a number (N): write a map (M)")],
        ),
        (
            with("waves", json!([{"percent": 50}, {"percent": 50}])),
            vec![("waves[1]", "is no larger than waves[0] (50%)")],
        ),
        (
            with("waves", json!([{"services": 1.5}])),
            vec![("waves[0].services", "must be a whole number at least 1")],
        ),
        (
            with("bake_between", json!("soon")),
            vec![("bake_between", "\"soon\" is not a duration")],
        ),
        (
            with("bake_between", json!(true)),
            vec![("bake_between", "is a boolean (BOOL): write a duration")],
        ),
        (
            with("failure_budget", json!({})),
            vec![("failure_budget", "is empty")],
        ),
        (
            with("failure_budget", json!({"percent": 101})),
            vec![("failure_budget.percent", "must be from 0 to 100")],
        ),
        (
            with("failure_budget", json!({"count": 1})),
            vec![("failure_budget.count", "is not a field of a failure budget")],
        ),
        (
            with("failure_budget", json!(2)),
            vec![("failure_budget", "is a number (N): write a map (M)")],
        ),
        (
            with("on_halt", json!("stop")),
            vec![("on_halt", "\"stop\" is not one of pause, rollback")],
        ),
        (
            with("paused", json!("yes")),
            vec![("paused", "is a string (S): write true or false (BOOL)")],
        ),
        (
            with("abort", json!(1)),
            vec![("abort", "is a number (N): write true or false (BOOL)")],
        ),
        (with("resume", json!("")), vec![("resume", "is empty")]),
        (
            with("resume", json!(3)),
            vec![("resume", "is a number (N): write a string (S)")],
        ),
        (
            with("wave", json!([])),
            vec![(
                "wave",
                "is not a field of a release: remove it, or did you mean `waves`?",
            )],
        ),
        (
            with("image", json!(NEW)),
            vec![("image", "is not a field of a release: remove it")],
        ),
    ] {
        let got = problems(record.clone());
        assert_eq!(got.len(), want.len(), "{record}: {got:?}");
        for ((field, message), (want_field, want_message)) in got.iter().zip(&want) {
            assert_eq!(field, want_field, "{record}: {got:?}");
            assert!(
                message.contains(want_message),
                "{record}: {message} lacks {want_message}"
            );
            assert!(!message.contains("expected"), "Rust's words in {message}");
        }
    }
}

#[test]
fn every_problem_is_reported_at_once_in_one_message() {
    let e = parse_release(&json!({"set": {}, "waves": "all", "on_halt": 1})).unwrap_err();
    let fields: Vec<&str> = e.problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["services", "set", "waves", "on_halt"]);
    let text = e.to_string();
    assert!(text.starts_with("field `services`: is missing"), "{text}");
    assert_eq!(text.matches("; field `").count(), 3, "{text}");
}

#[test]
fn an_invalid_release_record_writes_nothing_and_keeps_the_plan() {
    let mut f = Fleet::new(release(json!({})), 4);
    f.decide();
    let waves = f.waves();
    f.release["waves"] = json!("all");
    let d = f.decide();
    assert!(d.writes.is_empty());
    assert!(
        matches!(&d.status.phase, ReleasePhase::Invalid { error } if error.contains("field `waves`"))
    );
    assert_eq!(f.waves(), waves);
    f.succeeds("prod/svc-00");
    f.succeeds("prod/svc-01");
    f.release["waves"] = release(json!({}))["waves"].clone();
    assert_eq!(written(&f.decide().writes), ["prod/svc-02"]);
}

#[test]
fn members_are_the_listed_services_with_records_and_the_selected_ones() {
    let mut f = Fleet::new(
        release(json!({
            "services": ["prod/svc-00", "prod/gone"],
            "selector": {"tier": "api"},
            "waves": [{"percent": 100}],
        })),
        3,
    );
    f.add("prod/api-1", json!({"tier": "api", "team": "core"}));
    f.add("prod/api-2", json!({"tier": "api"}));
    f.add("prod/other", json!({"team": "core"}));
    let d = f.decide();
    assert_eq!(f.waves(), [["prod/api-1", "prod/api-2", "prod/svc-00"]]);
    assert_eq!(
        written(&d.writes),
        ["prod/api-1", "prod/api-2", "prod/svc-00"]
    );
    assert_eq!(d.status.missing, [key("prod/gone")]);
    assert_eq!(d.status.counts.missing, 1);
    assert!(
        d.status.message.contains("1 without a record"),
        "{}",
        d.status.message
    );

    // The plan is fixed: a service selected later is not added, and an
    // edited selector reshuffles nothing.
    f.add("prod/api-3", json!({"tier": "api"}));
    f.release["selector"] = json!({"team": "core"});
    f.decide();
    assert_eq!(f.waves(), [["prod/api-1", "prod/api-2", "prod/svc-00"]]);
    assert_eq!(f.image("prod/api-3"), super::fixture::OLD);
    assert_eq!(f.image("prod/other"), super::fixture::OLD);
}

#[test]
fn a_release_without_any_member_yet_waits_and_writes_nothing() {
    let mut f = Fleet::new(
        release(json!({"selector": {"tier": "batch"}, "services": ["prod/later"]})),
        2,
    );
    let d = f.decide();
    assert!(d.writes.is_empty());
    assert_eq!(d.status.phase, ReleasePhase::Pending);
    assert!(
        d.status.message.contains("no record matches the selector"),
        "{}",
        d.status.message
    );
    assert!(d.status.waves.is_empty());
    f.add("prod/later", json!({}));
    assert_eq!(written(&f.decide().writes), ["prod/later"]);
}

#[test]
fn a_member_whose_record_is_deleted_is_missing_and_settles_its_wave() {
    let mut f = Fleet::new(release(json!({})), 6);
    f.decide();
    f.services.remove(&key("prod/svc-01"));
    f.succeeds("prod/svc-00");
    let d = f.decide();
    assert_eq!(f.outcome("prod/svc-01"), Outcome::Missing);
    assert_eq!(written(&d.writes), ["prod/svc-02"]);
}

#[test]
fn a_task_definition_release_removes_the_image_it_replaces() {
    let mut f = Fleet::new(release(json!({"set": {"task_definition": "app:7"}})), 2);
    let d = f.decide();
    let c = &d.writes[0].changes;
    assert_eq!(c["task_definition"], Some(json!("app:7")));
    assert_eq!(c["image"], None);
    assert!(f.service("prod/svc-00").body.get("image").is_none());
    f.decide();
    assert_eq!(f.outcome("prod/svc-00"), Outcome::Waiting);
}

#[test]
fn changing_set_after_the_start_holds_the_release_until_it_is_put_back() {
    let mut f = Fleet::new(release(json!({})), 4);
    f.decide();
    f.release["set"] = json!({"image": "registry/app:1.4.3"});
    f.succeeds("prod/svc-00");
    f.succeeds("prod/svc-01");
    let d = f.decide();
    assert!(d.writes.is_empty());
    assert!(
        matches!(&d.status.phase, ReleasePhase::Invalid { error } if error.contains("`set` changed after the release started")),
        "{:?}",
        d.status.phase
    );
    f.release["set"] = json!({"image": NEW});
    assert_eq!(written(&f.decide().writes), ["prod/svc-02"]);
}
