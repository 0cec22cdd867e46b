//! What the task-set driver reads before a decision: the routes, the
//! target groups' health, the gates that are due and the candidate's
//! stopped tasks, each only in the phases that use it, so a steady fleet
//! costs no load balancer call at all.

use super::driver::{due_probes, gated, runs};
use super::observed::{EcsService, TaskSetStatus};
use super::observed::{candidate, live};
use super::reading::Reads;
use super::spec::Spec;
use super::status::{Phase, Status};
use crate::time::Timestamp;

/// `spec` is the record as the rollout in flight is wired
/// (`decide::under_rollout`).
pub(crate) fn task_set_reads(
    spec: &Spec,
    svc: &EcsService,
    status: &Status,
    now: Timestamp,
) -> Reads {
    let primary = svc.primary();
    let strays = live(svc).any(|t| t.status != TaskSetStatus::Primary);
    let target_group = match &status.rollout {
        Some(r) => Some(r.target_group.clone()),
        None => {
            let settled = primary.is_some_and(|p| runs(spec, p));
            let failed = status
                .failed
                .as_ref()
                .is_some_and(|f| f.rollout.revision == spec.revision)
                && spec.control.retry.as_ref() != status.failed.as_ref().map(|f| &f.rollout);
            if (settled || failed) && !strays && status.stickiness_off.is_none() {
                return Reads::default();
            }
            match primary.and_then(|p| p.target_group.as_deref()) {
                Some(tg) => spec.traffic.other_target_group(tg).map(str::to_string),
                None => Some(spec.traffic.target_groups[0].clone()),
            }
        }
    };
    // The task set the rollout started from is still live: the way back,
    // and the candidate is watched until Finalizing removes it.
    let from_live = status
        .rollout
        .as_ref()
        .and_then(|r| r.from.as_ref())
        .is_some_and(|f| live(svc).any(|t| t.arn == f.arn));
    let mut probes = Vec::new();
    let mut failed_tasks = None;
    if let Some(r) = &status.rollout
        && r.rollback.is_none()
    {
        if gated(status.phase()) {
            probes = due_probes(spec, r, now);
        }
        // A record's own task failure gate is read at every pass. Without
        // one, the circuit breaker's default is read while the candidate is
        // short of healthy targets: a task that stops leaves it short until
        // a replacement passes its checks, HealthyThresholdCount intervals
        // at least, and ECS lists a stopped task for an hour or more
        // (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html),
        // so every failure is counted, and a rollout whose candidate stays
        // healthy costs no ListTasks at all.
        let watched = gated(status.phase()) || (status.phase() == Phase::Finalizing && from_live);
        let own = spec.gates.task_failures.is_some()
            && (watched || status.phase() == Phase::Provisioning);
        let short = watched && r.health.short_since.is_some();
        if own || short {
            failed_tasks = candidate(svc, &r.id.revision).map(|t| t.arn.clone());
        }
    }
    // The candidate's health decides while it waits to be ready, serves
    // traffic, and until the old task set is removed. A rollback reads the
    // side it returns production to, which must have a healthy target, and
    // the candidate's, to say whether either side can serve meanwhile.
    // DescribeTargetHealth is one group per call from a small shared
    // budget, so a fleet-wide release is paced by reads like these.
    let target_health = match &status.rollout {
        Some(r) if r.rollback.is_some() => r
            .from
            .iter()
            .map(|f| f.target_group.clone())
            .chain(target_group)
            .collect(),
        Some(_) if status.phase() == Phase::Finalizing && !from_live => vec![],
        // Where a rollback can begin with production on the candidate, the
        // side it would return to is read too, so the rollback's first
        // decision already knows whether that side can serve.
        Some(r)
            if matches!(
                status.phase(),
                Phase::Shifting
                    | Phase::AwaitingPromotion
                    | Phase::Paused
                    | Phase::Baking
                    | Phase::Finalizing
            ) =>
        {
            target_group
                .into_iter()
                .chain(r.from.iter().map(|f| f.target_group.clone()))
                .collect()
        }
        _ => target_group.into_iter().collect(),
    };
    // Stickiness matters where a task set production weighed is removed
    // (finalizing, rolling back, a leftover) and until it is put back.
    // And where the task set a rollout started from was deleted by
    // someone else: its sticky clients must leave it at once.
    let stickiness = status.stickiness_off.is_some()
        || match &status.rollout {
            Some(r) => {
                r.rollback.is_some()
                    || status.phase() == Phase::Finalizing
                    || (r.from.is_some() && !from_live)
            }
            None => strays,
        };
    Reads {
        production: Some(spec.traffic.production.clone()),
        test: spec.traffic.test.clone(),
        target_health,
        probes,
        failed_tasks,
        deployment: None,
        service_deployment: None,
        stickiness,
    }
}
