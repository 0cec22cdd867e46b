//! ECS services under the EXTERNAL deployment controller, through the SDK.
//!
//! Reading is DescribeServices alone: task sets come inline, ten services a
//! call, so a sweep of the fleet costs a tenth of a call per service. The
//! other calls happen only when the controller changes something. Services
//! on the ECS deployment controller add one DescribeTaskDefinition per task
//! definition never seen before, for the images it runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{DesiredStatus, LoadBalancer, Scale, ScaleUnit, TaskSet as SdkTaskSet};

use super::accounts::{Accounts, tag};
use super::calls::{ApiCalls, ecs_client};
use super::ecs_convert::{DESCRIBE_LIMIT, Launching, Subject, describe_result, task_set};
use super::ecs_counts::CountsProbe;
use super::ecs_image::task_definition_with_image;
use super::error::{code, ecs_error};
use crate::cloud::{CloudError, Ecs, ErrorKind};
use crate::rollout::command::CreateTaskSet;
use crate::rollout::observed::task_set_id;
use crate::rollout::{Scope, ServiceKey, ServiceState, TaskSet, Version};

/// DescribeTasks takes at most this many tasks per call.
const DESCRIBE_TASKS_LIMIT: usize = 100;

/// Task definitions whose images are remembered. A fleet runs far fewer;
/// past this many (years of releases) the cache starts again.
const IMAGES_CACHED: usize = 4_096;

/// Container name to image.
pub(crate) type Images = BTreeMap<String, String>;

/// The images of each task definition read, by the name it was asked by
/// (an ARN, as ECS reports them). A revision never changes once registered
/// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definitions.html),
/// so each is read once and a steady fleet costs no call.
#[derive(Clone, Debug, Default)]
pub(crate) struct TaskDefinitionImages {
    cache: Arc<Mutex<HashMap<String, Images>>>,
}

impl TaskDefinitionImages {
    /// Each container's image in `task_definition`, from the cache or
    /// DescribeTaskDefinition. `None` when it cannot be read, logged at
    /// debug; nothing is remembered then, so the next call asks again.
    pub(crate) async fn read(&self, client: &Client, task_definition: &str) -> Option<Images> {
        if let Some(images) = self.cached().get(task_definition) {
            return Some(images.clone());
        }
        let out = client
            .describe_task_definition()
            .task_definition(task_definition)
            .send()
            .await;
        let td = match out {
            Ok(out) => out.task_definition?,
            Err(e) => {
                let subject = Subject {
                    task_definition: Some(task_definition),
                    ..Subject::default()
                };
                let e = ecs_error("ecs:DescribeTaskDefinition", &subject, e);
                tracing::debug!(task_definition, error = %e, "cannot read the task definition's images");
                return None;
            }
        };
        let images: Images = td
            .container_definitions()
            .iter()
            .filter_map(|c| Some((c.name()?.to_string(), c.image()?.to_string())))
            .collect();
        let mut cache = self.cached();
        if cache.len() >= IMAGES_CACHED {
            cache.clear();
        }
        cache.insert(task_definition.to_string(), images.clone());
        Some(images)
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, HashMap<String, Images>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Clone, Debug)]
pub struct EcsAdapter {
    client: Client,
    /// The clients of other accounts and regions; without it, only home.
    accounts: Option<Arc<Accounts>>,
    /// The images of each task definition a service on the ECS deployment
    /// controller ran.
    images: TaskDefinitionImages,
}

impl EcsAdapter {
    /// Every request attempt is counted in `calls`.
    pub fn new(sdk: &SdkConfig, calls: &ApiCalls) -> Self {
        Self::from_client(ecs_client(sdk, calls))
    }

    pub fn from_client(client: Client) -> Self {
        EcsAdapter {
            client,
            accounts: None,
            images: TaskDefinitionImages::default(),
        }
    }

    /// Reaches services in every account and region `accounts` knows,
    /// through its clients; home through its home clients.
    pub fn scoped(accounts: Arc<Accounts>) -> Self {
        EcsAdapter {
            client: accounts.home().ecs.clone(),
            accounts: Some(accounts),
            images: TaskDefinitionImages::default(),
        }
    }

