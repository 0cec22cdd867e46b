//! Group-level stickiness: no task set is removed while sticky clients may
//! still be sent to it, and a rollback moves them off the candidate.

use std::time::Duration;

use serde_json::json;

use super::fixture::{BLUE, GREEN, World, record};
use crate::rollout::{Command, Phase, Stickiness};

const S5: Duration = Duration::from_secs(5);

fn sticky_world(strategy: serde_json::Value) -> World {
    let mut w = World::new(record("web:2", strategy));
    w.stickiness = Stickiness {
        enabled: true,
        duration_seconds: 3600,
    };
    w
}

/// Steps until `until` or `limit` passes, collecting the status messages.
fn messages_until(w: &mut World, until: Phase, limit: usize) -> Vec<String> {
    let mut seen = vec![];
    for _ in 0..limit {
        w.step();
        seen.push(w.status.message.clone());
        if w.status.phase() == until && w.status.rollout.is_none() {
            break;
        }
        w.advance(S5);
    }
    seen
}

#[test]
fn with_stickiness_the_old_task_set_is_removed_only_once_stickiness_is_off_then_it_is_put_back() {
    let mut w = sticky_world(json!("all_at_once"));
    // The fixture refuses to delete a task set while stickiness is on.
    let messages = messages_until(&mut w, Phase::Steady, 200);
    assert_eq!(w.status.phase(), Phase::Steady, "{messages:#?}");
    assert_eq!(w.svc.task_sets.len(), 1, "blue was removed");
    assert_eq!(w.svc.task_sets[0].target_group.as_deref(), Some(GREEN));
    assert!(
        messages
            .iter()
            .any(|m| m.contains("turning stickiness off") && m.contains("web-blue")),
        "the status says why stickiness is off: {messages:#?}"
    );
    assert_eq!(
        w.stickiness,
        Stickiness {
            enabled: true,
            duration_seconds: 3600
        },
        "stickiness is back as it was"
    );
    assert_eq!(w.status.stickiness_off, None);
}

#[test]
fn a_rollback_turns_stickiness_off_so_clients_leave_the_failing_candidate() {
    let mut w = sticky_world(json!("all_at_once"));
    assert!(w.run_until(Phase::Baking, S5, 40));
    w.step();
    w.advance(S5);
    w.healthy.insert(GREEN.into(), 0);
    let mut turned_off_while_rolling_back = false;
    for _ in 0..60 {
        let d = w.step();
        if w.status.phase() == Phase::RollingBack
            && d.commands.iter().any(
                |c| matches!(c, Command::SetStickiness { stickiness, .. } if !stickiness.enabled),
            )
        {
            turned_off_while_rolling_back = true;
        }
        if w.status.phase() == Phase::Failed {
            break;
        }
        w.advance(S5);
    }
    assert_eq!(w.status.phase(), Phase::Failed);
    assert!(turned_off_while_rolling_back);
    assert_eq!(w.production.percent(BLUE), 100);
    assert_eq!(w.svc.task_sets.len(), 1, "the candidate was removed");
    assert!(w.stickiness.enabled, "stickiness is back on");
    assert_eq!(w.status.stickiness_off, None);
}

#[test]
fn without_stickiness_no_stickiness_is_written() {
    let mut w = World::new(record("web:2", json!("all_at_once")));
    for _ in 0..200 {
        let d = w.step();
        assert!(
            !d.commands
                .iter()
                .any(|c| matches!(c, Command::SetStickiness { .. })),
            "{:?}",
            d.commands
        );
        if w.status.phase() == Phase::Steady && w.status.rollout.is_none() && w.created == 1 {
            break;
        }
        w.advance(S5);
    }
    assert_eq!(w.status.phase(), Phase::Steady);
    assert_eq!(w.svc.task_sets.len(), 1);
}
