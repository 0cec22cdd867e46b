//! The demo: the real controller drives four services with stories, and a
//! release of twenty more in three waves (`release`), on the simulated
//! cloud, on a clock that runs many times faster than the wall clock. It
//! compiles no AWS SDK, so a fresh clone shows it in minutes:
//! `cargo run --release -p cutover-demo`. `cutover demo` runs the same.

mod release;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use cutover_controller::cloud::{
    Clock, DesiredStore, Ecs, LoadBalancer, ScaledClock, ServiceDeployments,
};
use cutover_controller::controller::{Controller, ControllerConfig};
use cutover_core::rollout::observed::short_task_definition;
use cutover_core::rollout::{Event, Phase, ServiceKey};
use cutover_core::time::Timestamp;
use cutover_core::time::format_duration;
use cutover_sim::{BadVersion, ServiceSetup, SimCloud};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// How many times faster than real time the simulated clock runs.
    #[arg(long, default_value_t = 30.0)]
    pub speed: f64,
    /// Seed of the simulated cloud.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Give up after this much simulated time.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    pub limit: Duration,
}

struct Scenario {
    key: ServiceKey,
    story: &'static str,
    expect: Phase,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    // The story is printed on stdout; the controller's own log only when
    // asked for, on stderr.
    if std::env::var_os("RUST_LOG").is_some() {
        logs();
    }
    let clock: Arc<dyn Clock> =
        Arc::new(ScaledClock::new(Timestamp(1_700_000_000_000), args.speed));
    let sim = SimCloud::builder(args.seed).clock(clock.clone()).build();
    let scenarios = setup(&sim)?;
    release::setup(&sim)?;
    release::start(&sim)
        .await
        .context("writing the demo's release")?;

    println!(
        "cutover demo: seed {}, simulated clock at {}x. {} records were written:",
        args.seed,
        args.speed,
        scenarios.len()
    );
    for s in &scenarios {
        println!("  {:<16} {}", s.key.to_string(), s.story);
    }
    println!("and");
    for line in release::intro() {
        println!("  {line}");
    }
    println!();

    let store: Arc<dyn DesiredStore> = Arc::new(sim.clone());
    let ecs: Arc<dyn Ecs> = Arc::new(sim.clone());
    let lb: Arc<dyn LoadBalancer> = Arc::new(sim.clone());
    let service_deployments: Arc<dyn ServiceDeployments> = Arc::new(sim.clone());
    let controller = Controller::new(
        store,
        ecs,
        lb,
        clock.clone(),
        ControllerConfig {
            poll_interval: Duration::from_secs(5),
            resync_interval: Duration::from_secs(60),
            concurrency: 4,
            seed: args.seed,
            ..ControllerConfig::default()
        },
    )
    .with_service_deployments(service_deployments);
    let mut events = controller.subscribe();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(controller.run(shutdown.clone()));
    let start = clock.now();

    let story = Arc::new(Mutex::new(release::Story::default()));
    let watcher = tokio::spawn(release::watch(
        sim.clone(),
        clock.clone(),
        start,
        story.clone(),
    ));

