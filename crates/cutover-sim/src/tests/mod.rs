//! Tests of the simulated cloud through the ports and the state they lead to.

mod alb;
mod churn;
mod conflicts;
mod controller_answers;
mod controller_first_command;
mod ecs;
mod faults;
mod invariants;
mod native;
mod scopes;
mod sticky;
mod store;
mod stream_readers;
mod task_sets;
mod tokens;
mod weights_batch;
mod whole_item;
mod writes;

use std::sync::Arc;
use std::time::Duration;

use super::{ServiceArns, ServiceSetup, SimCloud};
use crate::cloud::{Clock, Ecs, LoadBalancer, ScaledClock};
use crate::rollout::command::CreateTaskSet;
use crate::rollout::spec::{Network, Placement};
use crate::rollout::{EcsService, ServiceKey, ServiceState, TaskSet, Version};
use crate::time::Timestamp;

/// Where the tests' simulated clocks start.
pub(super) const EPOCH: Timestamp = Timestamp(1_700_000_000_000);

pub(super) fn clock() -> Arc<dyn Clock> {
    Arc::new(ScaledClock::new(EPOCH, 1.0))
}

pub(super) fn sim(seed: u64) -> SimCloud {
    SimCloud::builder(seed).clock(clock()).build()
}

pub(super) fn key() -> ServiceKey {
    ServiceKey::new("prod", "web")
}

pub(super) fn web(sim: &SimCloud) -> ServiceArns {
    sim.add_service(ServiceSetup::new(key()))
        .expect("a new service can be added")
}

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A request for a green task set running `version` at full scale.
pub(super) fn request(arns: &ServiceArns, version: Version, token: &str) -> CreateTaskSet {
    CreateTaskSet {
        version,
        external_id: format!("cutover:{token}"),
        client_token: token.to_string(),
        target_group: arns.green().to_string(),
        container: arns.container.clone(),
        container_port: arns.container_port,
        scale_percent: 100.0,
        template: arns.initial_task_set.clone(),
        placement: Placement {
            network: Some(Network {
                subnets: vec!["subnet-1".into()],
                security_groups: vec![],
                assign_public_ip: false,
            }),
            launch: None,
        },
    }
}

pub(super) fn td(s: &str) -> Version {
    Version::TaskDefinition(s.to_string())
}

pub(super) async fn service(sim: &SimCloud, key: &ServiceKey) -> EcsService {
    let found = sim
        .describe_services(&key.cluster, std::slice::from_ref(&key.service))
        .await
        .expect("describe succeeds without faults");
    match found.into_iter().next() {
        Some((_, ServiceState::Found(s))) => s,
        other => panic!("service {key} not found: {other:?}"),
    }
}

pub(super) async fn task_set(sim: &SimCloud, key: &ServiceKey, arn: &str) -> TaskSet {
    service(sim, key)
        .await
        .by_arn(arn)
        .cloned()
        .unwrap_or_else(|| panic!("task set {arn} not found"))
}

/// A green task set for `version`, created and given time to become healthy.
pub(super) async fn healthy_green(sim: &SimCloud, arns: &ServiceArns, version: &str) -> TaskSet {
    let created = sim
        .create_task_set(&arns.key, &request(arns, td(version), "green"))
        .await
        .expect("create succeeds");
    sim.run_for(secs(60)).await;
    let health = sim
        .target_health(arns.green())
        .await
        .expect("target group exists");
    assert_eq!(health.healthy, 2, "green should be healthy by now");
    created
}
