//! The port to ECS's own service deployments, for services on the ECS
//! deployment controller (`driver = "ecs_native"`): start one with
//! UpdateService, read them, answer their PAUSE hooks, stop them.

use async_trait::async_trait;

use super::{CloudError, ErrorKind};
use crate::rollout::ServiceKey;
use crate::rollout::command::StartServiceDeployment;
use crate::rollout::service_deployment::{
    PauseAction, ServiceDeployment, ServiceDeploymentRead, ServiceDeploymentView,
};
use crate::time::Timestamp;

/// DescribeServiceDeployments takes at most this many ARNs
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServiceDeployments.html).
pub const DESCRIBE_LIMIT: usize = 20;

#[async_trait]
pub trait ServiceDeployments: Send + Sync {
    /// UpdateService with the version, strategy, bake and PAUSE hooks of
    /// `request`. Answers the new deployment's ARN where ECS reports it
    /// (the service's `currentServiceDeployment`).
    async fn start(
        &self,
        key: &ServiceKey,
        request: &StartServiceDeployment,
    ) -> Result<Option<String>, CloudError>;
    /// The deployments with these ARNs that exist, at most [`DESCRIBE_LIMIT`].
    async fn describe(&self, arns: &[String]) -> Result<Vec<ServiceDeployment>, CloudError>;
    /// ARNs of the service's ongoing deployments (ListServiceDeployments
    /// with the ongoing statuses), created after `since` where given.
    async fn ongoing(
        &self,
        key: &ServiceKey,
        since: Option<Timestamp>,
    ) -> Result<Vec<String>, CloudError>;
    /// ContinueServiceDeployment: answers the pause `hook_id`.
    async fn answer(&self, arn: &str, hook_id: &str, action: PauseAction)
    -> Result<(), CloudError>;
    /// StopServiceDeployment with stopType ROLLBACK.
    async fn stop(&self, arn: &str) -> Result<(), CloudError>;
}

/// For a controller without the port: records with `driver = "ecs_native"`
/// report that they cannot be driven.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoServiceDeployments;

fn unavailable(operation: &'static str) -> CloudError {
    CloudError::new(
        ErrorKind::Invalid,
        operation,
        "this controller has no client for ECS service deployments",
    )
}

#[async_trait]
impl ServiceDeployments for NoServiceDeployments {
    async fn start(
        &self,
        _: &ServiceKey,
        _: &StartServiceDeployment,
    ) -> Result<Option<String>, CloudError> {
        Err(unavailable("ecs:UpdateService"))
    }
    async fn describe(&self, _: &[String]) -> Result<Vec<ServiceDeployment>, CloudError> {
        Err(unavailable("ecs:DescribeServiceDeployments"))
    }
    async fn ongoing(
        &self,
        _: &ServiceKey,
        _: Option<Timestamp>,
    ) -> Result<Vec<String>, CloudError> {
        Err(unavailable("ecs:ListServiceDeployments"))
    }
    async fn answer(&self, _: &str, _: &str, _: PauseAction) -> Result<(), CloudError> {
        Err(unavailable("ecs:ContinueServiceDeployment"))
    }
    async fn stop(&self, _: &str) -> Result<(), CloudError> {
        Err(unavailable("ecs:StopServiceDeployment"))
    }
}

/// The service deployment asked for: by ARN, or the newest ongoing one.
pub async fn read(
    port: &dyn ServiceDeployments,
    key: &ServiceKey,
    read: &ServiceDeploymentRead,
) -> Result<ServiceDeploymentView, CloudError> {
    let arns = match read {
        ServiceDeploymentRead::Get { arn } => vec![arn.clone()],
        ServiceDeploymentRead::Ongoing { since } => port.ongoing(key, *since).await?,
    };
    let mut found = Vec::new();
    for chunk in arns.chunks(DESCRIBE_LIMIT) {
        found.extend(port.describe(chunk).await?);
    }
    // ECS does not say how many may be ongoing at once: the newest decides.
    found.sort_by_key(|d| std::cmp::Reverse(d.created_at));
    Ok(found
        .into_iter()
        .next()
        .map_or(ServiceDeploymentView::Absent, ServiceDeploymentView::Found))
}
