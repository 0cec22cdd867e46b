//! Level-triggered: a stored status read back after a restart goes on
//! exactly; a write refused for someone's change is made again over it,
//! or given up when they wrote another version; a superseded member is
//! never written again.

use serde_json::json;

use super::fixture::{Fleet, NEW, key, release, written};
use crate::fleet::{Outcome, ReleaseStatus, decide};

#[test]
fn deciding_again_from_the_stored_status_resumes_exactly() {
    let mut f = Fleet::new(
        release(json!({"bake_between": "5m", "failure_budget": {"services": 1}})),
        8,
    );
    f.decide();
    f.succeeds("prod/svc-00");
    f.fails("prod/svc-01");
    f.decide();
    f.pass(std::time::Duration::from_secs(300));
    // The decision that starts wave 2, its writes not yet made.
    let first = f.look();
    assert_eq!(written(&first.writes), ["prod/svc-02", "prod/svc-03"]);
    let stored = serde_json::to_string(&first.status).unwrap();

    // A restart: the same inputs and the stored status give the same
    // status, and the same writes, as none is seen made yet.
    let read: ReleaseStatus = serde_json::from_str(&stored).unwrap();
    let again = decide(&f.release, &f.views(), Some(&read), None, f.now);
    assert_eq!(again.status, first.status);
    assert_eq!(again.writes, first.writes);

    // Once they are made, a restart finds nothing to write, and says the
    // same thing again however often it decides.
    f.apply(&first.writes);
    let settled = f.decide();
    assert!(settled.writes.is_empty());
    let stored = serde_json::to_value(&settled.status).unwrap();
    for _ in 0..3 {
        let read: ReleaseStatus = serde_json::from_value(stored.clone()).unwrap();
        let d = decide(&f.release, &f.views(), Some(&read), None, f.now);
        assert!(d.writes.is_empty(), "{:?}", d.writes);
        assert_eq!(d.status, settled.status);
    }
}

#[test]
fn a_status_keeps_its_stored_form() {
    let mut f = Fleet::new(release(json!({})), 3);
    f.decide();
    f.fails("prod/svc-00");
    let d = f.decide();
    let v = serde_json::to_value(&d.status).unwrap();
    assert_eq!(v["phase"]["name"], "halted");
    assert_eq!(v["phase"]["reason"], "1 of 3 services failed, budget 0");
    assert_eq!(v["waves"][0]["members"][0]["service"], "prod/svc-00");
    assert_eq!(v["waves"][0]["members"][0]["outcome"], "failed");
    assert_eq!(v["waves"][0]["members"][1]["outcome"], "waiting");
    assert_eq!(v["waves"][1]["members"][0]["outcome"], "pending");
    assert!(
        v["waves"][1].get("started_at").is_none(),
        "empty fields are left out: {v:#}"
    );
    assert_eq!(v["counts"]["failed"], 1);
    assert_eq!(v["target"], json!({"image": NEW, "task_definition": null}));
    // A status from before a field existed reads with its default.
    let mut old = v.clone();
    old.as_object_mut().unwrap().remove("counts");
    old.as_object_mut().unwrap().remove("budget");
    let read: ReleaseStatus = serde_json::from_value(old).unwrap();
    assert_eq!(read.waves, d.status.waves);
}

#[test]
fn a_write_refused_for_a_concurrent_change_is_made_again_over_the_new_record() {
    let mut f = Fleet::new(release(json!({})), 4);
    let d = f.look();
    // Someone adds a label between the read and the write: the write is
    // refused, and their change kept.
    f.someone_writes(
        "prod/svc-00",
        json!({"labels": {"tier": "web", "owner": "pay"}}),
    );
    f.apply(&d.writes);
    assert_eq!(written(&f.refused), ["prod/svc-00"]);
    let theirs = f.service("prod/svc-00").updated_at.clone();
    let d = f.decide();
    assert_eq!(written(&d.writes), ["prod/svc-00"]);
    assert_eq!(
        d.writes[0].unchanged_since, theirs,
        "the write names the record as now read"
    );
    let body = &f.service("prod/svc-00").body;
    assert_eq!(body["image"], json!(NEW));
    assert_eq!(
        body["labels"]["owner"],
        json!("pay"),
        "the other writer's change is not lost"
    );
}

#[test]
fn a_version_written_by_someone_else_before_the_release_write_landed_is_theirs() {
    let mut f = Fleet::new(release(json!({})), 4);
    let d = f.look();
    f.someone_writes("prod/svc-00", json!({"image": "registry/app:hotfix"}));
    f.apply(&d.writes);
    let d = f.decide();
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(f.outcome("prod/svc-00"), Outcome::Superseded);
    assert_eq!(f.image("prod/svc-00"), "registry/app:hotfix");
}

#[test]
fn a_member_superseded_mid_wave_counts_as_neither_and_is_never_written_again() {
    let mut f = Fleet::new(release(json!({})), 6);
    f.decide();
    f.starts("prod/svc-00");
    f.decide();
    f.someone_writes("prod/svc-00", json!({"image": "registry/app:hotfix"}));
    f.succeeds("prod/svc-01");
    let d = f.decide();
    assert_eq!(
        written(&d.writes),
        ["prod/svc-02"],
        "wave 1 settled, wave 2 starts"
    );
    assert_eq!(f.outcome("prod/svc-00"), Outcome::Superseded);
    let m = d
        .status
        .members()
        .find(|m| m.service == key("prod/svc-00"))
        .unwrap();
    assert!(
        m.detail.as_deref().unwrap().contains("registry/app:hotfix"),
        "{m:?}"
    );
    assert_eq!((d.status.counts.superseded, d.status.counts.failed), (1, 0));
    assert_eq!(d.status.budget.failed, 0);
    assert_eq!(f.wave_of("prod/svc-02"), 1);
    assert_eq!(f.image("prod/svc-02"), NEW);

    // Whatever happens to it later, the release leaves it alone.
    f.succeeds("prod/svc-00");
    f.fails("prod/svc-00");
    for _ in 0..3 {
        f.succeeds("prod/svc-02");
        f.decide();
    }
    let touched = f
        .applied
        .iter()
        .filter(|w| w.key == key("prod/svc-00"))
        .count();
    assert_eq!(touched, 1, "written once, by wave 1");
    assert_eq!(f.image("prod/svc-00"), "registry/app:hotfix");
    assert_eq!(f.status.as_ref().unwrap().budget.failed, 0);
}
