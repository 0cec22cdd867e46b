//! Which deployment controller a record drives: cutover's own task sets on
//! an EXTERNAL service (the default), CodeDeploy for services that stay on
//! the CODE_DEPLOY deployment controller, or ECS's own blue/green, linear
//! and canary deployments (`ecs_native`) for services on the ECS one.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::deployment::CodeDeployTarget;
use super::hook::HookPoint;
use super::quote::quote;
use super::service_deployment::{
    BAKE_MINUTES, LINEAR_PERCENT, NativeStrategy, PAUSE_TIMEOUT_MINUTES,
};
use super::strategy::{CODEDEPLOY_NAMES, Step, Strategy};

/// The `driver` value of ECS's own deployments.
pub(super) const NATIVE: &str = "ecs_native";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DriverKind {
    /// cutover creates task sets and weighs the load balancer itself.
    #[default]
    Ecs,
    /// CodeDeploy runs each deployment; cutover starts, watches, continues
    /// and stops it. The record's traffic routes are empty under this
    /// driver: the deployment group owns the load balancer wiring.
    CodeDeploy(CodeDeployTarget),
    /// ECS deploys the service itself (deploymentController ECS with a
    /// BLUE_GREEN, LINEAR or CANARY strategy); cutover starts each
    /// deployment, answers its PAUSE hooks after its own gates, and stops
    /// it with a rollback. ECS owns the load balancer wiring.
    EcsNative(NativeDeployment),
}

impl DriverKind {
    pub fn codedeploy(&self) -> Option<&CodeDeployTarget> {
        match self {
            DriverKind::CodeDeploy(t) => Some(t),
            _ => None,
        }
    }

    pub fn native(&self) -> Option<&NativeDeployment> {
        match self {
            DriverKind::EcsNative(n) => Some(n),
            _ => None,
        }
    }

    /// Whether cutover weighs the load balancer itself (task sets).
    pub fn shifts_traffic(&self) -> bool {
        matches!(self, DriverKind::Ecs)
    }

    /// The record's `driver` value.
    pub fn name(&self) -> &'static str {
        match self {
            DriverKind::Ecs => "ecs",
            DriverKind::CodeDeploy(_) => "codedeploy",
            DriverKind::EcsNative(_) => "ecs_native",
        }
    }
}

/// How ECS runs each deployment of an `ecs_native` record, from the
/// record's strategy, bake and progress deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeDeployment {
    pub strategy: NativeStrategy,
    pub bake_minutes: u32,
    /// How long each pause waits for cutover's answer before ECS rolls the
    /// deployment back: the record's progress deadline.
    pub pause_timeout_minutes: u32,
}

/// `codedeploy = {…}` as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCodeDeploy {
    application: String,
    deployment_group: String,
    #[serde(default)]
    hooks: BTreeMap<HookPoint, String>,
}

/// Reads `driver` and `codedeploy`. `Some` for a CodeDeploy record. `given`
/// says which of the fields that only cutover's own driver uses are present:
/// each is a problem under CodeDeploy, which owns what they configure.
pub(super) fn codedeploy(
    driver: Option<&str>,
    raw: Option<&RawCodeDeploy>,
    strategy: Option<&Value>,
    given: &[(&str, bool)],
    bad: &mut impl FnMut(&str, String),
) -> Option<CodeDeployTarget> {
    match driver {
        None | Some("ecs") | Some(NATIVE) => {
            if raw.is_some() {
                bad(
                    "codedeploy",
                    "is only read with driver = \"codedeploy\": add that, or remove `codedeploy`"
                        .into(),
                );
            }
            return None;
        }
        Some("codedeploy") => {}
        Some(other) => {
            bad(
                "driver",
                format!(
                    "{} is not a driver: use \"ecs\" (the default), \"codedeploy\" or \"ecs_native\"",
                    quote(other)
                ),
            );
            return None;
        }
    }
    for (field, present) in given {
        if *present {
            bad(
                field,
                format!("is not used with driver = \"codedeploy\": {}", owner(field)),
            );
        }
    }
    let Some(raw) = raw else {
        bad(
            "codedeploy",
            "is missing: give {application = \"…\", deployment_group = \"…\"}".into(),
        );
        return None;
    };
    for (field, name) in [
        ("codedeploy.application", &raw.application),
        ("codedeploy.deployment_group", &raw.deployment_group),
    ] {
        if name.trim().is_empty() || name.len() > 100 || name.trim() != name {
            bad(
                field,
                format!(
                    "{} is not a CodeDeploy name (1 to 100 characters, no surrounding spaces)",
                    quote(name)
                ),
            );
        }
    }
    for (point, arn) in &raw.hooks {
        if !arn.starts_with("arn:") || !arn.contains(":lambda:") || !arn.contains(":function:") {
            bad(
                &format!("codedeploy.hooks.{point}"),
                format!(
                    "{} is not a Lambda function ARN (arn:aws:lambda:…:function:…)",
                    quote(arn)
                ),
            );
        }
    }
    Some(CodeDeployTarget {
        application: raw.application.clone(),
        deployment_group: raw.deployment_group.clone(),
        deployment_config: strategy.and_then(|s| deployment_config(s, bad)),
        hooks: raw.hooks.clone(),
    })
}

