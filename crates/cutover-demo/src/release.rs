//! The demo's fleet release: twenty services of team `shop` take a new
//! base image in three waves under a failure budget of no failed service.
//! The new image breaks `shop/inventory` (in the second wave), so the
//! budget halts the release: the other rollouts of that wave are paused
//! and the third wave is not written. A while later the team fixes the
//! dependency, the release is resumed (which retries `shop/inventory`) and
//! it completes.
//!
//! The release is written and resumed as a person would, through
//! `cloud::releases`; the controller drives it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use cutover_controller::cloud::releases::{self, ReleaseAction};
use cutover_controller::cloud::{Clock, DesiredStore};
use cutover_core::fleet::{Outcome, ReleasePhase, ReleaseStatus};
use cutover_core::rollout::ServiceKey;
use cutover_core::time::{Timestamp, format_duration};
use cutover_sim::{BadVersion, ServiceSetup, SimCloud};

pub const NAME: &str = "shop-base-image";
pub const IMAGE: &str = "registry.example/shop-base:2";
pub const CLUSTER: &str = "shop";

/// In key order, which is the order of the waves: 2, then up to 50% (8
/// more), then the other 10.
const SERVICES: [&str; 20] = [
    "accounts",
    "cart",
    "catalog",
    "coupons",
    "fulfillment",
    "gift-cards",
    "inventory",
    "invoices",
    "loyalty",
    "media",
    "notifications",
    "orders",
    "pricing",
    "recommendations",
    "returns",
    "reviews",
    "sessions",
    "shipping",
    "storefront",
    "wishlist",
];

/// The member the new image breaks, in the second wave.
pub const BROKEN: &str = "inventory";

/// How long after the halt the team has fixed the dependency.
const FIX_AFTER: Duration = Duration::from_secs(120);

pub fn is_member(key: &ServiceKey) -> bool {
    key.cluster == CLUSTER
}

/// The release as written to the table.
pub fn body() -> serde_json::Value {
    json!({
        "selector": {"team": "shop"},
        "set": {"image": IMAGE, "container": "app"},
        "waves": [{"services": 2}, {"percent": 50}, {"percent": 100}],
        "bake_between": "1m",
        "failure_budget": {"services": 0},
        "on_halt": "pause",
    })
}

/// Adds the twenty services, each with a record deploying its current
/// version all at once with a 1m bake, and breaks what the release's image
/// registers for `BROKEN` (`inventory:2`).
pub fn setup(sim: &SimCloud) -> anyhow::Result<()> {
    for name in SERVICES {
        let key = ServiceKey::new(CLUSTER, name);
        let arns = sim.add_service(ServiceSetup::new(key.clone()))?;
        let mut body = arns.record(&format!("{name}:1"), json!("all_at_once"));
        body["labels"] = json!({"team": "shop"});
        body["bake"] = json!("1m");
        body["progress_deadline"] = json!("1m");
        sim.put_spec(&key, body);
    }
    sim.mark_task_definition_bad(&format!("{BROKEN}:2"), BadVersion::NeverHealthy);
    Ok(())
}

pub async fn start(sim: &SimCloud) -> anyhow::Result<()> {
    releases::start(sim, NAME, &body()).await?;
    Ok(())
}

pub fn intro() -> Vec<String> {
    vec![
        format!(
            "{} services of team shop (shop/{} … shop/{}), each deploying all at once with a 1m bake",
            SERVICES.len(),
            SERVICES[0],
            SERVICES[SERVICES.len() - 1]
        ),
        format!(
            "release {NAME}: image {IMAGE} on every record labelled team=shop, in waves of 2 services, 50%, 100%,"
        ),
        format!(
            "  1m between waves, failure budget 0 services. The image breaks shop/{BROKEN} (wave 2): the release halts;"
        ),
        format!(
            "  {} later the team fixes the dependency and resumes it → completed",
            format_duration(FIX_AFTER)
        ),
    ]
}

