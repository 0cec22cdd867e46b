//! Reading the live service before a decision, with the policy's reads.

use crate::cloud::observe::observe as observe_with;
use crate::cloud::{Checks, CloudError, CodeDeploy, Ecs, LoadBalancer, ServiceDeployments};
use crate::rollout::{Desired, Observed, ServiceKey, ServiceState, Status};
use crate::time::Timestamp;

use super::policy::Policy;

#[allow(clippy::too_many_arguments)]
pub async fn observe(
    ecs: &dyn Ecs,
    lb: &dyn LoadBalancer,
    checks: &dyn Checks,
    codedeploy: &dyn CodeDeploy,
    service_deployments: &dyn ServiceDeployments,
    policy: &Policy,
    key: &ServiceKey,
    desired: &Desired<'_>,
    status: &Status,
    now: Timestamp,
    look_at_weights: bool,
) -> Result<Observed, CloudError> {
    observe_with(
        ecs,
        lb,
        checks,
        codedeploy,
        service_deployments,
        key,
        |service| {
            let mut reads = (policy.reads)(desired, Some(service), status, now);
            // Production weights are read once more than the decision asks,
            // where they may have been written by someone else: by the replica
            // that held the service's shard before, whose last command can land
            // late. Only services cutover drives with task sets have them.
            if look_at_weights
                && let Desired::Valid(spec) = desired
                && spec.driver.shifts_traffic()
                && let ServiceState::Found(svc) = service
                && svc.is_external()
            {
                reads.production.get_or_insert_with(|| {
                    crate::rollout::under_rollout(spec, status)
                        .traffic
                        .production
                        .clone()
                });
            }
            reads
        },
    )
    .await
}
