//! Target groups and their health checks. A target's health is worked out
//! from when it registered and until when its checks pass, so the sim
//! schedules one event per state change instead of one per health check.

use std::collections::BTreeMap;
use std::time::Duration;

use super::config::HealthCheck;
use super::world::{Event, TaskRef, World};
use crate::rollout::TargetCounts;
use crate::time::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetState {
    Initial,
    Healthy,
    Unhealthy,
    Draining,
}

impl TargetState {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Initial => "initial",
            TargetState::Healthy => "healthy",
            TargetState::Unhealthy => "unhealthy",
            TargetState::Draining => "draining",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub task: TaskRef,
    pub state: TargetState,
    /// Bumped whenever the target's future is re-planned; events from an
    /// older plan are ignored.
    pub generation: u64,
    pub registered: Timestamp,
    /// Checks fail from this time on; `None` means they always pass.
    pub passes_until: Option<Timestamp>,
}

#[derive(Clone, Debug)]
pub(crate) struct TargetGroup {
    pub name: String,
    pub health_check: HealthCheck,
    pub deregistration_delay: Duration,
    pub targets: BTreeMap<String, Target>,
}

impl TargetGroup {
    pub fn counts(&self) -> TargetCounts {
        let mut c = TargetCounts::default();
        for t in self.targets.values() {
            match t.state {
                TargetState::Initial => c.initial += 1,
                TargetState::Healthy => c.healthy += 1,
                TargetState::Unhealthy => c.unhealthy += 1,
                TargetState::Draining => c.draining += 1,
            }
        }
        c
    }

    pub fn healthy(&self) -> u32 {
        self.counts().healthy
    }
}

/// The states a target goes through. Checks run every `interval` after
/// registration and pass before `passes_until`; the thresholds count
/// consecutive results.
pub(crate) fn timeline(
    check: &HealthCheck,
    registered: Timestamp,
    passes_until: Option<Timestamp>,
) -> Vec<(Timestamp, TargetState)> {
    let interval = (check.interval.as_millis() as i64).max(1);
    let at = |k: u64| Timestamp(registered.0 + interval.saturating_mul(k as i64));
    let healthy_after = u64::from(check.healthy_threshold.max(1));
    let unhealthy_after = u64::from(check.unhealthy_threshold.max(1));
    let mut states = vec![(registered, TargetState::Initial)];
    let Some(until) = passes_until else {
        states.push((at(healthy_after), TargetState::Healthy));
        return states;
    };
    // The number of checks that pass: those strictly before `until`.
    let window = until.0 - registered.0;
    let passing = if window <= 0 {
        0
    } else {
        ((window - 1) / interval) as u64
    };
    if passing >= healthy_after {
        states.push((at(healthy_after), TargetState::Healthy));
    }
    states.push((at(passing + unhealthy_after), TargetState::Unhealthy));
    states
}

impl World {
    pub fn register_target(
        &mut self,
        target_group: &str,
        target: String,
        task: TaskRef,
        registered: Timestamp,
        passes_until: Option<Timestamp>,
    ) {
        let Some(tg) = self.lb.target_groups.get_mut(target_group) else {
            return;
        };
        tg.targets.insert(
            target.clone(),
            Target {
                task,
                state: TargetState::Initial,
                generation: 0,
                registered,
                passes_until,
            },
        );
        let name = tg.name.clone();
        self.log(format!("target {target} registered in {name}"));
        self.plan_target(target_group, &target);
    }

    /// Checks of a registered target fail from `until` on (or earlier, if
    /// they already would).
    pub fn fail_target_from(&mut self, target_group: &str, target: &str, until: Timestamp) {
        let Some(t) = self
            .lb
            .target_groups
            .get_mut(target_group)
            .and_then(|tg| tg.targets.get_mut(target))
        else {
            return;
        };
        if t.state == TargetState::Draining {
            return;
        }
        let until = until.max(self.now);
        t.passes_until = Some(t.passes_until.map_or(until, |u| u.min(until)));
        self.plan_target(target_group, target);
    }