/// What the release went through, as the watcher saw it.
#[derive(Debug, Default)]
pub struct Story {
    /// Phase labels in the order seen.
    pub phases: Vec<String>,
    pub halted_at: Option<Timestamp>,
    pub halt_reason: Option<String>,
    /// The waves (from 1) not started at the halt, and their services,
    /// checked unwritten while it holds.
    pub held_waves: Vec<usize>,
    pub held_back: Vec<ServiceKey>,
    /// Any of those that was written while the release was halted.
    pub written_while_halted: Vec<ServiceKey>,
    pub resumed_at: Option<Timestamp>,
    pub completed: bool,
    pub last: Option<ReleaseStatus>,
}

/// Short name of a phase, for the story's arrows.
fn label(phase: &ReleasePhase) -> String {
    match phase {
        ReleasePhase::Rolling { wave, of } => format!("rolling wave {wave}/{of}"),
        other => other.kind().to_string(),
    }
}

/// Members of waves not started yet whose record already says the image.
async fn written(sim: &SimCloud, keys: &[ServiceKey]) -> Vec<ServiceKey> {
    let mut out = Vec::new();
    for key in keys {
        let record = DesiredStore::get(sim, key).await.ok().flatten();
        if record.is_some_and(|r| r.body["image"] == json!(IMAGE)) {
            out.push(key.clone());
        }
    }
    out
}

/// Follows the release every second of simulated time: prints each phase
/// change with the release's message, checks that nothing of the waves
/// held back is written while it is halted, and plays the team that fixes
/// the broken dependency and resumes it. Returns once it completed.
pub async fn watch(
    sim: SimCloud,
    clock: Arc<dyn Clock>,
    start: Timestamp,
    story: Arc<Mutex<Story>>,
) {
    let lock = || story.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let now = clock.now();
        let at = format_duration(now.since(start));
        let found = releases::get(&sim, NAME).await.ok().flatten();
        if found.as_ref().is_some_and(|r| r.status.is_none()) && lock().phases.is_empty() {
            println!(
                "[{at:>7}] {NAME:<16} {:>17} → {:<17} written; cutover has not looked at it yet",
                "", "written"
            );
            lock().phases.push("written".into());
        }
        if let Some(s) = found.and_then(|r| r.status) {
            let to = label(&s.phase);
            let from = lock().phases.last().cloned();
            if from.as_ref() != Some(&to) {
                println!(
                    "[{at:>7}] {NAME:<16} {:>17} → {:<17} {}",
                    from.as_deref().unwrap_or(""),
                    to,
                    s.message
                );
                lock().phases.push(to);
            }
            if let ReleasePhase::Halted { reason } = &s.phase {
                let first = lock().halted_at.is_none();
                if first {
                    let held: Vec<ServiceKey> = s
                        .waves
                        .iter()
                        .filter(|w| w.started_at.is_none())
                        .flat_map(|w| w.members.iter().map(|m| m.service.clone()))
                        .collect();
                    let held_waves: Vec<usize> = (0..s.waves.len())
                        .filter(|&i| s.waves[i].started_at.is_none())
                        .map(|i| i + 1)
                        .collect();
                    let paused = s.paused_members.len();
                    println!(
                        "[{at:>7}] {NAME:<16} {:>17}   {paused} rollout(s) in flight paused; {} service(s) of {} left unwritten",
                        "",
                        held.len(),
                        waves(&held_waves)
                    );
                    let mut st = lock();
                    st.halted_at = Some(now);
                    st.halt_reason = Some(reason.clone());
                    st.held_back = held;
                    st.held_waves = held_waves;
                }
                let held = lock().held_back.clone();
                let bad = written(&sim, &held).await;
                if !bad.is_empty() {
                    let mut st = lock();
                    for k in bad {
                        if !st.written_while_halted.contains(&k) {
                            println!(
                                "[{at:>7}] {NAME:<16} {:>17}   {k} was written while the release was halted",
                                ""
                            );
                            st.written_while_halted.push(k);
                        }
                    }
                }
                let halted_at = lock().halted_at.unwrap_or(now);
                if lock().resumed_at.is_none() && now.since(halted_at) >= FIX_AFTER {
                    sim.mark_task_definition_good(&format!("{BROKEN}:2"));
                    match releases::act(&sim, NAME, ReleaseAction::Resume, now).await {
                        Ok(_) => {
                            println!(
                                "[{at:>7}] {NAME:<16} {:>17}   the team fixed {BROKEN}'s dependency ({BROKEN}:2 is healthy now) and resumed the release",
                                ""
                            );
                            lock().resumed_at = Some(now);
                        }
                        Err(e) => {
                            println!("[{at:>7}] {NAME:<16} {:>17}   resuming failed: {e}", "")
                        }
                    }
                }
            }
            let completed = s.phase == ReleasePhase::Completed;
            {
                let mut st = lock();
                st.last = Some(s);
                st.completed = completed;
            }
            if completed {
                return;
            }
        }
        clock.sleep(Duration::from_secs(1)).await;
    }
}