    let printer = tokio::spawn({
        let clock = clock.clone();
        async move {
            // Release members whose rollout failed: how their retry ends
            // is part of the story.
            let mut failed = std::collections::BTreeSet::new();
            while let Ok((key, event)) = events.recv().await {
                // The release's twenty members would fill the screen: of
                // theirs, only what the release's story turns on.
                if release::is_member(&key) {
                    match &event {
                        Event::Transition(t) if t.to == Phase::Failed => {
                            failed.insert(key.clone());
                        }
                        Event::RolloutFinished { .. } if failed.contains(&key) => {}
                        e if worth_showing(e) => {}
                        _ => continue,
                    }
                }
                let at = format_duration(clock.now().since(start));
                match event {
                    Event::Transition(t) => println!(
                        "[{at:>7}] {:<16} {:>17} → {:<17} {}",
                        key.to_string(),
                        t.from.as_str(),
                        t.to.as_str(),
                        t.reason
                    ),
                    Event::StepCompleted { weight, .. } => println!(
                        "[{at:>7}] {:<16} {:>17}   candidate has {weight}% of production traffic",
                        key.to_string(),
                        ""
                    ),
                    Event::RolloutFinished {
                        outcome, duration, ..
                    } => println!(
                        "[{at:>7}] {:<16} {:>17}   rollout finished: {} after {}",
                        key.to_string(),
                        "",
                        outcome.as_str(),
                        format_duration(duration)
                    ),
                    Event::TrafficHeld { reason, .. } => println!(
                        "[{at:>7}] {:<16} {:>17}   held: {reason}",
                        key.to_string(),
                        ""
                    ),
                    Event::Alert { kind, reason, .. } => println!(
                        "[{at:>7}] {:<16} {:>17}   alert {}: {reason}",
                        key.to_string(),
                        "",
                        kind.as_str()
                    ),
                    Event::RolloutStarted { .. }
                    | Event::RolloutAdopted { .. }
                    | Event::GateEvaluated { .. }
                    | Event::ProductionRestored { .. } => {}
                }
            }
        }
    });

    let finished = wait_for(&sim, &scenarios, &story, clock.as_ref(), args.limit).await;
    shutdown.cancel();
    let _ = running.await;
    printer.abort();
    watcher.abort();

    summary(&sim, &scenarios).await;
    let story = std::mem::take(&mut *story.lock().unwrap_or_else(|e| e.into_inner()));
    release::summary(&story, start);
    if std::env::var_os("RUST_LOG").is_some() {
        // What the simulated cloud saw, on sim time: with the controller's
        // log, enough to follow a demo that did not end as its story says.
        for entry in sim.event_log() {
            eprintln!(
                "[{:>7}] {}",
                format_duration(entry.at.since(start)),
                entry.text
            );
        }
    }
    let violations = sim.violations();
    for v in &violations {
        println!("invariant violated: {v}");
    }
    if !finished {
        println!(
            "\nthe demo did not finish within {} of simulated time",
            format_duration(args.limit)
        );
        return Ok(ExitCode::from(1));
    }
    if story.halted_at.is_none() {
        println!(
            "\nrelease {} completed without the halt its story has: shop/{} did not fail",
            release::NAME,
            release::BROKEN
        );
    }
    if !violations.is_empty() || !story.written_while_halted.is_empty() || story.halted_at.is_none()
    {
        return Ok(ExitCode::from(1));
    }
    println!(
        "\nall {} services ended as expected, and release {} completed after its halt, in {} of simulated time.",
        scenarios.len(),
        release::NAME,
        format_duration(clock.now().since(start))
    );
    Ok(ExitCode::SUCCESS)
}

fn setup(sim: &SimCloud) -> anyhow::Result<Vec<Scenario>> {
    let checkout = ServiceKey::new("demo", "checkout");
    let search = ServiceKey::new("demo", "search");
    let billing = ServiceKey::new("demo", "billing");
    let payments = ServiceKey::new("demo", "payments");

    let a = sim.add_service(ServiceSetup {
        desired_count: 3,
        ..ServiceSetup::new(checkout.clone())
    })?;
    let mut body = a.record(
        "checkout:2",
        json!({"type": "canary", "percent": 10, "interval": "2m"}),
    );
    body["bake"] = json!("1m");
    sim.put_spec(&checkout, body);

    let b = sim.add_service(ServiceSetup {
        desired_count: 3,
        ..ServiceSetup::new(search.clone())
    })?;
    sim.mark_task_definition_bad("search:2", BadVersion::FailsAfter(Duration::from_secs(150)));
    let body = b.record(
        "search:2",
        json!({"type": "linear", "percent": 20, "interval": "1m"}),
    );
    sim.put_spec(&search, body);

    let c = sim.add_service(ServiceSetup::new(billing.clone()))?;
    let mut body = c.record(
        "billing:2",
        json!({"type": "canary", "percent": 150, "interval": "5m"}),
    );
    body["container_port"] = json!(0);
    sim.put_spec(&billing, body);

    // ECS deploys this one itself; cutover answers each of its pauses.
    let d = sim.add_service(ServiceSetup {
        desired_count: 3,
        ..ServiceSetup::native(payments.clone())
    })?;
    let body = d.native_record(
        "payments:2",
        json!({"type": "canary", "percent": 10, "interval": "1m"}),
    );
    sim.put_spec(&payments, body);

    Ok(vec![
        Scenario {
            key: checkout,
            story: "canary 10% for 2m, then all traffic; bakes 1m → promoted",
            expect: Phase::Steady,
        },
        Scenario {
            key: search,
            story: "linear 20% a minute; the new version turns unhealthy mid-shift → rolled back",
            expect: Phase::Failed,
        },
        Scenario {
            key: billing,
            story: "an invalid record → reported and skipped",
            expect: Phase::Invalid,
        },
        Scenario {
            key: payments,
            story: "ECS's own canary (driver ecs_native): 10% for 1m, each step held at an ECS pause until cutover answers → promoted",
            expect: Phase::Steady,
        },
    ])
}

