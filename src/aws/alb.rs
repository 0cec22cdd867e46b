//! Application Load Balancer weights and target health through ELBv2.
//!
//! A weight change is a read of the route's actions followed by a
//! `ModifyListener` or `ModifyRule` that sends the whole list back with only
//! the forward weights changed (see [`super::alb_convert`]). ELB has no
//! conditional writes, so a change someone else makes between the two calls
//! is overwritten. A successful call is not the change taking effect: the
//! controller reads the weights again before it counts a step as done.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_elasticloadbalancingv2::types::{Action, TargetHealthStateEnum};

use super::accounts::{Accounts, tag};
use super::alb_convert::{self, ForwardError};
use super::calls::ApiCalls;
use super::error::{code, from_sdk};
use crate::cloud::{CloudError, ErrorKind, LoadBalancer, describe_calls};
use crate::rollout::{Route, Stickiness, TargetCounts, Weights};

const DESCRIBE_LISTENERS: &str = "elasticloadbalancing:DescribeListeners";
const DESCRIBE_RULES: &str = "elasticloadbalancing:DescribeRules";
const MODIFY_LISTENER: &str = "elasticloadbalancing:ModifyListener";
const MODIFY_RULE: &str = "elasticloadbalancing:ModifyRule";
const DESCRIBE_TARGET_HEALTH: &str = "elasticloadbalancing:DescribeTargetHealth";

#[derive(Clone, Debug)]
pub struct AlbAdapter {
    elb: Client,
    /// The clients of other accounts and regions, chosen by the account
    /// and region each ARN names; without it, only home.
    accounts: Option<Arc<Accounts>>,
}

impl AlbAdapter {
    /// An adapter whose requests are not counted.
    pub fn new(sdk: &SdkConfig) -> Self {
        AlbAdapter {
            elb: Client::new(sdk),
            accounts: None,
        }
    }

    /// An adapter whose request attempts are counted in `calls`. ELB's
    /// mutation budget is the smallest the controller spends from, so these
    /// are the calls most worth watching.
    pub fn counted(sdk: &SdkConfig, calls: &ApiCalls) -> Self {
        let config = aws_sdk_elasticloadbalancingv2::config::Builder::from(sdk)
            .interceptor(crate::aws::calls::interceptor(calls))
            .build();
        AlbAdapter {
            elb: Client::from_conf(config),
            accounts: None,
        }
    }

    /// Reaches load balancers in every account and region `accounts`
    /// knows, by the ARN of each route and target group.
    pub fn scoped(accounts: Arc<Accounts>) -> Self {
        AlbAdapter {
            elb: accounts.home().elb.clone(),
            accounts: Some(accounts),
        }
    }

    /// The client for the resource `arn` names, and what its errors are
    /// tagged with.
    async fn at(&self, arn: &str) -> Result<(Client, String), CloudError> {
        match &self.accounts {
            None => Ok((self.elb.clone(), String::new())),
            Some(accounts) => {
                let clients = accounts.clients_for(arn).await?;
                Ok((clients.elb.clone(), clients.reached.clone()))
            }
        }
    }

    /// The action list of a listener's default action or of a rule.
    async fn actions(&self, route: &Route) -> Result<Vec<Action>, CloudError> {
        let mut found = self.describe(std::slice::from_ref(route)).await?;
        found
            .remove(route.arn())
            .ok_or_else(|| CloudError::not_found(describe_op(route), route))
    }

    /// The action lists of routes of one kind (all listeners or all rules)
    /// in one call, by ARN. A route ELB did not return is missing from the
    /// map; ELB fails the whole call if it knows none of them.
    async fn describe(&self, routes: &[Route]) -> Result<HashMap<String, Vec<Action>>, CloudError> {
        let Some(first) = routes.first() else {
            return Ok(HashMap::new());
        };
        let arns: Vec<String> = routes.iter().map(|r| r.arn().to_string()).collect();
        // Callers group routes by account and region (`describe_calls`).
        let (elb, reached) = self.at(first.arn()).await?;
        let tag = |e: CloudError| tag(e, &reached);
        Ok(match first {
            Route::Listener(_) => elb
                .describe_listeners()
                .set_listener_arns(Some(arns))
                .send()
                .await
                .map_err(|e| tag(route_error(DESCRIBE_LISTENERS, first, e)))?
                .listeners
                .unwrap_or_default()
                .into_iter()
                .filter_map(|l| Some((l.listener_arn?, l.default_actions.unwrap_or_default())))
                .collect(),
            Route::Rule(_) => elb
                .describe_rules()
                .set_rule_arns(Some(arns))
                .send()
                .await
                .map_err(|e| tag(route_error(DESCRIBE_RULES, first, e)))?
                .rules
                .unwrap_or_default()
                .into_iter()
                .filter_map(|r| Some((r.rule_arn?, r.actions.unwrap_or_default())))
                .collect(),
        })
    }

