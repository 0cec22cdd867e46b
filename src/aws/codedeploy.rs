//! The CodeDeploy adapter: deployments of ECS services that stay on the
//! CODE_DEPLOY deployment controller.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_codedeploy::types::{
    AppSpecContent, DeploymentInfo, DeploymentStatus as SdkStatus, DeploymentWaitType,
    LifecycleEventStatus, RevisionLocation, RevisionLocationType, TargetLabel, TimeRange,
};
use aws_smithy_types::DateTime;
use sha2::{Digest, Sha256};

use super::calls::ApiCalls;
use super::error::from_sdk;
use crate::cloud::codedeploy::{BATCH_LIMIT, CodeDeploy, Lifecycle};
use crate::cloud::{CloudError, ErrorKind};
use crate::rollout::ServiceKey;
use crate::rollout::deployment::{
    ContinueWait, CreateDeployment, Deployment, DeploymentStatus, EventStatus,
};
use crate::time::Timestamp;

pub struct CodeDeployAdapter {
    client: Client,
}

impl CodeDeployAdapter {
    pub fn new(sdk: &SdkConfig, calls: &ApiCalls) -> Self {
        Self::from_client(super::calls::codedeploy_client(sdk, calls))
    }

    pub fn from_client(client: Client) -> Self {
        CodeDeployAdapter { client }
    }
}

/// CodeDeploy names its missing things `…DoesNotExistException`, and an
/// active deployment in the group `DeploymentLimitExceededException`.
fn error<E>(operation: &'static str, err: SdkError<E>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err
        .as_service_error()
        .and_then(|e| e.code())
        .map(str::to_string);
    let mut e = from_sdk(operation, err);
    match code.as_deref() {
        Some(c) if c.ends_with("DoesNotExistException") => e.kind = ErrorKind::NotFound,
        Some("DeploymentLimitExceededException" | "DeploymentAlreadyCompletedException") => {
            e.kind = ErrorKind::Invalid
        }
        _ => {}
    }
    e
}

pub(crate) fn status(s: &SdkStatus) -> Option<DeploymentStatus> {
    Some(match s {
        SdkStatus::Created => DeploymentStatus::Created,
        SdkStatus::Queued => DeploymentStatus::Queued,
        SdkStatus::InProgress => DeploymentStatus::InProgress,
        SdkStatus::Baking => DeploymentStatus::Baking,
        SdkStatus::Ready => DeploymentStatus::Ready,
        SdkStatus::Succeeded => DeploymentStatus::Succeeded,
        SdkStatus::Failed => DeploymentStatus::Failed,
        SdkStatus::Stopped => DeploymentStatus::Stopped,
        _ => return None,
    })
}

fn sdk_status(s: DeploymentStatus) -> SdkStatus {
    match s {
        DeploymentStatus::Created => SdkStatus::Created,
        DeploymentStatus::Queued => SdkStatus::Queued,
        DeploymentStatus::InProgress => SdkStatus::InProgress,
        DeploymentStatus::Baking => SdkStatus::Baking,
        DeploymentStatus::Ready => SdkStatus::Ready,
        DeploymentStatus::Succeeded => SdkStatus::Succeeded,
        DeploymentStatus::Failed => SdkStatus::Failed,
        DeploymentStatus::Stopped => SdkStatus::Stopped,
    }
}

/// A deployment in the domain's words; `None` for one without an id or
/// with a status this build does not know.
pub(crate) fn deployment(info: &DeploymentInfo) -> Option<Deployment> {
    let error =
        info.error_information()
            .map(|e| match (e.code().map(|c| c.as_str()), e.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                (None, Some(message)) => message.to_string(),
                (None, None) => "no details".to_string(),
            });
    Some(Deployment {
        id: info.deployment_id()?.to_string(),
        status: status(info.status()?)?,
        description: info.description().map(str::to_string),
        error,
        termination_wait_started: info.instance_termination_wait_time_started(),
        created_at: info.create_time().map(|t| {
            Timestamp::from_millis(t.to_millis().unwrap_or(t.secs().saturating_mul(1000)))
        }),
        lifecycle: BTreeMap::new(),
        traffic: None,
    })
}

fn event_status(s: Option<&LifecycleEventStatus>) -> EventStatus {
    match s {
        Some(LifecycleEventStatus::Pending) => EventStatus::Pending,
        Some(LifecycleEventStatus::InProgress) => EventStatus::InProgress,
        Some(LifecycleEventStatus::Succeeded) => EventStatus::Succeeded,
        Some(LifecycleEventStatus::Failed) => EventStatus::Failed,
        Some(LifecycleEventStatus::Skipped) => EventStatus::Skipped,
        _ => EventStatus::Unknown,
    }
}

