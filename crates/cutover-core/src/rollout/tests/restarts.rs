//! A controller restart at any point resumes the rollout: no second task set
//! and no jump in weights, whether the status survived or was wiped.

use std::time::Duration;

use serde_json::json;

use super::fixture::{BLUE, GREEN, World, record};
use crate::rollout::{Event, Phase, Status, parse_record};

const S5: Duration = Duration::from_secs(5);

fn body() -> serde_json::Value {
    let mut b = record(
        "web:2",
        json!({"type": "steps", "steps": [{"set_weight": 10}, {"pause": "1m"}, {"set_weight": 40}, {"pause": "1m"}]}),
    );
    b["test_listener"] = json!(super::fixture::TEST);
    b
}

/// Runs a rollout and, before every step, simulates a restart by handing the
/// next decision a status from `restart`. Returns the finished world.
fn run_with_restarts(restart: impl Fn(&Status) -> Status) -> World {
    let mut w = World::new(body());
    let mut last_share = 0;
    for _ in 0..400 {
        w.status = restart(&w.status);
        w.step();
        let share = w.production.percent(GREEN);
        if w.status.phase() != Phase::RollingBack && w.status.rollout.is_some() {
            assert!(
                share >= last_share,
                "weights went back from {last_share} to {share} in {:?}",
                w.status.phase()
            );
        }
        last_share = share;
        if w.status.phase() == Phase::Steady && w.status.rollout.is_none() && w.created == 1 {
            break;
        }
        w.advance(S5);
    }
    w
}

#[test]
fn a_restart_with_the_stored_status_resumes_exactly() {
    let w = run_with_restarts(|s| s.clone());
    assert_eq!(w.status.phase(), Phase::Steady);
    assert_eq!(w.created, 1);
    assert_eq!(w.weight_log, vec![10, 40, 100]);
}

#[test]
fn a_restart_in_every_phase_creates_no_second_task_set() {
    // Record the status at each phase of a clean run, then restart from each.
    let mut w = World::new(body());
    let mut snapshots: Vec<(Phase, World)> = vec![];
    for _ in 0..200 {
        w.step();
        let phase = w.status.phase();
        if !snapshots.iter().any(|(p, _)| *p == phase) {
            let mut copy = World::new(body());
            copy.svc = w.svc.clone();
            copy.production = w.production.clone();
            copy.test = w.test.clone();
            copy.healthy = w.healthy.clone();
            copy.status = w.status.clone();
            copy.now = w.now;
            copy.created = w.created;
            copy.next_id = w.next_id;
            snapshots.push((phase, copy));
        }
        if phase == Phase::Steady && w.status.rollout.is_none() && w.created == 1 {
            break;
        }
        w.advance(S5);
    }
    let seen: Vec<Phase> = snapshots.iter().map(|(p, _)| *p).collect();
    for p in [
        Phase::Provisioning,
        Phase::Testing,
        Phase::Shifting,
        Phase::Baking,
        Phase::Finalizing,
    ] {
        assert!(seen.contains(&p), "the run never reached {p}: {seen:?}");
    }
    for (phase, mut copy) in snapshots {
        let before = copy.production.percent(GREEN);
        copy.step();
        assert!(
            copy.production.percent(GREEN) >= before || copy.status.phase() == Phase::Steady,
            "restart in {phase} moved weights back"
        );
        assert_eq!(copy.settle(), Phase::Steady, "restart in {phase}");
        assert_eq!(
            copy.created, 1,
            "restart in {phase} created a second task set"
        );
    }
}

#[test]
fn a_wiped_status_mid_shift_is_rebuilt_from_the_live_service() {
    let mut w = World::new(body());
    for _ in 0..200 {
        w.step();
        if w.production.percent(GREEN) == 40 {
            break;
        }
        w.advance(S5);
    }
    assert_eq!(w.production.percent(GREEN), 40);
    // A writer replaced the whole item (PutItem), so the status is gone.
    w.status = Status::default();
    let d = w.step();
    assert_eq!(w.status.phase(), Phase::Shifting);
    assert_eq!(w.production.percent(GREEN), 40, "no jump");
    let named =
        |t: &Option<crate::rollout::status::TaskSetRef>| t.as_ref().map(|t| t.target_group.clone());
    assert_eq!(named(&w.status.active), Some(BLUE.to_string()));
    assert_eq!(named(&w.status.candidate), Some(GREEN.to_string()));
    // The rollout is taken over, not started again, and no phase change
    // from the wiped status's default is made up.
    assert!(
        matches!(
            d.events.as_slice(),
            [
                Event::RolloutAdopted {
                    phase: Phase::Shifting,
                    ..
                },
                ..
            ]
        ),
        "{:?}",
        d.events
    );
    assert!(
        !d.events
            .iter()
            .any(|e| matches!(e, Event::RolloutStarted { .. } | Event::Transition(_))),
        "{:?}",
        d.events
    );
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.created, 1);
}

