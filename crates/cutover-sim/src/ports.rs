//! The ports, as the controller sees them (the store, ECS's task sets and
//! service deployments, the load balancer): every call is counted, may be
//! slowed or fail as its API group's fault profile says, and then acts on
//! the world at the time it arrives.

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::SimCloud;
use super::arn;
use super::faults::{ApiGroup, Verdict, roll};
use super::in_flight::{ItemRef, plain_write_conflict};
use super::limits::Place;
use super::tasks::{DESCRIBE_TASKS_LIMIT, DesiredStatus, TaskFilter};
use crate::cloud::{
    Change, CloudError, DesiredStore, Ecs, ErrorKind, Fence, FleetItem, Listing, LoadBalancer,
    Positioned, Precondition, ServiceDeployments, SpecChanges, SpecWrite, StatusWrite,
    StoredRecord,
};
use crate::rollout::command::CreateTaskSet;
use crate::rollout::command::StartServiceDeployment;
use crate::rollout::observed::task_set_id;
use crate::rollout::service_deployment::{PauseAction, ServiceDeployment};
use crate::rollout::{
    Route, Scope, ServiceKey, ServiceState, Status, Stickiness, TargetCounts, TaskSet, Weights,
};
use crate::time::Timestamp;

/// The place a scope's calls are metered in.
fn place(scope: &Scope) -> Place {
    let (region, account) = arn::place(scope);
    (region.to_string(), account.to_string())
}

impl SimCloud {
    /// Counts the call, draws its fate and waits out its latency: a call
    /// in the controller's own account and region.
    pub(super) async fn call(
        &self,
        group: ApiGroup,
        op: &'static str,
    ) -> Result<Verdict, CloudError> {
        self.call_in(group, &Scope::Home, op).await
    }

    /// A call for a service in `scope`, metered by that account and region.
    pub(super) async fn call_in(
        &self,
        group: ApiGroup,
        scope: &Scope,
        op: &'static str,
    ) -> Result<Verdict, CloudError> {
        self.call_drawing(group, place(scope), op, false).await
    }

    /// A call on a resource named by its ARN, metered by the ARN's account
    /// and region.
    pub(super) async fn call_on(
        &self,
        group: ApiGroup,
        arn: &str,
        op: &'static str,
    ) -> Result<Verdict, CloudError> {
        let (region, account) = arn::place_of(arn);
        let at = (region.to_string(), account.to_string());
        self.call_drawing(group, at, op, false).await
    }

    /// A call on a fleet item, with its faults drawn apart (`fleet_rng`).
    async fn fleet_call(&self, op: &'static str) -> Result<Verdict, CloudError> {
        self.call_drawing(ApiGroup::Store, place(&Scope::Home), op, true)
            .await
    }

    async fn call_drawing(
        &self,
        group: ApiGroup,
        at: Place,
        op: &'static str,
        fleet: bool,
    ) -> Result<Verdict, CloudError> {
        let (verdict, latency, request_id) = {
            let mut w = self.world();
            *w.calls.entry(op).or_default() += 1;
            let profile = w.faults.get(group).clone();
            let (verdict, latency) = if fleet {
                roll(&mut w.fleet_rng, &profile)
            } else {
                roll(&mut w.rng, &profile)
            };
            let now = w.now;
            let verdict = if w.limits.admit(group, &at, op, now) {
                verdict
            } else {
                Verdict::Fail(ErrorKind::Throttled)
            };
            let request_id = match verdict {
                Verdict::Proceed => None,
                _ if fleet => Some(format!("fleet-{}", w.calls.get(op).copied().unwrap_or(0))),
                _ => Some(w.hex_id(16)),
            };
            (verdict, latency, request_id)
        };
        if !latency.is_zero() {
            self.inner.clock.sleep(latency).await;
        }
        let fail = |kind: ErrorKind, message: &str| {
            let mut e = CloudError::new(kind, op, message);
            e.request_id = request_id.clone();
            e
        };
        match verdict {
            Verdict::Fail(ErrorKind::Throttled) => {
                self.world().log(format!("{op} throttled"));
                Err(fail(ErrorKind::Throttled, "Rate exceeded"))
            }
            Verdict::Fail(kind) => {
                self.world()
                    .log(format!("{op} failed with a simulated 5xx"));
                Err(fail(
                    kind,
                    "We encountered an internal error. Please try again.",
                ))
            }
            Verdict::LoseReply => Ok(Verdict::LoseReply),
            Verdict::Proceed => Ok(Verdict::Proceed),
        }
    }

