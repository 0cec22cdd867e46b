//! Reading one service's live state through the ports: the service first,
//! then only the load balancer reads asked for. The controller's passes and
//! the CLI's dry run both read this way, so a plan sees what a pass would.

use std::collections::BTreeMap;

use super::{Checks, CloudError, Ecs, LoadBalancer};
use crate::rollout::{Observed, Reads, ServiceKey, ServiceState};

/// `reads` says, from the described service, what to read from the load
/// balancer (normally `rollout::reads` with the record and status).
pub async fn observe(
    ecs: &dyn Ecs,
    lb: &dyn LoadBalancer,
    checks: &dyn Checks,
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
    Ok(Observed {
        service: Some(service),
        production,
        test,
        targets,
        gates,
        failed_tasks,
    })
}

/// One service per call for now. Kept apart so a reader that gathers the
/// services of one cluster into calls of ten can replace it.
pub async fn describe_service(ecs: &dyn Ecs, key: &ServiceKey) -> Result<ServiceState, CloudError> {
    let found = ecs
        .describe_services(&key.cluster, std::slice::from_ref(&key.service))
        .await?;
    let suffix = format!("/{}", key.service);
    // Adapters may answer with the service's ARN rather than its name.
    let state = found
        .into_iter()
        .find(|(name, _)| *name == key.service || name.ends_with(&suffix))
        .map(|(_, state)| state);
    Ok(state.unwrap_or(ServiceState::Missing))
}
