//! The port to ECS's own service deployments, for services on the ECS
//! deployment controller (`driver = "ecs_native"`): start one with
//! UpdateService, read them, answer their PAUSE hooks, stop them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::gather::{BatchRead, Gather};
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

/// DescribeServiceDeployments, as [`Gather`] reads it.
struct Described(Arc<dyn ServiceDeployments>);

#[async_trait]
impl BatchRead for Described {
    type Item = ServiceDeployment;
    const LIMIT: usize = DESCRIBE_LIMIT;
    const OPERATION: &'static str = "ecs:DescribeServiceDeployments";
    fn id(item: &ServiceDeployment) -> &str {
        &item.arn
    }
    async fn read(&self, arns: &[String]) -> Result<Vec<ServiceDeployment>, CloudError> {
        self.0.describe(arns).await
    }
}

/// Gathers the deployment reads of every pass that asks within `window`
/// into DescribeServiceDeployments calls of up to 20 ARNs, so a fleet of
/// services in flight costs one call per 20 of them and poll. Every other
/// call goes straight through.
#[derive(Clone)]
pub struct ServiceDeploymentBatcher {
    inner: Arc<dyn ServiceDeployments>,
    reads: Gather<Described>,
}

impl ServiceDeploymentBatcher {
    pub fn new(inner: Arc<dyn ServiceDeployments>, window: Duration) -> Self {
        ServiceDeploymentBatcher {
            reads: Gather::new(Described(Arc::clone(&inner)), window),
            inner,
        }
    }
}

#[async_trait]
impl ServiceDeployments for ServiceDeploymentBatcher {
    async fn start(
        &self,
        key: &ServiceKey,
        request: &StartServiceDeployment,
    ) -> Result<Option<String>, CloudError> {
        self.inner.start(key, request).await
    }
    async fn describe(&self, arns: &[String]) -> Result<Vec<ServiceDeployment>, CloudError> {
        self.reads.get(arns).await
    }
    async fn ongoing(
        &self,
        key: &ServiceKey,
        since: Option<Timestamp>,
    ) -> Result<Vec<String>, CloudError> {
        self.inner.ongoing(key, since).await
    }
    async fn answer(
        &self,
        arn: &str,
        hook_id: &str,
        action: PauseAction,
    ) -> Result<(), CloudError> {
        self.inner.answer(arn, hook_id, action).await
    }
    async fn stop(&self, arn: &str) -> Result<(), CloudError> {
        self.inner.stop(arn).await
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::rollout::service_deployment::ServiceDeploymentStatus;

    #[derive(Default)]
    struct Counted {
        calls: Mutex<Vec<usize>>,
    }

    fn deployment(arn: &str) -> ServiceDeployment {
        ServiceDeployment {
            arn: arn.to_string(),
            status: ServiceDeploymentStatus::InProgress,
            status_reason: None,
            stage: None,
            pauses: vec![],
            created_at: None,
            target_weight: None,
            rollback_reason: None,
            target: None,
        }
    }

    #[async_trait]
    impl ServiceDeployments for Counted {
        async fn start(
            &self,
            _: &ServiceKey,
            _: &StartServiceDeployment,
        ) -> Result<Option<String>, CloudError> {
            unreachable!()
        }
        async fn describe(&self, arns: &[String]) -> Result<Vec<ServiceDeployment>, CloudError> {
            assert!(arns.len() <= DESCRIBE_LIMIT);
            self.calls.lock().unwrap().push(arns.len());
            Ok(arns
                .iter()
                .filter(|a| !a.starts_with("gone"))
                .map(|a| deployment(a))
                .collect())
        }
        async fn ongoing(
            &self,
            _: &ServiceKey,
            _: Option<Timestamp>,
        ) -> Result<Vec<String>, CloudError> {
            unreachable!()
        }
        async fn answer(&self, _: &str, _: &str, _: PauseAction) -> Result<(), CloudError> {
            unreachable!()
        }
        async fn stop(&self, _: &str) -> Result<(), CloudError> {
            unreachable!()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reads_of_fifty_services_in_flight_cost_three_calls() {
        let source = Arc::new(Counted::default());
        let batcher = ServiceDeploymentBatcher::new(source.clone(), Duration::from_millis(50));
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let b = batcher.clone();
                tokio::spawn(async move { b.describe(&[format!("sd-{i}")]).await })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            let found = h.await.unwrap().unwrap();
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].arn, format!("sd-{i}"));
        }
        assert_eq!(*source.calls.lock().unwrap(), [20, 20, 10]);
        // A deployment ECS no longer knows is left out, not an error.
        let gone = batcher.describe(&["gone-1".to_string()]).await.unwrap();
        assert!(gone.is_empty());
    }
}
