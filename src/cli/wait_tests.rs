use serde_json::{Value, json};

use super::*;
use crate::rollout::control::RolloutId;
use crate::rollout::parse_record;
use crate::rollout::status::{Failure, Status};

fn body() -> Value {
    json!({
        "service": "prod/web",
        "task_definition": "web:2",
        "container": "app",
        "container_port": 8080,
        "production_listener": "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/x/1/2",
        "target_groups": [
            "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/a/1",
            "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/b/2"
        ],
    })
}

fn record(body: Value, status: Option<Status>) -> StoredRecord {
    StoredRecord {
        key: "prod/web".parse().unwrap(),
        body,
        status,
        status_version: 1,
        written_at: None,
        unreadable: Vec::new(),
    }
}

fn revision_of(body: &Value) -> Revision {
    parse_record(&"prod/web".parse().unwrap(), body)
        .unwrap()
        .revision
}

fn status(phase: Phase, observed: &Revision, stable: Option<&Revision>) -> Status {
    Status {
        observed_revision: Some(observed.clone()),
        stable_revision: stable.cloned(),
        message: format!("{phase} message"),
        ..Status::default()
    }
    .with_phase(phase)
}

fn transition(at: i64, from: Phase, to: Phase) -> Transition {
    Transition {
        at: Timestamp(at),
        from,
        to,
        reason: format!("{from} to {to}"),
        revision: None,
    }
}

#[test]
fn steady_on_the_revision_is_released_and_only_then() {
    let b = body();
    let r = revision_of(&b);
    let wanted = Wanted::exactly(&r);
    let old = Revision::from_raw("0123456789abcdef");

    // Not yet picked up: the status is still about the old revision.
    let stale = status(Phase::Steady, &old, Some(&old));
    assert_eq!(
        verdict(&record(b.clone(), Some(stale)), &wanted),
        Verdict::Pending
    );
    assert_eq!(verdict(&record(b.clone(), None), &wanted), Verdict::Pending);
    // Observed, but production is still on the old revision (the service
    // has not been described yet): not released.
    let observed = status(Phase::Steady, &r, Some(&old));
    assert_eq!(
        verdict(&record(b.clone(), Some(observed)), &wanted),
        Verdict::Pending
    );
    for phase in [Phase::Provisioning, Phase::Shifting, Phase::RollingBack] {
        let s = status(phase, &r, Some(&old));
        assert_eq!(
            verdict(&record(b.clone(), Some(s)), &wanted),
            Verdict::Pending,
            "{phase}"
        );
    }
    let steady = status(Phase::Steady, &r, Some(&r));
    let Verdict::Released(line) = verdict(&record(b.clone(), Some(steady)), &wanted) else {
        panic!("not released");
    };
    assert!(line.starts_with("released: prod/web revision "), "{line}");
    // The short form people see names the same revision.
    let short = Wanted(r.short().to_string());
    let steady = status(Phase::Steady, &r, Some(&r));
    assert!(matches!(
        verdict(&record(b, Some(steady)), &short),
        Verdict::Released(_)
    ));
}

