//! Safety properties of production traffic, checked as the world changes.
//! Violations are recorded, not raised, so a harness can report every one
//! with the seed that produced it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::alb::forward_weights;
use super::arn::label;
use super::world::{LogEntry, World};
use crate::rollout::{Route, Weights};
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
}

/// How old a health reading may be and still excuse a weight change that
/// arrives after the target group lost its last healthy target: a pass reads
/// health and then writes within a few seconds, two poll intervals at most.
const FRESH_READING: Duration = Duration::from_secs(10);

impl World {
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
