//! `appspec.yaml`: CodeDeploy's AppSpec for an ECS service (YAML or JSON).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::ArtifactError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[allow(dead_code)]
    version: Value,
    #[serde(rename = "Resources")]
    resources: Vec<BTreeMap<String, Resource>>,
    #[serde(rename = "Hooks", default)]
    hooks: Vec<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Resource {
    #[serde(rename = "Type")]
    kind: String,
    properties: Properties,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Properties {
    /// CodePipeline fills it with the ARN it registers; cutover registers
    /// the task definition itself, so the value is not used.
    #[allow(dead_code)]
    task_definition: String,
    load_balancer_info: LoadBalancerInfo,
    platform_version: Option<String>,
    network_configuration: Option<NetworkConfiguration>,
    capacity_provider_strategy: Option<Vec<CapacityProvider>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct LoadBalancerInfo {
    container_name: String,
    container_port: u16,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct NetworkConfiguration {
    awsvpc_configuration: Awsvpc,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Awsvpc {
    subnets: Vec<String>,
    #[serde(default)]
    security_groups: Vec<String>,
    assign_public_ip: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct CapacityProvider {
    capacity_provider: String,
    #[serde(default)]
    weight: u32,
    #[serde(default)]
    base: u32,
}

/// A lifecycle hook as the AppSpec lists it: its name and what it calls
/// (a Lambda function ARN, as CodeDeploy requires, or a URL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSpecHook {
    pub name: String,
    pub target: String,
}

/// Where the service's tasks run, as the AppSpec says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub platform_version: Option<String>,
    /// Subnets, security groups, public IP.
    pub network: Option<(Vec<String>, Vec<String>, bool)>,
    /// Provider, weight, base.
    pub capacity_providers: Option<Vec<(String, u32, u32)>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSpec {
    pub container: String,
    pub container_port: u16,
    pub hooks: Vec<AppSpecHook>,
    pub placement: Placement,
}

impl AppSpec {
    pub fn parse(path: &Path, text: &str) -> Result<AppSpec, ArtifactError> {
        let bad = |field: &str, m: String| ArtifactError::new(path, field, m);
        // YAML is a superset of JSON, so one parser reads both forms.
        let doc: Value = serde_yaml_ng::from_str(text)
            .map_err(|e| bad("", format!("is not YAML or JSON: {e}")))?;
        let raw: Raw = serde_path_to_error::deserialize(&doc).map_err(|e| {
            let field = e.path().to_string();
            bad(
                if field == "." { "" } else { &field },
                e.into_inner().to_string(),
            )
        })?;
        let services: Vec<(usize, &String, &Resource)> = raw
            .resources
            .iter()
            .enumerate()
            .flat_map(|(i, m)| m.iter().map(move |(name, r)| (i, name, r)))
            .collect();
        let [(i, name, resource)] = services.as_slice() else {
            return Err(bad(
                "Resources",
                format!(
                    "has {} resources: an ECS AppSpec has exactly one, the target service",
                    services.len()
                ),
            ));
        };
        if resource.kind != "AWS::ECS::Service" {
            return Err(bad(
                &format!("Resources[{i}].{name}.Type"),
                format!("{:?} is not AWS::ECS::Service", resource.kind),
            ));
        }
        let p = &resource.properties;
        if p.load_balancer_info.container_port == 0 {
            return Err(bad(
                &format!("Resources[{i}].{name}.Properties.LoadBalancerInfo.ContainerPort"),
                "must be from 1 to 65535".into(),
            ));
        }
        let network = match &p.network_configuration {
            None => None,
            Some(n) => {
                let a = &n.awsvpc_configuration;
                let public = match a.assign_public_ip.as_deref() {
                    None | Some("DISABLED") => false,
                    Some("ENABLED") => true,
                    Some(other) => {
                        return Err(bad(
                            &format!(
                                "Resources[{i}].{name}.Properties.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp"
                            ),
                            format!("{other:?} is not ENABLED or DISABLED"),
                        ));
                    }
                };
                Some((a.subnets.clone(), a.security_groups.clone(), public))
            }
        };
        let mut hooks = Vec::new();
        for (h, entry) in raw.hooks.iter().enumerate() {
            for (hook, target) in entry {
                if crate::rollout::deployment::hook_point(hook).is_none() {
                    return Err(bad(
                        &format!("Hooks[{h}].{hook}"),
                        "is not an ECS lifecycle hook: use BeforeInstall, AfterInstall, AfterAllowTestTraffic, BeforeAllowTraffic or AfterAllowTraffic".into(),
                    ));
                }
                hooks.push(AppSpecHook {
                    name: hook.clone(),
                    target: target.clone(),
                });
            }
        }
        Ok(AppSpec {
            container: p.load_balancer_info.container_name.clone(),
            container_port: p.load_balancer_info.container_port,
            hooks,
            placement: Placement {
                platform_version: p.platform_version.clone(),
                network,
                capacity_providers: p.capacity_provider_strategy.as_ref().map(|cps| {
                    cps.iter()
                        .map(|c| (c.capacity_provider.clone(), c.weight, c.base))
                        .collect()
                }),
            },
        })
    }
}
