//! Reading the live service before a decision: the service itself, then only
//! the load balancer reads the decision asks for.

use std::collections::BTreeMap;

use crate::cloud::{CloudError, Ecs, LoadBalancer};
use crate::rollout::{Desired, Observed, ServiceKey, ServiceState, Status};

use super::reconcile::Policy;

pub async fn observe(
    ecs: &dyn Ecs,
    lb: &dyn LoadBalancer,
    policy: &Policy,
    key: &ServiceKey,
    desired: &Desired<'_>,
    status: &Status,
) -> Result<Observed, CloudError> {
    let service = describe_service(ecs, key).await?;
    let reads = (policy.reads)(desired, Some(&service), status);
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
    Ok(Observed {
        service: Some(service),
        production,
        test,
        targets,
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
