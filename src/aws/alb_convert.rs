//! Reading and rewriting the forward action of a listener or rule, on the
//! SDK's own types.
//!
//! `ModifyListener` and `ModifyRule` replace the whole action list, so a
//! rewrite starts from the list as read and changes nothing but the weights
//! of the named target groups: other actions, their order, stickiness and
//! untouched target groups go back exactly as they came.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, TargetGroupStickinessConfig, TargetGroupTuple,
};

use crate::rollout::{Stickiness, Weights};

/// The largest weight ELB accepts.
pub const MAX_WEIGHT: u32 = 999;
/// A forward action sends traffic to at most this many target groups.
pub const FORWARD_LIMIT: usize = 5;

/// What is wrong with a route's actions or with the weights asked for. The
/// adapter prefixes the route, so each message reads after "listener arn:…".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    #[error("has no forward action (it has {0})")]
    NoForward(String),
    #[error("forwards to a target group without an ARN")]
    UnnamedTargetGroup,
    #[error("reports no weight for target group {0}")]
    MissingWeight(String),
    #[error("reports weight {weight} for target group {target_group}")]
    NegativeWeight { target_group: String, weight: i32 },
    #[error(
        "cannot take weight {weight} for target group {target_group}: ELB accepts 0 to {MAX_WEIGHT}"
    )]
    WeightOutOfRange { target_group: String, weight: u32 },
    #[error("would forward to {0} target groups: ELB accepts at most {FORWARD_LIMIT}")]
    TooManyTargetGroups(usize),
    #[error(
        "cannot take a stickiness duration of {0} seconds: ELB accepts 1 to {MAX_STICKINESS_SECONDS}"
    )]
    StickinessOutOfRange(u32),
}

/// The weights of the forward action among `actions`.
pub fn weights(actions: &[Action]) -> Result<Weights, ForwardError> {
    let tuples = forward_tuples(&actions[forward_index(actions)?]);
    // A lone target group gets all the traffic whatever its weight, so a
    // missing weight only matters when there is something to share with.
    let alone = tuples.len() == 1;
    let mut out = Weights::default();
    for t in &tuples {
        let tg = t
            .target_group_arn()
            .ok_or(ForwardError::UnnamedTargetGroup)?;
        let weight = match t.weight() {
            Some(w) => u32::try_from(w).map_err(|_| ForwardError::NegativeWeight {
                target_group: tg.to_string(),
                weight: w,
            })?,
            None if alone => 1,
            None => return Err(ForwardError::MissingWeight(tg.to_string())),
        };
        out.0.insert(tg.to_string(), weight);
    }
    Ok(out)
}

/// Checks weights against what ELB accepts, before anything is sent.
pub fn check_weights(weights: &Weights) -> Result<(), ForwardError> {
    match weights.0.iter().find(|(_, w)| **w > MAX_WEIGHT) {
        Some((tg, w)) => Err(ForwardError::WeightOutOfRange {
            target_group: tg.clone(),
            weight: *w,
        }),
        None => Ok(()),
    }
}

