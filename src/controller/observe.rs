//! Reading the live service before a decision, with the policy's reads.

use crate::cloud::observe::observe as observe_with;
use crate::cloud::{CloudError, Ecs, LoadBalancer};
use crate::rollout::{Desired, Observed, ServiceKey, Status};

use super::reconcile::Policy;

pub async fn observe(
    ecs: &dyn Ecs,
    lb: &dyn LoadBalancer,
    policy: &Policy,
    key: &ServiceKey,
    desired: &Desired<'_>,
    status: &Status,
) -> Result<Observed, CloudError> {
    observe_with(ecs, lb, key, |service| {
        (policy.reads)(desired, Some(service), status)
    })
    .await
}
