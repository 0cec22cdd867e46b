//! A record that turns invalid mid-rollout holds the weights where they are,
//! but the candidate stays watched: the target health and task failure
//! gates and the progress deadline of the last valid record keep running,
//! and a failing candidate is rolled back. A rollback or a finalization
//! already under way goes on: both are the way out.
//!
//! The rollout remembers what that takes from the last valid record
//! (here; `watched.rs` drives it). Only
//! what needs no endpoint is kept: a status is served by the API and read
//! by anyone who may read the table, and gate, hook and notification URLs
//! may carry credentials, so the analysis gates and the hooks stop while
//! the record is invalid.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::gate::{Gates, TaskFailureGate};
use super::key::{Scope, ServiceKey};
use super::revision::Revision;
use super::spec::{Spec, TargetHealthGate, Traffic, Version};
use super::strategy::humantime_serde_compat;

/// What a rollout keeps of the last valid record to watch its candidate if
/// the record turns invalid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    /// Absent for a service in the controller's own account and region, so
    /// statuses written before scopes existed read the same.
    #[serde(default, skip_serializing_if = "Scope::is_home")]
    pub scope: Scope,
    pub cluster: String,
    pub service: String,
    pub version: Version,
    pub traffic: Traffic,
    pub target_health: TargetHealthGate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_failures: Option<TaskFailureGate>,
    #[serde(with = "humantime_serde_compat")]
    pub progress_deadline: Duration,
}

impl Watch {
    pub fn of(spec: &Spec) -> Watch {
        Watch {
            scope: spec.key.scope.clone(),
            cluster: spec.key.cluster.clone(),
            service: spec.key.service.clone(),
            version: spec.version.clone(),
            traffic: spec.traffic.clone(),
            target_health: spec.gates.target_health.clone(),
            task_failures: spec.gates.task_failures.clone(),
            progress_deadline: spec.progress_deadline,
        }
    }

    /// The record the rollout is watched under: the last valid one, as far
    /// as it was kept, naming the rollout's own revision so the rollout is
    /// neither superseded nor started again.
    pub fn spec(&self, revision: &Revision) -> Spec {
        Spec {
            key: ServiceKey::new(&self.cluster, &self.service).in_scope(self.scope.clone()),
            revision: revision.clone(),
            version: self.version.clone(),
            traffic: self.traffic.clone(),
            strategy: super::strategy::Strategy::AllAtOnce,
            bake: Duration::ZERO,
            progress_deadline: self.progress_deadline,
            paused: false,
            auto_promote: true,
            gates: Gates {
                target_health: self.target_health.clone(),
                task_failures: self.task_failures.clone(),
                ..Gates::default()
            },
            hooks: Default::default(),
            notifications: vec![],
            placement: Default::default(),
            control: Default::default(),
            labels: Default::default(),
            driver: Default::default(),
            role_arn: None,
        }
    }
}
