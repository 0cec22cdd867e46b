use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::rollout::parse_record;
use crate::rollout::status::{Rollout, Transition};
use crate::rollout::{Phase, Revision, Status};

const MIN: i64 = 60_000;
const T0: Timestamp = Timestamp(1_700_000_000_000);

fn at(minutes: i64) -> Timestamp {
    Timestamp(T0.0 + minutes * MIN)
}

fn body(key: &str) -> Value {
    json!({
        "service": key,
        "task_definition": "web:42",
        "container": "app",
        "container_port": 8080,
        "production_listener": "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/shop/1/2",
        "target_groups": [
            "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-blue/1",
            "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-green/2"
        ],
        // 10%, hold, then 100%: three steps.
        "strategy": {"type": "canary", "percent": 10, "interval": "5m"}
    })
}

fn record(key: &str, status: Option<Status>) -> StoredRecord {
    StoredRecord {
        key: key.parse().expect("a key"),
        body: body(key),
        status,
        status_version: 1,
        written_at: None,
        unreadable: Vec::new(),
    }
}

fn transition(minute: i64, from: Phase, to: Phase, reason: &str) -> Transition {
    Transition {
        at: at(minute),
        from,
        to,
        reason: reason.into(),
        revision: Some(Revision::from_raw("1a2b3c4d5e6f7a8b")),
    }
}

fn shifting() -> Status {
    Status {
        phase_since: at(0),
        weights: Some((90, 10)),
        message: "candidate has 10% of production traffic".into(),
        active: Some(TaskSetRef {
            arn: "arn:aws:ecs:us-east-1:1:task-set/prod/web/ecs-svc/111".into(),
            task_definition: "arn:aws:ecs:us-east-1:1:task-definition/web:41".into(),
            target_group: "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-blue/1".into(),
            revision: None,
        }),
        rollout: Some(Rollout {
            step: 1,
            step_started_at: at(0),
            progress_at: at(0),
            ..Rollout::new(
                "1a2b3c4d5e6f7a8b#1".parse().expect("an id"),
                None,
                "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-green/2".into(),
                at(-3),
            )
        }),
        history: (0..8)
            .map(|i| {
                transition(
                    i - 8,
                    Phase::Provisioning,
                    Phase::Shifting,
                    &format!("reason {i}"),
                )
            })
            .collect(),
        ..Status::default()
    }
    .with_phase(Phase::Shifting)
}

#[test]
fn the_overview_has_a_row_per_service_with_weights_step_and_age() {
    let records = [
        record("prod/web", Some(shifting())),
        record("prod/new", None),
    ];
    let text = overview(&records, at(0) + Duration::from_secs(125));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("SERVICE"), "{text}");
    for column in ["PHASE", "WEIGHTS", "STEP", "AGE", "MESSAGE"] {
        assert!(lines[0].contains(column), "{text}");
    }
    let web: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &web[..5],
        ["prod/web", "Shifting", "90/10", "1/3", "2m"],
        "{text}"
    );
    assert!(lines[1].ends_with("candidate has 10% of production traffic"));
    assert!(
        lines[2].contains("not yet seen by the controller"),
        "{text}"
    );
}

#[test]
fn the_detailed_view_shows_revisions_task_sets_rollout_and_recent_transitions() {
    let text = detail(&record("prod/web", Some(shifting())), at(1));
    for expected in [
        "web:42",
        "canary 10% for 5m",
        "Shifting for 1m",
        "90/10 (active/candidate)",
        "web:41 in web-blue (task set ecs-svc/111)",
        "rollout     1a2b3c4d5e6f7a8b#1 started 2023-11-14T22:10:20Z",
        "1/3 (pause 5m), for 1m",
        "last error  -",
        "reason 7",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(
        !text.contains("reason 2"),
        "only the last transitions:\n{text}"
    );
}

#[test]
fn the_detailed_view_names_what_is_wrong_with_an_invalid_record() {
    let mut r = record("prod/web", None);
    r.body["container_port"] = json!(0);
    let text = detail(&r, at(0));
    assert!(text.contains("field `container_port`"), "{text}");
    assert!(text.contains("has not written a status"), "{text}");
}

#[test]
fn history_lists_every_transition_oldest_first() {
    let text = history_text(&record("prod/web", Some(shifting())));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 9, "{text}");
    assert!(
        lines[1].contains("reason 0") && lines[8].contains("reason 7"),
        "{text}"
    );
    assert!(lines[1].contains("Provisioning → Shifting"), "{text}");
    assert!(lines[1].contains("1a2b3c4d"), "{text}");
    assert!(lines[1].starts_with("2023-11-14T22:05:20Z"), "{text}");
    let empty = history_text(&record("prod/web", None));
    assert_eq!(empty, "prod/web: no transitions recorded yet\n");
}

