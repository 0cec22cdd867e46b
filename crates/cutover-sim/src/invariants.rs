//! Safety properties of production traffic, checked as the world changes.
//! Violations are recorded, not raised, so a harness can report every one
//! with the seed that produced it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::alb::forward_weights;
use super::arn::label;
use super::registry::BadVersion;
use super::world::{LogEntry, World};
use crate::rollout::service_deployment::{LifecycleStage, ServiceDeploymentStatus, deployment_id};
use crate::rollout::{Route, ServiceKey, Weights};
use crate::time::Timestamp;

#[derive(Debug, Default)]
pub(crate) struct Invariants {
    pub violations: Vec<LogEntry>,
    /// Production routes that now send traffic to a target group without a
    /// healthy target, and since when.
    exposed_since: BTreeMap<String, Timestamp>,
    /// Production routes seen unexposed at least once. A route that starts
    /// out exposed (a first release forwarding to an empty target group) is
    /// not the world changing under anyone, so it is not timed until then.
    armed: BTreeSet<String>,
    max_exposure: Duration,
    /// The last target health each target group was read with, and when:
    /// what a decision to add weight could have known.
    health_read: BTreeMap<String, (Timestamp, u32)>,
    /// Target groups whose lack of healthy targets the world caused (churn,
    /// an outage of a whole task set), and until when: the controller can
    /// neither prevent nor shorten it, so it is not timed as exposure. Weight
    /// the controller adds to such a group is still a violation of (a).
    pub excused: BTreeMap<String, Timestamp>,
    /// Every UpdateService of a service on the ECS deployment controller.
    pub native_starts: Vec<NativeStart>,
    /// Every CONTINUE answer to a service deployment's pause.
    pub native_continues: Vec<NativeContinue>,
}

/// One UpdateService that started a service deployment. ECS takes no
/// idempotency token for it, so a retry cannot be told from a second
/// deployment of the same revision: the harness judges them from these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeStart {
    pub at: Timestamp,
    pub key: ServiceKey,
    pub arn: String,
    /// `family:revision` it deploys.
    pub task_definition: String,
    /// The service's deployments that were ongoing when it came: each one
    /// makes it a violation.
    pub over_ongoing: Vec<String>,
    /// The service's previous deployment when it came: its task definition
    /// and status.
    pub previous: Option<(String, ServiceDeploymentStatus)>,
}

/// One CONTINUE answer to a service deployment's pause, with what the
/// controller could have known of the new revision when it gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeContinue {
    pub at: Timestamp,
    pub key: ServiceKey,
    pub arn: String,
    pub hook_id: String,
    pub stage: LifecycleStage,
    /// Production traffic steps ECS had taken before it.
    pub steps_passed: u32,
    /// `family:revision` of the new revision, and how it is marked bad.
    pub task_definition: String,
    pub bad: Option<BadVersion>,
    /// Healthy targets of the new revision's target group then (`None`
    /// before SCALE_UP started it).
    pub green_healthy: Option<u32>,
    /// The controller's last reading of that target group's health (when,
    /// and how many healthy), if it took one.
    pub health_read: Option<(Timestamp, u32)>,
    /// When the new revision's tasks stopped for a failure of the version
    /// (as the task failures gate counts them), up to the answer.
    pub green_failures: Vec<Timestamp>,
}

impl NativeContinue {
    /// Whether the answer lets ECS shift production traffic next.
    pub fn shifts_production(&self) -> bool {
        self.stage == LifecycleStage::PreProductionTrafficShift
    }

    /// Failures of the new revision at least `known_after` before the
    /// answer: what a pass that read a moment before could know.
    pub fn failures_known(&self, known_after: Duration) -> u32 {
        self.green_failures
            .iter()
            .filter(|at| **at + known_after <= self.at)
            .count() as u32
    }
}

/// How old a health reading may be and still excuse a weight change that
/// arrives after the target group lost its last healthy target: a pass reads
/// health and then writes within a few seconds, two poll intervals at most.
const FRESH_READING: Duration = Duration::from_secs(10);

/// How soon a fleet-wide halt must hold every rollout: the harness's
/// controller polls every 5 s; a pass that decided just before it read the
/// halt may still send what it decided, retries included.
pub const HALT_REACH: Duration = Duration::from_secs(10);

impl World {
    /// (h) No step forward (a new candidate, weight onto the newest task
    /// set, a new service deployment, a CONTINUE) once a
    /// fleet-wide halt has had `HALT_REACH` to reach the controller.
    pub fn check_halted(&mut self, step: impl FnOnce() -> String) {
        if let Some(since) = self.halted_since
            && self.now > since + HALT_REACH
        {
            let text = format!("(h) {} while the fleet was halted (since {since})", step());
            self.violation(text);
        }
    }