/// Why a field has no meaning under CodeDeploy.
fn owner(field: &str) -> &'static str {
    match field {
        "image" => "give `task_definition` (for example with `cutover set --taskdef`)",
        "bake" => "the deployment group's termination wait keeps the original task set",
        "progress_deadline" => "CodeDeploy times out its own steps",
        "hooks" => "CodeDeploy calls Lambda hooks: list them in `codedeploy.hooks`",
        "gates.target_health" | "gates.task_failures" => {
            "CodeDeploy checks the replacement's tasks and targets itself"
        }
        _ => "the deployment group owns the load balancer and placement",
    }
}

/// `strategy` under CodeDeploy: a deployment configuration's name (its own
/// or a custom one), or a cutover strategy that one of CodeDeploy's own ECS
/// configurations runs.
fn deployment_config(strategy: &Value, bad: &mut impl FnMut(&str, String)) -> Option<String> {
    let wanted = match strategy {
        Value::String(name) if name == "all_at_once" => Strategy::AllAtOnce,
        Value::String(name) if !name.trim().is_empty() => return Some(name.clone()),
        other => match serde_json::from_value::<Strategy>(other.clone()) {
            Ok(s) => s,
            Err(_) => {
                bad(
                    "strategy",
                    "under CodeDeploy, name a deployment configuration (e.g. CodeDeployDefault.ECSCanary10Percent5Minutes)".into(),
                );
                return None;
            }
        },
    };
    let found = CODEDEPLOY_NAMES
        .into_iter()
        .find(|name| Strategy::from_name(name).as_ref() == Some(&wanted));
    if found.is_none() {
        bad(
            "strategy",
            format!(
                "CodeDeploy has no configuration that runs {wanted}: name a custom deployment configuration, or use one of {}",
                CODEDEPLOY_NAMES.join(", ")
            ),
        );
    }
    found.map(str::to_string)
}

/// Fields of the record that ECS owns under `ecs_native`.
const NATIVE_OWNS: [&str; 9] = [
    "production_listener",
    "production_rule",
    "test_listener",
    "test_rule",
    "target_groups",
    "network",
    "launch_type",
    "capacity_provider_strategy",
    "gates.task_failures",
];

/// Of the fields only cutover's own driver uses (`given`, with whether each
/// is present), those ECS owns under `ecs_native` are problems that say who
/// owns them; the image, bake, deadline, hooks and target health gate are
/// ECS's driver's too.
pub(super) fn native_unused(given: &[(&str, bool)], bad: &mut impl FnMut(&str, String)) {
    for (field, present) in given {
        if *present && NATIVE_OWNS.contains(field) {
            let why = match *field {
                "gates.task_failures" => {
                    "ECS replaces the new revision's failed tasks itself; `gates.target_health` watches its targets"
                }
                _ => {
                    "ECS owns the load balancer wiring and placement (the service's advancedConfiguration)"
                }
            };
            bad(
                field,
                format!("is not used with driver = \"ecs_native\": {why}"),
            );
        }
    }
}

