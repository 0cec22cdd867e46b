//! `taskdef.json`: RegisterTaskDefinition's input, as CodePipeline's ECS
//! blue/green action takes it, with `<IMAGE1_NAME>`-style placeholders.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{AppSpec, ArtifactError, is_placeholder_name};

/// What RegisterTaskDefinition takes.
const INPUT_FIELDS: [&str; 18] = [
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "tags",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
    "enableFaultInjection",
];

/// What DescribeTaskDefinition adds: a file saved from it still registers,
/// without these.
const DESCRIBED_FIELDS: [&str; 8] = [
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct View {
    family: String,
    container_definitions: Vec<ContainerView>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerView {
    name: String,
    image: String,
    #[serde(default)]
    port_mappings: Vec<PortView>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PortView {
    container_port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub ports: Vec<u16>,
}

/// A task definition ready to register.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskDef {
    pub path: PathBuf,
    /// RegisterTaskDefinition's input, placeholders filled.
    pub json: Value,
    pub family: String,
    pub containers: Vec<Container>,
    /// Fields DescribeTaskDefinition adds, left out.
    pub dropped: Vec<String>,
}

impl TaskDef {
    pub fn parse(
        path: &Path,
        text: &str,
        images: &[(String, String)],
    ) -> Result<TaskDef, ArtifactError> {
        let bad = |field: &str, m: String| ArtifactError::new(path, field, m);
        let mut json: Value =
            serde_json::from_str(text).map_err(|e| bad("", format!("is not JSON: {e}")))?;
        let Value::Object(map) = &mut json else {
            return Err(bad(
                "",
                "is not a JSON object of RegisterTaskDefinition's input".into(),
            ));
        };
        let mut dropped = Vec::new();
        for key in map.keys().cloned().collect::<Vec<_>>() {
            if DESCRIBED_FIELDS.contains(&key.as_str()) {
                map.remove(&key);
                dropped.push(key);
            } else if !INPUT_FIELDS.contains(&key.as_str()) {
                return Err(bad(
                    &key,
                    "is not a field of RegisterTaskDefinition's input (check its spelling and case)".into(),
                ));
            }
        }
        for (name, value) in images {
            fill(&mut json, &format!("<{name}>"), value);
        }
        if let Some((field, placeholder)) = unfilled(&json, String::new()) {
            return Err(bad(
                &field,
                format!(
                    "placeholder {placeholder} has no value: pass --image-detail with an imageDetail.json for it (the n-th bare --image-detail fills <IMAGEn_NAME>; NAME=FILE fills <NAME>)"
                ),
            ));
        }
        let view: View = serde_path_to_error::deserialize(&json).map_err(|e| {
            let field = e.path().to_string();
            bad(
                if field == "." { "" } else { &field },
                e.into_inner().to_string(),
            )
        })?;
        if view.family.is_empty()
            || view.family.len() > 255
            || !view
                .family
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad(
                "family",
                format!(
                    "{:?} is not a task definition family (1-255 letters, digits, '-' or '_')",
                    view.family
                ),
            ));
        }
        if view.container_definitions.is_empty() {
            return Err(bad(
                "containerDefinitions",
                "is empty: give at least one container".into(),
            ));
        }
        let containers = view
            .container_definitions
            .into_iter()
            .map(|c| Container {
                name: c.name,
                image: c.image,
                ports: c
                    .port_mappings
                    .iter()
                    .filter_map(|p| p.container_port)
                    .collect(),
            })
            .collect();
        Ok(TaskDef {
            path: path.to_path_buf(),
            json,
            family: view.family,
            containers,
            dropped,
        })
    }

    /// The AppSpec's container and port must be in this task definition.
    pub fn check_target(&self, appspec_path: &Path, spec: &AppSpec) -> Result<(), ArtifactError> {
        const LB: &str = "Resources[0].TargetService.Properties.LoadBalancerInfo";
        let names: Vec<&str> = self.containers.iter().map(|c| c.name.as_str()).collect();
        let Some(c) = self.containers.iter().find(|c| c.name == spec.container) else {
            return Err(ArtifactError::new(
                appspec_path,
                format!("{LB}.ContainerName"),
                format!(
                    "{:?} is not a container of {} (it has {})",
                    spec.container,
                    self.path.display(),
                    names.join(", ")
                ),
            ));
        };
        if !c.ports.contains(&spec.container_port) {
            let ports: Vec<String> = c.ports.iter().map(u16::to_string).collect();
            return Err(ArtifactError::new(
                appspec_path,
                format!("{LB}.ContainerPort"),
                format!(
                    "{} is not a containerPort of container {:?} in {} (its portMappings have {})",
                    spec.container_port,
                    c.name,
                    self.path.display(),
                    if ports.is_empty() {
                        "none".to_string()
                    } else {
                        ports.join(", ")
                    }
                ),
            ));
        }
        Ok(())
    }
}

fn fill(v: &mut Value, placeholder: &str, value: &str) {
    match v {
        Value::String(s) if s.contains(placeholder) => *s = s.replace(placeholder, value),
        Value::Array(items) => items.iter_mut().for_each(|i| fill(i, placeholder, value)),
        Value::Object(map) => map.values_mut().for_each(|i| fill(i, placeholder, value)),
        _ => {}
    }
}

/// The first `<NAME>` left in a string, with the path to it.
fn unfilled(v: &Value, at: String) -> Option<(String, String)> {
    match v {
        Value::String(s) => placeholder_in(s).map(|p| (at, p)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| unfilled(item, format!("{at}[{i}]"))),
        Value::Object(map) => object(map, &at),
        _ => None,
    }
}

fn object(map: &Map<String, Value>, at: &str) -> Option<(String, String)> {
    map.iter().find_map(|(k, item)| {
        let path = if at.is_empty() {
            k.clone()
        } else {
            format!("{at}.{k}")
        };
        unfilled(item, path)
    })
}

fn placeholder_in(s: &str) -> Option<String> {
    let mut rest = s;
    while let Some(start) = rest.find('<') {
        let tail = &rest[start + 1..];
        match tail.find('>') {
            Some(end) if is_placeholder_name(&tail[..end]) => {
                return Some(format!("<{}>", &tail[..end]));
            }
            _ => rest = tail,
        }
    }
    None
}