/// A service baking `web:2` (green, primary, 100%) beside `web:1` (blue),
/// whose record a writer then replaces whole with `web:1` again: the status
/// is gone with the put. `blue_by_cutover` gives blue the externalId of a
/// task set cutover created, as after an earlier release.
fn written_back_whole_while_baking(blue_by_cutover: bool) -> (World, usize) {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "linear", "percent": 50, "interval": "1m"}),
    ));
    if blue_by_cutover {
        let key = crate::rollout::ServiceKey::new("prod", "web");
        let old = parse_record(&key, &record("web:1", json!("all_at_once"))).unwrap();
        w.svc.task_sets[0].external_id = Some(old.revision.external_id());
    }
    assert!(w.run_until(Phase::Baking, S5, 100));
    w.step();
    assert_eq!(
        w.svc.primary().unwrap().target_group.as_deref(),
        Some(GREEN)
    );
    let shifts = w.weight_log.len();
    w.set("task_definition", json!("web:1"));
    w.status = Status::default();
    (w, shifts)
}

#[test]
fn a_whole_item_put_of_the_previous_version_while_baking_switches_back_at_once() {
    for blue_by_cutover in [false, true] {
        let (mut w, shifts) = written_back_whole_while_baking(blue_by_cutover);
        let d = w.step();
        assert_eq!(w.production.percent(BLUE), 100, "in one weight change");
        assert!(
            matches!(
                d.events.as_slice(),
                [
                    Event::RolloutAdopted {
                        phase: Phase::RollingBack,
                        ..
                    },
                    ..
                ]
            ),
            "{:?}",
            d.events
        );
        assert_eq!(w.settle(), Phase::Steady);
        assert_eq!(w.weight_log.len(), shifts + 1, "one weight change back");
        assert_eq!(w.svc.primary().unwrap().target_group.as_deref(), Some(BLUE));
        assert_eq!((w.created, w.svc.task_sets.len()), (1, 1));
        assert!(!w.phases().contains(&Phase::Shifting), "{:?}", w.phases());
    }
}

#[test]
fn a_wiped_status_before_a_newer_candidate_has_traffic_still_goes_through_every_step() {
    // web:2 is released, then web:1 again: its new task set is newer than
    // the primary, so losing the status does not skip its steps.
    let mut w = World::new(record(
        "web:2",
        json!({"type": "linear", "percent": 50, "interval": "1m"}),
    ));
    assert_eq!(w.settle(), Phase::Steady);
    w.set("task_definition", json!("web:1"));
    for _ in 0..20 {
        w.step();
        if w.created == 2 {
            break;
        }
        w.advance(S5);
    }
    assert_eq!((w.created, w.production.percent(BLUE)), (2, 0));
    w.status = Status::default();
    let mut shares = vec![];
    for _ in 0..400 {
        w.step();
        let share = w.production.percent(BLUE);
        if shares.last() != Some(&share) {
            shares.push(share);
        }
        if w.status.phase() == Phase::Steady && w.status.rollout.is_none() && share == 100 {
            break;
        }
        w.advance(S5);
    }
    assert_eq!(shares, vec![50, 100], "the strategy's steps, not a switch");
    assert_eq!(w.created, 2);
}

#[test]
fn a_status_lost_while_baking_bakes_again_and_keeps_the_old_task_set_until_then() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "linear", "percent": 50, "interval": "1m"}),
    ));
    assert!(w.run_until(Phase::Baking, S5, 100));
    w.step();
    assert_eq!(
        w.svc.primary().unwrap().target_group.as_deref(),
        Some(GREEN)
    );
    let shifts = w.weight_log.len();
    w.status = Status::default();

    let d = w.step();
    assert!(
        matches!(
            d.events.as_slice(),
            [
                Event::RolloutAdopted {
                    phase: Phase::Baking,
                    ..
                },
                ..
            ]
        ),
        "{:?}",
        d.events
    );
    assert_eq!(w.status.phase(), Phase::Baking);
    assert!(w.deleted.is_empty(), "blue stays while the bake runs");
    assert_eq!(w.svc.task_sets.len(), 2);
    // The bake runs in full from the adoption: blue is still there just
    // before it ends.
    w.advance(Duration::from_secs(2 * 60) - S5);
    w.step();
    assert!(w.deleted.is_empty(), "{:?}", w.phases());
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.deleted.len(), 1, "blue removed once the bake is over");
    // The weights may be written again (the lost status hid whether a write
    // was on its way), but they never move off the candidate.
    assert!(
        w.weight_log[shifts..].iter().all(|share| *share == 100),
        "no weight moved: {:?}",
        w.weight_log
    );
    assert_eq!(w.created, 1);
}