/// The release's rows of the summary.
pub fn summary(story: &Story, start: Timestamp) {
    let Some(s) = &story.last else {
        println!("\nrelease {NAME}: no status yet");
        return;
    };
    let sizes: Vec<String> = s
        .waves
        .iter()
        .map(|w| w.members.len().to_string())
        .collect();
    println!(
        "\n{:<16} {:<12} {:<12} {:<9} message",
        "RELEASE", "PHASE", "WAVES", "SERVICES"
    );
    println!(
        "{:<16} {:<12} {:<12} {:<9} {}",
        NAME,
        s.phase.kind(),
        sizes.join(" + "),
        s.members().count(),
        s.message
    );
    let since =
        |t: Option<Timestamp>| t.map_or("-".to_string(), |t| format_duration(t.since(start)));
    println!(
        "  {:<6} {:<9} {:<10} {:<7} {:<8} {:<8} {:<8} note",
        "WAVE", "SERVICES", "SUCCEEDED", "FAILED", "PENDING", "STARTED", "SETTLED"
    );
    for (i, w) in s.waves.iter().enumerate() {
        let count = |o: Outcome| w.members.iter().filter(|m| m.outcome == o).count();
        let retried: Vec<String> = w
            .members
            .iter()
            .filter(|m| m.forgiven.is_some())
            .map(|m| m.service.to_string())
            .collect();
        let note = if retried.is_empty() {
            String::new()
        } else {
            format!("{} failed, retried after the resume", retried.join(", "))
        };
        let row = format!(
            "  {:<6} {:<9} {:<10} {:<7} {:<8} {:<8} {:<8} {}",
            i + 1,
            w.members.len(),
            count(Outcome::Succeeded),
            count(Outcome::Failed),
            count(Outcome::Pending),
            since(w.started_at),
            since(w.settled_at),
            note
        );
        println!("{}", row.trim_end());
    }
    println!("  phases: {}", story.phases.join(" → "));
    if let Some(halted) = story.halted_at {
        println!(
            "  halted at {} ({}); {} of {} service(s) of {} written while halted; resumed at {}",
            format_duration(halted.since(start)),
            story.halt_reason.as_deref().unwrap_or("?"),
            story.written_while_halted.len(),
            story.held_back.len(),
            waves(&story.held_waves),
            since(story.resumed_at)
        );
    }
}

/// "wave 3", "waves 2, 3", "no wave".
fn waves(numbers: &[usize]) -> String {
    let list: Vec<String> = numbers.iter().map(|n| n.to_string()).collect();
    match numbers.len() {
        0 => "no wave".to_string(),
        1 => format!("wave {}", list[0]),
        _ => format!("waves {}", list.join(", ")),
    }
}