/// Whether each service reached the phase its story ends in, with no
/// rollout left in flight.
async fn records(sim: &SimCloud) -> BTreeMap<ServiceKey, cutover_controller::cloud::StoredRecord> {
    DesiredStore::list(sim)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.key.clone(), r))
        .collect()
}

async fn done(sim: &SimCloud, scenarios: &[Scenario]) -> bool {
    let records = records(sim).await;
    scenarios.iter().all(|s| {
        records
            .get(&s.key)
            .and_then(|r| r.status.as_ref())
            .is_some_and(|st| {
                st.phase() == s.expect
                    && (s.expect == Phase::Invalid || st.rollout.is_none())
                    && (s.expect != Phase::Steady || st.history.len() > 1)
            })
    })
}

async fn wait_for(
    sim: &SimCloud,
    scenarios: &[Scenario],
    story: &Mutex<release::Story>,
    clock: &dyn Clock,
    limit: Duration,
) -> bool {
    let released = || story.lock().unwrap_or_else(|e| e.into_inner()).completed;
    let deadline = clock.now() + limit;
    while clock.now() < deadline {
        if released() && done(sim, scenarios).await {
            return true;
        }
        clock.sleep(Duration::from_secs(5)).await;
    }
    released() && done(sim, scenarios).await
}

/// Of a release member's events, those its story turns on: its rollout
/// failing, being paused by the halt and going on after the resume.
fn worth_showing(event: &Event) -> bool {
    let notable = |p: Phase| matches!(p, Phase::Paused | Phase::RollingBack | Phase::Failed);
    match event {
        Event::Transition(t) => notable(t.from) || notable(t.to),
        Event::RolloutFinished { outcome, .. } => {
            *outcome != cutover_core::rollout::Outcome::Promoted
        }
        Event::Alert { .. } => true,
        _ => false,
    }
}

async fn summary(sim: &SimCloud, scenarios: &[Scenario]) {
    println!(
        "\n{:<16} {:<12} {:<12} {:<8} message",
        "SERVICE", "PHASE", "SERVING", "WEIGHTS"
    );
    let records = records(sim).await;
    for s in scenarios {
        let record = records.get(&s.key);
        let Some(status) = record.and_then(|r| r.status.clone()) else {
            println!("{:<16} (no status yet)", s.key.to_string());
            continue;
        };
        let weights = status
            .weights
            .map_or("-".to_string(), |(a, c)| format!("{a}/{c}"));
        // ECS's own deployments have no task set cutover names: a service
        // steady on its record serves the record's task definition.
        let written = record
            .and_then(|r| r.body["task_definition"].as_str())
            .filter(|_| status.phase() == Phase::Steady);
        let serving = status.active.as_ref().map_or_else(
            || written.map_or("-", short_task_definition),
            |a| short_task_definition(&a.task_definition),
        );
        println!(
            "{:<16} {:<12} {:<12} {:<8} {}",
            s.key.to_string(),
            status.phase().as_str(),
            serving,
            weights,
            status.message
        );
    }
}

/// The controller's log on stderr as text, filtered by `RUST_LOG`.
fn logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second init (the daemon's CLI set one up) keeps the first.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
