//! Properties over random fleets and random member outcomes: services
//! start, succeed and fail at random, others write over members, writes
//! are refused, the fleet-wide halt comes and goes, people resume. A tiny
//! xorshift drives it, so a failing seed replays as it is.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::fixture::{Fleet, NEW};
use crate::fleet::{Outcome, ReleasePhase, ReleaseStatus};
use crate::rollout::ServiceKey;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn random_release(rng: &mut XorShift) -> Value {
    let mut waves = Vec::new();
    let (mut count, mut share) = (0, 0);
    for _ in 0..1 + rng.below(4) {
        if rng.chance(50) {
            count += 1 + rng.below(4);
            waves.push(json!({"services": count}));
        } else if share < 100 {
            share = (share + 1 + rng.below(60)).min(100);
            waves.push(json!({"percent": share}));
        }
    }
    if waves.is_empty() {
        waves.push(json!({"percent": 100}));
    }
    let mut budget = serde_json::Map::new();
    if rng.chance(60) {
        budget.insert("services".into(), json!(rng.below(3)));
    }
    if rng.chance(40) {
        budget.insert("percent".into(), json!(rng.below(30)));
    }
    let mut r = json!({
        "service": "release:random",
        "selector": {"tier": "web"},
        "set": {"image": NEW},
        "waves": waves,
        "bake_between": if rng.chance(50) { "0s" } else { "1m" },
        "on_halt": if rng.chance(50) { "pause" } else { "rollback" },
    });
    if !budget.is_empty() {
        r["failure_budget"] = Value::Object(budget);
    }
    r
}

/// cutover's side, at random: rollouts of services the release wrote
/// start, succeed or fail; paused ones hold.
fn world_moves(f: &mut Fleet, rng: &mut XorShift, written: &BTreeSet<ServiceKey>) {
    for k in written {
        let name = k.to_string();
        let s = f.service(&name);
        if s.body["image"] != json!(NEW) {
            continue;
        }
        let st = s.status.clone().unwrap();
        let rev = s.revision().unwrap();
        let paused = s.body["paused"] == json!(true);
        match &st.rollout {
            Some(_) if paused => {}
            Some(_) => match rng.below(100) {
                0..25 => f.succeeds(&name),
                25..35 => f.fails(&name),
                _ => {}
            },
            None => {
                let done = st.stable_revision.as_ref() == Some(&rev)
                    || st
                        .failed
                        .as_ref()
                        .is_some_and(|x| x.rollout.revision == rev);
                if !done && rng.chance(50) {
                    f.starts(&name);
                }
            }
        }
    }
    f.react();
}

fn wave_of(st: &ReleaseStatus, k: &ServiceKey) -> usize {
    st.waves
        .iter()
        .position(|w| w.members.iter().any(|m| &m.service == k))
        .unwrap()
}

#[test]
fn waves_never_start_early_and_failures_stay_within_the_budget_and_what_was_in_flight() {
    // A debug build decides a few thousand times a second: the default
    // keeps the test quick; FLEET_SEEDS runs a soak.
    let seeds: u64 = std::env::var("FLEET_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut completed: u64 = 0;
    let mut halted: u64 = 0;
    for seed in 1..=seeds {
        let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let n = 1 + rng.below(24) as usize;
        let mut f = Fleet::new(random_release(&mut rng), n);
        let mut written: BTreeSet<ServiceKey> = BTreeSet::new();
        let mut ever_settled: Vec<bool> = Vec::new();
        let mut prev = ReleaseStatus::default();
        // Members in flight when the budget last held.
        let mut in_flight_while_within = 0;
        let mut resumes = 0;
        for step in 0..150 {
            world_moves(&mut f, &mut rng, &written);
            if rng.chance(2) {
                let victim = format!("prod/svc-{:02}", rng.below(n as u64));
                f.someone_writes(&victim, json!({"image": "registry/app:hotfix"}));
            }
            if rng.chance(3) {
                f.halted = match f.halted {
                    Some(_) => None,
                    None => Some("freeze".into()),
                };
            }
            if prev.halt.is_some() && rng.chance(10) {
                resumes += 1;
                f.release["resume"] = json!(format!("r{resumes}"));
            }
            f.pass(Duration::from_secs(rng.below(90)));

            let d = f.look();
            let release = f.release.clone();
            let ctx = || format!("seed {seed} step {step}: {release}");
            let st = &d.status;
            ever_settled.resize(st.waves.len(), false);
            for (i, w) in st.waves.iter().enumerate() {
                ever_settled[i] |= w.settled_at.is_some();
            }
            for w in &d.writes {
                let m = st.members().find(|m| m.service == w.key).unwrap();
                if w.changes.contains_key("image") {
                    let k = wave_of(st, &w.key);
                    assert!(
                        ever_settled[..k].iter().all(|s| *s),
                        "{}: {} of wave {} written before the waves before it settled",
                        ctx(),
                        w.key,
                        k + 1
                    );
                    assert_eq!(m.outcome, Outcome::Writing, "{}: {}", ctx(), w.key);
                    assert!(
                        f.halted.is_none(),
                        "{}: written under the fleet-wide halt",
                        ctx()
                    );
                    assert!(st.halt.is_none(), "{}: written while halted", ctx());
                }
                if w.changes.get("paused") == Some(&Some(json!(false))) {
                    assert!(
                        prev.paused_members.contains(&w.key) || st.paused_members.contains(&w.key),
                        "{}: unpaused {}, which the release did not pause",
                        ctx(),
                        w.key
                    );
                }
                if w.changes.get("paused") == Some(&Some(json!(true))) {
                    assert_ne!(f.service(&w.key.to_string()).body["paused"], json!(true));
                }
            }
            match &st.halt {
                None => {
                    assert!(
                        st.budget.failed <= st.budget.allowed,
                        "{}: {} failed, budget {}, not halted",
                        ctx(),
                        st.budget.failed,
                        st.budget.allowed
                    );
                    in_flight_while_within = st.counts.in_flight;
                }
                Some(h) => {
                    assert!(
                        st.budget.failed <= st.budget.allowed + in_flight_while_within,
                        "{}: {} failed, budget {}, {} in flight when it last held",
                        ctx(),
                        st.budget.failed,
                        st.budget.allowed,
                        in_flight_while_within
                    );
                    assert!(st.budget.failed <= h.failed + h.in_flight, "{}", ctx());
                }
            }

            // Now and then someone else writes a record between the read
            // and the write, and the write is refused.
            if let Some(w) = d.writes.first()
                && rng.chance(10)
            {
                f.someone_writes(&w.key.to_string(), json!({"labels": {"tier": "web"}}));
            }
            let before = f.applied.len();
            f.apply(&d.writes);
            for w in &f.applied[before..] {
                if w.changes.contains_key("image") {
                    written.insert(w.key.clone());
                }
            }
            prev = d.status;
        }
        completed += u64::from(prev.phase == ReleasePhase::Completed);
        halted += u64::from(resumes > 0);
    }
    // Not vacuous: many releases ran to the end, many were halted and
    // resumed on the way.
    eprintln!("{completed} of {seeds} releases completed, {halted} resumed on the way");
    assert!(completed * 4 > seeds, "only {completed} releases completed");
    assert!(halted * 4 > seeds, "only {halted} releases were resumed");
}
