//! Releases in the simulation: one change released to a dozen services in
//! waves under a failure budget, by the real controller over the simulated
//! cloud, with the faults, bad versions, restarts and fleet-wide halts of
//! the other seeds. The services are spread over three accounts and
//! regions (home, `us-west-2:` of the same account, and
//! `eu-west-1:210987654321:`), each with its own request budgets in the
//! controller and its own throttling buckets in the simulated cloud. What
//! the harness checks, from what it sees of the
//! table every simulated second (never from what the release says of
//! itself):
//!
//! - **waves in order**: no member's record gets the change before every
//!   member of the waves before it settled, and `bake_between` passed;
//! - **the budget**: once the release halted, no member gets the change
//!   any more, and the members that fail are at most the budget plus the
//!   members already in flight when it halted;
//! - **the fleet-wide halt**: no member gets the change while it holds
//!   (after `HALT_REACH`), and no rollout steps forward (the simulated
//!   cloud's invariant (h));
//! - **each account and region's budgets**: AWS's are enforced in each
//!   by the simulated cloud, and none refuses a call of cutover's;
//! - only members are written, and a completed release leaves every
//!   member Steady on the change.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use cutover::cloud::budget::{ApiBudgets, BudgetConfig};
use cutover::cloud::releases;
use cutover::cloud::scopes::Scopes;
use cutover::cloud::{Clock, ScaledClock, StoredRecord};
use cutover::fleet::{Outcome as MemberOutcome, ReleasePhase, ReleaseStatus};
use cutover::rollout::{Phase, Scope, ServiceKey};
use cutover::sim::{
    BadVersion, DEFAULT_EPOCH, REGION as HOME_REGION, RateLimits, ServiceSetup, SimCloud,
};
use cutover::time::Timestamp;

use super::{HaltWindow, LIMIT, Outcome, controller, faults, promote_waiting, spawn, strategy};

/// Services in a release seed, and how many of them the selector leaves out.
const SERVICES: usize = 12;
const OUTSIDERS: usize = 2;
const IMAGE: &str = "registry.example/app:2";
/// How soon a halt (the release's or the fleet's) must stop new writes:
/// the controller polls every 5 s; a decision made just before may still
/// write what it decided.
const REACH: Duration = Duration::from_secs(10);

/// Where the services are: a third each at home, in another region of the
/// controller's account and in another account, in an order drawn from a
/// stream of its own, so that the seed's other draws stay as they were.
fn keys(seed: u64) -> Vec<ServiceKey> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5c0b_e5ac);
    let scopes = [
        Scope::Home,
        Scope::Region("us-west-2".into()),
        Scope::Account {
            region: "eu-west-1".into(),
            account: "210987654321".into(),
        },
    ];
    let mut placed: Vec<Scope> = (0..SERVICES).map(|i| scopes[i % 3].clone()).collect();
    for i in (1..placed.len()).rev() {
        placed.swap(i, rng.random_range(0..=i));
    }
    placed
        .into_iter()
        .enumerate()
        .map(|(i, scope)| ServiceKey::new("rel", format!("svc-{i}")).in_scope(scope))
        .collect()
}

/// Whether the record says the change.
fn changed(r: &StoredRecord) -> bool {
    r.body.get("image").and_then(|v| v.as_str()) == Some(IMAGE)
}

/// Settled on the change: Steady on the record's revision, or that
/// revision failed.
fn settled(r: &StoredRecord) -> Option<bool> {
    if !changed(r) || !super::judged(r) {
        return None;
    }
    Some(r.status.as_ref()?.phase() == Phase::Steady)
}

async fn release_status(sim: &SimCloud) -> Option<ReleaseStatus> {
    releases::get(sim, "patch").await.ok()??.status
}

/// A controller process as `cutover run` wires it: request budgets for
/// each account and region its records name, each at the default share
/// of AWS's, new with each process.
fn start_budgeted(
    sim: &SimCloud,
    clock: Arc<dyn Clock>,
    seed: u64,
    generation: u64,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let scopes = Arc::new(Scopes::new(Some(HOME_REGION.to_string())));
    scopes.learn_all(sim.records().iter());
    let budgets = ApiBudgets::new(&BudgetConfig::default(), Arc::clone(&clock));
    budgets.with_scopes(scopes);
    spawn(controller(sim, clock, seed, generation, false).with_budgets(&budgets))
}