    /// Whether `target_group` serves a service's candidate: weight onto it
    /// is a step forward, weight back onto an older task set a retreat.
    /// The candidate is the newest task set of a service that has another
    /// one to go back to; whether it is primary does not say (a rollout may
    /// make it primary before it bakes). Weight back onto an older task set
    /// is a retreat, which a halt must never stop: it is how production
    /// leaves a candidate that lost its healthy targets (seed 232).
    fn serves_candidate(&self, target_group: &str) -> bool {
        self.services.by_key.values().any(|svc| {
            let live: Vec<_> = svc
                .task_sets
                .iter()
                .filter(|t| t.status != crate::rollout::TaskSetStatus::Draining)
                .collect();
            live.len() >= 2
                && live
                    .last()
                    .is_some_and(|newest| newest.target_group.as_deref() == Some(target_group))
        })
    }

    pub fn violation(&mut self, text: String) {
        self.log(format!("VIOLATION: {text}"));
        self.checks.violations.push(LogEntry { at: self.now, text });
    }

    /// (a) and (c), for a change about to be made to a production route.
    /// (a) blames a change only for weight it adds to a target group without
    /// healthy targets: re-asserting weights the world has since made unsafe
    /// shows up as exposure instead.
    pub fn check_production_weights(&mut self, route: &Route, before: &Weights, after: &Weights) {
        let name = label(route.arn());
        let total: u64 = after.0.values().map(|w| u64::from(*w)).sum();
        if after.0.values().any(|w| *w > 100) || total != 100 {
            self.violation(format!(
                "production weights on {name} are not percentages summing to 100: {after}"
            ));
        }
        for (tg, w) in &after.0 {
            if *w > before.get(tg) && self.serves_candidate(tg) {
                self.check_halted(|| format!("production weight {w} on {name} onto {}", label(tg)));
            }
            let healthy = self.lb.target_groups.get(tg).map_or(0, |g| g.healthy());
            if *w <= before.get(tg) || healthy > 0 {
                continue;
            }
            // A target can turn unhealthy between the read and the write (its
            // failing checks are invisible until the threshold is crossed);
            // no controller can see that coming. What it must never do is add
            // weight without a fresh reading that showed a healthy target. The
            // exposure that follows is timed like any other.
            let now = self.now;
            let excused = self
                .checks
                .health_read
                .get(tg)
                .is_some_and(|(at, seen)| *seen > 0 && now.since(*at) <= FRESH_READING);
            if excused {
                self.log(format!(
                    "production weight {w} on {name} goes to {}, which lost its last healthy \
                     target after it was read",
                    label(tg)
                ));
            } else {
                self.violation(format!(
                    "production weight {w} on {name} goes to {} which has no healthy target",
                    label(tg)
                ));
            }
        }
    }

    /// (f) No UpdateService while one of the service's deployments is
    /// ongoing (what ECS does then is not documented; the sim rolls the
    /// ongoing one back). Every start is recorded for the harness.
    pub fn check_native_start(
        &mut self,
        key: &ServiceKey,
        arn: &str,
        task_definition: &str,
        ongoing: &[String],
        previous: Option<(String, ServiceDeploymentStatus)>,
    ) {
        if !ongoing.is_empty() {
            let ids: Vec<&str> = ongoing.iter().map(|a| deployment_id(a)).collect();
            self.violation(format!(
                "{key}: UpdateService while a deployment was ongoing: {} ({task_definition}) \
                 started over {}",
                deployment_id(arn),
                ids.join(", ")
            ));
        }
        self.checks.native_starts.push(NativeStart {
            at: self.now,
            key: key.clone(),
            arn: arn.to_string(),
            task_definition: task_definition.to_string(),
            over_ongoing: ongoing.to_vec(),
            previous,
        });
    }

    /// (g) A CONTINUE is the controller's write that lets ECS move
    /// production weight, so it is judged as (a) judges a weight change:
    /// letting weight onto the new revision's target group while it has no
    /// healthy target, without a fresh reading that showed one, is a
    /// violation. Every CONTINUE is recorded, with what could be known.
    pub fn check_native_continue(
        &mut self,
        key: &ServiceKey,
        arn: &str,
        stage: LifecycleStage,
        hook_id: &str,
    ) {
        let (Some(native), Some(d)) = (self.native(key), self.deployment(key, arn)) else {
            return;
        };
        let tg = native.target_groups[d.green_tg()].clone();
        let strategy = d.request.strategy;
        let (steps_passed, green) = (d.steps_done, d.green.clone());
        let task_definition = d.task_definition.clone();
        let green_healthy = green
            .as_ref()
            .map(|_| self.lb.target_groups.get(&tg).map_or(0, |g| g.healthy()));
        let green_failures = green
            .as_deref()
            .and_then(|g| {
                let service = self.services.by_key.get(key)?;
                Some(
                    service
                        .stopped_tasks
                        .iter()
                        .filter(|t| {
                            t.started_by == g
                                && crate::cloud::stopped::counts_as_failure(
                                    Some(t.stop_code),
                                    Some(&t.stopped_reason),
                                )
                        })
                        .map(|t| t.stopped_at)
                        .collect(),
                )
            })
            .unwrap_or_default();
        let record = NativeContinue {
            at: self.now,
            key: key.clone(),
            arn: arn.to_string(),
            hook_id: hook_id.to_string(),
            stage,
            steps_passed,
            bad: self.registry.badness(&task_definition),
            task_definition,
            green_healthy,
            health_read: self.checks.health_read.get(&tg).copied(),
            green_failures,
        };
        let adds = strategy.weight_after(steps_passed + 1) > strategy.weight_after(steps_passed);
        let fresh = record
            .health_read
            .is_some_and(|(at, seen)| seen > 0 && self.now.since(at) <= FRESH_READING);
        if record.shifts_production() && adds && record.green_healthy == Some(0) && !fresh {
            self.violation(format!(
                "{key}: CONTINUE to {hook_id} of deployment {} lets production weight {} go to \
                 {} which has no healthy target",
                deployment_id(arn),
                strategy.weight_after(steps_passed + 1),
                label(&tg)
            ));
        }
        self.checks.native_continues.push(record);
    }

