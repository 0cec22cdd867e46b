//! ECS's own service deployments, for services on the ECS deployment
//! controller (`driver = "ecs_native"`): UpdateService starts one,
//! DescribeServiceDeployments and ListServiceDeployments read them,
//! ContinueServiceDeployment answers their PAUSE hooks and
//! StopServiceDeployment rolls them back. DescribeServiceRevisions and
//! DescribeTaskDefinition read what each deployment deploys, once per
//! revision.
//!
//! The local emulator implements none of the service deployment calls, so
//! this adapter is tested against mocked SDK responses only.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_ecs::Client;
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::types::{
    CanaryConfiguration, CreatedAt, DeploymentConfiguration, DeploymentLifecycleHook,
    DeploymentLifecycleHookAction, DeploymentLifecycleHookStage, DeploymentLifecycleHookTargetType,
    DeploymentLifecycleHookTimeoutConfiguration, DeploymentStrategy, LinearConfiguration, Service,
    ServiceDeployment as SdkServiceDeployment, ServiceDeploymentStatus as SdkDeploymentStatus,
    ServiceRevision as SdkServiceRevision, StopServiceDeploymentStopType,
};
use aws_smithy_types::DateTime;

use super::accounts::{Accounts, tag};
use super::calls::{ApiCalls, ecs_client};
use super::ecs::TaskDefinitionImages;
use super::ecs_convert::Subject;
use super::ecs_image::task_definition_with_image;
use super::error::{code, ecs_error};
use crate::cloud::service_deployments::{DESCRIBE_LIMIT, ServiceDeployments};
use crate::cloud::{CloudError, ErrorKind};
use crate::rollout::command::StartServiceDeployment;
use crate::rollout::service_deployment::{
    LifecycleStage, NativeStrategy, Pause, PauseAction, PauseStatus, ServiceDeployment,
    ServiceDeploymentStatus, TargetRevision,
};
use crate::rollout::{Scope, ServiceKey, Version};
use crate::time::Timestamp;

/// ListServiceDeployments' largest page
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListServiceDeployments.html).
const LIST_PAGE: i32 = 100;

/// DescribeServiceRevisions takes at most this many ARNs
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServiceRevisions.html).
const REVISIONS_LIMIT: usize = 20;

/// Service revisions remembered. A fleet deploys far fewer; past this many
/// the cache starts again.
const REVISIONS_CACHED: usize = 4_096;

/// What cutover reads of a service revision. A revision is never changed:
/// a change to the service makes a new one
/// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-revision.html),
/// so each is read once.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Revision {
    task_definition: String,
    target_groups: Vec<String>,
}

pub struct ServiceDeploymentsAdapter {
    client: Client,
    /// The clients of other accounts and regions; without it, only home.
    accounts: Option<Arc<Accounts>>,
    /// By service revision ARN.
    revisions: Mutex<HashMap<String, Revision>>,
    images: TaskDefinitionImages,
}

impl ServiceDeploymentsAdapter {
    /// Every request attempt is counted in `calls`, with the other ECS calls.
    pub fn new(sdk: &SdkConfig, calls: &ApiCalls) -> Self {
        Self::from_client(ecs_client(sdk, calls))
    }

    pub fn from_client(client: Client) -> Self {
        ServiceDeploymentsAdapter {
            client,
            accounts: None,
            revisions: Mutex::default(),
            images: TaskDefinitionImages::default(),
        }
    }

    /// Reaches service deployments in every account and region `accounts`
    /// knows: by the key's scope, or by the account and region an ARN names.
    pub fn scoped(accounts: Arc<Accounts>) -> Self {
        let mut adapter = Self::from_client(accounts.home().ecs.clone());
        adapter.accounts = Some(accounts);
        adapter
    }

