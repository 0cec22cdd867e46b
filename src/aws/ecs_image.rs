//! Releases given as an image: the base task definition with one
//! container's image replaced, registered at most once.
//!
//! Every retry and every controller restart asks for the same task set, so
//! registering on each attempt would pile up identical revisions (and make
//! the create's client token useless, since the request would differ). An
//! identical revision already registered is reused instead.

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, EphemeralStorage, IpcMode, NetworkMode, PidMode,
    ProxyConfiguration, RuntimePlatform, SortOrder, Tag, TaskDefinition, TaskDefinitionField,
    TaskDefinitionPlacementConstraint, TaskDefinitionStatus, Volume,
};

use super::ecs_convert::Subject;
use super::error::ecs_error;
use crate::cloud::{CloudError, ErrorKind};

/// Revisions of the family looked at for a match, newest first. A release
/// is normally registered just before its rollout, so it is among the
/// newest; an older match only costs one more revision.
const REUSE_CANDIDATES: usize = 5;

/// Everything RegisterTaskDefinition takes, as DescribeTaskDefinition gives
/// it back (less inference accelerators, which ECS no longer accepts). Two
/// revisions with equal registrations run the same thing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Registration {
    pub family: String,
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
    pub network_mode: Option<NetworkMode>,
    pub container_definitions: Vec<ContainerDefinition>,
    pub volumes: Option<Vec<Volume>>,
    pub placement_constraints: Option<Vec<TaskDefinitionPlacementConstraint>>,
    pub requires_compatibilities: Option<Vec<Compatibility>>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub pid_mode: Option<PidMode>,
    pub ipc_mode: Option<IpcMode>,
    pub proxy_configuration: Option<ProxyConfiguration>,
    pub ephemeral_storage: Option<EphemeralStorage>,
    pub runtime_platform: Option<RuntimePlatform>,
    pub enable_fault_injection: Option<bool>,
}

impl Registration {
    pub fn of(td: &TaskDefinition) -> Registration {
        Registration {
            family: td.family().unwrap_or_default().to_string(),
            task_role_arn: td.task_role_arn.clone(),
            execution_role_arn: td.execution_role_arn.clone(),
            network_mode: td.network_mode.clone(),
            container_definitions: td.container_definitions().to_vec(),
            volumes: td.volumes.clone(),
            placement_constraints: td.placement_constraints.clone(),
            requires_compatibilities: td.requires_compatibilities.clone(),
            cpu: td.cpu.clone(),
            memory: td.memory.clone(),
            pid_mode: td.pid_mode.clone(),
            ipc_mode: td.ipc_mode.clone(),
            proxy_configuration: td.proxy_configuration.clone(),
            ephemeral_storage: td.ephemeral_storage.clone(),
            runtime_platform: td.runtime_platform.clone(),
            enable_fault_injection: td.enable_fault_injection,
        }
    }

    /// The same registration with `container` running `image`.
    pub fn with_image(&self, container: &str, image: &str) -> Result<Registration, String> {
        let mut next = self.clone();
        let target = next
            .container_definitions
            .iter_mut()
            .find(|c| c.name() == Some(container))
            .ok_or_else(|| {
                let names: Vec<&str> = self
                    .container_definitions
                    .iter()
                    .filter_map(|c| c.name())
                    .collect();
                format!(
                    "task definition family {} has no container {container:?} (it has {})",
                    self.family,
                    names.join(", ")
                )
            })?;
        target.image = Some(image.to_string());
        Ok(next)
    }
}

/// The revision number at the end of a task definition ARN.
pub fn revision(arn: &str) -> Option<u32> {
    arn.rsplit_once(':').and_then(|(_, r)| r.parse().ok())
}

/// The family of a task definition ARN (`…:task-definition/family:revision`).
pub fn family(arn: &str) -> Option<&str> {
    let tail = arn.rsplit_once(":task-definition/").map_or(arn, |(_, t)| t);
    tail.rsplit_once(':').map(|(f, _)| f)
}

/// The ARN of a task definition that is `base` with `container` running
/// `image`: `base` itself, a revision registered earlier, or a new one.
pub async fn task_definition_with_image(
    client: &Client,
    base: &str,
    container: &str,
    image: &str,
) -> Result<String, CloudError> {
    const OP: &str = "ecs:RegisterTaskDefinition";
    let (base_td, tags) = describe(client, base).await?;
    let base_arn = base_td.task_definition_arn().unwrap_or(base).to_string();
    let current = Registration::of(&base_td);
    let wanted = current
        .with_image(container, image)
        .map_err(|m| CloudError::new(ErrorKind::Invalid, OP, m))?;
    if wanted == current {
        return Ok(base_arn);
    }
    for arn in newest_revisions(client, &wanted.family).await? {
        if arn == base_arn {
            continue;
        }
        let (candidate, _) = describe(client, &arn).await?;
        if Registration::of(&candidate) == wanted {
            return Ok(arn);
        }
    }
    register(client, wanted, tags).await
}

