//! Which deployment controller a record drives: cutover's own task sets on
//! an EXTERNAL service (the default), or CodeDeploy for services that stay
//! on the CODE_DEPLOY deployment controller.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::deployment::CodeDeployTarget;
use super::hook::HookPoint;
use super::quote::quote;
use super::strategy::{CODEDEPLOY_NAMES, Strategy};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DriverKind {
    /// cutover creates task sets and weighs the load balancer itself.
    #[default]
    Ecs,
    /// CodeDeploy runs each deployment; cutover starts, watches, continues
    /// and stops it. The record's traffic routes are empty under this
    /// driver: the deployment group owns the load balancer wiring.
    CodeDeploy(CodeDeployTarget),
}

impl DriverKind {
    pub fn codedeploy(&self) -> Option<&CodeDeployTarget> {
        match self {
            DriverKind::Ecs => None,
            DriverKind::CodeDeploy(t) => Some(t),
        }
    }
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
        None | Some("ecs") => {
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
                    "{} is not a driver: use \"ecs\" (the default) or \"codedeploy\"",
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