    /// The client for `scope`, and what its errors are tagged with.
    async fn at(&self, scope: &Scope) -> Result<(Client, String), CloudError> {
        match (&self.accounts, scope) {
            (_, Scope::Home) | (None, _) => Ok((self.client.clone(), String::new())),
            (Some(accounts), scope) => {
                let clients = accounts.clients(scope).await?;
                Ok((clients.ecs.clone(), clients.reached.clone()))
            }
        }
    }

    fn scope_of(&self, arn: &str) -> Scope {
        self.accounts
            .as_ref()
            .map_or(Scope::Home, |a| a.scopes().of_arn(arn))
    }

    fn cached(&self) -> MutexGuard<'_, HashMap<String, Revision>> {
        self.revisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the revisions not read yet, 20 a call, into the cache. A call
    /// that fails, or a revision ECS reports in `failures` (MISSING, or one
    /// created before service revisions existed), is logged at debug and
    /// left out: its deployments are described without a target, and the
    /// next describe asks again.
    async fn read_revisions(&self, client: &Client, arns: BTreeSet<&str>) {
        const OP: &str = "ecs:DescribeServiceRevisions";
        let wanted: Vec<String> = {
            let cache = self.cached();
            arns.into_iter()
                .filter(|a| !cache.contains_key(*a))
                .map(str::to_string)
                .collect()
        };
        for chunk in wanted.chunks(REVISIONS_LIMIT) {
            let out = client
                .describe_service_revisions()
                .set_service_revision_arns(Some(chunk.to_vec()))
                .send()
                .await;
            let out = match out {
                Ok(out) => out,
                Err(e) => {
                    let e = error(OP, &Subject::default(), None, e);
                    tracing::debug!(revisions = ?chunk, error = %e, "cannot read the service revisions");
                    continue;
                }
            };
            for f in out.failures() {
                tracing::debug!(
                    revision = f.arn().unwrap_or_default(),
                    reason = f.reason().unwrap_or_default(),
                    detail = f.detail().unwrap_or_default(),
                    "ECS cannot describe the service revision"
                );
            }
            let mut cache = self.cached();
            for r in out.service_revisions() {
                let (Some(arn), Some(read)) = (r.service_revision_arn(), revision(r)) else {
                    continue;
                };
                if cache.len() >= REVISIONS_CACHED {
                    cache.clear();
                }
                cache.insert(arn.to_string(), read);
            }
        }
    }

    /// Fills each deployment's `target` from its target revision, where
    /// the revision and its task definition's images were read.
    async fn fill_targets(
        &self,
        client: &Client,
        found: &mut [(ServiceDeployment, Option<TargetSummary>)],
    ) {
        self.read_revisions(
            client,
            found
                .iter()
                .filter_map(|(_, t)| Some(t.as_ref()?.arn.as_str()))
                .collect(),
        )
        .await;
        for (dep, summary) in found.iter_mut() {
            let Some(summary) = summary else {
                continue;
            };
            let Some(rev) = self.cached().get(&summary.arn).cloned() else {
                continue;
            };
            // Empty images would make a release by image read as not what
            // this deployment deploys: a wrong answer, where no target is an
            // unknown one. The images are asked for again next time.
            let Some(images) = self.images.read(client, &rev.task_definition).await else {
                tracing::debug!(
                    deployment = %dep.arn,
                    task_definition = %rev.task_definition,
                    "the target revision's images are not read: no target yet"
                );
                continue;
            };
            dep.target = Some(TargetRevision {
                task_definition: rev.task_definition,
                images,
                target_groups: rev.target_groups,
                requested_tasks: summary.requested_tasks,
            });
        }
    }

    /// The service as it is now: its task definition (the base of an image
    /// release) and the deployment configuration its owner set.
    async fn service(&self, client: &Client, key: &ServiceKey) -> Result<Service, CloudError> {
        const OP: &str = "ecs:DescribeServices";
        let out = client
            .describe_services()
            .cluster(&key.cluster)
            .services(&key.service)
            .send()
            .await
            .map_err(|e| error(OP, &Subject::of(key), None, e))?;
        out.services
            .unwrap_or_default()
            .into_iter()
            .find(|s| {
                s.service_name() == Some(key.service.as_str()) && s.status() == Some("ACTIVE")
            })
            .ok_or_else(|| CloudError::not_found(OP, format!("service {key}")))
    }
}