#[test]
fn a_leftover_candidate_is_removed_before_the_next_revision_takes_its_target_group() {
    let mut w = World::new(record(
        "web:2",
        json!({"type": "linear", "percent": 50, "interval": "1m"}),
    ));
    assert!(w.run_until(Phase::Shifting, S5, 100));
    w.step();
    assert!(w.production.percent(GREEN) > 0);
    // A whole-item put with a newer version: the status and with it the
    // rollout of web:2 are gone, web:2's task set still sits in green.
    w.set("task_definition", json!("web:3"));
    w.status = Status::default();
    for _ in 0..100 {
        w.step();
        if w.created == 2 {
            break;
        }
        w.advance(S5);
    }
    assert_eq!(w.created, 2, "{:?}", w.phases());
    assert_eq!(w.deleted.len(), 1, "web:2 went before web:3 came");
    let in_green = w
        .svc
        .task_sets
        .iter()
        .filter(|t| t.target_group.as_deref() == Some(GREEN))
        .filter(|t| t.status != crate::rollout::TaskSetStatus::Draining)
        .count();
    assert_eq!(in_green, 1);
    assert_eq!(w.settle(), Phase::Steady);
}

/// The status write after the first production weight change was lost (it
/// was throttled), the change is not visible yet, and then the candidate
/// fails. Production still shows 100% on blue, but 10% is on its way to the
/// candidate: the rollback writes production back before it removes the
/// candidate, never on the strength of what the load balancer shows alone.
#[test]
fn a_rollback_after_a_lost_status_write_rewrites_production_before_removing_the_candidate() {
    let mut w = World::new(body());
    assert!(w.run_until(Phase::Testing, S5, 100), "{:?}", w.phases());
    let testing = w.status.clone();
    let mut shifted = false;
    for _ in 0..100 {
        w.advance(S5);
        w.step();
        if w.production.percent(GREEN) > 0 {
            shifted = true;
            break;
        }
        if w.status.phase() == Phase::Testing {
            continue;
        }
        break;
    }
    assert!(shifted, "the first step was sent: {:?}", w.phases());
    // Lost: the status write, and (for now) the visibility of the weights.
    w.status = testing;
    w.production = crate::rollout::Weights::pair(BLUE, 100, GREEN, 0);
    // The candidate then fails.
    w.healthy.insert(GREEN.to_string(), 0);
    let mut rewritten = false;
    for _ in 0..100 {
        w.advance(S5);
        let d = w.step();
        for c in &d.commands {
            match c {
                crate::rollout::Command::SetWeights { route, weights }
                    if route.arn() == super::fixture::PROD && weights.percent(GREEN) == 0 =>
                {
                    rewritten = true
                }
                crate::rollout::Command::DeleteTaskSet { .. } => assert!(
                    rewritten,
                    "the candidate was removed before production was written back: {:?}",
                    d.commands
                ),
                _ => {}
            }
        }
        if w.status.phase() == Phase::Failed {
            break;
        }
    }
    assert_eq!(w.settle(), Phase::Failed);
    assert!(w.svc.task_sets.len() == 1, "{:?}", w.svc.task_sets);
}

/// What a replica that just took a service's shard decides, given the
/// production weights it reads once: a late weight change of the replica
/// that drove the service before is written back, in Steady and in Failed
/// alike. Without a reading, nothing is sent.
fn after_takeover(
    w: &World,
    production: Option<crate::rollout::Weights>,
) -> crate::rollout::Decision {
    use crate::rollout::{Desired, Observed, ServiceState, decide};
    let spec = w.spec().expect("valid");
    let observed = Observed {
        service: Some(ServiceState::Found(w.svc.clone())),
        production,
        ..Observed::default()
    };
    decide(&Desired::Valid(&spec), &observed, &w.status, w.now)
}

fn weight_commands(d: &crate::rollout::Decision) -> Vec<crate::rollout::Weights> {
    d.commands
        .iter()
        .filter_map(|c| match c {
            crate::rollout::Command::SetWeights { weights, .. } => Some(weights.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_late_weight_change_seen_after_a_takeover_is_written_back_when_steady() {
    let mut w = World::new(body());
    assert_eq!(w.settle(), Phase::Steady);
    let active = w.svc.task_sets[0].target_group.clone().expect("registered");
    let other = if active == GREEN { BLUE } else { GREEN };
    // The previous holder's shift to 40% arrives after it finalized.
    let late = crate::rollout::Weights::pair(&active, 60, other, 40);
    let d = after_takeover(&w, Some(late));
    assert_eq!(
        weight_commands(&d),
        vec![crate::rollout::Weights::pair(&active, 100, other, 0)]
    );
    assert!(
        d.events
            .iter()
            .any(|e| matches!(e, Event::ProductionRestored { .. }))
    );
    assert_eq!(d.status.phase(), Phase::Steady);
    // As it should be, or not read at all: nothing to send.
    let right = crate::rollout::Weights::pair(&active, 100, other, 0);
    assert!(after_takeover(&w, Some(right)).commands.is_empty());
    assert!(after_takeover(&w, None).commands.is_empty());
}

#[test]
fn a_late_weight_change_seen_after_a_takeover_is_written_back_when_failed() {
    let mut w = World::new(body());
    w.candidate_healthy = false;
    assert_eq!(w.settle(), Phase::Failed);
    let late = crate::rollout::Weights::pair(BLUE, 90, GREEN, 10);
    let d = after_takeover(&w, Some(late));
    assert_eq!(
        weight_commands(&d),
        vec![crate::rollout::Weights::pair(BLUE, 100, GREEN, 0)]
    );
    assert_eq!(d.status.phase(), Phase::Failed);
}