pub(super) async fn describe(
    client: &Client,
    td: &str,
) -> Result<(TaskDefinition, Vec<Tag>), CloudError> {
    const OP: &str = "ecs:DescribeTaskDefinition";
    let out = client
        .describe_task_definition()
        .task_definition(td)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(|e| {
            ecs_error(
                OP,
                &Subject {
                    task_definition: Some(td),
                    ..Subject::default()
                },
                e,
            )
        })?;
    let tags = out.tags.unwrap_or_default();
    let td_found = out
        .task_definition
        .ok_or_else(|| CloudError::not_found(OP, format!("task definition {td}")))?;
    Ok((td_found, tags))
}

/// The family's newest active revisions. Sorted here as well: the order is
/// what matters, and not every ECS implementation honours `sort`.
pub(super) async fn newest_revisions(
    client: &Client,
    family_name: &str,
) -> Result<Vec<String>, CloudError> {
    const OP: &str = "ecs:ListTaskDefinitions";
    let out = client
        .list_task_definitions()
        .family_prefix(family_name)
        .status(TaskDefinitionStatus::Active)
        .sort(SortOrder::Desc)
        .max_results(REUSE_CANDIDATES as i32)
        .send()
        .await
        .map_err(|e| ecs_error(OP, &Subject::default(), e))?;
    // familyPrefix is a prefix: `web` also lists `web-worker`.
    let mut arns: Vec<String> = out
        .task_definition_arns
        .unwrap_or_default()
        .into_iter()
        .filter(|a| family(a) == Some(family_name))
        .collect();
    arns.sort_by_key(|a| std::cmp::Reverse(revision(a)));
    arns.truncate(REUSE_CANDIDATES);
    Ok(arns)
}

pub(super) async fn register(
    client: &Client,
    r: Registration,
    tags: Vec<Tag>,
) -> Result<String, CloudError> {
    const OP: &str = "ecs:RegisterTaskDefinition";
    let subject = Subject {
        task_definition: Some(&r.family),
        ..Subject::default()
    };
    let out = client
        .register_task_definition()
        .family(&r.family)
        .set_task_role_arn(r.task_role_arn.clone())
        .set_execution_role_arn(r.execution_role_arn.clone())
        .set_network_mode(r.network_mode.clone())
        .set_container_definitions(Some(r.container_definitions.clone()))
        .set_volumes(r.volumes.clone())
        .set_placement_constraints(r.placement_constraints.clone())
        .set_requires_compatibilities(r.requires_compatibilities.clone())
        .set_cpu(r.cpu.clone())
        .set_memory(r.memory.clone())
        .set_pid_mode(r.pid_mode.clone())
        .set_ipc_mode(r.ipc_mode.clone())
        .set_proxy_configuration(r.proxy_configuration.clone())
        .set_ephemeral_storage(r.ephemeral_storage.clone())
        .set_runtime_platform(r.runtime_platform.clone())
        .set_enable_fault_injection(r.enable_fault_injection)
        .set_tags((!tags.is_empty()).then_some(tags))
        .send()
        .await
        .map_err(|e| ecs_error(OP, &subject, e))?;
    out.task_definition
        .and_then(|td| td.task_definition_arn)
        .ok_or_else(|| {
            CloudError::new(
                ErrorKind::Other,
                OP,
                format!(
                    "ECS registered family {} without answering its ARN",
                    r.family
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, image: &str) -> ContainerDefinition {
        ContainerDefinition::builder()
            .name(name)
            .image(image)
            .memory(256)
            .build()
    }

    fn td(revision: i32, containers: Vec<ContainerDefinition>) -> TaskDefinition {
        TaskDefinition::builder()
            .family("web")
            .revision(revision)
            .task_definition_arn(format!(
                "arn:aws:ecs:us-east-1:1:task-definition/web:{revision}"
            ))
            .set_container_definitions(Some(containers))
            .network_mode(NetworkMode::Awsvpc)
            .cpu("256")
            .build()
    }

    #[test]
    fn revisions_differ_only_in_what_the_registration_has() {
        let one = td(
            1,
            vec![container("app", "web:1"), container("log", "fluent:2")],
        );
        let two = td(
            2,
            vec![container("app", "web:1"), container("log", "fluent:2")],
        );
        assert_eq!(Registration::of(&one), Registration::of(&two));
        let wanted = Registration::of(&one).with_image("app", "web:2").unwrap();
        assert_ne!(wanted, Registration::of(&two));
        assert_eq!(wanted.container_definitions[0].image(), Some("web:2"));
        assert_eq!(
            wanted.container_definitions[1].image(),
            Some("fluent:2"),
            "the other containers keep their images"
        );
        let three = td(
            3,
            vec![container("app", "web:2"), container("log", "fluent:2")],
        );
        assert_eq!(Registration::of(&three), wanted);
    }

    #[test]
    fn an_unknown_container_names_the_ones_there_are() {
        let one = td(
            1,
            vec![container("app", "web:1"), container("log", "fluent:2")],
        );
        let e = Registration::of(&one)
            .with_image("api", "web:2")
            .unwrap_err();
        assert!(e.contains("\"api\"") && e.contains("app, log"), "{e}");
    }

    #[test]
    fn arn_parts() {
        let arn = "arn:aws:ecs:us-east-1:1:task-definition/web-worker:12";
        assert_eq!(family(arn), Some("web-worker"));
        assert_eq!(revision(arn), Some(12));
        assert_eq!(family("web:3"), Some("web"));
        assert_eq!(revision("web"), None);
    }
}