/// ECS's errors for these calls, sorted as [`ecs_error`] sorts them, and:
/// - `ServiceDeploymentNotFoundException` is not found, naming the ARN;
/// - `ConflictException` (StopServiceDeployment on a deployment whose state
///   does not allow it yet) is transient: the next pass reads the state again;
/// - `UnsupportedFeatureException` (a region or launch type without the
///   feature) is invalid: retrying cannot help.
///
/// Error lists: https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContinueServiceDeployment.html,
/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopServiceDeployment.html
fn error<E>(
    op: &'static str,
    subject: &Subject<'_>,
    deployment: Option<&str>,
    err: SdkError<E>,
) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = code(&err).map(str::to_string);
    let mut e = ecs_error(op, subject, err);
    match code.as_deref() {
        Some("ServiceDeploymentNotFoundException") => {
            e.kind = ErrorKind::NotFound;
            if let Some(arn) = deployment {
                e.message = format!("service deployment {arn} not found ({})", e.message);
            }
        }
        Some("ConflictException") => e.kind = ErrorKind::Transient,
        Some("UnsupportedFeatureException") => e.kind = ErrorKind::Invalid,
        _ => {}
    }
    e
}

fn timestamp(t: &DateTime) -> Timestamp {
    Timestamp::from_millis(t.to_millis().unwrap_or(t.secs().saturating_mul(1000)))
}

/// The deployment configuration to send: the service's own, with only what
/// cutover drives replaced. UpdateService replaces the whole configuration
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html),
/// so the circuit breaker, alarms, task percentages and the owner's Lambda
/// hooks are carried over as read.
///
/// Every PAUSE hook is taken for cutover's: ECS reports a pause with no
/// target and no details (API_DeploymentLifecycleHookDetail.html), so the
/// controller cannot tell whose pause it answers, and it answers each one.
/// An earlier cutover hook (or anyone's) is therefore replaced by the one
/// this request asks for, never added to.
pub(crate) fn deployment_configuration(
    current: Option<&DeploymentConfiguration>,
    request: &StartServiceDeployment,
) -> DeploymentConfiguration {
    let mut config = current
        .cloned()
        .unwrap_or_else(|| DeploymentConfiguration::builder().build());
    let minutes = |m: u32| i32::try_from(m).unwrap_or(i32::MAX);
    // https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentConfiguration.html
    config.strategy = Some(DeploymentStrategy::from(request.strategy.name()));
    config.bake_time_in_minutes = Some(minutes(request.bake_minutes));
    (config.canary_configuration, config.linear_configuration) = match request.strategy {
        NativeStrategy::BlueGreen => (None, None),
        // https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CanaryConfiguration.html
        NativeStrategy::Canary {
            percent,
            bake_minutes,
        } => (
            Some(
                CanaryConfiguration::builder()
                    .canary_percent(f64::from(percent))
                    .canary_bake_time_in_minutes(minutes(bake_minutes))
                    .build(),
            ),
            None,
        ),
        // https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_LinearConfiguration.html
        NativeStrategy::Linear {
            percent,
            bake_minutes,
        } => (
            None,
            Some(
                LinearConfiguration::builder()
                    .step_percent(f64::from(percent))
                    .step_bake_time_in_minutes(minutes(bake_minutes))
                    .build(),
            ),
        ),
    };
    let mut hooks: Vec<DeploymentLifecycleHook> = config
        .lifecycle_hooks
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|h| h.target_type() != Some(&DeploymentLifecycleHookTargetType::Pause))
        .collect();
    if !request.pauses.is_empty() {
        // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/pause-lifecycle-hooks.html:
        // a PAUSE hook has no target and no role; unanswered, it rolls back.
        let timeout = DeploymentLifecycleHookTimeoutConfiguration::builder()
            .timeout_in_minutes(minutes(request.pause_timeout_minutes))
            .action(DeploymentLifecycleHookAction::Rollback)
            .build();
        hooks.push(
            DeploymentLifecycleHook::builder()
                .target_type(DeploymentLifecycleHookTargetType::Pause)
                .set_lifecycle_stages(Some(
                    request
                        .pauses
                        .iter()
                        .map(|s| DeploymentLifecycleHookStage::from(s.as_str()))
                        .collect(),
                ))
                .timeout_configuration(timeout)
                .build(),
        );
    }
    // Sent even when empty, so a hook removed here is removed at ECS.
    config.lifecycle_hooks = Some(hooks);
    config
}

