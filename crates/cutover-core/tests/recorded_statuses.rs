//! Statuses written by the release before the status was reshaped (a
//! phase beside the rollout, and `resume_to` while held), recorded from its
//! decision tests into `recorded_statuses/`: every one decodes, shows the
//! phase it was written with, is written back as it was read (so every
//! reader, a replica on that release included, reads it as before), and a
//! held rollout goes on at the stage it was held in.

use std::fs;
use std::path::PathBuf;

use cutover_core::rollout::status::{Hold, Settled, Stage};
use cutover_core::rollout::{Phase, Status};
use serde_json::Value;

fn recorded() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/recorded_statuses");
    let mut all: Vec<(String, Value)> = fs::read_dir(&dir)
        .expect("the recorded statuses")
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let text = fs::read_to_string(&path).expect("a recorded status");
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, serde_json::from_str(&text).expect("JSON"))
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

fn phase_of(v: &Value) -> Phase {
    serde_json::from_value(v["phase"].clone()).expect("a phase")
}

#[test]
fn every_recorded_status_decodes_to_the_phase_it_was_written_with() {
    let all = recorded();
    assert!(all.len() >= 16, "recorded statuses: {}", all.len());
    for (name, stored) in &all {
        let status: Status = serde_json::from_value(stored.clone())
            .unwrap_or_else(|e| panic!("{name} does not decode: {e}"));
        assert_eq!(status.phase(), phase_of(stored), "{name}");
        assert_eq!(
            status.rollout.is_some(),
            !stored["rollout"].is_null(),
            "{name}"
        );
    }
}

#[test]
fn every_recorded_status_is_written_back_as_it_was_read() {
    for (name, mut stored) in recorded() {
        let status: Status = serde_json::from_value(stored.clone()).expect("decodes");
        let written = serde_json::to_value(&status).expect("encodes");
        if name == "task_sets_invalid_while_paused" {
            // The one change: that release resumed such a rollout to
            // `Paused`, then (with no stage remembered) to `Shifting`; the
            // stage is written now, and the record's `paused` is read
            // again when it is valid.
            assert_eq!(stored["rollout"]["resume_to"], "Paused");
            stored["rollout"]["resume_to"] = Value::from("Shifting");
        }
        assert_eq!(written, stored, "{name}");
    }
}

#[test]
fn a_held_rollout_keeps_the_stage_it_resumes_at() {
    let by_name: std::collections::BTreeMap<String, Value> = recorded().into_iter().collect();
    let status =
        |name: &str| -> Status { serde_json::from_value(by_name[name].clone()).expect("decodes") };
    for (name, stage, hold) in [
        ("task_sets_paused", Stage::Shifting, Hold::Paused),
        (
            "task_sets_paused_by_hand",
            Stage::Shifting,
            Hold::Overridden,
        ),
        (
            "task_sets_invalid_while_shifting",
            Stage::Shifting,
            Hold::Invalid,
        ),
        // Held invalid while paused: the pause is the record's, read again
        // once it is valid; the rollout was shifting.
        (
            "task_sets_invalid_while_paused",
            Stage::Shifting,
            Hold::Invalid,
        ),
        (
            "codedeploy_paused_ready",
            Stage::AwaitingPromotion,
            Hold::Paused,
        ),
    ] {
        let s = status(name);
        let r = s.rollout.as_ref().expect("a rollout in flight");
        assert_eq!((r.stage, r.hold), (stage, Some(hold)), "{name}");
        assert_eq!(s.working_phase(), stage.phase(), "{name}");
    }
    for (name, settled) in [
        ("task_sets_steady", Settled::Steady),
        ("gate_failed_failed", Settled::Failed),
        ("invalid_record_steady", Settled::Invalid),
    ] {
        let s = status(name);
        assert!(s.rollout.is_none(), "{name}");
        assert_eq!(s.settled, settled, "{name}");
    }
}

#[test]
fn a_rollout_beside_a_phase_that_is_not_one_of_a_rollouts_starts_at_its_first_stage() {
    // Hand-edited, or cut short: a rollout stored beside `Steady`.
    let mut stored = recorded()
        .into_iter()
        .find(|(name, _)| name == "task_sets_shifting")
        .expect("recorded")
        .1;
    stored["phase"] = Value::from("Steady");
    let status: Status = serde_json::from_value(stored).expect("decodes");
    assert_eq!(status.phase(), Phase::Provisioning);
}