    /// A mutation's reply, lost after the change was made if the verdict says so.
    pub(super) fn reply<T>(
        &self,
        op: &'static str,
        verdict: Verdict,
        result: Result<T, CloudError>,
    ) -> Result<T, CloudError> {
        match (verdict, result) {
            (Verdict::LoseReply, Ok(_)) => {
                self.world()
                    .log(format!("{op} applied, but its reply was lost"));
                Err(CloudError::new(
                    ErrorKind::Transient,
                    op,
                    "connection reset after the request was sent",
                ))
            }
            (_, result) => result,
        }
    }
}

#[async_trait]
impl DesiredStore for SimCloud {
    async fn list(&self) -> Result<Vec<StoredRecord>, CloudError> {
        self.call(ApiGroup::Store, "dynamodb:Scan").await?;
        Ok(self.world().scanned().records)
    }

    async fn get(&self, key: &ServiceKey) -> Result<Option<StoredRecord>, CloudError> {
        self.call(ApiGroup::Store, "dynamodb:GetItem").await?;
        Ok(self.world().records.get(key))
    }

    async fn scan(&self) -> Result<Listing, CloudError> {
        self.call(ApiGroup::Store, "dynamodb:Scan").await?;
        Ok(self.world().scanned())
    }

    async fn get_item(&self, name: &str) -> Result<Option<FleetItem>, CloudError> {
        self.fleet_call("dynamodb:GetItem").await?;
        Ok(self.world().fleet_item(name))
    }

    async fn write_item(
        &self,
        name: &str,
        changes: &SpecChanges,
        precondition: Precondition,
    ) -> Result<SpecWrite, CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        let verdict = self.fleet_call(OP).await?;
        let result = self.world().write_item(name, changes, &precondition);
        self.reply(OP, verdict, result)
    }

    async fn delete_item(
        &self,
        name: &str,
        precondition: Precondition,
    ) -> Result<SpecWrite, CloudError> {
        const OP: &str = "dynamodb:DeleteItem";
        let verdict = self.fleet_call(OP).await?;
        let result = self.world().delete_item(name, &precondition);
        self.reply(OP, verdict, Ok(result))
    }

    async fn write_item_status(
        &self,
        name: &str,
        expected: u64,
        status: &serde_json::Value,
    ) -> Result<StatusWrite, CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        let verdict = self.fleet_call(OP).await?;
        let result = self.world().write_item_status(name, expected, status);
        self.reply(OP, verdict, result)
    }

    async fn write_unkeyed_status(
        &self,
        given: &str,
        expected: u64,
        status: &Status,
    ) -> Result<StatusWrite, CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        let verdict = self.fleet_call(OP).await?;
        let result = self.world().write_unkeyed_status(given, expected, status);
        self.reply(OP, verdict, result)
    }

    async fn write_status(
        &self,
        key: &ServiceKey,
        expected: u64,
        status: &Status,
    ) -> Result<StatusWrite, CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        let flight = self.arrive(vec![ItemRef::record(key)], false);
        let verdict = self.fleet_call(OP).await?;
        if flight.conflicted() {
            return Err(plain_write_conflict(OP));
        }
        let result = self.world().write_status(key, expected, status);
        self.reply(OP, verdict, result)
    }

    async fn write_status_fenced(
        &self,
        key: &ServiceKey,
        expected: u64,
        status: &Status,
        fence: &Fence,
    ) -> Result<StatusWrite, CloudError> {
        self.fenced_status_write(key, expected, status, fence).await
    }

    async fn write_spec(
        &self,
        key: &ServiceKey,
        changes: &SpecChanges,
        precondition: Precondition,
    ) -> Result<SpecWrite, CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        let flight = self.arrive(vec![ItemRef::record(key)], false);
        let verdict = self.fleet_call(OP).await?;
        if flight.conflicted() {
            return Err(plain_write_conflict(OP));
        }
        let result = self.world().write_spec(key, changes, &precondition);
        self.inner.changes.notify_waiters();
        self.reply(OP, verdict, result)
    }

    async fn watch(
        &self,
        changes: mpsc::Sender<Change>,
        positioned: Positioned,
    ) -> Result<(), CloudError> {
        self.call(ApiGroup::Store, "dynamodb:DescribeStream")
            .await?;
        self.run_feed(changes, positioned).await
    }
}