/// A deployment's `targetServiceRevision`
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceRevisionSummary.html).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TargetSummary {
    pub arn: String,
    /// `requestedTaskCount`, read anew with each describe (the revision
    /// itself does not change, its task count does). The SDK reads an
    /// absent count as 0, so 0 is taken for not reported.
    pub requested_tasks: Option<u32>,
}

pub(crate) fn target_summary(d: &SdkServiceDeployment) -> Option<TargetSummary> {
    let t = d.target_service_revision()?;
    Some(TargetSummary {
        arn: t.arn().filter(|a| !a.is_empty())?.to_string(),
        requested_tasks: u32::try_from(t.requested_task_count())
            .ok()
            .filter(|&n| n > 0),
    })
}

/// What a service revision says of itself; `None` without a task
/// definition. The fields follow
/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceRevision.html.
///
/// Which target group a deployment's new (green) tasks register in is not
/// documented: the ALB resources page says the primary target group is for
/// the blue revision and the alternate one for the green revision, then that
/// "Amazon ECS automatically registers tasks with the appropriate target
/// group based on the deployment stage"
/// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/alb-resources-for-blue-green.html),
/// and nothing says whether the two trade roles once a deployment has
/// succeeded. So each load balancer gives both its `targetGroupArn` and its
/// `advancedConfiguration.alternateTargetGroupArn`
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_AdvancedConfiguration.html),
/// and the target health gate needs each of them healthy: at worst it waits
/// for a group the new tasks are not in, never passes one they are in. A
/// revision without load balancers (Service Connect, VPC Lattice, none) has
/// no target group.
fn revision(r: &SdkServiceRevision) -> Option<Revision> {
    let task_definition = r.task_definition().filter(|t| !t.is_empty())?.to_string();
    let mut target_groups: Vec<String> = Vec::new();
    for lb in r.load_balancers() {
        let alternate = lb
            .advanced_configuration()
            .and_then(|a| a.alternate_target_group_arn());
        for tg in [lb.target_group_arn(), alternate].into_iter().flatten() {
            if !tg.is_empty() && !target_groups.iter().any(|t| t == tg) {
                target_groups.push(tg.to_string());
            }
        }
    }
    Some(Revision {
        task_definition,
        target_groups,
    })
}

/// One deployment in the domain's words; `None` without an ARN. The
/// fields follow https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeployment.html.
pub(crate) fn service_deployment(d: &SdkServiceDeployment) -> Option<ServiceDeployment> {
    let arn = d.service_deployment_arn()?.to_string();
    let pauses = d
        .lifecycle_hook_details()
        .iter()
        .filter(|h| h.target_type() == Some(&DeploymentLifecycleHookTargetType::Pause))
        .filter_map(|h| {
            Some(Pause {
                hook_id: h.hook_id()?.to_string(),
                status: h
                    .status()
                    .map_or(PauseStatus::Other, |s| PauseStatus::parse(s.as_str())),
                expires_at: h.expires_at().map(timestamp),
            })
        })
        .collect();
    Some(ServiceDeployment {
        arn,
        status: d.status().map_or(ServiceDeploymentStatus::Unknown, |s| {
            ServiceDeploymentStatus::parse(s.as_str())
        }),
        status_reason: d.status_reason().map(str::to_string),
        // PRE_PRODUCTION_TRAFFIC_SHIFT is missing from the SDK's enum and
        // arrives as its unknown variant, whose string is ECS's own.
        stage: d
            .lifecycle_stage()
            .map(|s| LifecycleStage::parse(s.as_str())),
        pauses,
        created_at: d.created_at().map(timestamp),
        target_weight: d
            .target_service_revision()
            .and_then(|t| t.requested_production_traffic_weight())
            .map(|w| w.round().clamp(0.0, 100.0) as u32),
        rollback_reason: d.rollback().and_then(|r| r.reason()).map(str::to_string),
        // Read from the revision by the adapter's describe.
        target: None,
    })
}

