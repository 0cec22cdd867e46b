//! Application Load Balancer listeners and rules with weighted forward
//! actions. Changes become visible after a short delay, as on AWS.

use std::collections::{BTreeMap, BTreeSet};

use super::arn::label;
use super::targets::TargetGroup;
use super::world::{Event, World};
use crate::cloud::{CloudError, ErrorKind};
use crate::rollout::{Route, Stickiness as DomainStickiness, Weights};
use crate::time::Timestamp;

/// A forward action sends traffic to at most this many target groups.
pub const FORWARD_LIMIT: usize = 5;
/// The largest weight ELB accepts.
pub const MAX_WEIGHT: u32 = 999;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightedTargetGroup {
    pub arn: String,
    pub weight: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stickiness {
    pub enabled: bool,
    pub duration_seconds: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    pub target_groups: Vec<WeightedTargetGroup>,
    pub stickiness: Option<Stickiness>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Forward(Forward),
    FixedResponse {
        status_code: u16,
        content_type: String,
        body: String,
    },
    /// Any other action (authenticate-oidc, redirect, ...), kept verbatim.
    Other {
        kind: String,
        config: serde_json::Value,
    },
}

impl Action {
    pub fn forward(target_groups: &[(&str, u32)]) -> Action {
        Action::Forward(Forward {
            target_groups: target_groups
                .iter()
                .map(|(arn, weight)| WeightedTargetGroup {
                    arn: arn.to_string(),
                    weight: *weight,
                })
                .collect(),
            stickiness: None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub field: String,
    pub values: Vec<String>,
}

/// A listener's default actions, or a rule's actions, conditions and priority.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteConfig {
    pub actions: Vec<Action>,
    pub conditions: Vec<Condition>,
    pub priority: Option<u32>,
}

impl RouteConfig {
    pub fn forward(&self) -> Option<&Forward> {
        self.actions.iter().find_map(|a| match a {
            Action::Forward(f) => Some(f),
            _ => None,
        })
    }

    pub fn weights(&self) -> Option<Weights> {
        self.forward().map(forward_weights)
    }
}

impl Forward {
    /// How long a client stays on the target group it was first sent to,
    /// when group-level stickiness is on.
    pub fn sticky_for(&self) -> Option<std::time::Duration> {
        self.stickiness
            .as_ref()
            .filter(|s| s.enabled)
            .map(|s| std::time::Duration::from_secs(u64::from(s.duration_seconds)))
    }
}

pub(crate) fn forward_weights(f: &Forward) -> Weights {
    Weights(
        f.target_groups
            .iter()
            .map(|t| (t.arn.clone(), t.weight))
            .collect::<BTreeMap<_, _>>(),
    )
}

fn forward_mut(actions: &mut [Action]) -> Option<&mut Forward> {
    actions.iter_mut().find_map(|a| match a {
        Action::Forward(f) => Some(f),
        _ => None,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RouteKind {
    Listener,
    Rule,
}

#[derive(Clone, Debug)]
pub(crate) struct RouteState {
    pub kind: RouteKind,
    pub production: bool,
    /// What the last change asked for.
    pub written: RouteConfig,
    pub written_version: u64,
    /// What the load balancer does now.
    pub visible: RouteConfig,
    pub visible_version: u64,
    /// Target groups that sticky clients may still be sent to, whatever the
    /// weights say now, and until when (see [`World::settle_stickiness`]).
    pub sticky_until: BTreeMap<String, Timestamp>,
}

#[derive(Debug, Default)]
pub(crate) struct LoadBalancers {
    pub routes: BTreeMap<String, RouteState>,
    pub target_groups: BTreeMap<String, TargetGroup>,
    /// Routes that have ever forwarded to a target group, so a health change
    /// re-checks only the routes it can affect.
    pub routes_by_target_group: BTreeMap<String, BTreeSet<String>>,
}

impl LoadBalancers {
    pub fn add_route(&mut self, arn: &str, kind: RouteKind, production: bool, config: RouteConfig) {
        self.index(arn, &config);
        self.routes.insert(
            arn.to_string(),
            RouteState {
                kind,
                production,
                written: config.clone(),
                written_version: 0,
                visible: config,
                visible_version: 0,
                sticky_until: BTreeMap::new(),
            },
        );
    }

    fn index(&mut self, arn: &str, config: &RouteConfig) {
        for tg in config.forward().into_iter().flat_map(|f| &f.target_groups) {
            self.routes_by_target_group
                .entry(tg.arn.clone())
                .or_default()
                .insert(arn.to_string());
        }
    }

    /// Replaces a route's configuration at once (scenario setup, or a
    /// person's change on the console).
    pub fn replace_route(&mut self, arn: &str, config: RouteConfig, now: Timestamp) -> bool {
        self.index(arn, &config);
        match self.routes.get_mut(arn) {
            Some(r) => {
                settle_stickiness(r, &config.actions, now);
                r.written_version += 1;
                r.visible_version = r.written_version;
                r.written = config.clone();
                r.visible = config;
                true
            }
            None => false,
        }
    }
}

/// Group-level stickiness keeps a client on the target group it was first
/// sent to for the configured duration, whatever the weights say after
/// (ELBv2 API reference, TargetGroupStickinessConfig: "the time period, in
/// seconds, during which requests from a client should be routed to the
/// same target group";
/// https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetGroupStickinessConfig.html,
/// and forward actions in
/// https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-action-types.md).
/// The docs say nothing of a target group whose weight drops to 0, so this
/// models the worst case: a client sent there at the last moment it still
/// had weight keeps coming for the whole duration. Nor do they say what
/// happens to a target group taken out of the action: its sticky clients
/// are kept as if it were still there. Turning stickiness off lets every
/// client be routed by weight again, which is what "enabled" is for.
///
/// Called with the actions about to become visible on `route`.
fn settle_stickiness(r: &mut RouteState, next: &[Action], now: Timestamp) {
    let next_sticky = next.iter().find_map(|a| match a {
        Action::Forward(f) => f.sticky_for(),
        _ => None,
    });
    if next_sticky.is_none() {
        r.sticky_until.clear();
        return;
    }
    r.sticky_until.retain(|_, until| *until > now);
    // Clients sent to a group up to now stay for the duration in force.
    let Some(f) = r.visible.forward() else {
        return;
    };
    let Some(duration) = f.sticky_for() else {
        return;
    };
    for t in f.target_groups.iter().filter(|t| t.weight > 0) {
        let until = now.saturating_add(duration);
        let entry = r.sticky_until.entry(t.arn.clone()).or_insert(until);
        *entry = (*entry).max(until);
    }
}

impl RouteState {
    /// Target groups this route sends requests to now: those with visible
    /// weight, and those sticky clients may still be held on.
    pub fn receiving(&self, now: Timestamp) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .visible
            .forward()
            .into_iter()
            .flat_map(|f| &f.target_groups)
            .filter(|t| t.weight > 0)
            .map(|t| t.arn.clone())
            .collect();
        out.extend(
            self.sticky_until
                .iter()
                .filter(|(_, until)| **until > now)
                .map(|(tg, _)| tg.clone()),
        );
        out
    }

    /// Until when sticky clients may still arrive at `target_group`.
    pub fn sticky_until(&self, target_group: &str, now: Timestamp) -> Option<Timestamp> {
        let held = self.sticky_until.get(target_group).copied();
        let weighted = self.visible.forward().and_then(|f| {
            let d = f.sticky_for()?;
            f.target_groups
                .iter()
                .any(|t| t.arn == target_group && t.weight > 0)
                .then(|| now.saturating_add(d))
        });
        held.into_iter().chain(weighted).max().filter(|u| *u > now)
    }
}

fn operations(route: &Route) -> (&'static str, &'static str, RouteKind) {
    match route {
        Route::Listener(_) => (
            "elbv2:DescribeListeners",
            "elbv2:ModifyListener",
            RouteKind::Listener,
        ),
        Route::Rule(_) => ("elbv2:DescribeRules", "elbv2:ModifyRule", RouteKind::Rule),
    }
}

fn not_found(op: &'static str, route: &Route) -> CloudError {
    CloudError::not_found(op, route)
}

impl World {
    pub fn weights(&self, route: &Route) -> Result<Weights, CloudError> {
        let (op, _, kind) = operations(route);
        let r = self
            .lb
            .routes
            .get(route.arn())
            .filter(|r| r.kind == kind)
            .ok_or_else(|| not_found(op, route))?;
        r.visible.weights().ok_or_else(|| {
            CloudError::new(
                ErrorKind::Invalid,
                op,
                format!("{route} has no forward action"),
            )
        })
    }

    pub fn set_weights(&mut self, route: &Route, weights: &Weights) -> Result<(), CloudError> {
        self.write_weights(route, weights, true)
    }

    /// A weight change by the controller (`judged`: the invariants check
    /// it), or by ECS itself shifting a service deployment's traffic, which
    /// the invariants judge through the answers that let it happen.
    pub(crate) fn write_weights(
        &mut self,
        route: &Route,
        weights: &Weights,
        judged: bool,
    ) -> Result<(), CloudError> {
        let (_, op, kind) = operations(route);
        let invalid = |m: String| CloudError::new(ErrorKind::Invalid, op, m);
        for (tg, w) in &weights.0 {
            if *w > MAX_WEIGHT {
                return Err(invalid(format!("weight {w} of {tg} is above {MAX_WEIGHT}")));
            }
            if !self.lb.target_groups.contains_key(tg) {
                return Err(CloudError::not_found(op, format!("target group {tg}")));
            }
        }
        let r = self
            .lb
            .routes
            .get(route.arn())
            .filter(|r| r.kind == kind)
            .ok_or_else(|| not_found(op, route))?;
        // Like ModifyRule, the change applies to the latest accepted
        // configuration, not to what happens to be visible yet.
        let written = r.written.clone();
        let before = written.weights().unwrap_or_default();
        let mut actions = written.actions.clone();
        let production = r.production;
        let forward = forward_mut(&mut actions)
            .ok_or_else(|| invalid(format!("{route} has no forward action")))?;
        for (tg, w) in &weights.0 {
            match forward.target_groups.iter_mut().find(|t| &t.arn == tg) {
                Some(t) => t.weight = *w,
                None => forward.target_groups.push(WeightedTargetGroup {
                    arn: tg.clone(),
                    weight: *w,
                }),
            }
        }
        if forward.target_groups.len() > FORWARD_LIMIT {
            return Err(invalid(format!(
                "a forward action takes at most {FORWARD_LIMIT} target groups"
            )));
        }
        let after = forward_weights(forward);
        if production && judged {
            self.check_production_weights(route, &before, &after);
        }
        let delay = self.draw(self.config.visibility_delay);
        let config = RouteConfig {
            actions: actions.clone(),
            ..written
        };
        self.lb.index(route.arn(), &config);
        let Some(r) = self.lb.routes.get_mut(route.arn()) else {
            return Err(not_found(op, route));
        };
        r.written = config;
        r.written_version += 1;
        let version = r.written_version;
        self.log(format!(
            "{} weights set to {after} (visible in {}ms)",
            label(route.arn()),
            delay.as_millis()
        ));
        if delay.is_zero() {
            self.route_visible(route.arn(), version, actions);
        } else {
            self.schedule(
                self.now + delay,
                Event::RouteVisible {
                    route: route.arn().to_string(),
                    version,
                    actions,
                },
            );
        }
        Ok(())
    }

    pub fn stickiness(&self, route: &Route) -> Result<DomainStickiness, CloudError> {
        let (op, _, kind) = operations(route);
        let r = self
            .lb
            .routes
            .get(route.arn())
            .filter(|r| r.kind == kind)
            .ok_or_else(|| not_found(op, route))?;
        let f = r.visible.forward().ok_or_else(|| {
            CloudError::new(
                ErrorKind::Invalid,
                op,
                format!("{route} has no forward action"),
            )
        })?;
        Ok(f.stickiness
            .as_ref()
            .map_or_else(Default::default, |s| DomainStickiness {
                enabled: s.enabled,
                duration_seconds: s.duration_seconds,
            }))
    }

    /// Like `ModifyListener`/`ModifyRule` with only the forward action's
    /// `TargetGroupStickinessConfig` changed; ELB requires a duration of 1
    /// to 604800 seconds when enabling it (API reference,
    /// TargetGroupStickinessConfig). Visible after the same delay as weights.
    pub fn set_stickiness(
        &mut self,
        route: &Route,
        wanted: DomainStickiness,
    ) -> Result<(), CloudError> {
        let (_, op, kind) = operations(route);
        let invalid = |m: String| CloudError::new(ErrorKind::Invalid, op, m);
        if wanted.enabled
            && !(1..=super::scenario::MAX_STICKINESS_SECONDS).contains(&wanted.duration_seconds)
        {
            return Err(invalid(format!(
                "stickiness duration {}s: ELB accepts 1 to {} seconds",
                wanted.duration_seconds,
                super::scenario::MAX_STICKINESS_SECONDS
            )));
        }
        let r = self
            .lb
            .routes
            .get(route.arn())
            .filter(|r| r.kind == kind)
            .ok_or_else(|| not_found(op, route))?;
        let written = r.written.clone();
        let mut actions = written.actions.clone();
        let forward = forward_mut(&mut actions)
            .ok_or_else(|| invalid(format!("{route} has no forward action")))?;
        forward.stickiness = Some(Stickiness {
            enabled: wanted.enabled,
            duration_seconds: wanted.duration_seconds,
        });
        let delay = self.draw(self.config.visibility_delay);
        let Some(r) = self.lb.routes.get_mut(route.arn()) else {
            return Err(not_found(op, route));
        };
        r.written.actions = actions.clone();
        r.written_version += 1;
        let version = r.written_version;
        self.log(format!(
            "{} stickiness turned {} (visible in {}ms)",
            label(route.arn()),
            if wanted.enabled { "on" } else { "off" },
            delay.as_millis()
        ));
        if delay.is_zero() {
            self.route_visible(route.arn(), version, actions);
        } else {
            self.schedule(
                self.now + delay,
                Event::RouteVisible {
                    route: route.arn().to_string(),
                    version,
                    actions,
                },
            );
        }
        Ok(())
    }

    pub(crate) fn route_visible(&mut self, route: &str, version: u64, actions: Vec<Action>) {
        let Some(r) = self.lb.routes.get_mut(route) else {
            return;
        };
        // A slow change must not overwrite a later one that became visible first.
        if version <= r.visible_version {
            return;
        }
        r.visible_version = version;
        let now = self.now;
        settle_stickiness(r, &actions, now);
        r.visible.actions = actions;
        let shown = r
            .visible
            .weights()
            .map(|w| w.to_string())
            .unwrap_or_default();
        self.schedule_sticky_expiry(route);
        self.log(format!("{} now forwards {shown}", label(route)));
        self.route_changed(route);
    }

    /// Exposure through sticky clients ends when they stop coming, so the
    /// route is checked again then.
    pub(crate) fn schedule_sticky_expiry(&mut self, route: &str) {
        let until = self
            .lb
            .routes
            .get(route)
            .and_then(|r| r.sticky_until.values().max().copied());
        if let Some(until) = until {
            self.schedule(
                until,
                Event::StickyExpired {
                    route: route.to_string(),
                },
            );
        }
    }

    pub fn target_counts(
        &self,
        target_group: &str,
    ) -> Result<crate::rollout::TargetCounts, CloudError> {
        self.lb
            .target_groups
            .get(target_group)
            .map(TargetGroup::counts)
            .ok_or_else(|| {
                CloudError::not_found(
                    "elbv2:DescribeTargetHealth",
                    format!("target group {target_group}"),
                )
            })
    }
}