#[test]
fn failed_invalid_and_superseded_revisions_fail_with_the_reason() {
    let b = body();
    let r = revision_of(&b);
    let wanted = Wanted::exactly(&r);

    let mut failed = status(Phase::Failed, &r, None);
    failed.failed = Some(Failure {
        rollout: RolloutId {
            revision: r.clone(),
            attempt: 1,
        },
        reason: "gate target_health failed: 0/1 healthy targets".into(),
        at: Timestamp(0),
    });
    let Verdict::Failed(line) = verdict(&record(b.clone(), Some(failed)), &wanted) else {
        panic!("not failed");
    };
    assert!(line.starts_with("failed: "), "{line}");
    assert!(line.contains("gate target_health failed"), "{line}");

    // Once a retry of that very rollout is requested, the next attempt is
    // on its way: not failed yet.
    let mut retried = b.clone();
    retried["control"] = json!({"retry": format!("{}#1", r.as_str())});
    let mut failed = status(Phase::Failed, &r, None);
    failed.failed = Some(Failure {
        rollout: RolloutId {
            revision: r.clone(),
            attempt: 1,
        },
        reason: "gate target_health failed: 0/1 healthy targets".into(),
        at: Timestamp(0),
    });
    assert_eq!(
        verdict(&record(retried.clone(), Some(failed.clone())), &wanted),
        Verdict::Pending
    );
    // A retry of an earlier attempt does not cover a later failure.
    failed.failed.as_mut().unwrap().rollout.attempt = 2;
    assert!(matches!(
        verdict(&record(retried, Some(failed)), &wanted),
        Verdict::Failed(_)
    ));

    let invalid = status(Phase::Invalid, &r, None);
    let Verdict::Failed(line) = verdict(&record(b.clone(), Some(invalid)), &wanted) else {
        panic!("not failed");
    };
    assert!(line.starts_with("invalid: "), "{line}");

    // Someone wrote another version: superseded, whatever the status says.
    let mut newer = b.clone();
    newer["task_definition"] = json!("web:3");
    let steady = status(Phase::Steady, &r, Some(&r));
    let Verdict::Failed(line) = verdict(&record(newer.clone(), Some(steady)), &wanted) else {
        panic!("not failed");
    };
    assert!(line.starts_with("superseded: "), "{line}");
    assert!(
        line.contains(&format!(
            "asks for revision {}",
            revision_of(&newer).short()
        )),
        "{line}"
    );

    let mut broken = b;
    broken["container_port"] = json!(0);
    let Verdict::Failed(line) = verdict(&record(broken, None), &wanted) else {
        panic!("not failed");
    };
    assert!(line.contains("field `container_port`"), "{line}");
}

#[test]
fn each_transition_is_fresh_once() {
    let t1 = transition(1, Phase::Steady, Phase::Provisioning);
    let t2 = transition(5, Phase::Provisioning, Phase::Shifting);
    let t3 = transition(5, Phase::Shifting, Phase::Baking);
    let t4 = transition(9, Phase::Baking, Phase::Finalizing);

    let mut seen = Seen::default();
    let first = vec![t1.clone()];
    assert_eq!(seen.fresh(&first), first.as_slice());
    assert!(seen.fresh(&first).is_empty(), "written again");
    // Two transitions in one pass share a time; both are shown once.
    assert_eq!(
        seen.fresh(&[t1.clone(), t2.clone(), t3.clone()]),
        [t2.clone(), t3.clone()]
    );
    assert!(seen.fresh(&[t1.clone(), t2.clone(), t3.clone()]).is_empty());
    // The oldest fell off the bounded history: the rest still lines up.
    let rotated = vec![t2.clone(), t3.clone(), t4.clone()];
    assert_eq!(seen.fresh(&rotated), &rotated[2..]);
    // The history was rewritten without the last one shown: by time.
    let t5 = transition(12, Phase::Steady, Phase::Provisioning);
    assert_eq!(seen.fresh(&[t1, t5.clone()]), [t5]);

    // What the record held before a write is not shown again.
    let mut s = Status::default();
    s.record(t2.clone());
    let mut seen = Seen::of(Some(&record(body(), Some(s))));
    assert_eq!(seen.fresh(&[t2.clone(), t4.clone()]), [t4]);
}

#[test]
fn timeouts_are_positive_durations_and_revisions_hex() {
    assert_eq!(timeout_value("15m"), Ok(Duration::from_secs(900)));
    assert_eq!(timeout_value("1h30m"), Ok(Duration::from_secs(5400)));
    let err = timeout_value("soon").unwrap_err();
    assert!(err.contains("such as 90s, 15m or 1h30m"), "{err}");
    assert!(timeout_value("0s").is_err());
    assert_eq!(revision_value("3F2A9C01"), Ok("3f2a9c01".to_string()));
    assert!(
        revision_value("web:2")
            .unwrap_err()
            .contains("8 hex digits")
    );
    assert!(revision_value("3f2a").is_err());
}