    /// Sets the target's state for now and schedules its future changes.
    fn plan_target(&mut self, target_group: &str, target: &str) {
        let now = self.now;
        let Some(tg) = self.lb.target_groups.get_mut(target_group) else {
            return;
        };
        let check = tg.health_check;
        let Some(t) = tg.targets.get_mut(target) else {
            return;
        };
        t.generation += 1;
        let generation = t.generation;
        let mut future = Vec::new();
        for (at, state) in timeline(&check, t.registered, t.passes_until) {
            if at <= now {
                t.state = state;
            } else {
                future.push((at, state));
            }
        }
        for (at, state) in future {
            self.schedule(
                at,
                Event::TargetHealth {
                    target_group: target_group.to_string(),
                    target: target.to_string(),
                    generation,
                    state,
                },
            );
        }
        self.target_group_changed(target_group);
    }

    pub fn deregister_target(&mut self, target_group: &str, target: &str) {
        let now = self.now;
        let Some(tg) = self.lb.target_groups.get_mut(target_group) else {
            return;
        };
        let at = now + tg.deregistration_delay;
        let Some(t) = tg.targets.get_mut(target) else {
            return;
        };
        if t.state == TargetState::Draining {
            return;
        }
        t.state = TargetState::Draining;
        t.generation += 1;
        let generation = t.generation;
        let name = tg.name.clone();
        self.log(format!("target {target} draining from {name}"));
        self.schedule(
            at,
            Event::TargetGone {
                target_group: target_group.to_string(),
                target: target.to_string(),
                generation,
            },
        );
        self.target_group_changed(target_group);
    }

    pub(crate) fn target_health_changed(
        &mut self,
        target_group: &str,
        target: &str,
        generation: u64,
        state: TargetState,
    ) {
        let Some(tg) = self.lb.target_groups.get_mut(target_group) else {
            return;
        };
        let name = tg.name.clone();
        let Some(t) = tg.targets.get_mut(target) else {
            return;
        };
        if t.generation != generation || t.state == state {
            return;
        }
        t.state = state;
        let task = t.task.clone();
        self.log(format!("target {target} in {name} is {}", state.as_str()));
        self.target_group_changed(target_group);
        if state == TargetState::Unhealthy && self.config.replace_unhealthy {
            // ECS notices on its own schedule, not at the failing check.
            let at = self.now + self.config.health_check.interval;
            self.schedule(
                at,
                Event::TaskReplaced {
                    task,
                    reason: "failed ELB health checks",
                },
            );
        }
    }

    pub(crate) fn target_gone(&mut self, target_group: &str, target: &str, generation: u64) {
        let Some(tg) = self.lb.target_groups.get_mut(target_group) else {
            return;
        };
        if tg
            .targets
            .get(target)
            .is_some_and(|t| t.generation == generation)
        {
            tg.targets.remove(target);
            let name = tg.name.clone();
            self.log(format!("target {target} left {name}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_000_000);

    fn secs(s: i64) -> Timestamp {
        Timestamp(T0.0 + s * 1000)
    }

    #[test]
    fn a_good_target_is_healthy_after_the_healthy_threshold() {
        let t = timeline(&HealthCheck::default(), T0, None);
        assert_eq!(
            t,
            vec![(T0, TargetState::Initial), (secs(10), TargetState::Healthy)]
        );
    }

    #[test]
    fn a_target_that_never_passes_turns_unhealthy() {
        let t = timeline(&HealthCheck::default(), T0, Some(T0));
        assert_eq!(
            t,
            vec![
                (T0, TargetState::Initial),
                (secs(10), TargetState::Unhealthy)
            ]
        );
    }

    #[test]
    fn a_target_that_fails_later_is_healthy_first() {
        // Checks at 5, 10, ..., 60 pass; 65 and 70 fail.
        let t = timeline(&HealthCheck::default(), T0, Some(secs(61)));
        assert_eq!(
            t,
            vec![
                (T0, TargetState::Initial),
                (secs(10), TargetState::Healthy),
                (secs(70), TargetState::Unhealthy)
            ]
        );
    }
}