    /// Remembers a target health answer, for `check_production_weights`.
    pub fn health_read(&mut self, target_group: &str, healthy: u32) {
        let now = self.now;
        self.checks
            .health_read
            .insert(target_group.to_string(), (now, healthy));
    }

    /// (b): a task set must not be deleted while production sends it traffic,
    /// whether that traffic is visible yet or only written, or while sticky
    /// clients of a production route may still be sent to its target group.
    pub fn check_task_set_delete(&mut self, task_set: &str, target_group: Option<&str>) {
        let Some(tg) = target_group else {
            return;
        };
        let routes: Vec<(String, u32, u32)> = self
            .lb
            .routes_by_target_group
            .get(tg)
            .into_iter()
            .flatten()
            .filter_map(|arn| {
                let r = self.lb.routes.get(arn).filter(|r| r.production)?;
                let w = |c: &super::alb::RouteConfig| {
                    c.forward().map_or(0, |f| forward_weights(f).get(tg))
                };
                Some((arn.clone(), w(&r.visible), w(&r.written)))
            })
            .collect();
        let now = self.now;
        let sticky: Vec<(String, Timestamp)> = self
            .lb
            .routes_by_target_group
            .get(tg)
            .into_iter()
            .flatten()
            .filter_map(|arn| {
                let r = self.lb.routes.get(arn).filter(|r| r.production)?;
                Some((arn.clone(), r.sticky_until(tg, now)?))
            })
            .collect();
        for (route, until) in sticky {
            self.violation(format!(
                "task set {} deleted while sticky clients of production route {} may still be \
                 sent to its target group {} (for {}s more)",
                label(task_set),
                label(&route),
                label(tg),
                until.since(now).as_secs()
            ));
        }
        for (route, visible, written) in routes {
            if visible > 0 || written > 0 {
                self.violation(format!(
                    "task set {} deleted while production route {} weighs its target group {} \
                     (visible {visible}, written {written})",
                    label(task_set),
                    label(&route),
                    label(tg)
                ));
            }
        }
    }

    /// Re-checks exposure of the routes a target group change can affect.
    pub fn target_group_changed(&mut self, target_group: &str) {
        let routes: Vec<String> = self
            .lb
            .routes_by_target_group
            .get(target_group)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        for route in routes {
            self.route_changed(&route);
        }
    }

    pub fn route_changed(&mut self, route: &str) {
        let Some(r) = self.lb.routes.get(route).filter(|r| r.production) else {
            // No longer production: an exposure going on ends here.
            if let Some(since) = self.checks.exposed_since.remove(route) {
                let lasted = self.now.since(since);
                self.checks.max_exposure = self.checks.max_exposure.max(lasted);
            }
            return;
        };
        let now = self.now;
        // Sticky clients count as much as weight: a request they send to a
        // group without a healthy target fails all the same. An outage the
        // world caused is not timed until its excuse ends.
        let exposed = r.receiving(now).iter().any(|tg| {
            self.checks.excused.get(tg).is_none_or(|u| *u < now)
                && self
                    .lb
                    .target_groups
                    .get(tg)
                    .is_none_or(|g| g.healthy() == 0)
        });
        if !exposed {
            self.checks.armed.insert(route.to_string());
        } else if !self.checks.armed.contains(route) {
            return;
        }
        match (exposed, self.checks.exposed_since.get(route).copied()) {
            (true, None) => {
                self.checks.exposed_since.insert(route.to_string(), now);
                self.log(format!(
                    "production route {} exposed: weight or sticky clients on a target group \
                     without healthy targets",
                    label(route)
                ));
            }
            (false, Some(since)) => {
                self.checks.exposed_since.remove(route);
                let lasted = now.since(since);
                self.checks.max_exposure = self.checks.max_exposure.max(lasted);
                self.log(format!(
                    "production route {} no longer exposed after {}ms",
                    label(route),
                    lasted.as_millis()
                ));
            }
            _ => {}
        }
    }

    /// The longest exposure so far, counting exposures still going on.
    pub fn max_exposure(&self) -> Duration {
        self.checks
            .exposed_since
            .values()
            .map(|since| self.now.since(*since))
            .fold(self.checks.max_exposure, Duration::max)
    }
}