    /// The weights of routes of one kind, one describe call for all of
    /// them. If the call fails because a route is missing, each is asked
    /// alone, so one deleted listener does not fail the others' reads.
    async fn weights_of_kind(&self, routes: &[Route]) -> Vec<Result<Weights, CloudError>> {
        match self.describe(routes).await {
            Ok(mut found) => routes
                .iter()
                .map(|route| {
                    let actions = found
                        .remove(route.arn())
                        .ok_or_else(|| CloudError::not_found(describe_op(route), route))?;
                    alb_convert::weights(&actions)
                        .map_err(|e| invalid(describe_op(route), route, e))
                })
                .collect(),
            Err(e) if e.kind == ErrorKind::NotFound && routes.len() > 1 => {
                let mut answers = Vec::with_capacity(routes.len());
                for route in routes {
                    answers.push(self.weights(route).await);
                }
                answers
            }
            Err(e) => routes.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    /// Replaces the route's actions. A rule's conditions and priority are
    /// not sent, and ELB keeps them as they are.
    async fn replace_actions(&self, route: &Route, actions: Vec<Action>) -> Result<(), CloudError> {
        let (elb, reached) = self.at(route.arn()).await?;
        let tag = |e: CloudError| tag(e, &reached);
        match route {
            Route::Listener(arn) => elb
                .modify_listener()
                .listener_arn(arn)
                .set_default_actions(Some(actions))
                .send()
                .await
                .map(drop)
                .map_err(|e| tag(route_error(MODIFY_LISTENER, route, e))),
            Route::Rule(arn) => elb
                .modify_rule()
                .rule_arn(arn)
                .set_actions(Some(actions))
                .send()
                .await
                .map(drop)
                .map_err(|e| tag(route_error(MODIFY_RULE, route, e))),
        }
    }
}

#[async_trait]
impl LoadBalancer for AlbAdapter {
    async fn weights(&self, route: &Route) -> Result<Weights, CloudError> {
        let actions = self.actions(route).await?;
        alb_convert::weights(&actions).map_err(|e| invalid(describe_op(route), route, e))
    }

    async fn weights_of(&self, routes: &[Route]) -> Vec<Result<Weights, CloudError>> {
        let mut answers = Vec::with_capacity(routes.len());
        for chunk in describe_calls(routes) {
            let kind: Vec<Route> = chunk.iter().map(|&i| routes[i].clone()).collect();
            let got = self.weights_of_kind(&kind).await;
            answers.extend(chunk.into_iter().zip(got));
        }
        answers.sort_by_key(|(i, _)| *i);
        answers.into_iter().map(|(_, answer)| answer).collect()
    }

    async fn set_weights(&self, route: &Route, weights: &Weights) -> Result<(), CloudError> {
        let op = modify_op(route);
        // Refused before any call, so a bad weight costs no request.
        alb_convert::check_weights(weights).map_err(|e| invalid(op, route, e))?;
        let actions = self.actions(route).await?;
        match alb_convert::rewrite(&actions, weights).map_err(|e| invalid(op, route, e))? {
            Some(actions) => self.replace_actions(route, actions).await,
            // Mutations have the smallest ELB budget (3 per second per
            // account): a repeated step that is already in place spends none.
            None => Ok(()),
        }
    }

    async fn stickiness(&self, route: &Route) -> Result<Stickiness, CloudError> {
        let actions = self.actions(route).await?;
        alb_convert::stickiness(&actions).map_err(|e| invalid(describe_op(route), route, e))
    }

    async fn set_stickiness(
        &self,
        route: &Route,
        stickiness: Stickiness,
    ) -> Result<(), CloudError> {
        let op = modify_op(route);
        let actions = self.actions(route).await?;
        match alb_convert::rewrite_stickiness(&actions, stickiness)
            .map_err(|e| invalid(op, route, e))?
        {
            Some(actions) => self.replace_actions(route, actions).await,
            None => Ok(()),
        }
    }

    async fn target_health(&self, target_group: &str) -> Result<TargetCounts, CloudError> {
        let (elb, reached) = self.at(target_group).await?;
        let out = elb
            .describe_target_health()
            .target_group_arn(target_group)
            .send()
            .await
            .map_err(|e| {
                let mut err = from_sdk(DESCRIBE_TARGET_HEALTH, e);
                if err.kind == ErrorKind::NotFound {
                    err.message = format!("target group {target_group} not found");
                }
                tag(err, &reached)
            })?;
        let mut counts = TargetCounts::default();
        for description in out.target_health_descriptions.unwrap_or_default() {
            let state = description.target_health().and_then(|h| h.state());
            match state {
                Some(TargetHealthStateEnum::Healthy) => counts.healthy += 1,
                Some(TargetHealthStateEnum::Unhealthy) => counts.unhealthy += 1,
                Some(TargetHealthStateEnum::Initial) => counts.initial += 1,
                // Leaving either way: neither serves new traffic for long.
                Some(
                    TargetHealthStateEnum::Draining | TargetHealthStateEnum::UnhealthyDraining,
                ) => counts.draining += 1,
                // unused, unavailable, states newer than this SDK, or none.
                _ => counts.other += 1,
            }
        }
        Ok(counts)
    }
}

fn describe_op(route: &Route) -> &'static str {
    match route {
        Route::Listener(_) => DESCRIBE_LISTENERS,
        Route::Rule(_) => DESCRIBE_RULES,
    }
}

fn modify_op(route: &Route) -> &'static str {
    match route {
        Route::Listener(_) => MODIFY_LISTENER,
        Route::Rule(_) => MODIFY_RULE,
    }
}

fn invalid(op: &'static str, route: &Route, err: ForwardError) -> CloudError {
    CloudError::new(ErrorKind::Invalid, op, format!("{route} {err}"))
}

/// A missing listener or rule is named by its ARN. Other errors, a missing
/// target group among them, keep ELB's own message, which names what is
/// missing.
fn route_error<E>(op: &'static str, route: &Route, err: SdkError<E>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let route_missing = matches!(code(&err), Some("ListenerNotFound" | "RuleNotFound"));
    let mut out = from_sdk(op, err);
    if route_missing {
        out.kind = ErrorKind::NotFound;
        out.message = format!("{route} not found");
    }
    out
}