    /// The client for `scope`, and what its errors are tagged with.
    async fn at(&self, scope: &Scope) -> Result<(Client, String), CloudError> {
        match (&self.accounts, scope) {
            (_, Scope::Home) => Ok((self.client.clone(), String::new())),
            (Some(accounts), scope) => {
                let clients = accounts.clients(scope).await?;
                Ok((clients.ecs.clone(), clients.reached.clone()))
            }
            (None, scope) => Err(CloudError::new(
                ErrorKind::Invalid,
                "ecs:DescribeServices",
                format!(
                    "this ECS adapter reaches only the controller's own account and region, not {}",
                    scope.to_string().trim_end_matches(':')
                ),
            )),
        }
    }

    /// Each container's image in `task_definition`. Empty when it cannot
    /// be read: the service is still described, and a release by image then
    /// reads as not yet running (the read is tried again next time).
    async fn images(&self, client: &Client, task_definition: &str) -> Images {
        self.images
            .read(client, task_definition)
            .await
            .unwrap_or_default()
    }

    /// The task set to copy placement and, for an image release, the task
    /// definition from. One DescribeTaskSets per rollout, not per sweep.
    async fn template(
        &self,
        client: &Client,
        key: &ServiceKey,
        arn: &str,
    ) -> Result<SdkTaskSet, CloudError> {
        const OP: &str = "ecs:DescribeTaskSets";
        let subject = Subject {
            task_set: Some(arn),
            ..Subject::of(key)
        };
        let out = client
            .describe_task_sets()
            .cluster(&key.cluster)
            .service(&key.service)
            .task_sets(arn)
            .send()
            .await
            .map_err(|e| ecs_error(OP, &subject, e))?;
        out.task_sets
            .unwrap_or_default()
            .into_iter()
            .find(|t| t.task_set_arn() == Some(arn) || t.id().is_some_and(|id| arn.ends_with(id)))
            .ok_or_else(|| CloudError::not_found(OP, format!("task set {arn}")))
    }

    /// What an image release builds on without a template: the task
    /// definition the service was created with, if any.
    async fn service_task_definition(
        &self,
        client: &Client,
        key: &ServiceKey,
    ) -> Result<String, CloudError> {
        const OP: &str = "ecs:DescribeServices";
        let out = client
            .describe_services()
            .cluster(&key.cluster)
            .services(&key.service)
            .send()
            .await
            .map_err(|e| ecs_error(OP, &Subject::of(key), e))?;
        let service = out
            .services()
            .iter()
            .find(|s| {
                s.service_name() == Some(key.service.as_str()) && s.status() == Some("ACTIVE")
            })
            .ok_or_else(|| CloudError::not_found(OP, format!("service {key}")))?;
        service.task_definition().map(str::to_string).ok_or_else(|| {
            CloudError::new(
                ErrorKind::Invalid,
                OP,
                format!(
                    "service {key} has no task set and no task definition to put the image into: \
                     give `task_definition` for its first release"
                ),
            )
        })
    }
}

#[async_trait]
impl Ecs for EcsAdapter {
    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<(String, ServiceState)>, CloudError> {
        self.describe_in(&Scope::Home, cluster, services).await
    }

