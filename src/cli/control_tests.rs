use serde_json::json;

use super::*;
use crate::rollout::status::{Failure, Rollout};
use crate::rollout::{RolloutId, ServiceKey};
use crate::time::Timestamp;

fn id(s: &str) -> RolloutId {
    s.parse().expect("a rollout id")
}

fn rollout(step: u32) -> Rollout {
    Rollout {
        step,
        ..Rollout::new(
            id("0123abcd0123abcd#2"),
            None,
            "arn:tg/green".into(),
            Timestamp(1),
        )
    }
}

fn record(body: Value, status: Option<Status>) -> StoredRecord {
    StoredRecord {
        key: ServiceKey::new("prod", "web"),
        body,
        status,
        status_version: 3,
        written_at: None,
        unreadable: Vec::new(),
    }
}

fn in_phase(phase: Phase, rollout: Option<Rollout>) -> Status {
    Status {
        rollout,
        weights: Some((90, 10)),
        message: format!("in {phase}"),
        ..Status::default()
    }
    .with_phase(phase)
}

fn body() -> Value {
    json!({
        "service": "prod/web",
        "updated_at": "2026-01-01T00:00:00Z",
        "control": {"retry": "feedfeedfeedfeed#1"}
    })
}

#[test]
fn promote_names_the_waiting_rollout_and_step_and_keeps_other_requests() {
    let r = record(
        body(),
        Some(in_phase(Phase::AwaitingPromotion, Some(rollout(1)))),
    );
    let intent = intent(Request::Promote, &r).unwrap().expect("a write");
    assert_eq!(
        intent.changes["control"],
        Some(json!({
            "retry": "feedfeedfeedfeed#1",
            "promote": {"rollout": "0123abcd0123abcd#2", "step": 1}
        }))
    );
    assert_eq!(
        intent.precondition,
        Precondition::Unchanged {
            updated_at: Some(json!("2026-01-01T00:00:00Z"))
        }
    );
    assert!(
        intent
            .done
            .contains("0123abcd0123abcd#2 past step 1 with 10%"),
        "{}",
        intent.done
    );
}

#[test]
fn promote_says_which_phase_the_service_is_in_when_it_is_not_waiting() {
    let r = record(body(), Some(in_phase(Phase::Shifting, Some(rollout(0)))));
    let refusal = intent(Request::Promote, &r).unwrap_err();
    assert!(
        refusal.contains("not waiting for promotion: it is Shifting"),
        "{refusal}"
    );
    let r = record(body(), None);
    let refusal = intent(Request::Promote, &r).unwrap_err();
    assert!(refusal.contains("has not written its status"), "{refusal}");
}

#[test]
fn a_request_already_in_the_record_is_not_written_again() {
    let mut b = body();
    b["control"]["promote"] = json!({"rollout": "0123abcd0123abcd#2", "step": 1});
    let r = record(
        b,
        Some(in_phase(Phase::AwaitingPromotion, Some(rollout(1)))),
    );
    assert_eq!(intent(Request::Promote, &r), Ok(None));
}

#[test]
fn abort_needs_a_rollout_in_flight_that_can_still_go_back() {
    let steady = record(body(), Some(in_phase(Phase::Steady, None)));
    let refusal = intent(Request::Abort, &steady).unwrap_err();
    assert!(refusal.contains("nothing is in flight"), "{refusal}");
    assert!(refusal.contains("it is Steady"), "{refusal}");

    let shifting = record(body(), Some(in_phase(Phase::Shifting, Some(rollout(0)))));
    let intent_ = intent(Request::Abort, &shifting).unwrap().expect("a write");
    assert_eq!(
        intent_.changes["control"].as_ref().unwrap()["abort"],
        json!("0123abcd0123abcd#2")
    );

    let mut failing = rollout(0);
    failing.rollback = Some(RollbackReason::GateFailed {
        gate: "target_health".into(),
        detail: "0/2 healthy".into(),
    });
    let rolling_back = record(body(), Some(in_phase(Phase::RollingBack, Some(failing))));
    let refusal = intent(Request::Abort, &rolling_back).unwrap_err();
    assert!(
        refusal.contains("already rolling back: gate target_health failed"),
        "{refusal}"
    );

    let finalizing = record(body(), Some(in_phase(Phase::Finalizing, Some(rollout(2)))));
    assert!(
        intent(Request::Abort, &finalizing)
            .unwrap_err()
            .contains("finalizing")
    );
}

#[test]
fn pause_and_resume_set_the_flag_whatever_else_changed() {
    let r = record(body(), Some(in_phase(Phase::Shifting, Some(rollout(0)))));
    let pause = intent(Request::Pause, &r).unwrap().expect("a write");
    assert_eq!(pause.changes["paused"], Some(json!(true)));
    assert_eq!(pause.precondition, Precondition::Exists);
    assert!(pause.done.contains("holds where it is"), "{}", pause.done);
    assert_eq!(intent(Request::Resume, &r), Ok(None), "not paused");

    let mut b = body();
    b["paused"] = json!(true);
    let r = record(b, None);
    assert_eq!(intent(Request::Pause, &r), Ok(None));
    let resume = intent(Request::Resume, &r).unwrap().expect("a write");
    assert_eq!(resume.changes["paused"], Some(json!(false)));
}

#[test]
fn retry_names_the_failed_rollout() {
    let mut failed = in_phase(Phase::Failed, None);
    failed.failed = Some(Failure {
        rollout: id("0123abcd0123abcd#2"),
        reason: "deadline".into(),
        at: Timestamp(5),
    });
    let r = record(json!({"service": "prod/web"}), Some(failed));
    let retry = intent(Request::Retry, &r).unwrap().expect("a write");
    assert_eq!(
        retry.changes["control"],
        Some(json!({"retry": "0123abcd0123abcd#2"}))
    );
    assert_eq!(
        retry.precondition,
        Precondition::Unchanged { updated_at: None }
    );

    let steady = record(body(), Some(in_phase(Phase::Steady, None)));
    let refusal = intent(Request::Retry, &steady).unwrap_err();
    assert!(
        refusal.contains("no failed rollout to retry: it is Steady"),
        "{refusal}"
    );
}
