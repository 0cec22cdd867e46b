//! Reading the live service before a decision, with the policy's reads.

use crate::cloud::observe::observe as observe_with;
use crate::cloud::{Checks, CloudError, CodeDeploy, Ecs, LoadBalancer};
use crate::rollout::{Desired, Observed, ServiceKey, Status};
use crate::time::Timestamp;

use super::reconcile::Policy;

#[allow(clippy::too_many_arguments)]
pub async fn observe(
    ecs: &dyn Ecs,
    lb: &dyn LoadBalancer,
    checks: &dyn Checks,
    codedeploy: &dyn CodeDeploy,
    policy: &Policy,
    key: &ServiceKey,
    desired: &Desired<'_>,
    status: &Status,
    now: Timestamp,
) -> Result<Observed, CloudError> {
    observe_with(ecs, lb, checks, codedeploy, key, |service| {
        (policy.reads)(desired, Some(service), status, now)
    })
    .await
}
