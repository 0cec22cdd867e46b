//! ECS's shapes to the domain's and back, without I/O.

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, Failure, LaunchType,
    NetworkConfiguration, Service, ServiceRegistry, StabilityStatus, TaskSet as SdkTaskSet,
};

use super::ecs_counts::{Reported, Reports};
use crate::cloud::{CloudError, ErrorKind};
use crate::rollout::service_deployment::ServiceRevision;
use crate::rollout::spec::{Launch, Network, Placement};
use crate::rollout::{EcsService, ServiceKey, ServiceState, Stability, TaskSet, TaskSetStatus};
use crate::time::Timestamp;

/// DescribeServices answers for at most this many services per call.
pub const DESCRIBE_LIMIT: usize = 10;

/// ECS's answer when a service is not set.
const DEFAULT_CONTROLLER: &str = "ECS";

/// One entry per requested name, in the order asked, keyed by the name as
/// given (ECS answers with ARNs in `failures`).
pub fn describe_result(
    requested: &[String],
    services: &[Service],
    failures: &[Failure],
    reports: &Reports,
) -> Result<Vec<(String, ServiceState)>, String> {
    requested
        .iter()
        .map(|name| {
            let named = |arn: Option<&str>| arn.is_some_and(|a| names_service(a, name));
            let state = if let Some(s) = services
                .iter()
                .find(|s| s.service_name() == Some(name.as_str()) || named(s.service_arn()))
            {
                service_state(s, reports)?
            } else if let Some(f) = failures.iter().find(|f| named(f.arn())) {
                match f.reason() {
                    Some("MISSING") => ServiceState::Missing,
                    reason => {
                        return Err(format!(
                            "service {name}: {} {}",
                            reason.unwrap_or("failure without a reason"),
                            f.detail().unwrap_or_default()
                        ));
                    }
                }
            } else {
                // ECS answers for every service it is asked about; one it
                // says nothing of cannot be acted on either.
                ServiceState::Missing
            };
            Ok((name.clone(), state))
        })
        .collect()
}

/// A name or ARN as given, against an ARN as answered (`…:service/name` in
/// the old format, `…:service/cluster/name` in the new one).
fn names_service(arn: &str, name: &str) -> bool {
    arn == name
        || arn
            .strip_suffix(name)
            .is_some_and(|head| head.ends_with('/'))
}

/// INACTIVE and DRAINING services are deleted or being deleted: there is
/// nothing left to roll out to.
pub fn service_state(service: &Service, reports: &Reports) -> Result<ServiceState, String> {
    if service.status() != Some("ACTIVE") {
        return Ok(ServiceState::Missing);
    }
    let task_sets = service
        .task_sets()
        .iter()
        .map(|t| task_set(t, reports.for_task_set(t.task_set_arn())))
        .collect::<Result<Vec<_>, _>>()?;
    let deployment_controller = service
        .deployment_controller()
        .map_or(DEFAULT_CONTROLLER, |d| d.r#type().as_str())
        .to_string();
    // ECS deploys services on its own controller itself: what they are set
    // to run and their newest deployment are what `ecs_native` reads.
    let native = (deployment_controller == "ECS").then(|| ServiceRevision {
        task_definition: service.task_definition().unwrap_or_default().to_string(),
        images: Default::default(),
        current_deployment: service.current_service_deployment().map(str::to_string),
    });
    Ok(ServiceState::Found(EcsService {
        desired_count: u32::try_from(service.desired_count).unwrap_or(0),
        deployment_controller,
        task_sets,
        native,
    }))
}

pub fn task_set(t: &SdkTaskSet, reported: Reported) -> Result<TaskSet, String> {
    let arn = t.task_set_arn().ok_or("a task set without an ARN")?;
    let missing = |what: &str| format!("task set {arn} has no {what}");
    let status = match t.status() {
        Some("PRIMARY") => TaskSetStatus::Primary,
        Some("ACTIVE") => TaskSetStatus::Active,
        Some("DRAINING") => TaskSetStatus::Draining,
        Some(other) => return Err(format!("task set {arn} has an unknown status {other:?}")),
        None => return Err(missing("status")),
    };
    let stability = match t.stability_status() {
        Some(StabilityStatus::SteadyState) => Stability::SteadyState,
        // Anything ECS does not call steady is not ready to take traffic.
        _ => Stability::Stabilizing,
    };
    // The only unit ECS has; a task set without a scale is not one ECS made.
    let scale_percent = t.scale().ok_or_else(|| missing("scale"))?.value;
    let count = |n: i32, reported: bool| reported.then(|| u32::try_from(n).ok()).flatten();
    Ok(TaskSet {
        id: t.id().ok_or_else(|| missing("id"))?.to_string(),
        arn: arn.to_string(),
        task_definition: t
            .task_definition()
            .ok_or_else(|| missing("task definition"))?
            .to_string(),
        external_id: t
            .external_id()
            .filter(|e| !e.is_empty())
            .map(str::to_string),
        status,
        stability,
        scale_percent,
        computed_desired: count(t.computed_desired_count, reported.computed_desired),
        running: count(t.running_count, reported.running),
        pending: count(t.pending_count, reported.pending),
        target_group: t
            .load_balancers()
            .first()
            .and_then(|lb| lb.target_group_arn())
            .map(str::to_string),
        created_at: t.created_at().map(|at| {
            Timestamp::from_millis(at.to_millis().unwrap_or(at.secs().saturating_mul(1000)))
        }),
    })
}

/// Where a new task set runs, in ECS's terms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Launching {
    pub network: Option<NetworkConfiguration>,
    pub launch_type: Option<LaunchType>,
    pub capacity_providers: Option<Vec<CapacityProviderStrategyItem>>,
    pub platform_version: Option<String>,
    /// Cloud Map registries the tasks register in.
    pub service_registries: Option<Vec<ServiceRegistry>>,
}