    async fn describe_in(
        &self,
        scope: &Scope,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<(String, ServiceState)>, CloudError> {
        let (client, reached) = self.at(scope).await?;
        self.describe_with(&client, cluster, services)
            .await
            .map_err(|e| tag(e, &reached))
    }

    async fn create_task_set(
        &self,
        key: &ServiceKey,
        request: &CreateTaskSet,
    ) -> Result<TaskSet, CloudError> {
        let (client, reached) = self.at(&key.scope).await?;
        self.create_with(&client, key, request)
            .await
            .map_err(|e| tag(e, &reached))
    }

    async fn set_primary(&self, key: &ServiceKey, task_set_arn: &str) -> Result<(), CloudError> {
        let (client, reached) = self.at(&key.scope).await?;
        self.set_primary_with(&client, key, task_set_arn)
            .await
            .map_err(|e| tag(e, &reached))
    }

    async fn delete_task_set(
        &self,
        key: &ServiceKey,
        task_set_arn: &str,
    ) -> Result<(), CloudError> {
        let (client, reached) = self.at(&key.scope).await?;
        self.delete_with(&client, key, task_set_arn)
            .await
            .map_err(|e| tag(e, &reached))
    }

    async fn stopped_tasks(&self, key: &ServiceKey, task_set_arn: &str) -> Result<u32, CloudError> {
        let (client, reached) = self.at(&key.scope).await?;
        self.stopped_with(&client, key, task_set_arn)
            .await
            .map_err(|e| tag(e, &reached))
    }
}

impl EcsAdapter {
    async fn describe_with(
        &self,
        client: &Client,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<(String, ServiceState)>, CloudError> {
        const OP: &str = "ecs:DescribeServices";
        let subject = Subject {
            cluster,
            ..Subject::default()
        };
        let mut found = Vec::with_capacity(services.len());
        for batch in services.chunks(DESCRIBE_LIMIT) {
            let probe = CountsProbe::default();
            let out = client
                .describe_services()
                .cluster(cluster)
                .set_services(Some(batch.to_vec()))
                .customize()
                .interceptor(probe.clone())
                .send()
                .await;
            let out = match out {
                Ok(out) => out,
                // The whole call fails when the cluster does not exist
                // (DescribeServices API reference, Errors:
                // https://docs.aws.amazon.com/sdkfornet/v3/apidocs/items/ECS/MIECSDescribeServicesDescribeServicesRequest.html);
                // that is an answer about every service asked for.
                Err(e) if code(&e) == Some("ClusterNotFoundException") => {
                    found.extend(
                        batch
                            .iter()
                            .map(|name| (name.clone(), ServiceState::ClusterMissing)),
                    );
                    continue;
                }
                Err(e) => return Err(ecs_error(OP, &subject, e)),
            };
            let states = describe_result(batch, out.services(), out.failures(), &probe.reports())
                .map_err(|m| CloudError::new(ErrorKind::Other, OP, m))?;
            found.extend(states);
        }
        // What a service on the ECS controller runs, by container, for
        // records that release an image.
        for (_, state) in &mut found {
            if let ServiceState::Found(service) = state
                && let Some(native) = &mut service.native
                && !native.task_definition.is_empty()
            {
                native.images = self.images(client, &native.task_definition).await;
            }
        }
        Ok(found)
    }

    async fn create_with(
        &self,
        client: &Client,
        key: &ServiceKey,
        request: &CreateTaskSet,
    ) -> Result<TaskSet, CloudError> {
        const OP: &str = "ecs:CreateTaskSet";
        let invalid = |m: String| CloudError::new(ErrorKind::Invalid, OP, m);
        let template = match &request.template {
            Some(arn) => Some(self.template(client, key, arn).await?),
            None => None,
        };
        let launching = match &template {
            Some(t) => Launching::copy_of(t),
            None => Launching::from_placement(&request.placement).map_err(invalid)?,
        };
        let task_definition = match &request.version {
            Version::TaskDefinition(td) => td.clone(),
            Version::Image { image, container } => {
                let base = match template.as_ref().and_then(|t| t.task_definition()) {
                    Some(td) => td.to_string(),
                    None => self.service_task_definition(client, key).await?,
                };
                task_definition_with_image(client, &base, container, image).await?
            }
        };
        let subject = Subject {
            task_definition: Some(&task_definition),
            target_group: Some(&request.target_group),
            ..Subject::of(key)
        };
        let load_balancer = LoadBalancer::builder()
            .target_group_arn(&request.target_group)
            .container_name(&request.container)
            .container_port(i32::from(request.container_port))
            .build();
        let scale = Scale::builder()
            .value(request.scale_percent)
            .unit(ScaleUnit::Percent)
            .build();
        let probe = CountsProbe::default();
        let out = client
            .create_task_set()
            .cluster(&key.cluster)
            .service(&key.service)
            .task_definition(&task_definition)
            .external_id(&request.external_id)
            .client_token(&request.client_token)
            .load_balancers(load_balancer)
            .scale(scale)
            .set_network_configuration(launching.network)
            .set_launch_type(launching.launch_type)
            .set_capacity_provider_strategy(launching.capacity_providers)
            .set_platform_version(launching.platform_version)
            .set_service_registries(launching.service_registries)
            .customize()
            .interceptor(probe.clone())
            .send()
            .await
            .map_err(|e| ecs_error(OP, &subject, e))?;
        let created = out.task_set.ok_or_else(|| {
            CloudError::new(ErrorKind::Other, OP, "ECS answered without the task set")
        })?;
        let reports = probe.reports();
        task_set(&created, reports.for_task_set(created.task_set_arn()))
            .map_err(|m| CloudError::new(ErrorKind::Other, OP, m))
    }

    async fn set_primary_with(
        &self,
        client: &Client,
        key: &ServiceKey,
        task_set_arn: &str,
    ) -> Result<(), CloudError> {
        const OP: &str = "ecs:UpdateServicePrimaryTaskSet";
        let subject = Subject {
            task_set: Some(task_set_arn),
            ..Subject::of(key)
        };
        client
            .update_service_primary_task_set()
            .cluster(&key.cluster)
            .service(&key.service)
            .primary_task_set(task_set_arn)
            .send()
            .await
            .map_err(|e| ecs_error(OP, &subject, e))?;
        Ok(())
    }

    async fn delete_with(
        &self,
        client: &Client,
        key: &ServiceKey,
        task_set_arn: &str,
    ) -> Result<(), CloudError> {
        const OP: &str = "ecs:DeleteTaskSet";
        let subject = Subject {
            task_set: Some(task_set_arn),
            ..Subject::of(key)
        };
        // Deleted task sets still have tasks; without force ECS refuses
        // until they are scaled to 0, which the controller never does.
        client
            .delete_task_set()
            .cluster(&key.cluster)
            .service(&key.service)
            .task_set(task_set_arn)
            .force(true)
            .send()
            .await
            .map_err(|e| ecs_error(OP, &subject, e))?;
        Ok(())
    }

    async fn stopped_with(
        &self,
        client: &Client,
        key: &ServiceKey,
        task_set_arn: &str,
    ) -> Result<u32, CloudError> {
        const LIST: &str = "ecs:ListTasks";
        const DESCRIBE: &str = "ecs:DescribeTasks";
        let subject = Subject {
            task_set: Some(task_set_arn),
            ..Subject::of(key)
        };
        // A task set's tasks carry `startedBy` = the task set's id
        // (`ecs-svc/…`, https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html),
        // but ListTasks takes `startedBy` only as its sole filter and then
        // lists RUNNING tasks alone
        // (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html).
        // So list the service's stopped tasks, and count those the task set
        // started, and that failed, from what DescribeTasks says of them.
        let id = task_set_id(task_set_arn);
        let mut pages = client
            .list_tasks()
            .cluster(&key.cluster)
            .service_name(&key.service)
            .desired_status(DesiredStatus::Stopped)
            .into_paginator()
            .send();
        let mut stopped_arns = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ecs_error(LIST, &subject, e))?;
            stopped_arns.extend(page.task_arns.unwrap_or_default());
        }
        let mut stopped = 0u32;
        for chunk in stopped_arns.chunks(DESCRIBE_TASKS_LIMIT) {
            let out = client
                .describe_tasks()
                .cluster(&key.cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| ecs_error(DESCRIBE, &subject, e))?;
            stopped += out
                .tasks()
                .iter()
                .filter(|t| {
                    t.started_by() == Some(id)
                        && crate::cloud::stopped::counts_as_failure(
                            t.stop_code().map(|c| c.as_str()),
                            t.stopped_reason(),
                        )
                })
                .count() as u32;
        }
        Ok(stopped)
    }
}

#[cfg(test)]
#[path = "ecs_tests.rs"]
mod tests;