#[async_trait]
impl Ecs for SimCloud {
    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<(String, ServiceState)>, CloudError> {
        self.call(ApiGroup::EcsRead, "ecs:DescribeServices").await?;
        self.world().describe_services(cluster, services)
    }

    /// Every scope is simulated: a cluster of another account or region is
    /// described there, and metered there.
    async fn describe_in(
        &self,
        scope: &Scope,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<(String, ServiceState)>, CloudError> {
        self.call_in(ApiGroup::EcsRead, scope, "ecs:DescribeServices")
            .await?;
        self.world().describe_services_in(scope, cluster, services)
    }

    async fn create_task_set(
        &self,
        key: &ServiceKey,
        request: &CreateTaskSet,
    ) -> Result<TaskSet, CloudError> {
        const OP: &str = "ecs:CreateTaskSet";
        self.world()
            .check_halted(|| format!("a new candidate for {key}"));
        let verdict = self.call_in(ApiGroup::EcsMutation, &key.scope, OP).await?;
        let result = self.world().create_task_set(key, request);
        self.reply(OP, verdict, result)
    }

    async fn set_primary(&self, key: &ServiceKey, task_set_arn: &str) -> Result<(), CloudError> {
        const OP: &str = "ecs:UpdateServicePrimaryTaskSet";
        let verdict = self.call_in(ApiGroup::EcsMutation, &key.scope, OP).await?;
        let result = self.world().set_primary(key, task_set_arn);
        self.reply(OP, verdict, result)
    }

    async fn delete_task_set(
        &self,
        key: &ServiceKey,
        task_set_arn: &str,
    ) -> Result<(), CloudError> {
        const OP: &str = "ecs:DeleteTaskSet";
        let verdict = self.call_in(ApiGroup::EcsMutation, &key.scope, OP).await?;
        let result = self.world().delete_task_set(key, task_set_arn);
        self.reply(OP, verdict, result)
    }

    async fn stopped_tasks(&self, key: &ServiceKey, task_set_arn: &str) -> Result<u32, CloudError> {
        // As the ECS adapter does: `startedBy` cannot be combined with
        // `desiredStatus = STOPPED`, so list the service's stopped tasks
        // and keep those the task set started.
        let filter = TaskFilter {
            service_name: Some(key.service.clone()),
            started_by: None,
            desired_status: Some(DesiredStatus::Stopped),
        };
        self.call_in(ApiGroup::EcsRead, &key.scope, "ecs:ListTasks")
            .await?;
        let stopped = self
            .world()
            .list_tasks_in(&key.scope, &key.cluster, &filter)?;
        let id = task_set_id(task_set_arn);
        let mut count = 0u32;
        for chunk in stopped.chunks(DESCRIBE_TASKS_LIMIT) {
            self.call_in(ApiGroup::EcsRead, &key.scope, "ecs:DescribeTasks")
                .await?;
            let tasks = self
                .world()
                .describe_tasks_in(&key.scope, &key.cluster, chunk)?;
            count += tasks
                .iter()
                .filter(|t| {
                    t.started_by == id
                        && crate::cloud::stopped::counts_as_failure(
                            t.stop_code.as_deref(),
                            t.stopped_reason.as_deref(),
                        )
                })
                .count() as u32;
        }
        Ok(count)
    }
}

#[async_trait]
impl LoadBalancer for SimCloud {
    async fn weights(&self, route: &Route) -> Result<Weights, CloudError> {
        let op = match route {
            Route::Listener(_) => "elbv2:DescribeListeners",
            Route::Rule(_) => "elbv2:DescribeRules",
        };
        self.call_on(ApiGroup::ElbRead, route.arn(), op).await?;
        self.world().weights(route)
    }