/// The platform version that follows Fargate's releases, ECS's default.
pub const LATEST_PLATFORM: &str = "LATEST";

impl Launching {
    /// What the template runs with, so a release changes nothing but its
    /// version (CreateTaskSet's parameters:
    /// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateTaskSet.html):
    /// - its Cloud Map registries, or the candidate's tasks would be
    ///   missing from service discovery;
    /// - a capacity provider strategy, or else a launch type: ECS refuses a
    ///   request with both, and the strategy is the more precise;
    /// - the platform version `LATEST` rather than the version ECS resolved
    ///   it to and reports (`1.4.0`), which would pin the candidate to an
    ///   old platform. The template's own choice cannot be told from what
    ///   it resolved to, so the family ECS defaults to wins.
    pub fn copy_of(template: &SdkTaskSet) -> Launching {
        let capacity_providers = template
            .capacity_provider_strategy
            .clone()
            .filter(|c| !c.is_empty());
        Launching {
            network: template.network_configuration().cloned(),
            launch_type: if capacity_providers.is_some() {
                None
            } else {
                template.launch_type().cloned()
            },
            capacity_providers,
            platform_version: template
                .platform_version()
                .map(|_| LATEST_PLATFORM.to_string()),
            service_registries: template
                .service_registries
                .clone()
                .filter(|r| !r.is_empty()),
        }
    }

    pub fn from_placement(placement: &Placement) -> Result<Launching, String> {
        let network = placement.network.as_ref().map(network).transpose()?;
        let (launch_type, capacity_providers) = match &placement.launch {
            None => (None, None),
            Some(Launch::LaunchType(t)) => (Some(LaunchType::from(t.as_str())), None),
            Some(Launch::CapacityProviders(cps)) => {
                let items = cps
                    .iter()
                    .map(|cp| {
                        CapacityProviderStrategyItem::builder()
                            .capacity_provider(&cp.provider)
                            .weight(i32::try_from(cp.weight).unwrap_or(i32::MAX))
                            .base(i32::try_from(cp.base).unwrap_or(i32::MAX))
                            .build()
                            .map_err(|e| e.to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (None, Some(items))
            }
        };
        Ok(Launching {
            network,
            launch_type,
            capacity_providers,
            platform_version: None,
            service_registries: None,
        })
    }
}

fn network(n: &Network) -> Result<NetworkConfiguration, String> {
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(n.subnets.clone()))
        .set_security_groups((!n.security_groups.is_empty()).then(|| n.security_groups.clone()))
        .assign_public_ip(if n.assign_public_ip {
            AssignPublicIp::Enabled
        } else {
            AssignPublicIp::Disabled
        })
        .build()
        .map_err(|e| e.to_string())?;
    Ok(NetworkConfiguration::builder()
        .awsvpc_configuration(vpc)
        .build())
}

/// What an ECS call was about, to name it when ECS says it does not exist.
#[derive(Clone, Debug, Default)]
pub struct Subject<'a> {
    pub cluster: &'a str,
    pub service: Option<&'a str>,
    pub task_set: Option<&'a str>,
    pub task_definition: Option<&'a str>,
    pub target_group: Option<&'a str>,
}

impl Subject<'_> {
    pub fn of(key: &ServiceKey) -> Subject<'_> {
        Subject {
            cluster: &key.cluster,
            service: Some(&key.service),
            ..Subject::default()
        }
    }
}

/// ECS's not-found answers name nothing ("Cluster not found."); the
/// controller tells a service's owner what to fix, so name the thing.
/// Some arrive as ClientException or InvalidParameterException with only
/// the message saying what is missing.
pub fn name_missing(
    err: CloudError,
    code: Option<&str>,
    message: Option<&str>,
    subject: &Subject<'_>,
) -> CloudError {
    let message = message.unwrap_or_default().to_ascii_lowercase();
    let says_missing = message.contains("not found")
        || message.contains("does not exist")
        || message.contains("unable to describe");
    let service = || {
        format!(
            "service {}/{}",
            subject.cluster,
            subject.service.unwrap_or("?")
        )
    };
    let what = match code {
        Some("ClusterNotFoundException") => Some(format!("cluster {}", subject.cluster)),
        Some("ServiceNotFoundException" | "ServiceNotActiveException") => Some(service()),
        Some("TaskSetNotFoundException") => subject.task_set.map(|t| format!("task set {t}")),
        Some("ClientException" | "InvalidParameterException") if says_missing => {
            if message.contains("target group") {
                subject.target_group.map(|t| format!("target group {t}"))
            } else if message.contains("task set") {
                subject.task_set.map(|t| format!("task set {t}"))
            } else if message.contains("task definition") {
                subject
                    .task_definition
                    .map(|t| format!("task definition {t}"))
            } else {
                None
            }
        }
        _ => None,
    };
    match what {
        Some(what) => CloudError {
            kind: ErrorKind::NotFound,
            message: format!("{what} not found"),
            ..err
        },
        None => err,
    }
}

#[cfg(test)]
#[path = "ecs_convert_tests.rs"]
mod tests;