#[async_trait]
impl ServiceDeployments for ServiceDeploymentsAdapter {
    async fn start(
        &self,
        key: &ServiceKey,
        request: &StartServiceDeployment,
    ) -> Result<Option<String>, CloudError> {
        let (client, reached) = self.at(&key.scope).await?;
        self.start_with(&client, key, request)
            .await
            .map_err(|e| tag(e, &reached))
    }

    async fn describe(&self, arns: &[String]) -> Result<Vec<ServiceDeployment>, CloudError> {
        // One call reaches one account and region.
        let mut by_scope: BTreeMap<Scope, Vec<String>> = BTreeMap::new();
        for arn in arns {
            by_scope
                .entry(self.scope_of(arn))
                .or_default()
                .push(arn.clone());
        }
        let mut found = Vec::new();
        for (scope, arns) in by_scope {
            let (client, reached) = self.at(&scope).await?;
            found.extend(
                self.describe_with(&client, &arns)
                    .await
                    .map_err(|e| tag(e, &reached))?,
            );
        }
        Ok(found)
    }

    async fn ongoing(
        &self,
        key: &ServiceKey,
        since: Option<Timestamp>,
    ) -> Result<Vec<String>, CloudError> {
        let (client, reached) = self.at(&key.scope).await?;
        self.ongoing_with(&client, key, since)
            .await
            .map_err(|e| tag(e, &reached))
    }

    async fn answer(
        &self,
        arn: &str,
        hook_id: &str,
        action: PauseAction,
    ) -> Result<(), CloudError> {
        let (client, reached) = self.at(&self.scope_of(arn)).await?;
        self.answer_with(&client, arn, hook_id, action)
            .await
            .map_err(|e| tag(e, &reached))
    }

    async fn stop(&self, arn: &str) -> Result<(), CloudError> {
        let (client, reached) = self.at(&self.scope_of(arn)).await?;
        self.stop_with(&client, arn)
            .await
            .map_err(|e| tag(e, &reached))
    }
}

impl ServiceDeploymentsAdapter {
    async fn start_with(
        &self,
        client: &Client,
        key: &ServiceKey,
        request: &StartServiceDeployment,
    ) -> Result<Option<String>, CloudError> {
        const OP: &str = "ecs:UpdateService";
        let service = self.service(client, key).await?;
        let task_definition = match &request.version {
            Version::TaskDefinition(td) => td.clone(),
            Version::Image { image, container } => {
                let base = service.task_definition().ok_or_else(|| {
                    CloudError::new(
                        ErrorKind::Invalid,
                        OP,
                        format!(
                            "service {key} has no task definition to put the image into: \
                             give `task_definition` instead"
                        ),
                    )
                })?;
                task_definition_with_image(client, base, container, image).await?
            }
        };
        let config = deployment_configuration(service.deployment_configuration(), request);
        let subject = Subject {
            task_definition: Some(&task_definition),
            ..Subject::of(key)
        };
        // No forceNewDeployment: the new task definition is the change, and
        // a forced deployment of an unchanged service would redeploy it.
        let out = client
            .update_service()
            .cluster(&key.cluster)
            .service(&key.service)
            .task_definition(&task_definition)
            .deployment_configuration(config)
            .send()
            .await
            .map_err(|e| error(OP, &subject, None, e))?;
        Ok(out
            .service
            .and_then(|s| s.current_service_deployment)
            .filter(|arn| !arn.is_empty()))
    }

