//! Analysis gates and lifecycle hooks inside the phases: a failed gate or
//! hook rolls back; a step moves on only once every gate has passed since
//! it began, and a hook point only once its hook said pass.

use super::command::{Command, Event, Wake};
use super::driver::{Driver, Flow};
use super::gate::circuit_breaker_threshold;
use super::hook::{HookAnswer, HookPayload, HookPoint};
use super::machine::Machine;
use super::readiness;
use super::status::{RollbackReason, Rollout};

impl Machine<'_, '_> {
    /// Every gate: target health, task failures and the analysis gates.
    /// `Ok(None)` when all passed since the current step began, `Ok(Some(why))`
    /// while some still wait for a passing reading, `Err` to stop here.
    pub(crate) fn gates(&mut self, r: &Rollout) -> Result<Option<String>, Flow> {
        if let Some(flow) = self.candidate_gates(r) {
            return Err(flow);
        }
        self.analysis_gates(r)
    }

    /// The candidate's own gates: its task failures, then its target health.
    /// Task failures first: the health gate waits while the candidate is
    /// short, which is when failed tasks are counted.
    pub(crate) fn candidate_gates(&mut self, r: &Rollout) -> Option<Flow> {
        self.task_failures(r).or_else(|| self.health_gate(r))
    }

    /// ECS's circuit breaker, in cutover's hands: too many candidate tasks
    /// stopped for a failure of the version since the candidate was
    /// created. The record's `gates.task_failures.threshold`, or else the
    /// circuit breaker's own for the candidate's desired count.
    pub(crate) fn task_failures(&mut self, r: &Rollout) -> Option<Flow> {
        let seen = self.observed.failed_tasks?;
        let stopped = seen.max(r.task_failures);
        if let Some(rr) = self.d.status.rollout.as_mut() {
            rr.task_failures = stopped;
        }
        let (threshold, whose) = match &self.spec.gates.task_failures {
            Some(gate) => (gate.threshold, format!("threshold {}", gate.threshold)),
            None => {
                let desired = self
                    .candidate(&r.id.revision)
                    .map_or(0, |c| readiness::desired_tasks(c, self.svc));
                let threshold = circuit_breaker_threshold(desired);
                (
                    threshold,
                    format!(
                        "{threshold} fail a candidate of {desired} desired tasks, as in ECS's deployment circuit breaker"
                    ),
                )
            }
        };
        if stopped < threshold {
            return None;
        }
        self.d.events.push(Event::GateEvaluated {
            gate: "task_failures",
            passed: false,
        });
        Some(self.begin_rollback(RollbackReason::GateFailed {
            gate: "task_failures".into(),
            detail: format!("{stopped} candidate tasks stopped for a failure ({whose})"),
        }))
    }

    /// The hook at `point`: see [`hook`].
    pub(crate) fn hook(&mut self, r: &Rollout, point: HookPoint) -> Option<Flow> {
        hook(self, r, point)
    }
}

/// Every driver's lifecycle hooks: `None` when the hook at `point` passed
/// or none is declared; otherwise what to do meanwhile: call it, wait for
/// it, or roll back.
pub(crate) fn hook<'a>(
    driver: &mut impl Driver<'a>,
    r: &Rollout,
    point: HookPoint,
) -> Option<Flow> {
    let spec = driver.spec();
    let hook = spec.hooks.get(point)?;
    let verdict = spec
        .control
        .hooks
        .get(&point)
        .filter(|v| v.rollout == r.id)
        .or_else(|| r.hook_verdicts.get(&point));
    if let Some(v) = verdict {
        if v.verdict == HookAnswer::Pass {
            return None;
        }
        let detail = if v.detail.is_empty() {
            "it answered fail".to_string()
        } else {
            v.detail.clone()
        };
        return Some(driver.begin_rollback(RollbackReason::HookFailed {
            hook: point,
            detail,
        }));
    }
    let now = driver.draft().now;
    match r.hooks.get(&point) {
        Some(called) if now >= *called + hook.timeout => {
            Some(driver.begin_rollback(RollbackReason::HookFailed {
                hook: point,
                detail: format!(
                    "no verdict within {}",
                    crate::time::format_duration(hook.timeout)
                ),
            }))
        }
        Some(_) => {
            driver
                .draft()
                .say(format!("waiting for the {point} hook's verdict"));
            driver.draft().wake(Wake::Poll);
            Some(Flow::Wait)
        }
        None => {
            let weights = driver.draft().status.weights.unwrap_or((100, 0));
            let payload = HookPayload {
                service: spec.key.to_string(),
                hook: point,
                rollout: r.id.clone(),
                revision: r.id.revision.as_str().to_string(),
                phase: driver.draft().status.phase().as_str().to_string(),
                weights,
                report_to: format!(
                    "/v1/services/{}/{}/hooks/{point}",
                    spec.key.cluster, spec.key.service
                ),
            };
            if let Some(rr) = driver.draft().status.rollout.as_mut() {
                rr.hooks.insert(point, now);
            }
            driver.draft().commands.push(Command::InvokeHook {
                url: hook.url.clone(),
                payload,
            });
            driver.draft().say(format!("calling the {point} hook"));
            driver.draft().wake(Wake::Poll);
            Some(Flow::Wait)
        }
    }
}
