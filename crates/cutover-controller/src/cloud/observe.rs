//! Reading one service's live state through the ports: the service first,
//! then only the load balancer reads asked for. The controller's passes and
//! the CLI's dry run both read this way, so a plan sees what a pass would.

use std::collections::BTreeMap;

use super::{Checks, CloudError, CodeDeploy, Ecs, LoadBalancer, ServiceDeployments};
use crate::rollout::deployment::{DeploymentRead, DeploymentStatus, DeploymentView};
use crate::rollout::{Observed, Reads, ServiceKey, ServiceState};

/// `reads` says, from the described service, what to read from the load
/// balancer (normally `rollout::reads` with the record and status).
pub async fn observe(
    ecs: &dyn Ecs,
    lb: &dyn LoadBalancer,
    checks: &dyn Checks,
    codedeploy: &dyn CodeDeploy,
    service_deployments: &dyn ServiceDeployments,
    key: &ServiceKey,
    reads: impl FnOnce(&ServiceState) -> Reads + Send,
) -> Result<Observed, CloudError> {
    let service = describe_service(ecs, key).await?;
    let reads = reads(&service);
    let production = match &reads.production {
        Some(route) => Some(lb.weights(route).await?),
        None => None,
    };
    let test = match &reads.test {
        Some(route) => Some(lb.weights(route).await?),
        None => None,
    };
    let production_stickiness = match (&reads.production, reads.stickiness) {
        (Some(route), true) => Some(lb.stickiness(route).await?),
        _ => None,
    };
    let mut targets = BTreeMap::new();
    for tg in &reads.target_health {
        if !targets.contains_key(tg) {
            targets.insert(tg.clone(), lb.target_health(tg).await?);
        }
    }
    let mut gates = BTreeMap::new();
    for probe in &reads.probes {
        gates.insert(probe.name().to_string(), checks.read(key, probe).await);
    }
    let failed_tasks = match &reads.failed_tasks {
        Some(task_set) => Some(ecs.stopped_tasks(key, task_set).await?),
        None => None,
    };
    let deployment = match &reads.deployment {
        Some(read) => Some(deployment(codedeploy, key, read).await?),
        None => None,
    };
    let service_deployment = match &reads.service_deployment {
        Some(read) => Some(super::service_deployments::read(service_deployments, key, read).await?),
        None => None,
    };
    Ok(Observed {
        service: Some(service),
        service_deployment,
        production,
        test,
        targets,
        gates,
        failed_tasks,
        deployment,
        production_stickiness,
        // The fleet's, not the service's: the pass adds it.
        halt: None,
        // The replica's count of rollouts, not the service's: the pass adds it.
        admission: None,
    })
}

/// The deployment asked for: the rollout's own, or the group's in flight.
pub async fn deployment(
    codedeploy: &dyn CodeDeploy,
    key: &ServiceKey,
    read: &DeploymentRead,
) -> Result<DeploymentView, CloudError> {
    let (ids, lifecycle) = match read {
        DeploymentRead::Get { id, lifecycle } => (vec![id.clone()], *lifecycle),
        DeploymentRead::InFlight {
            application,
            deployment_group,
            since,
        } => {
            let ids = codedeploy
                .list(application, deployment_group, *since)
                .await?;
            if ids.is_empty() {
                return Ok(DeploymentView::Absent);
            }
            (ids, false)
        }
    };
    let mut found = Vec::new();
    for chunk in ids.chunks(super::codedeploy::BATCH_LIMIT) {
        found.extend(codedeploy.batch_get(chunk).await?);
    }
    // CodeDeploy runs one deployment per group; should it ever list more,
    // the newest is the one that decides.
    found.sort_by_key(|d| std::cmp::Reverse(d.created_at));
    let Some(mut dep) = found.into_iter().next() else {
        return Ok(DeploymentView::Absent);
    };
    if lifecycle && dep.status == DeploymentStatus::InProgress {
        let (events, traffic) = codedeploy.lifecycle(&dep.id, key).await?;
        dep.lifecycle = events;
        dep.traffic = traffic;
    }
    Ok(DeploymentView::Found(dep))
}

/// One service per call for now. Kept apart so a reader that gathers the
/// services of one cluster into calls of ten can replace it.
pub async fn describe_service(ecs: &dyn Ecs, key: &ServiceKey) -> Result<ServiceState, CloudError> {
    let found = ecs
        .describe_in(&key.scope, &key.cluster, std::slice::from_ref(&key.service))
        .await?;
    let suffix = format!("/{}", key.service);
    // Adapters may answer with the service's ARN rather than its name.
    let state = found
        .into_iter()
        .find(|(name, _)| *name == key.service || name.ends_with(&suffix))
        .map(|(_, state)| state);
    Ok(state.unwrap_or(ServiceState::Missing))
}