#[test]
fn task_set_ids_drop_the_cluster_and_service() {
    assert_eq!(
        task_set_id("arn:aws:ecs:us-east-1:1:task-set/prod/web/ecs-svc/123"),
        "ecs-svc/123"
    );
    assert_eq!(task_set_id("not-an-arn"), "not-an-arn");
}

/// The record and status behind the README's `cutover status prod/checkout`
/// example: the second release of a service, 10% on the candidate.
fn readme_example() -> (StoredRecord, Timestamp) {
    let t = |hms: &str| {
        let at = humantime::parse_rfc3339(&format!("2026-03-01T{hms}Z")).expect("a time");
        Timestamp::from_system(at)
    };
    let key: ServiceKey = "prod/checkout".parse().expect("a key");
    let tg = |name: &str, id: &str| {
        format!("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/{name}/{id}")
    };
    let body = |td: &str| {
        json!({
            "service": "prod/checkout",
            "task_definition": td,
            "container": "app",
            "container_port": 8080,
            "production_listener": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "target_groups": [tg("checkout-blue", "73e2d6bc24d8a067"), tg("checkout-green", "2453ed029918f21f")],
            "strategy": {"type": "canary", "percent": 10, "interval": "5m"}
        })
    };
    let revision = |td: &str| {
        parse_record(&key, &body(td))
            .expect("a valid record")
            .revision
    };
    let (old, new) = (revision("checkout:42"), revision("checkout:43"));
    let task_set = |id: &str, td: &str, group: String, rev: &Revision| TaskSetRef {
        arn: format!("arn:aws:ecs:eu-west-1:123456789012:task-set/prod/checkout/ecs-svc/{id}"),
        task_definition: format!("arn:aws:ecs:eu-west-1:123456789012:task-definition/{td}"),
        target_group: group,
        revision: Some(rev.clone()),
    };
    let history = vec![
        Transition {
            at: t("12:00:00"),
            from: Phase::Steady,
            to: Phase::Provisioning,
            reason: format!(
                "new revision: rolling out revision {new} (checkout:43) with canary 10% for 5m"
            ),
            revision: Some(new.clone()),
        },
        Transition {
            at: t("12:01:30"),
            from: Phase::Provisioning,
            to: Phase::Shifting,
            reason: "candidate is ready".into(),
            revision: Some(new.clone()),
        },
    ];
    let status = Status {
        phase_since: t("12:01:30"),
        observed_revision: Some(new.clone()),
        stable_revision: Some(old.clone()),
        weights: Some((90, 10)),
        message: format!("holding 10% on the candidate until {}", t("12:07:00")),
        active: Some(task_set(
            "1846523417829305624",
            "checkout:42",
            tg("checkout-blue", "73e2d6bc24d8a067"),
            &old,
        )),
        candidate: Some(task_set(
            "6082451975123096711",
            "checkout:43",
            tg("checkout-green", "2453ed029918f21f"),
            &new,
        )),
        rollout: Some(Rollout {
            step: 1,
            step_started_at: t("12:02:00"),
            progress_at: t("12:02:00"),
            ..Rollout::new(
                format!("{new}#1").parse().expect("an id"),
                None,
                tg("checkout-green", "2453ed029918f21f"),
                t("12:00:00"),
            )
        }),
        history,
        ..Status::default()
    }
    .with_phase(Phase::Shifting);
    let record = StoredRecord {
        key,
        body: body("checkout:43"),
        status: Some(status),
        status_version: 7,
        written_at: None,
        unreadable: Vec::new(),
    };
    (record, t("12:04:00"))
}

#[test]
fn the_readme_shows_the_detailed_view_as_it_is_printed() {
    let readme = include_str!("../../README.md");
    let shown: Vec<&str> = readme
        .lines()
        .skip_while(|l| *l != "$ cutover status prod/checkout")
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect();
    let (record, now) = readme_example();
    let printed = detail(&record, now);
    assert_eq!(shown, printed.lines().collect::<Vec<_>>(), "\n{printed}");
}
