//! The ports, each call waiting for its category's budget first. Every
//! method is forwarded, defaults included: a default left in place would
//! silently replace the wrapped port's own behaviour.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{ApiBudgets, Category};
use crate::cloud::{
    Change, CloudError, DesiredStore, Ecs, Fence, FleetItem, Listing, LoadBalancer, Positioned,
    Precondition, ServiceDeployments, SpecChanges, SpecWrite, StatusWrite, StoredRecord,
};
use crate::rollout::command::CreateTaskSet;
use crate::rollout::command::StartServiceDeployment;
use crate::rollout::service_deployment::{PauseAction, ServiceDeployment};
use crate::rollout::{
    Route, Scope, ServiceKey, ServiceState, Status, Stickiness, TargetCounts, TaskSet, Weights,
};
use crate::time::Timestamp;

/// A port whose calls keep to `budgets`. Wrap the outermost adapter, so
/// SDK retries (which the adapter makes inside one call) are the only
/// attempts the budget does not see.
pub struct Budgeted<P: ?Sized> {
    inner: Arc<P>,
    budgets: Arc<ApiBudgets>,
}

impl<P: ?Sized> Budgeted<P> {
    pub fn new(inner: Arc<P>, budgets: Arc<ApiBudgets>) -> Self {
        Budgeted { inner, budgets }
    }

    async fn wait(&self, category: Category) {
        self.budgets.acquire(category).await;
    }

    /// Waits for `scope`'s budget: AWS's are per account and region.
    async fn wait_in(&self, scope: &Scope, category: Category) {
        self.budgets.acquire_in(scope, category).await;
    }

    /// Waits for the budget of the account and region `arn` is in.
    async fn wait_for(&self, arn: &str, category: Category) {
        let scope = self.budgets.scope_of_arn(arn);
        self.budgets.acquire_in(&scope, category).await;
    }

    /// Waits for a token of `category`, then lends the wrapped port: for
    /// ports defined outside `cloud` (the CloudWatch alarm reader).
    pub async fn spend(&self, category: Category) -> &P {
        self.wait(category).await;
        &self.inner
    }
}

#[async_trait]
impl Ecs for Budgeted<dyn Ecs> {
    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<(String, ServiceState)>, CloudError> {
        self.wait(Category::EcsRead).await;
        self.inner.describe_services(cluster, services).await
    }

    async fn describe_in(
        &self,
        scope: &Scope,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<(String, ServiceState)>, CloudError> {
        self.wait_in(scope, Category::EcsRead).await;
        self.inner.describe_in(scope, cluster, services).await
    }

    async fn create_task_set(
        &self,
        key: &ServiceKey,
        request: &CreateTaskSet,
    ) -> Result<TaskSet, CloudError> {
        self.wait_in(&key.scope, Category::EcsMutation).await;
        self.inner.create_task_set(key, request).await
    }

    async fn set_primary(&self, key: &ServiceKey, task_set_arn: &str) -> Result<(), CloudError> {
        self.wait_in(&key.scope, Category::EcsMutation).await;
        self.inner.set_primary(key, task_set_arn).await
    }

    async fn delete_task_set(
        &self,
        key: &ServiceKey,
        task_set_arn: &str,
    ) -> Result<(), CloudError> {
        self.wait_in(&key.scope, Category::EcsMutation).await;
        self.inner.delete_task_set(key, task_set_arn).await
    }

    async fn stopped_tasks(&self, key: &ServiceKey, task_set_arn: &str) -> Result<u32, CloudError> {
        // ListTasks has a bucket of its own at AWS, as large as the
        // DescribeServices one; sharing that one is the cautious choice.
        self.wait_in(&key.scope, Category::EcsRead).await;
        self.inner.stopped_tasks(key, task_set_arn).await
    }
}

/// ECS's own service deployments: the reads share the DescribeServices
/// bucket, and starting (UpdateService), answering and stopping share the
/// UpdateService one, as the other ECS calls do.
#[async_trait]
impl ServiceDeployments for Budgeted<dyn ServiceDeployments> {
    async fn start(
        &self,
        key: &ServiceKey,
        request: &StartServiceDeployment,
    ) -> Result<Option<String>, CloudError> {
        self.wait_in(&key.scope, Category::EcsMutation).await;
        self.inner.start(key, request).await
    }

    async fn describe(&self, arns: &[String]) -> Result<Vec<ServiceDeployment>, CloudError> {
        // One call per account and region among the ARNs gathered.
        let scopes: std::collections::BTreeSet<Scope> = arns
            .iter()
            .map(|arn| self.budgets.scope_of_arn(arn))
            .collect();
        if scopes.is_empty() {
            self.wait(Category::EcsRead).await;
        }
        for scope in &scopes {
            self.wait_in(scope, Category::EcsRead).await;
        }
        self.inner.describe(arns).await
    }

    async fn ongoing(
        &self,
        key: &ServiceKey,
        since: Option<Timestamp>,
    ) -> Result<Vec<String>, CloudError> {
        self.wait_in(&key.scope, Category::EcsRead).await;
        self.inner.ongoing(key, since).await
    }

