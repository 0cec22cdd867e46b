//! The failure budget: within it the waves go on; spent, the release halts
//! and pauses (or aborts) exactly its rollouts in flight; a resume after a
//! fix forgives, retries and goes on; an abort ends it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::fixture::{Fleet, NEW, key, release, written};
use crate::fleet::{MemberWrite, Outcome, ReleasePhase};

/// Six services: wave 1 is svc-00, wave 2 svc-01..03, wave 3 the rest.
fn fleet(extra: Value) -> Fleet {
    let mut r = release(json!({"waves": [{"services": 1}, {"services": 4}]}));
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    let mut f = Fleet::new(r, 6);
    f.decide();
    f.succeeds("prod/svc-00");
    let d = f.decide();
    assert_eq!(
        written(&d.writes),
        ["prod/svc-01", "prod/svc-02", "prod/svc-03"]
    );
    f
}

fn changes(w: &MemberWrite) -> BTreeMap<String, Option<Value>> {
    let mut c = w.changes.clone();
    c.remove("updated_at");
    c
}

#[test]
fn a_failure_within_the_budget_lets_the_waves_go_on() {
    let mut f = fleet(json!({"failure_budget": {"services": 1}}));
    f.fails("prod/svc-01");
    f.succeeds("prod/svc-02");
    f.succeeds("prod/svc-03");
    let d = f.decide();
    assert_eq!(written(&d.writes), ["prod/svc-04", "prod/svc-05"]);
    assert_eq!(d.status.budget.failed, 1);
    assert_eq!(d.status.budget.allowed, 1);
    assert!(d.status.halt.is_none());
}

#[test]
fn a_budget_in_percent_counts_against_the_members_rounded_down() {
    // 40% of 6 is 2.4: two failures are tolerated, a third is not.
    let mut f = fleet(json!({"failure_budget": {"percent": 40}}));
    f.fails("prod/svc-01");
    f.fails("prod/svc-02");
    f.starts("prod/svc-03");
    let d = f.decide();
    assert!(d.status.halt.is_none(), "{}", d.status.message);
    assert_eq!(d.status.budget.allowed, 2);
    f.fails("prod/svc-03");
    let d = f.decide();
    assert_eq!(
        d.status.phase,
        ReleasePhase::Halted {
            reason: "3 of 6 services failed, budget 2".into()
        }
    );
    // With both limits, the tighter one holds.
    let f = fleet(json!({"failure_budget": {"percent": 40, "services": 1}}));
    assert_eq!(f.status.as_ref().unwrap().budget.allowed, 1);
}

#[test]
fn a_spent_budget_halts_and_pauses_exactly_the_rollouts_in_flight() {
    let mut f = fleet(json!({}));
    f.fails("prod/svc-01");
    f.starts("prod/svc-02");
    f.starts("prod/svc-03");
    // Someone else paused svc-03: it is left alone, and never unpaused.
    f.someone_writes("prod/svc-03", json!({"paused": true}));
    let d = f.decide();
    assert_eq!(written(&d.writes), ["prod/svc-02"]);
    assert_eq!(
        changes(&d.writes[0]),
        BTreeMap::from([("paused".into(), Some(json!(true)))])
    );
    assert_eq!(
        d.status.phase,
        ReleasePhase::Halted {
            reason: "1 of 6 services failed, budget 0".into()
        }
    );
    assert!(
        d.status.message.contains("write a new `resume` value"),
        "{}",
        d.status.message
    );
    assert_eq!(
        d.status.paused_members.iter().cloned().collect::<Vec<_>>(),
        [key("prod/svc-02")]
    );
    let halt = d.status.halt.clone().unwrap();
    assert_eq!((halt.failed, halt.in_flight), (1, 2));

    // Halted: nothing more, however long it waits and whatever settles.
    f.pass(std::time::Duration::from_secs(3600));
    f.succeeds("prod/svc-02");
    f.succeeds("prod/svc-03");
    let d = f.decide();
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert!(matches!(d.status.phase, ReleasePhase::Halted { .. }));
    assert_eq!(f.image("prod/svc-04"), super::fixture::OLD);
}