#[async_trait]
impl CodeDeploy for CodeDeployAdapter {
    async fn create(
        &self,
        _key: &ServiceKey,
        request: &CreateDeployment,
    ) -> Result<String, CloudError> {
        const OP: &str = "codedeploy:CreateDeployment";
        let appspec = request.appspec();
        let sha256 = hex::encode(Sha256::digest(appspec.as_bytes()));
        let revision = RevisionLocation::builder()
            .revision_type(RevisionLocationType::AppSpecContent)
            .app_spec_content(
                AppSpecContent::builder()
                    .content(appspec)
                    .sha256(sha256)
                    .build(),
            )
            .build();
        let out = self
            .client
            .create_deployment()
            .application_name(&request.application)
            .deployment_group_name(&request.deployment_group)
            .set_deployment_config_name(request.deployment_config.clone())
            .description(&request.description)
            .revision(revision)
            .send()
            .await
            .map_err(|e| error(OP, e))?;
        out.deployment_id.ok_or_else(|| {
            CloudError::new(
                ErrorKind::Other,
                OP,
                format!(
                    "CodeDeploy created a deployment in {}/{} without answering its id",
                    request.application, request.deployment_group
                ),
            )
        })
    }

    async fn batch_get(&self, ids: &[String]) -> Result<Vec<Deployment>, CloudError> {
        const OP: &str = "codedeploy:BatchGetDeployments";
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        for chunk in ids.chunks(BATCH_LIMIT) {
            let out = self
                .client
                .batch_get_deployments()
                .set_deployment_ids(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| error(OP, e))?;
            found.extend(out.deployments_info().iter().filter_map(deployment));
        }
        Ok(found)
    }

    async fn lifecycle(&self, id: &str, key: &ServiceKey) -> Result<Lifecycle, CloudError> {
        const OP: &str = "codedeploy:BatchGetDeploymentTargets";
        // An ECS deployment has one target, named `<cluster>:<service>`.
        let out = self
            .client
            .batch_get_deployment_targets()
            .deployment_id(id)
            .target_ids(format!("{}:{}", key.cluster, key.service))
            .send()
            .await
            .map_err(|e| error(OP, e))?;
        let Some(ecs) = out.deployment_targets().iter().find_map(|t| t.ecs_target()) else {
            return Ok((BTreeMap::new(), None));
        };
        let events = ecs
            .lifecycle_events()
            .iter()
            .filter_map(|e| {
                let name = e.lifecycle_event_name()?;
                Some((name.to_string(), event_status(e.status())))
            })
            .collect();
        let weight = |label: TargetLabel| {
            ecs.task_sets_info()
                .iter()
                .find(|t| t.task_set_label() == Some(&label))
                .map(|t| t.traffic_weight().round().clamp(0.0, 100.0) as u32)
        };
        let traffic = match (weight(TargetLabel::Blue), weight(TargetLabel::Green)) {
            (Some(blue), Some(green)) => Some((blue, green)),
            (Some(blue), None) => Some((blue, 100 - blue)),
            (None, Some(green)) => Some((100 - green, green)),
            (None, None) => None,
        };
        Ok((events, traffic))
    }

    async fn continue_deployment(&self, id: &str, wait: ContinueWait) -> Result<(), CloudError> {
        const OP: &str = "codedeploy:ContinueDeployment";
        let wait = match wait {
            ContinueWait::ReadyWait => DeploymentWaitType::ReadyWait,
            ContinueWait::TerminationWait => DeploymentWaitType::TerminationWait,
        };
        self.client
            .continue_deployment()
            .deployment_id(id)
            .deployment_wait_type(wait)
            .send()
            .await
            .map_err(|e| error(OP, e))?;
        Ok(())
    }

    async fn stop(&self, id: &str) -> Result<(), CloudError> {
        const OP: &str = "codedeploy:StopDeployment";
        self.client
            .stop_deployment()
            .deployment_id(id)
            .auto_rollback_enabled(true)
            .send()
            .await
            .map_err(|e| error(OP, e))?;
        Ok(())
    }

    async fn list(
        &self,
        application: &str,
        deployment_group: &str,
        since: Option<Timestamp>,
    ) -> Result<Vec<String>, CloudError> {
        const OP: &str = "codedeploy:ListDeployments";
        let (statuses, range) = match since {
            None => (
                Some(
                    DeploymentStatus::IN_FLIGHT
                        .into_iter()
                        .map(sdk_status)
                        .collect(),
                ),
                None,
            ),
            Some(t) => (
                None,
                Some(
                    TimeRange::builder()
                        .start(DateTime::from_millis(t.0))
                        .build(),
                ),
            ),
        };
        let mut ids = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_deployments()
                .application_name(application)
                .deployment_group_name(deployment_group)
                .set_include_only_statuses(statuses.clone())
                .set_create_time_range(range.clone())
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| error(OP, e))?;
            ids.extend(out.deployments().iter().cloned());
            token = out.next_token;
            if token.is_none() {
                return Ok(ids);
            }
        }
    }
}

#[cfg(test)]
#[path = "codedeploy_tests.rs"]
mod tests;