    async fn weights_of(&self, routes: &[Route]) -> Vec<Result<Weights, CloudError>> {
        let mut answers = Vec::with_capacity(routes.len());
        for chunk in crate::cloud::describe_calls(routes) {
            let op = match chunk.first().map(|&i| &routes[i]) {
                Some(Route::Rule(_)) => "elbv2:DescribeRules",
                _ => "elbv2:DescribeListeners",
            };
            // One call reaches one account and region (`describe_calls`
            // groups them so).
            let at = chunk.first().map_or("", |&i| routes[i].arn());
            let call = self.call_on(ApiGroup::ElbRead, at, op).await;
            for i in chunk {
                let answer = match &call {
                    Ok(_) => self.world().weights(&routes[i]),
                    Err(e) => Err(e.clone()),
                };
                answers.push((i, answer));
            }
        }
        answers.sort_by_key(|(i, _)| *i);
        answers.into_iter().map(|(_, answer)| answer).collect()
    }

    async fn set_weights(&self, route: &Route, weights: &Weights) -> Result<(), CloudError> {
        let op = match route {
            Route::Listener(_) => "elbv2:ModifyListener",
            Route::Rule(_) => "elbv2:ModifyRule",
        };
        let verdict = self.call_on(ApiGroup::ElbMutation, route.arn(), op).await?;
        let result = self.world().set_weights(route, weights);
        self.reply(op, verdict, result)
    }

    async fn stickiness(&self, route: &Route) -> Result<Stickiness, CloudError> {
        let op = match route {
            Route::Listener(_) => "elbv2:DescribeListeners",
            Route::Rule(_) => "elbv2:DescribeRules",
        };
        self.call_on(ApiGroup::ElbRead, route.arn(), op).await?;
        self.world().stickiness(route)
    }

    async fn set_stickiness(
        &self,
        route: &Route,
        stickiness: Stickiness,
    ) -> Result<(), CloudError> {
        let op = match route {
            Route::Listener(_) => "elbv2:ModifyListener",
            Route::Rule(_) => "elbv2:ModifyRule",
        };
        let verdict = self.call_on(ApiGroup::ElbMutation, route.arn(), op).await?;
        let result = self.world().set_stickiness(route, stickiness);
        self.reply(op, verdict, result)
    }

    async fn target_health(&self, target_group: &str) -> Result<TargetCounts, CloudError> {
        self.call_on(
            ApiGroup::ElbRead,
            target_group,
            "elbv2:DescribeTargetHealth",
        )
        .await?;
        let mut w = self.world();
        let counts = w.target_counts(target_group)?;
        w.health_read(target_group, counts.healthy);
        Ok(counts)
    }
}

#[async_trait]
impl ServiceDeployments for SimCloud {
    async fn start(
        &self,
        key: &ServiceKey,
        request: &StartServiceDeployment,
    ) -> Result<Option<String>, CloudError> {
        const OP: &str = "ecs:UpdateService";
        self.world()
            .check_halted(|| format!("a service deployment of {key}"));
        let verdict = self.call_in(ApiGroup::EcsMutation, &key.scope, OP).await?;
        let result = self.world().start_deployment(key, request).map(Some);
        self.reply(OP, verdict, result)
    }

    async fn describe(&self, arns: &[String]) -> Result<Vec<ServiceDeployment>, CloudError> {
        // One call reaches one account and region: the first ARN's.
        let at = arns.first().map_or("", String::as_str);
        self.call_on(ApiGroup::EcsRead, at, "ecs:DescribeServiceDeployments")
            .await?;
        self.world().describe_deployments(arns)
    }

    async fn ongoing(
        &self,
        key: &ServiceKey,
        since: Option<Timestamp>,
    ) -> Result<Vec<String>, CloudError> {
        self.call_in(ApiGroup::EcsRead, &key.scope, "ecs:ListServiceDeployments")
            .await?;
        self.world().ongoing_deployments(key, since)
    }

    async fn answer(
        &self,
        arn: &str,
        hook_id: &str,
        action: PauseAction,
    ) -> Result<(), CloudError> {
        const OP: &str = "ecs:ContinueServiceDeployment";
        if action == PauseAction::Continue {
            self.world()
                .check_halted(|| format!("CONTINUE to {arn}'s pause {hook_id}"));
        }
        let verdict = self.call_on(ApiGroup::EcsMutation, arn, OP).await?;
        let result = self.world().answer_pause(arn, hook_id, action);
        self.reply(OP, verdict, result)
    }

    async fn stop(&self, arn: &str) -> Result<(), CloudError> {
        const OP: &str = "ecs:StopServiceDeployment";
        let verdict = self.call_on(ApiGroup::EcsMutation, arn, OP).await?;
        let result = self.world().stop_deployment(arn);
        self.reply(OP, verdict, result)
    }
}