#[test]
fn a_spent_budget_with_rollback_aborts_the_rollouts_in_flight() {
    let mut f = fleet(json!({"on_halt": "rollback"}));
    f.fails("prod/svc-01");
    f.starts("prod/svc-02");
    f.starts("prod/svc-03");
    let promote = json!({"rollout": "x#1", "step": 1});
    f.someone_writes("prod/svc-02", json!({"control": {"promote": promote}}));
    let d = f.decide();
    assert_eq!(written(&d.writes), ["prod/svc-02", "prod/svc-03"]);
    let id = |s: &str| {
        f.service(s)
            .status
            .as_ref()
            .unwrap()
            .rollout
            .as_ref()
            .unwrap()
            .id
            .to_string()
    };
    assert_eq!(
        changes(&d.writes[0]),
        BTreeMap::from([(
            "control".into(),
            Some(json!({"promote": promote, "abort": id("prod/svc-02")}))
        )])
    );
    assert_eq!(
        changes(&d.writes[1]),
        BTreeMap::from([("control".into(), Some(json!({"abort": id("prod/svc-03")})))])
    );
    assert!(d.status.paused_members.is_empty());

    f.react();
    let d = f.decide();
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(d.status.counts.failed, 3);
    assert_eq!(
        d.status.phase,
        ReleasePhase::Halted {
            reason: "1 of 6 services failed, budget 0".into()
        },
        "the halt says what spent the budget"
    );
}

#[test]
fn a_resume_after_a_fix_forgives_failures_retries_them_unpauses_and_goes_on() {
    let mut f = fleet(json!({}));
    f.fails("prod/svc-01");
    f.starts("prod/svc-02");
    f.starts("prod/svc-03");
    f.someone_writes("prod/svc-03", json!({"paused": true}));
    f.decide();
    let failed = f
        .service("prod/svc-01")
        .status
        .as_ref()
        .unwrap()
        .failed
        .clone()
        .unwrap();

    f.release["resume"] = json!("2026-12-03T10:00:00Z");
    let d = f.decide();
    assert_eq!(written(&d.writes), ["prod/svc-01", "prod/svc-02"]);
    assert_eq!(
        changes(&d.writes[0]),
        BTreeMap::from([(
            "control".into(),
            Some(json!({"retry": failed.rollout.to_string()}))
        )])
    );
    assert_eq!(
        changes(&d.writes[1]),
        BTreeMap::from([("paused".into(), Some(json!(false)))])
    );
    assert!(d.status.halt.is_none());
    assert_eq!(
        d.status.budget.failed, 0,
        "failures before the resume are forgiven"
    );
    assert_eq!(d.status.phase, ReleasePhase::Rolling { wave: 2, of: 3 });

    // The retry is asked for; until cutover starts it, the member waits.
    let d = f.decide();
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert!(
        d.status.paused_members.is_empty(),
        "seen unpaused, forgotten"
    );
    assert_eq!(f.outcome("prod/svc-01"), Outcome::Waiting);
    f.react();
    f.decide();
    assert_eq!(f.outcome("prod/svc-01"), Outcome::InFlight);
    let retried = f
        .service("prod/svc-01")
        .status
        .as_ref()
        .unwrap()
        .rollout
        .clone()
        .unwrap();
    assert_eq!(retried.id.attempt, failed.rollout.attempt + 1);

    // The wave waits for the retried member (and for svc-03, which its
    // owner paused) before the next one starts.
    f.succeeds("prod/svc-02");
    f.succeeds("prod/svc-01");
    assert!(f.decide().writes.is_empty());
    f.someone_writes("prod/svc-03", json!({"paused": false}));
    f.succeeds("prod/svc-03");
    let d = f.decide();
    assert_eq!(written(&d.writes), ["prod/svc-04", "prod/svc-05"]);

    // A failure after the resume counts against the budget afresh.
    f.fails("prod/svc-04");
    let d = f.decide();
    assert_eq!(
        d.status.phase,
        ReleasePhase::Halted {
            reason: "1 of 6 services failed, budget 0".into()
        }
    );
    // The same resume value again does nothing: it was acted on.
    assert!(f.decide().writes.is_empty());
    assert!(f.status.as_ref().unwrap().halt.is_some());
}