    async fn answer(
        &self,
        arn: &str,
        hook_id: &str,
        action: PauseAction,
    ) -> Result<(), CloudError> {
        self.wait_for(arn, Category::EcsMutation).await;
        self.inner.answer(arn, hook_id, action).await
    }

    async fn stop(&self, arn: &str) -> Result<(), CloudError> {
        self.wait_for(arn, Category::EcsMutation).await;
        self.inner.stop(arn).await
    }
}

#[async_trait]
impl LoadBalancer for Budgeted<dyn LoadBalancer> {
    async fn weights(&self, route: &Route) -> Result<Weights, CloudError> {
        self.wait_for(route.arn(), Category::ElbRead).await;
        self.inner.weights(route).await
    }

    async fn weights_of(&self, routes: &[Route]) -> Vec<Result<Weights, CloudError>> {
        for call in crate::cloud::describe_calls(routes) {
            match call.first() {
                Some(&i) => self.wait_for(routes[i].arn(), Category::ElbRead).await,
                None => self.wait(Category::ElbRead).await,
            }
        }
        self.inner.weights_of(routes).await
    }

    async fn set_weights(&self, route: &Route, weights: &Weights) -> Result<(), CloudError> {
        self.wait_for(route.arn(), Category::ElbMutation).await;
        self.inner.set_weights(route, weights).await
    }

    async fn stickiness(&self, route: &Route) -> Result<Stickiness, CloudError> {
        self.wait_for(route.arn(), Category::ElbRead).await;
        self.inner.stickiness(route).await
    }

    async fn set_stickiness(
        &self,
        route: &Route,
        stickiness: Stickiness,
    ) -> Result<(), CloudError> {
        self.wait_for(route.arn(), Category::ElbMutation).await;
        self.inner.set_stickiness(route, stickiness).await
    }

    async fn target_health(&self, target_group: &str) -> Result<TargetCounts, CloudError> {
        self.wait_for(target_group, Category::ElbRead).await;
        self.inner.target_health(target_group).await
    }
}

#[async_trait]
impl DesiredStore for Budgeted<dyn DesiredStore> {
    async fn list(&self) -> Result<Vec<StoredRecord>, CloudError> {
        self.wait(Category::DynamoDb).await;
        self.inner.list().await
    }

    async fn scan(&self) -> Result<Listing, CloudError> {
        self.wait(Category::DynamoDb).await;
        self.inner.scan().await
    }

    async fn write_unkeyed_status(
        &self,
        given: &str,
        expected: u64,
        status: &Status,
    ) -> Result<StatusWrite, CloudError> {
        self.wait(Category::DynamoDb).await;
        self.inner
            .write_unkeyed_status(given, expected, status)
            .await
    }

    async fn get(&self, key: &ServiceKey) -> Result<Option<StoredRecord>, CloudError> {
        self.wait(Category::DynamoDb).await;
        self.inner.get(key).await
    }

    async fn get_item(&self, name: &str) -> Result<Option<FleetItem>, CloudError> {
        self.wait(Category::DynamoDb).await;
        self.inner.get_item(name).await
    }

    async fn write_item(
        &self,
        name: &str,
        changes: &SpecChanges,
        precondition: Precondition,
    ) -> Result<SpecWrite, CloudError> {
        self.wait(Category::DynamoDb).await;
        self.inner.write_item(name, changes, precondition).await
    }

    async fn delete_item(
        &self,
        name: &str,
        precondition: Precondition,
    ) -> Result<SpecWrite, CloudError> {
        self.wait(Category::DynamoDb).await;
        self.inner.delete_item(name, precondition).await
    }

    async fn write_item_status(
        &self,
        name: &str,
        expected: u64,
        status: &serde_json::Value,
    ) -> Result<StatusWrite, CloudError> {
        self.wait(Category::DynamoDb).await;
        self.inner.write_item_status(name, expected, status).await
    }

    async fn write_status(
        &self,
        key: &ServiceKey,
        expected: u64,
        status: &Status,
    ) -> Result<StatusWrite, CloudError> {
        self.wait(Category::DynamoDb).await;
        self.inner.write_status(key, expected, status).await
    }

    async fn write_status_fenced(
        &self,
        key: &ServiceKey,
        expected: u64,
        status: &Status,
        fence: &Fence,
    ) -> Result<StatusWrite, CloudError> {
        self.wait(Category::DynamoDb).await;
        self.inner
            .write_status_fenced(key, expected, status, fence)
            .await
    }

    /// The feed's own polling happens inside the adapter; only opening it
    /// is metered here.
    async fn watch(
        &self,
        changes: mpsc::Sender<Change>,
        positioned: Positioned,
    ) -> Result<(), CloudError> {
        self.wait(Category::DynamoDb).await;
        self.inner.watch(changes, positioned).await
    }

    async fn write_spec(
        &self,
        key: &ServiceKey,
        changes: &SpecChanges,
        precondition: Precondition,
    ) -> Result<SpecWrite, CloudError> {
        self.wait(Category::DynamoDb).await;
        self.inner.write_spec(key, changes, precondition).await
    }
}
