//! The CodeDeploy port, for services that stay on the CODE_DEPLOY deployment
//! controller, and the batcher that reads the deployments of every service
//! in flight together.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::gather::{BatchRead, Gather};
use super::{CloudError, ErrorKind};
use crate::rollout::ServiceKey;
use crate::rollout::deployment::{ContinueWait, CreateDeployment, Deployment, EventStatus};
use crate::time::Timestamp;

/// BatchGetDeployments takes at most this many ids.
pub const BATCH_LIMIT: usize = 25;

/// Lifecycle events by name, and production weights (original, replacement).
pub type Lifecycle = (BTreeMap<String, EventStatus>, Option<(u32, u32)>);

#[async_trait]
pub trait CodeDeploy: Send + Sync {
    /// Starts a deployment; answers its id.
    async fn create(
        &self,
        key: &ServiceKey,
        request: &CreateDeployment,
    ) -> Result<String, CloudError>;
    /// The deployments with these ids that exist, at most [`BATCH_LIMIT`].
    async fn batch_get(&self, ids: &[String]) -> Result<Vec<Deployment>, CloudError>;
    /// The lifecycle events and traffic of the service in one deployment.
    async fn lifecycle(&self, id: &str, key: &ServiceKey) -> Result<Lifecycle, CloudError>;
    async fn continue_deployment(&self, id: &str, wait: ContinueWait) -> Result<(), CloudError>;
    /// Stops a deployment and has CodeDeploy roll it back.
    async fn stop(&self, id: &str) -> Result<(), CloudError>;
    /// Ids of the group's deployments that are in flight; with `since`,
    /// of every deployment created since then, finished or not.
    async fn list(
        &self,
        application: &str,
        deployment_group: &str,
        since: Option<Timestamp>,
    ) -> Result<Vec<String>, CloudError>;
}

/// For a controller without a CodeDeploy client: records with
/// `driver = "codedeploy"` report that they cannot be driven.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCodeDeploy;

fn unavailable(operation: &'static str) -> CloudError {
    CloudError::new(
        ErrorKind::Invalid,
        operation,
        "this controller has no CodeDeploy client",
    )
}

#[async_trait]
impl CodeDeploy for NoCodeDeploy {
    async fn create(&self, _: &ServiceKey, _: &CreateDeployment) -> Result<String, CloudError> {
        Err(unavailable("codedeploy:CreateDeployment"))
    }
    async fn batch_get(&self, _: &[String]) -> Result<Vec<Deployment>, CloudError> {
        Err(unavailable("codedeploy:BatchGetDeployments"))
    }
    async fn lifecycle(&self, _: &str, _: &ServiceKey) -> Result<Lifecycle, CloudError> {
        Err(unavailable("codedeploy:BatchGetDeploymentTargets"))
    }
    async fn continue_deployment(&self, _: &str, _: ContinueWait) -> Result<(), CloudError> {
        Err(unavailable("codedeploy:ContinueDeployment"))
    }
    async fn stop(&self, _: &str) -> Result<(), CloudError> {
        Err(unavailable("codedeploy:StopDeployment"))
    }
    async fn list(
        &self,
        _: &str,
        _: &str,
        _: Option<Timestamp>,
    ) -> Result<Vec<String>, CloudError> {
        Err(unavailable("codedeploy:ListDeployments"))
    }
}

/// BatchGetDeployments, as [`Gather`] reads it.
struct Deployments(Arc<dyn CodeDeploy>);

#[async_trait]
impl BatchRead for Deployments {
    type Item = Deployment;
    const LIMIT: usize = BATCH_LIMIT;
    const OPERATION: &'static str = "codedeploy:BatchGetDeployments";
    fn id(item: &Deployment) -> &str {
        &item.id
    }
    async fn read(&self, ids: &[String]) -> Result<Vec<Deployment>, CloudError> {
        self.0.batch_get(ids).await
    }
}

/// Gathers the deployment reads of every pass that asks within `window`
/// into BatchGetDeployments calls of up to 25 ids, so a fleet of services
/// in flight costs one call per 25 of them and poll. Every other call goes
/// straight through.
#[derive(Clone)]
pub struct DeploymentBatcher {
    inner: Arc<dyn CodeDeploy>,
    reads: Gather<Deployments>,
}

