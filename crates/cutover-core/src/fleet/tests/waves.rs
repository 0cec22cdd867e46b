//! Waves: in order, each after the one before settled and baked; sized by
//! counts and shares; settled at once when their services already run the
//! change; held by a pause or the fleet-wide halt.

use std::time::Duration;

use serde_json::json;

use super::fixture::{Fleet, NEW, key, release, written};
use crate::fleet::{Outcome, ReleasePhase};

fn mins(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

#[test]
fn the_next_wave_waits_until_the_wave_before_settled_and_baked() {
    let mut f = Fleet::new(release(json!({"bake_between": "10m"})), 8);
    let d = f.decide();
    assert_eq!(written(&d.writes), ["prod/svc-00", "prod/svc-01"]);
    let changes = &d.writes[0].changes;
    assert_eq!(changes["image"], Some(json!(NEW)));
    assert_eq!(changes["task_definition"], None);
    assert_eq!(changes["updated_at"], Some(json!(f.now.to_string())));
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert_eq!(
        d.writes[0].unchanged_since,
        Some(json!("2026-01-01T00:00:00Z"))
    );
    assert_eq!(d.status.phase, ReleasePhase::Rolling { wave: 1, of: 3 });

    // Written, not yet read by cutover: nothing more to write.
    let d = f.decide();
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(f.outcome("prod/svc-00"), Outcome::Waiting);

    f.starts("prod/svc-00");
    f.succeeds("prod/svc-01");
    let d = f.decide();
    assert!(
        d.writes.is_empty(),
        "wave 1 has not settled: {:?}",
        d.writes
    );
    assert_eq!(f.outcome("prod/svc-00"), Outcome::InFlight);
    assert_eq!(f.outcome("prod/svc-01"), Outcome::Succeeded);

    f.succeeds("prod/svc-00");
    let settled = f.now;
    let d = f.decide();
    assert!(
        d.writes.is_empty(),
        "bake_between has not passed: {:?}",
        d.writes
    );
    assert_eq!(
        d.status.phase,
        ReleasePhase::Baking {
            next: 2,
            until: settled + mins(10)
        }
    );
    assert_eq!(d.wake, Some(settled + mins(10)));
    assert_eq!(d.status.waves[0].settled_at, Some(settled));

    f.pass(mins(10) - Duration::from_secs(1));
    assert!(f.decide().writes.is_empty());
    f.pass(Duration::from_secs(1));
    let d = f.decide();
    assert_eq!(written(&d.writes), ["prod/svc-02", "prod/svc-03"]);
    assert_eq!(d.status.phase, ReleasePhase::Rolling { wave: 2, of: 3 });
    assert_eq!(d.wake, None);
}

#[test]
fn waves_hold_the_counts_and_rounded_up_shares_they_name() {
    for (waves, n, want) in [
        (
            json!([{"services": 1}, {"percent": 25}, {"percent": 100}]),
            8,
            vec![1, 1, 6],
        ),
        (json!([{"percent": 10}, {"percent": 50}]), 8, vec![1, 3, 4]),
        (json!([{"services": 3}]), 8, vec![3, 5]),
        (json!([{"percent": 100}]), 3, vec![3]),
        (json!([{"services": 5}, {"services": 6}]), 2, vec![2]),
    ] {
        let mut f = Fleet::new(release(json!({"waves": waves.clone()})), n);
        f.decide();
        let sizes: Vec<usize> = f.waves().iter().map(Vec::len).collect();
        assert_eq!(sizes, want, "{waves} over {n}");
        // Members are in key order, wave after wave.
        let all: Vec<String> = f.waves().concat();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted);
    }
}

#[test]
fn a_wave_whose_services_already_run_the_change_settles_without_writes() {
    let mut f = Fleet::new(release(json!({})), 8);
    for s in ["prod/svc-00", "prod/svc-01"] {
        f.someone_writes(s, json!({"image": NEW}));
        f.succeeds(s);
    }
    let d = f.decide();
    // Wave 1 settles at once; with no bake, wave 2 follows in the same
    // decision, and only its services are written.
    assert_eq!(written(&d.writes), ["prod/svc-02", "prod/svc-03"]);
    assert_eq!(f.outcome("prod/svc-00"), Outcome::Succeeded);
    assert_eq!(d.status.counts.succeeded, 2);

    let mut f = Fleet::new(release(json!({"bake_between": "5m"})), 8);
    for s in ["prod/svc-00", "prod/svc-01"] {
        f.someone_writes(s, json!({"image": NEW}));
        f.succeeds(s);
    }
    let d = f.decide();
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert!(matches!(
        d.status.phase,
        ReleasePhase::Baking { next: 2, .. }
    ));
}

