//! Application Load Balancer weights and target health through ELBv2.
//!
//! A weight change is a read of the route's actions followed by a
//! `ModifyListener` or `ModifyRule` that sends the whole list back with only
//! the forward weights changed (see [`super::alb_convert`]). ELB has no
//! conditional writes, so a change someone else makes between the two calls
//! is overwritten. A successful call is not the change taking effect: the
//! controller reads the weights again before it counts a step as done.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_elasticloadbalancingv2::types::{Action, TargetHealthStateEnum};

use super::alb_convert::{self, ForwardError};
use super::calls::ApiCalls;
use super::error::{code, from_sdk};
use crate::cloud::{CloudError, ErrorKind, LoadBalancer};
use crate::rollout::{Route, TargetCounts, Weights};

const DESCRIBE_LISTENERS: &str = "elasticloadbalancing:DescribeListeners";
const DESCRIBE_RULES: &str = "elasticloadbalancing:DescribeRules";
const MODIFY_LISTENER: &str = "elasticloadbalancing:ModifyListener";
const MODIFY_RULE: &str = "elasticloadbalancing:ModifyRule";
const DESCRIBE_TARGET_HEALTH: &str = "elasticloadbalancing:DescribeTargetHealth";

#[derive(Clone, Debug)]
pub struct AlbAdapter {
    elb: Client,
}

impl AlbAdapter {
    /// An adapter whose requests are not counted.
    pub fn new(sdk: &SdkConfig) -> Self {
        AlbAdapter {
            elb: Client::new(sdk),
        }
    }

    /// An adapter whose request attempts are counted in `calls`. ELB's
    /// mutation budget is the smallest the controller spends from, so these
    /// are the calls most worth watching.
    pub fn counted(sdk: &SdkConfig, calls: &ApiCalls) -> Self {
        let config = aws_sdk_elasticloadbalancingv2::config::Builder::from(sdk)
            .interceptor(calls.interceptor())
            .build();
        AlbAdapter {
            elb: Client::from_conf(config),
        }
    }

    /// The action list of a listener's default action or of a rule.
    async fn actions(&self, route: &Route) -> Result<Vec<Action>, CloudError> {
        match route {
            Route::Listener(arn) => {
                let out = self
                    .elb
                    .describe_listeners()
                    .listener_arns(arn)
                    .send()
                    .await
                    .map_err(|e| route_error(DESCRIBE_LISTENERS, route, e))?;
                let listener = out
                    .listeners
                    .unwrap_or_default()
                    .into_iter()
                    .find(|l| l.listener_arn() == Some(arn.as_str()))
                    .ok_or_else(|| CloudError::not_found(DESCRIBE_LISTENERS, route))?;
                Ok(listener.default_actions.unwrap_or_default())
            }
            Route::Rule(arn) => {
                let out = self
                    .elb
                    .describe_rules()
                    .rule_arns(arn)
                    .send()
                    .await
                    .map_err(|e| route_error(DESCRIBE_RULES, route, e))?;
                let rule = out
                    .rules
                    .unwrap_or_default()
                    .into_iter()
                    .find(|r| r.rule_arn() == Some(arn.as_str()))
                    .ok_or_else(|| CloudError::not_found(DESCRIBE_RULES, route))?;
                Ok(rule.actions.unwrap_or_default())
            }
        }
    }

    /// Replaces the route's actions. A rule's conditions and priority are
    /// not sent, and ELB keeps them as they are.
    async fn replace_actions(&self, route: &Route, actions: Vec<Action>) -> Result<(), CloudError> {
        match route {
            Route::Listener(arn) => self
                .elb
                .modify_listener()
                .listener_arn(arn)
                .set_default_actions(Some(actions))
                .send()
                .await
                .map(drop)
                .map_err(|e| route_error(MODIFY_LISTENER, route, e)),
            Route::Rule(arn) => self
                .elb
                .modify_rule()
                .rule_arn(arn)
                .set_actions(Some(actions))
                .send()
                .await
                .map(drop)
                .map_err(|e| route_error(MODIFY_RULE, route, e)),
        }
    }
}

#[async_trait]
impl LoadBalancer for AlbAdapter {
    async fn weights(&self, route: &Route) -> Result<Weights, CloudError> {
        let actions = self.actions(route).await?;
        alb_convert::weights(&actions).map_err(|e| invalid(describe_op(route), route, e))
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

    async fn target_health(&self, target_group: &str) -> Result<TargetCounts, CloudError> {
        let out = self
            .elb
            .describe_target_health()
            .target_group_arn(target_group)
            .send()
            .await
            .map_err(|e| {
                let mut err = from_sdk(DESCRIBE_TARGET_HEALTH, e);
                if err.kind == ErrorKind::NotFound {
                    err.message = format!("target group {target_group} not found");
                }
                err
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