impl DeploymentBatcher {
    pub fn new(inner: Arc<dyn CodeDeploy>, window: Duration) -> DeploymentBatcher {
        DeploymentBatcher {
            reads: Gather::new(Deployments(Arc::clone(&inner)), window),
            inner,
        }
    }
}

#[async_trait]
impl CodeDeploy for DeploymentBatcher {
    async fn create(
        &self,
        key: &ServiceKey,
        request: &CreateDeployment,
    ) -> Result<String, CloudError> {
        self.inner.create(key, request).await
    }
    async fn batch_get(&self, ids: &[String]) -> Result<Vec<Deployment>, CloudError> {
        self.reads.get(ids).await
    }
    async fn lifecycle(&self, id: &str, key: &ServiceKey) -> Result<Lifecycle, CloudError> {
        self.inner.lifecycle(id, key).await
    }
    async fn continue_deployment(&self, id: &str, wait: ContinueWait) -> Result<(), CloudError> {
        self.inner.continue_deployment(id, wait).await
    }
    async fn stop(&self, id: &str) -> Result<(), CloudError> {
        self.inner.stop(id).await
    }
    async fn list(
        &self,
        application: &str,
        deployment_group: &str,
        since: Option<Timestamp>,
    ) -> Result<Vec<String>, CloudError> {
        self.inner.list(application, deployment_group, since).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::rollout::deployment::DeploymentStatus;

    #[derive(Default)]
    struct Counted {
        calls: Mutex<Vec<usize>>,
    }

    fn deployment(id: &str) -> Deployment {
        Deployment {
            id: id.to_string(),
            status: DeploymentStatus::InProgress,
            description: None,
            error: None,
            termination_wait_started: false,
            created_at: None,
            lifecycle: BTreeMap::new(),
            traffic: None,
        }
    }

    #[async_trait]
    impl CodeDeploy for Counted {
        async fn create(&self, _: &ServiceKey, _: &CreateDeployment) -> Result<String, CloudError> {
            unreachable!()
        }
        async fn batch_get(&self, ids: &[String]) -> Result<Vec<Deployment>, CloudError> {
            assert!(ids.len() <= BATCH_LIMIT);
            self.calls.lock().unwrap().push(ids.len());
            Ok(ids
                .iter()
                .filter(|id| !id.starts_with("gone"))
                .map(|id| deployment(id))
                .collect())
        }
        async fn lifecycle(&self, _: &str, _: &ServiceKey) -> Result<Lifecycle, CloudError> {
            unreachable!()
        }
        async fn continue_deployment(&self, _: &str, _: ContinueWait) -> Result<(), CloudError> {
            unreachable!()
        }
        async fn stop(&self, _: &str) -> Result<(), CloudError> {
            unreachable!()
        }
        async fn list(
            &self,
            _: &str,
            _: &str,
            _: Option<Timestamp>,
        ) -> Result<Vec<String>, CloudError> {
            unreachable!()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reads_of_sixty_services_in_flight_cost_three_calls() {
        let source = Arc::new(Counted::default());
        let batcher = DeploymentBatcher::new(source.clone(), Duration::from_millis(50));
        let reads = (0..60).map(|i| {
            let b = batcher.clone();
            async move { b.batch_get(&[format!("d-{i}")]).await }
        });
        let answers = futures_join_all(reads).await;
        for (i, a) in answers.iter().enumerate() {
            let a = a.as_ref().unwrap();
            assert_eq!(a.len(), 1);
            assert_eq!(a[0].id, format!("d-{i}"));
        }
        assert_eq!(*source.calls.lock().unwrap(), [25, 25, 10]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_id_is_left_out_and_later_reads_start_a_new_batch() {
        let source = Arc::new(Counted::default());
        let batcher = DeploymentBatcher::new(source.clone(), Duration::from_millis(50));
        let gone = batcher.batch_get(&["gone-1".to_string()]).await.unwrap();
        assert!(gone.is_empty());
        let again = batcher.batch_get(&["d-1".to_string()]).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(*source.calls.lock().unwrap(), [1, 1]);
    }

    async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = futures.map(tokio::spawn).collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }
}