#[test]
fn a_service_already_at_the_change_but_not_steady_is_waited_for_without_a_write() {
    let mut f = Fleet::new(release(json!({})), 4);
    f.someone_writes("prod/svc-00", json!({"image": NEW}));
    f.starts("prod/svc-00");
    let d = f.decide();
    assert_eq!(written(&d.writes), ["prod/svc-01"]);
    assert_eq!(f.outcome("prod/svc-00"), Outcome::InFlight);
}

#[test]
fn a_fleet_wide_halt_withholds_new_waves_and_says_so() {
    let mut f = Fleet::new(release(json!({})), 8);
    f.decide();
    f.succeeds("prod/svc-00");
    f.starts("prod/svc-01");
    f.halted = Some("incident 42".into());
    f.succeeds("prod/svc-01");
    let d = f.decide();
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(
        d.status.phase,
        ReleasePhase::HeldByFleetHalt {
            reason: "incident 42".into()
        }
    );
    assert!(
        d.status
            .message
            .contains("held by the fleet-wide halt: incident 42"),
        "{}",
        d.status.message
    );
    f.pass(mins(30));
    assert!(f.decide().writes.is_empty());

    f.halted = None;
    let d = f.decide();
    assert_eq!(written(&d.writes), ["prod/svc-02", "prod/svc-03"]);
}

#[test]
fn a_fleet_wide_halt_from_the_start_writes_nothing_but_fixes_the_members() {
    let mut f = Fleet::new(release(json!({})), 4);
    f.halted = Some("freeze".into());
    let d = f.decide();
    assert!(d.writes.is_empty());
    assert_eq!(f.waves().concat().len(), 4);
    assert_eq!(d.status.counts.pending, 4, "not even the first wave starts");
    assert!(
        matches!(d.status.phase, ReleasePhase::HeldByFleetHalt { .. }),
        "{:?}",
        d.status.phase
    );
    f.halted = None;
    assert_eq!(written(&f.decide().writes), ["prod/svc-00", "prod/svc-01"]);
}

#[test]
fn a_paused_release_starts_no_service_while_rollouts_in_flight_go_on() {
    let mut f = Fleet::new(release(json!({"paused": true})), 8);
    let d = f.decide();
    assert!(d.writes.is_empty());
    assert_eq!(d.status.phase, ReleasePhase::Paused);

    f.release = release(json!({}));
    assert_eq!(written(&f.decide().writes), ["prod/svc-00", "prod/svc-01"]);
    f.starts("prod/svc-00");
    f.succeeds("prod/svc-01");
    f.release = release(json!({"paused": true}));
    let d = f.decide();
    assert!(d.writes.is_empty(), "{:?}", d.writes);
    assert_eq!(f.outcome("prod/svc-00"), Outcome::InFlight);
    f.succeeds("prod/svc-00");
    let d = f.decide();
    assert!(d.writes.is_empty(), "no new wave while paused");
    assert_eq!(d.status.phase, ReleasePhase::Paused);

    f.release = release(json!({"paused": false}));
    assert_eq!(written(&f.decide().writes), ["prod/svc-02", "prod/svc-03"]);
}

#[test]
fn every_wave_settled_completes_the_release() {
    let mut f = Fleet::new(release(json!({"failure_budget": {"services": 1}})), 4);
    for _ in 0..4 {
        let d = f.decide();
        for w in &d.writes {
            if w.key == key("prod/svc-03") {
                f.fails(&w.key.to_string());
            } else {
                f.succeeds(&w.key.to_string());
            }
        }
    }
    let d = f.decide();
    assert_eq!(d.status.phase, ReleasePhase::Completed);
    assert_eq!(d.status.counts.succeeded, 3);
    assert_eq!(d.status.counts.failed, 1);
    assert_eq!(d.status.message, "completed: 3 succeeded, 1 failed");
    // Steady on the new version stays steady: nothing more happens.
    let since = d.status.since;
    f.pass(mins(60));
    let d = f.decide();
    assert!(d.writes.is_empty());
    assert_eq!(d.status.since, since);
}
