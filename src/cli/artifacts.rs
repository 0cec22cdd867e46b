//! `cutover set --taskdef … --image-detail … --appspec …`: a CodePipeline
//! release's artifacts become the record's version and wiring. The task
//! definition is registered (or an identical revision reused) only once the
//! record it would go into is known to be valid.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use super::connect::Aws;
use crate::artifacts::{self, AppSpec, ImageDetail, Release};
use crate::aws::calls::{ApiCalls, ecs_client};
use crate::aws::taskdef::register_once;
use crate::cloud::SpecChanges;
use crate::rollout::deployment::hook_point;
use crate::rollout::observed::short_task_definition;
use crate::rollout::{ServiceKey, parse_record};

/// The flags that name the artifacts.
pub struct Files<'a> {
    pub taskdef: &'a PathBuf,
    pub image_details: &'a [String],
    pub appspec: Option<&'a PathBuf>,
    /// `--container` / `--container-port` given: they win over the AppSpec.
    pub container_given: bool,
    pub port_given: bool,
    pub network_given: bool,
}

fn is_codedeploy(body: &Map<String, Value>, changes: &SpecChanges) -> bool {
    let driver = match changes.get("driver") {
        Some(v) => v.as_ref(),
        None => body.get("driver"),
    };
    driver.and_then(Value::as_str) == Some("codedeploy")
}

/// Where each AppSpec hook goes: a URL becomes a cutover webhook (own
/// driver), a Lambda ARN a CodeDeploy hook (CodeDeploy driver); anything
/// else is reported, not carried.
fn hooks(
    spec: &AppSpec,
    codedeploy: bool,
    body: &Map<String, Value>,
    changes: &mut SpecChanges,
    warnings: &mut Vec<String>,
) {
    let mut webhooks = body.get("hooks").cloned().unwrap_or_else(|| json!({}));
    let mut lambdas = body
        .get("codedeploy")
        .and_then(|c| c.get("hooks"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let (mut web, mut lambda) = (false, false);
    for hook in &spec.hooks {
        let Some(point) = hook_point(&hook.name) else {
            continue;
        };
        let url = hook.target.starts_with("https://") || hook.target.starts_with("http://");
        match (codedeploy, url) {
            (false, true) => {
                webhooks[point.as_str()] = json!({ "url": hook.target });
                web = true;
            }
            (true, false) => {
                lambdas[point.as_str()] = json!(hook.target);
                lambda = true;
            }
            (false, false) => warnings.push(format!(
                "hook {} ({}) was not carried over: cutover calls webhooks (http/https URLs) at `hooks.{point}`, and CodeDeploy's Lambda hooks run only for records with driver = \"codedeploy\"",
                hook.name, hook.target
            )),
            (true, true) => warnings.push(format!(
                "hook {} ({}) was not carried over: under driver = \"codedeploy\" CodeDeploy calls the hooks, and it calls Lambda functions only",
                hook.name, hook.target
            )),
        }
    }
    if web {
        changes.insert("hooks".into(), Some(webhooks));
    }
    if lambda {
        let mut cd = body.get("codedeploy").cloned().unwrap_or_else(|| json!({}));
        if let Some(pending) = changes.get("codedeploy").cloned().flatten() {
            cd = pending;
        }
        cd["hooks"] = lambdas;
        changes.insert("codedeploy".into(), Some(cd));
    }
}

/// Placement from the AppSpec, for a service's first release on cutover's
/// own driver (later releases copy the active task set's).
fn placement(
    spec: &AppSpec,
    codedeploy: bool,
    files: &Files,
    body: &Map<String, Value>,
    changes: &mut SpecChanges,
    warnings: &mut Vec<String>,
) {
    let p = &spec.placement;
    if let Some(v) = &p.platform_version {
        warnings.push(format!(
            "PlatformVersion {v} was not carried over: the service's platform version applies"
        ));
    }
    if codedeploy {
        if p.network.is_some() || p.capacity_providers.is_some() {
            warnings.push(
                "NetworkConfiguration and CapacityProviderStrategy were not carried over: under driver = \"codedeploy\" the service keeps its own".into(),
            );
        }
        return;
    }
    if let Some((subnets, groups, public)) = &p.network
        && !files.network_given
        && !body.contains_key("network")
    {
        changes.insert(
            "network".into(),
            Some(
                json!({"subnets": subnets, "security_groups": groups, "assign_public_ip": public}),
            ),
        );
    }
    if let Some(cps) = &p.capacity_providers
        && !body.contains_key("capacity_provider_strategy")
        && !body.contains_key("launch_type")
    {
        let cps: Vec<Value> = cps
            .iter()
            .map(|(provider, weight, base)| json!({"provider": provider, "weight": weight, "base": base}))
            .collect();
        changes.insert("capacity_provider_strategy".into(), Some(Value::Array(cps)));
    }
}

/// Adds what the artifacts say to `changes`, registers the task
/// definition, and returns warnings about what was not carried over.
pub async fn apply(
    aws: &Aws,
    key: &ServiceKey,
    files: &Files<'_>,
    body: &Map<String, Value>,
    changes: &mut SpecChanges,
) -> anyhow::Result<Vec<String>> {
    let images = ImageDetail::parse_all(files.image_details);
    let release: Release =
        artifacts::load(files.taskdef, &images, files.appspec.map(PathBuf::as_path))
            .map_err(anyhow::Error::new)?;
    let mut warnings: Vec<String> = release
        .taskdef
        .dropped
        .iter()
        .map(|f| {
            format!(
                "{f} in {} was left out: ECS sets it",
                files.taskdef.display()
            )
        })
        .collect();
    let codedeploy = is_codedeploy(body, changes);
    if let Some((container, port)) = release.traffic() {
        if !files.container_given {
            changes.insert("container".into(), Some(json!(container)));
        }
        if !files.port_given {
            changes.insert("container_port".into(), Some(json!(port)));
        }
    }
    if let Some(spec) = &release.appspec {
        hooks(spec, codedeploy, body, changes, &mut warnings);
        placement(spec, codedeploy, files, body, changes, &mut warnings);
    }
    // Checked with a stand-in revision first, so an invalid record leaves
    // no registered revision behind.
    changes.insert("image".into(), None);
    changes.insert(
        "task_definition".into(),
        Some(json!(format!("{}:1", release.taskdef.family))),
    );
    let mut next = body.clone();
    for (name, value) in changes.iter() {
        match value {
            Some(v) => next.insert(name.clone(), v.clone()),
            None => next.remove(name),
        };
    }
    if let Err(problems) = parse_record(key, &Value::Object(next)) {
        bail!("the record would be invalid, so nothing was registered or written: {problems}");
    }
    let client = ecs_client(&aws.sdk, &ApiCalls::new());
    let registered = register_once(&client, &release.taskdef.json)
        .await
        .with_context(|| format!("registering {}", files.taskdef.display()))?;
    println!(
        "{key}: {} task definition {}",
        if registered.reused {
            "reusing identical"
        } else {
            "registered"
        },
        short_task_definition(&registered.arn)
    );
    changes.insert("task_definition".into(), Some(json!(registered.arn)));
    changes.retain(|name, value| body.get(name) != value.as_ref());
    Ok(warnings)
}