/// Whole minutes, rounded up: ECS takes its times in minutes.
fn minutes(d: Duration) -> u64 {
    d.as_secs().div_ceil(60)
}

/// The record's strategy, bake and progress deadline as ECS runs them.
/// A step list that ECS's strategies cannot express is a problem that
/// names the driver that can run it.
pub(super) fn native(
    strategy: &Strategy,
    bake: Duration,
    progress_deadline: Duration,
    bad: &mut impl FnMut(&str, String),
) -> NativeDeployment {
    let strategy = native_strategy(strategy, bad);
    let bake_minutes = minutes(bake);
    if !BAKE_MINUTES.contains(&u32::try_from(bake_minutes).unwrap_or(u32::MAX)) {
        bad(
            "bake",
            format!(
                "is {bake_minutes} minutes: ECS's bake (bakeTimeInMinutes) is at most {} minutes (24h)",
                BAKE_MINUTES.end()
            ),
        );
    }
    let timeout = minutes(progress_deadline);
    if !PAUSE_TIMEOUT_MINUTES.contains(&u32::try_from(timeout).unwrap_or(u32::MAX)) {
        bad(
            "progress_deadline",
            format!(
                "is {timeout} minutes: under ecs_native it is how long each ECS pause waits for cutover, at most {} minutes (14 days)",
                PAUSE_TIMEOUT_MINUTES.end()
            ),
        );
    }
    NativeDeployment {
        strategy,
        bake_minutes: u32::try_from(bake_minutes).unwrap_or(0),
        pause_timeout_minutes: u32::try_from(timeout).unwrap_or(1).max(1),
    }
}

fn native_strategy(strategy: &Strategy, bad: &mut impl FnMut(&str, String)) -> NativeStrategy {
    let (percent, interval, canary) = match strategy {
        Strategy::AllAtOnce => return NativeStrategy::BlueGreen,
        Strategy::Canary { percent, interval } => (*percent, *interval, true),
        Strategy::Linear { percent, interval } => (*percent, *interval, false),
        Strategy::Steps { steps } => match as_native(steps) {
            Some(s) => return native_strategy(&s, bad),
            None => {
                bad(
                    "strategy.steps",
                    "ECS's own deployments run all_at_once, a canary (one weight, a pause, then 100) \
                     or linear steps (equal increments, equal pauses); this step list is neither: \
                     use driver = \"ecs\" (task sets), which runs any step list"
                        .into(),
                );
                return NativeStrategy::BlueGreen;
            }
        },
    };
    if interval.as_secs() % 60 != 0 {
        bad(
            "strategy.interval",
            format!(
                "{} is not whole minutes: ECS bakes each step for whole minutes (e.g. 5m)",
                crate::time::format_duration(interval)
            ),
        );
    }
    let bake_minutes = u32::try_from(minutes(interval)).unwrap_or(u32::MAX);
    if !BAKE_MINUTES.contains(&bake_minutes) {
        bad(
            "strategy.interval",
            format!(
                "is {bake_minutes} minutes: ECS bakes a step for at most {} minutes (24h)",
                BAKE_MINUTES.end()
            ),
        );
    }
    let percent = u32::from(percent);
    if canary {
        NativeStrategy::Canary {
            percent,
            bake_minutes,
        }
    } else {
        if !LINEAR_PERCENT.contains(&percent) {
            bad(
                "strategy.percent",
                format!(
                    "{percent} is below ECS's smallest linear step: use {} to 99",
                    LINEAR_PERCENT.start()
                ),
            );
        }
        NativeStrategy::Linear {
            percent,
            bake_minutes,
        }
    }
}

/// A step list that is a canary or linear strategy written out.
fn as_native(steps: &[Step]) -> Option<Strategy> {
    let (Some(Step::SetWeight(percent)), Some(Step::Pause(interval))) =
        (steps.first(), steps.get(1))
    else {
        return None;
    };
    let (percent, interval) = (*percent, *interval);
    [
        Strategy::Canary { percent, interval },
        Strategy::Linear { percent, interval },
    ]
    .into_iter()
    .find(|s| {
        s.steps(true)
            == Strategy::Steps {
                steps: steps.to_vec(),
            }
            .steps(true)
    })
}