    async fn describe_with(
        &self,
        client: &Client,
        arns: &[String],
    ) -> Result<Vec<ServiceDeployment>, CloudError> {
        const OP: &str = "ecs:DescribeServiceDeployments";
        let mut found = Vec::new();
        // The port asks for at most DESCRIBE_LIMIT; more still work.
        for chunk in arns.chunks(DESCRIBE_LIMIT) {
            let out = client
                .describe_service_deployments()
                .set_service_deployment_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| error(OP, &Subject::default(), None, e))?;
            // ARNs that do not exist come back in `failures` and are left out
            // (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServiceDeployments.html).
            found.extend(
                out.service_deployments()
                    .iter()
                    .filter_map(|d| Some((service_deployment(d)?, target_summary(d)))),
            );
        }
        self.fill_targets(client, &mut found).await;
        Ok(found.into_iter().map(|(dep, _)| dep).collect())
    }

    async fn ongoing_with(
        &self,
        client: &Client,
        key: &ServiceKey,
        since: Option<Timestamp>,
    ) -> Result<Vec<String>, CloudError> {
        const OP: &str = "ecs:ListServiceDeployments";
        let statuses: Vec<SdkDeploymentStatus> = ServiceDeploymentStatus::ONGOING
            .iter()
            .map(|s| SdkDeploymentStatus::from(s.as_str()))
            .collect();
        let created = since.map(|t| {
            CreatedAt::builder()
                .after(DateTime::from_millis(t.0))
                .build()
        });
        let mut arns = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = client
                .list_service_deployments()
                .cluster(&key.cluster)
                .service(&key.service)
                .set_status(Some(statuses.clone()))
                .set_created_at(created.clone())
                .max_results(LIST_PAGE)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| error(OP, &Subject::of(key), None, e))?;
            arns.extend(
                out.service_deployments()
                    .iter()
                    .filter_map(|b| b.service_deployment_arn())
                    .map(str::to_string),
            );
            // A token handed back unchanged would page forever.
            match out.next_token {
                Some(next) if !next.is_empty() && token.as_deref() != Some(next.as_str()) => {
                    token = Some(next)
                }
                _ => return Ok(arns),
            }
        }
    }

    async fn answer_with(
        &self,
        client: &Client,
        arn: &str,
        hook_id: &str,
        action: PauseAction,
    ) -> Result<(), CloudError> {
        const OP: &str = "ecs:ContinueServiceDeployment";
        // `action` defaults to CONTINUE at ECS, so a rollback sent without it
        // would let the deployment through: it is always sent
        // (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContinueServiceDeployment.html).
        let action = match action {
            PauseAction::Continue => DeploymentLifecycleHookAction::Continue,
            PauseAction::Rollback => DeploymentLifecycleHookAction::Rollback,
        };
        client
            .continue_service_deployment()
            .service_deployment_arn(arn)
            .hook_id(hook_id)
            .action(action)
            .send()
            .await
            .map_err(|e| error(OP, &Subject::default(), Some(arn), e))?;
        Ok(())
    }

    async fn stop_with(&self, client: &Client, arn: &str) -> Result<(), CloudError> {
        const OP: &str = "ecs:StopServiceDeployment";
        // ROLLBACK puts the service back on the revision it ran before
        // (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopServiceDeployment.html).
        client
            .stop_service_deployment()
            .service_deployment_arn(arn)
            .stop_type(StopServiceDeploymentStopType::Rollback)
            .send()
            .await
            .map_err(|e| error(OP, &Subject::default(), Some(arn), e))?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "service_deployments_tests.rs"]
mod tests;