/// The action list to send back with the named target groups at the given
/// weights (a named group that is missing is added after the others), or
/// `None` when every named group already has its weight and there is
/// nothing to send.
pub fn rewrite(actions: &[Action], wanted: &Weights) -> Result<Option<Vec<Action>>, ForwardError> {
    check_weights(wanted)?;
    let at = forward_index(actions)?;
    let mut tuples = forward_tuples(&actions[at]);
    let mut changed = false;
    for (tg, &weight) in &wanted.0 {
        // Checked above to fit ELB's range, which fits an i32.
        let weight = weight as i32;
        match tuples
            .iter_mut()
            .find(|t| t.target_group_arn() == Some(tg.as_str()))
        {
            Some(t) if t.weight == Some(weight) => {}
            Some(t) => {
                t.weight = Some(weight);
                changed = true;
            }
            None => {
                tuples.push(
                    TargetGroupTuple::builder()
                        .target_group_arn(tg)
                        .weight(weight)
                        .build(),
                );
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(None);
    }
    if tuples.len() > FORWARD_LIMIT {
        return Err(ForwardError::TooManyTargetGroups(tuples.len()));
    }
    let mut out: Vec<Action> = actions.iter().cloned().map(resendable).collect();
    let forward = &mut out[at];
    let stickiness = forward
        .forward_config
        .take()
        .and_then(|c| c.target_group_stickiness_config);
    forward.forward_config = Some(
        ForwardActionConfig::builder()
            .set_target_groups(Some(tuples))
            .set_target_group_stickiness_config(stickiness)
            .build(),
    );
    // ELB refuses TargetGroupArn next to a ForwardConfig of more than one
    // group; the ForwardConfig says everything the legacy field did.
    forward.target_group_arn = None;
    Ok(Some(out))
}

/// The longest group-level stickiness ELB accepts: 7 days
/// (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetGroupStickinessConfig.html).
pub const MAX_STICKINESS_SECONDS: u32 = 604_800;

/// The group-level stickiness of the forward action among `actions`.
pub fn stickiness(actions: &[Action]) -> Result<Stickiness, ForwardError> {
    let forward = &actions[forward_index(actions)?];
    let config = forward
        .forward_config()
        .and_then(|c| c.target_group_stickiness_config());
    Ok(Stickiness {
        enabled: config.and_then(|c| c.enabled()).unwrap_or(false),
        duration_seconds: config
            .and_then(|c| c.duration_seconds())
            .and_then(|d| u32::try_from(d).ok())
            .unwrap_or(0),
    })
}

/// The action list to send back with the forward action's stickiness set
/// to `wanted`, or `None` when it already is.
pub fn rewrite_stickiness(
    actions: &[Action],
    wanted: Stickiness,
) -> Result<Option<Vec<Action>>, ForwardError> {
    if wanted.enabled && !(1..=MAX_STICKINESS_SECONDS).contains(&wanted.duration_seconds) {
        return Err(ForwardError::StickinessOutOfRange(wanted.duration_seconds));
    }
    if stickiness(actions)? == wanted {
        return Ok(None);
    }
    let at = forward_index(actions)?;
    let tuples = forward_tuples(&actions[at]);
    let mut out: Vec<Action> = actions.iter().cloned().map(resendable).collect();
    let forward = &mut out[at];
    let config = TargetGroupStickinessConfig::builder()
        .enabled(wanted.enabled)
        .set_duration_seconds(
            (wanted.duration_seconds > 0).then_some(wanted.duration_seconds as i32),
        )
        .build();
    forward.forward_config = Some(
        ForwardActionConfig::builder()
            .set_target_groups(Some(tuples))
            .target_group_stickiness_config(config)
            .build(),
    );
    forward.target_group_arn = None;
    Ok(Some(out))
}

fn forward_index(actions: &[Action]) -> Result<usize, ForwardError> {
    actions
        .iter()
        .position(|a| a.r#type() == Some(&ActionTypeEnum::Forward))
        .ok_or_else(|| ForwardError::NoForward(describe_kinds(actions)))
}

fn describe_kinds(actions: &[Action]) -> String {
    if actions.is_empty() {
        return "no actions".to_string();
    }
    let kinds: Vec<&str> = actions
        .iter()
        .map(|a| a.r#type().map_or("an untyped action", |t| t.as_str()))
        .collect();
    kinds.join(", ")
}

/// The forward action's target groups. ForwardConfig wins when both forms
/// are present (AWS reports a single group both ways); the legacy
/// `TargetGroupArn` alone means all traffic to that group, weight 1.
fn forward_tuples(action: &Action) -> Vec<TargetGroupTuple> {
    let configured = action
        .forward_config()
        .map(|c| c.target_groups().to_vec())
        .unwrap_or_default();
    if !configured.is_empty() {
        return configured;
    }
    action
        .target_group_arn()
        .map(|tg| {
            vec![
                TargetGroupTuple::builder()
                    .target_group_arn(tg)
                    .weight(1)
                    .build(),
            ]
        })
        .unwrap_or_default()
}

/// Describe calls never return an OIDC client secret, and a modify call
/// without one is refused unless it asks to keep the existing secret.
fn resendable(mut action: Action) -> Action {
    if let Some(oidc) = action.authenticate_oidc_config.as_mut()
        && oidc.client_secret.is_none()
    {
        oidc.use_existing_client_secret = Some(true);
    }
    action
}

#[cfg(test)]
#[path = "alb_convert_tests.rs"]
mod tests;
