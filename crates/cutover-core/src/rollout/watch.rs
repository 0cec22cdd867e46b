//! A record that turns invalid mid-rollout holds the weights where they are,
//! but the candidate stays watched: the target health and task failure
//! gates and the progress deadline of the last valid record keep running,
//! and a failing candidate is rolled back. A rollback or a finalization
//! already under way goes on: both are the way out.
//!
//! The rollout remembers what that takes from the last valid record. Only
//! what needs no endpoint is kept: a status is served by the API and read
//! by anyone who may read the table, and gate, hook and notification URLs
//! may carry credentials, so the analysis gates and the hooks stop while
//! the record is invalid.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::command::Wake;
use super::decide::gated;
use super::driver::{Driver, Flow};
use super::gate::{Gates, TaskFailureGate};
use super::key::ServiceKey;
use super::machine::Machine;
use super::revision::Revision;
use super::spec::{Spec, TargetHealthGate, Traffic, Version};
use super::status::RollbackReason;
use super::strategy::humantime_serde_compat;

/// What a rollout keeps of the last valid record to watch its candidate if
/// the record turns invalid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
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
            key: ServiceKey::new(&self.cluster, &self.service),
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
        }
    }
}

impl Machine<'_, '_> {
    /// One step of a rollout in flight while its record is invalid, neither
    /// rolling back nor finishing; `self.spec` is the watch's.
    pub(crate) fn watch_candidate(&mut self, why: &str) -> Flow {
        let Some(r) = self.d.status.rollout.clone() else {
            return Flow::Next;
        };
        let held = self.d.status.working_phase();
        // The candidate has traffic (or is behind the test route): its gates
        // look at it as they would have. A gate that waits (a shortfall
        // within its grace, a first failing check) holds like the record.
        self.d.say("");
        if gated(held) {
            let _ = self.gates(&r);
        }
        let rolling_back = |m: &Self| {
            m.d.status
                .rollout
                .as_ref()
                .is_some_and(|r| r.rollback.is_some())
        };
        if rolling_back(self) {
            return Flow::Next;
        }
        let gate_says = self.d.status.message.clone();
        let deadline = r.progress_at + self.spec.progress_deadline;
        if self.d.now >= deadline {
            return self.begin_rollback(RollbackReason::DeadlineExceeded {
                phase: held,
                detail: format!("{why}; held in {held}"),
            });
        }
        // `hold` remembers the phase to return to and goes to Invalid.
        self.d.hold(why.to_string());
        let mut message = format!(
            "{}; meanwhile the target health gate and the progress deadline of the last valid record still watch the candidate, and roll it back if it fails",
            self.d.status.message
        );
        if !gate_says.is_empty() {
            message = format!("{message} (target health: {gate_says})");
        }
        self.d.say(message);
        self.d.wake(if gated(held) {
            Wake::Poll
        } else {
            Wake::At(deadline)
        });
        Flow::Wait
    }
}
