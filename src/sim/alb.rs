//! Application Load Balancer listeners and rules with weighted forward
//! actions. Changes become visible after a short delay, as on AWS.

use std::collections::{BTreeMap, BTreeSet};

use super::arn::label;
use super::targets::TargetGroup;
use super::world::{Event, World};
use crate::cloud::{CloudError, ErrorKind};
use crate::rollout::{Route, Weights};

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

    /// Replaces a route's configuration at once (scenario setup).
    pub fn replace_route(&mut self, arn: &str, config: RouteConfig) -> bool {
        self.index(arn, &config);
        match self.routes.get_mut(arn) {
            Some(r) => {
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
        if production {
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

    pub(crate) fn route_visible(&mut self, route: &str, version: u64, actions: Vec<Action>) {
        let Some(r) = self.lb.routes.get_mut(route) else {
            return;
        };
        // A slow change must not overwrite a later one that became visible first.
        if version <= r.visible_version {
            return;
        }
        r.visible_version = version;
        r.visible.actions = actions;
        let shown = r
            .visible
            .weights()
            .map(|w| w.to_string())
            .unwrap_or_default();
        self.log(format!("{} now forwards {shown}", label(route)));
        self.route_changed(route);
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
