//! What a decision needs read before it is made.

use super::deployment::DeploymentRead;
use super::gate::Probe;
use super::service_deployment::ServiceDeploymentRead;
use super::spec::Route;

/// What to read from the load balancer before deciding. A steady service
/// needs nothing, so a sweep of a quiet fleet costs no load balancer call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reads {
    pub production: Option<Route>,
    pub test: Option<Route>,
    pub target_health: Vec<String>,
    /// Analysis gates due for a reading.
    pub probes: Vec<Probe>,
    /// The candidate task set whose stopped tasks to count.
    pub failed_tasks: Option<String>,
    /// The CodeDeploy deployment to read, under the CodeDeploy driver.
    pub deployment: Option<DeploymentRead>,
    /// The ECS service deployment to read, under the `ecs_native` driver.
    pub service_deployment: Option<ServiceDeploymentRead>,
    /// Whether to read the production route's stickiness: only when a task
    /// set it weighed is about to be removed, or stickiness is to be put
    /// back, so a rollout's other passes spend no extra describe call.
    pub stickiness: bool,
}

impl Reads {
    pub fn is_empty(&self) -> bool {
        self.production.is_none()
            && self.test.is_none()
            && self.target_health.is_empty()
            && self.probes.is_empty()
            && self.failed_tasks.is_none()
            && self.deployment.is_none()
            && self.service_deployment.is_none()
            && !self.stickiness
    }
}