pub async fn run_release_seed(seed: u64, keep_log: bool) -> Outcome {
    let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(DEFAULT_EPOCH, 1.0));
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7e1e_a5e5);
    let sim = SimCloud::builder(seed)
        .clock(clock.clone())
        .faults(faults(&mut rng))
        // AWS's budgets, enforced per account and region as AWS does.
        .rate_limits(RateLimits::aws())
        .keep_log(keep_log)
        .build();
    let keys = keys(seed);
    let key = |i: usize| keys[i].clone();
    let mut auto_promote = BTreeMap::new();
    for i in 0..SERVICES {
        let arns = sim
            .add_service(ServiceSetup {
                desired_count: rng.random_range(1..4u32),
                ..ServiceSetup::new(key(i))
            })
            .expect("service setup");
        let mut body = arns.record(&format!("svc-{i}:1"), strategy(&mut rng));
        body["bake"] = json!("1m");
        body["labels"] = json!({"tier": if i < SERVICES - OUTSIDERS { "web" } else { "batch" }});
        let promote = rng.random_bool(0.8);
        body["auto_promote"] = json!(promote);
        auto_promote.insert(key(i), promote);
        sim.put_spec(&key(i), body);
        // The change registers `svc-<i>:2` for each member.
        if rng.random_bool(0.15) {
            let bad = if rng.random_bool(0.5) {
                BadVersion::NeverHealthy
            } else {
                BadVersion::CrashLoop
            };
            sim.mark_task_definition_bad(&format!("svc-{i}:2"), bad);
        }
    }
    let first = rng.random_range(1..=3u64);
    let middle = rng.random_range(25..=60u64);
    let bake_between = Duration::from_secs(rng.random_range(0..=120u64));
    let allowed = rng.random_range(0..=2u64);
    let on_halt = if rng.random_bool(0.5) {
        "pause"
    } else {
        "rollback"
    };
    let release = json!({
        "selector": {"tier": "web"},
        "set": {"image": IMAGE, "container": "app"},
        "waves": [{"services": first}, {"percent": middle}, {"percent": 100}],
        "bake_between": format!("{}s", bake_between.as_secs()),
        "failure_budget": {"services": allowed},
        "on_halt": on_halt,
    });
    let mut restarts: Vec<Duration> = (0..rng.random_range(0..3u32))
        .map(|_| Duration::from_secs(rng.random_range(10..900u64)))
        .collect();
    restarts.sort();
    let mut halt = HaltWindow::draw(seed, 300);

    let start = clock.now();
    let mut generation = 0;
    let (mut token, mut handle) = start_budgeted(&sim, clock.clone(), seed, generation);
    let mut violations = vec![];
    let mut written = false;
    // What the harness saw, tick by tick.
    let mut changed_at: BTreeMap<ServiceKey, Timestamp> = BTreeMap::new();
    let mut settled_at: BTreeMap<ServiceKey, Timestamp> = BTreeMap::new();
    let mut failed: BTreeSet<ServiceKey> = BTreeSet::new();
    // Members changed and not settled at the last look before the release
    // was seen halted, and the failures then.
    let mut before_halt: (usize, usize) = (0, 0);
    let mut halted_at: Option<Timestamp> = None;
    let mut fleet_halted_at: Option<Timestamp> = None;
    let mut ended_at: Option<Timestamp> = None;
    let mut last: Option<ReleaseStatus> = None;

    loop {
        clock.sleep(Duration::from_secs(1)).await;
        sim.advance();
        let now = clock.now();
        let elapsed = now.since(start);
        if restarts.first().is_some_and(|r| *r <= elapsed) {
            restarts.remove(0);
            token.cancel();
            let _ = handle.await;
            generation += 1;
            (token, handle) = start_budgeted(&sim, clock.clone(), seed, generation);
        }
        if !written && elapsed >= Duration::from_secs(5) {
            written = true;
            if let Err(e) = releases::start(&sim, "patch", &release).await {
                violations.push(format!("the release was refused: {e}"));
                break;
            }
        }
        if let Some(h) = halt.as_mut() {
            let was_on = h.on && !h.lifted;
            h.tick(&sim, elapsed);
            let on = h.on && !h.lifted;
            if on && !was_on {
                fleet_halted_at = Some(now);
            }
            if !on {
                fleet_halted_at = None;
            }
        }
        for i in 0..SERVICES {
            if !auto_promote[&key(i)] {
                promote_waiting(&sim, &key(i));
            }
        }
        let records: BTreeMap<ServiceKey, StoredRecord> = sim
            .records()
            .into_iter()
            .map(|r| (r.key.clone(), r))
            .collect();
        let status = release_status(&sim).await;
        let halted_now = status
            .as_ref()
            .is_some_and(|s| matches!(s.phase, ReleasePhase::Halted { .. }));
        if halted_now && halted_at.is_none() {
            halted_at = Some(now);
        }
        let mut in_flight = 0;
        for (k, r) in &records {
            if changed(r) && !changed_at.contains_key(k) {
                changed_at.insert(k.clone(), now);
                if let Some(at) = halted_at {
                    violations.push(format!(
                        "{k} got the change at {now}, after the release was seen halted at {at}"
                    ));
                }
                if let Some(at) = fleet_halted_at
                    && now > at + REACH
                {
                    violations.push(format!(
                        "{k} got the change at {now}, while the fleet was halted since {at}"
                    ));
                }
            }
            match settled(r) {
                Some(ok) => {
                    settled_at.entry(k.clone()).or_insert(now);
                    if !ok {
                        failed.insert(k.clone());
                    }
                }
                None if changed(r) => in_flight += 1,
                None => {}
            }
        }
        if halted_at.is_none() {
            before_halt = (in_flight, failed.len());
        }
        if let Some(s) = &status {
            let terminal = match s.phase {
                ReleasePhase::Completed | ReleasePhase::Aborted | ReleasePhase::Invalid { .. } => {
                    true
                }
                // Halted: nothing new is written; wait for what was in flight.
                ReleasePhase::Halted { .. } => records
                    .values()
                    .filter(|r| changed(r))
                    .all(|r| settled(r).is_some() || paused(r)),
                _ => false,
            };
            if terminal && ended_at.is_none() {
                ended_at = Some(now);
            }
            last = Some(s.clone());
        }
        // A minute past the end, to see that nothing more is written.
        if let Some(end) = ended_at
            && now.since(end) >= Duration::from_secs(60)
            && restarts.is_empty()
            && HaltWindow::done(&halt)
        {
            break;
        }
        if elapsed > LIMIT {
            violations.push(format!(
                "the release did not end within {LIMIT:?}: {:?}",
                last.as_ref().map(|s| s.message.clone())
            ));
            break;
        }
    }
    token.cancel();
    let _ = handle.await;

    for v in sim.violations() {
        violations.push(v.to_string());
    }
    let Some(s) = last else {
        violations.push("the release never got a status".into());
        return Outcome {
            violations,
            log: vec![],
        };
    };
    // Waves in order, with their bake.
    let mut earlier_settled: Option<Timestamp> = Some(Timestamp::EPOCH);
    for (n, wave) in s.waves.iter().enumerate() {
        let first_change = wave
            .members
            .iter()
            .filter_map(|m| changed_at.get(&m.service))
            .min()
            .copied();
        if let Some(first) = first_change {
            match earlier_settled {
                None => violations.push(format!(
                    "wave {} got the change at {first} before the waves before it settled",
                    n + 1
                )),
                Some(at) if n > 0 && first + Duration::from_secs(1) < at + bake_between => {
                    violations.push(format!(
                        "wave {} got the change at {first}, before the waves before it settled (at {at}) and baked {bake_between:?}",
                        n + 1
                    ))
                }
                _ => {}
            }
        }
        let counted = |m: &&cutover::fleet::MemberStatus| {
            !matches!(
                m.outcome,
                MemberOutcome::Superseded | MemberOutcome::Missing
            )
        };
        let wave_settled = wave
            .members
            .iter()
            .filter(counted)
            .map(|m| settled_at.get(&m.service).copied())
            .try_fold(Timestamp::EPOCH, |acc, t| t.map(|t| acc.max(t)));
        earlier_settled = match (earlier_settled, wave_settled) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
    // Only members are written.
    let members: BTreeSet<&ServiceKey> = s.members().map(|m| &m.service).collect();
    for k in changed_at.keys() {
        if !members.contains(k) {
            violations.push(format!("{k} is not a member and got the change"));
        }
    }
    // The budget.
    if halted_at.is_some() {
        let (in_flight, failed_before) = before_halt;
        let bound = failed_before.max(allowed as usize) + in_flight;
        if failed.len() > bound {
            violations.push(format!(
                "{} members failed: more than the budget ({allowed}) or the {failed_before} failed before the halt, plus the {in_flight} in flight then",
                failed.len()
            ));
        }
    }
    if s.phase == ReleasePhase::Completed {
        for m in s.members() {
            if m.outcome == MemberOutcome::Succeeded && !settled_at.contains_key(&m.service) {
                violations.push(format!(
                    "{} counts as succeeded but was never seen settled on the change",
                    m.service
                ));
            }
        }
        if failed.len() > allowed as usize {
            violations.push(format!(
                "the release completed with {} failed members, over its budget of {allowed}",
                failed.len()
            ));
        }
    }
    // Each account and region's budgets: cutover keeps to its share of
    // every one, so AWS's (enforced per account and region) refuse nothing.
    let throttled = sim.throttled();
    if !throttled.is_empty() {
        violations.push(format!(
            "calls throttled by an account and region's request budget: {throttled:?}"
        ));
    }
    // How the seeds went, for a soak's note.
    if std::env::var_os("SIM_RELEASE_SUMMARY").is_some() {
        eprintln!(
            "release seed {seed}: {} ({} failed, budget {allowed}, on_halt {on_halt}, fleet halt {})",
            s.phase.kind(),
            failed.len(),
            halt.is_some()
        );
    }
    let log = sim.event_log().iter().map(|e| e.to_string()).collect();
    Outcome { violations, log }
}

/// Held by a pause, the release's or a person's.
fn paused(r: &StoredRecord) -> bool {
    r.status
        .as_ref()
        .is_some_and(|s| s.phase() == Phase::Paused)
}

pub fn run_release(seed: u64, keep_log: bool) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(run_release_seed(seed, keep_log))
}