#[test]
fn a_resume_retries_rollouts_the_halt_aborted() {
    let mut f = fleet(json!({"on_halt": "rollback"}));
    f.fails("prod/svc-01");
    f.starts("prod/svc-02");
    f.succeeds("prod/svc-03");
    f.decide();
    f.react();
    f.decide();
    assert_eq!(f.status.as_ref().unwrap().counts.failed, 2);
    f.release["resume"] = json!("fixed");
    let d = f.decide();
    assert_eq!(written(&d.writes), ["prod/svc-01", "prod/svc-02"]);
    assert!(d.writes.iter().all(|w| {
        w.changes["control"]
            .as_ref()
            .unwrap()
            .get("retry")
            .is_some()
    }));
    f.react();
    f.decide();
    f.succeeds("prod/svc-01");
    f.succeeds("prod/svc-02");
    assert_eq!(written(&f.decide().writes), ["prod/svc-04", "prod/svc-05"]);
}

#[test]
fn an_abort_aborts_the_rollouts_in_flight_and_starts_nothing_again() {
    let mut f = fleet(json!({}));
    f.starts("prod/svc-01");
    f.succeeds("prod/svc-02");
    f.release["abort"] = json!(true);
    let d = f.decide();
    assert_eq!(written(&d.writes), ["prod/svc-01"]);
    let id = f
        .service("prod/svc-01")
        .status
        .as_ref()
        .unwrap()
        .rollout
        .as_ref()
        .unwrap()
        .id
        .to_string();
    assert_eq!(
        changes(&d.writes[0]),
        BTreeMap::from([("control".into(), Some(json!({"abort": id})))])
    );
    assert_eq!(d.status.phase, ReleasePhase::Aborted);
    f.react();
    f.succeeds("prod/svc-03");

    // Terminal: clearing `abort` starts nothing.
    f.release["abort"] = json!(false);
    let d = f.decide();
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(d.status.phase, ReleasePhase::Aborted);
    assert_eq!(f.image("prod/svc-04"), super::fixture::OLD);
}

#[test]
fn an_abort_of_a_halted_release_unpauses_what_it_paused_as_it_aborts() {
    let mut f = fleet(json!({}));
    f.fails("prod/svc-01");
    f.starts("prod/svc-02");
    f.decide();
    assert_eq!(f.service("prod/svc-02").body["paused"], json!(true));
    f.release["abort"] = json!(true);
    let d = f.decide();
    assert_eq!(written(&d.writes), ["prod/svc-02"]);
    let c = changes(&d.writes[0]);
    assert_eq!(c["paused"], Some(json!(false)));
    assert!(c["control"].as_ref().unwrap().get("abort").is_some());
}

#[test]
fn an_invalid_member_record_counts_as_failed() {
    let mut f = fleet(json!({"failure_budget": {"services": 1}}));
    let s = f.services.get_mut(&key("prod/svc-01")).unwrap();
    s.invalid = true;
    s.status = Some(
        crate::rollout::Status {
            message: "record is invalid: field `container_port`: must be from 1 to 65535".into(),
            ..crate::rollout::Status::default()
        }
        .with_phase(crate::rollout::Phase::Invalid),
    );
    f.decide();
    assert_eq!(f.outcome("prod/svc-01"), Outcome::Failed);
    let m = f
        .status
        .as_ref()
        .unwrap()
        .members()
        .find(|m| m.service == key("prod/svc-01"))
        .unwrap()
        .clone();
    assert!(m.detail.unwrap().contains("record is invalid"));
    assert_eq!(f.status.as_ref().unwrap().budget.failed, 1);
    assert_eq!(f.image("prod/svc-01"), NEW);
}
