use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, AuthenticateOidcActionConfig, FixedResponseActionConfig,
    ForwardActionConfig, TargetGroupStickinessConfig, TargetGroupTuple,
};

use super::*;

const BLUE: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-blue/1";
const GREEN: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-green/2";
const OTHER: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-other/3";

fn tuple(tg: &str, weight: Option<i32>) -> TargetGroupTuple {
    TargetGroupTuple::builder()
        .target_group_arn(tg)
        .set_weight(weight)
        .build()
}

fn sticky() -> TargetGroupStickinessConfig {
    TargetGroupStickinessConfig::builder()
        .enabled(true)
        .duration_seconds(3600)
        .build()
}

fn forward(groups: &[(&str, i32)], stickiness: Option<TargetGroupStickinessConfig>) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .set_target_groups(Some(
                    groups.iter().map(|(tg, w)| tuple(tg, Some(*w))).collect(),
                ))
                .set_target_group_stickiness_config(stickiness)
                .build(),
        )
        .build()
}

fn legacy(tg: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(tg)
        .build()
}

fn oidc() -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::AuthenticateOidc)
        .order(1)
        .authenticate_oidc_config(
            AuthenticateOidcActionConfig::builder()
                .issuer("https://idp.example.com")
                .authorization_endpoint("https://idp.example.com/auth")
                .token_endpoint("https://idp.example.com/token")
                .user_info_endpoint("https://idp.example.com/userinfo")
                .client_id("cutover")
                .build(),
        )
        .build()
}

fn fixed(status: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::FixedResponse)
        .fixed_response_config(
            FixedResponseActionConfig::builder()
                .status_code(status)
                .content_type("text/plain")
                .message_body("gone")
                .build(),
        )
        .build()
}

fn forward_of(actions: &[Action]) -> &Action {
    actions
        .iter()
        .find(|a| a.r#type() == Some(&ActionTypeEnum::Forward))
        .unwrap()
}

#[test]
fn reads_weighted_forward_config() {
    let actions = [forward(&[(BLUE, 90), (GREEN, 10)], None)];
    assert_eq!(
        weights(&actions).unwrap(),
        Weights::pair(BLUE, 90, GREEN, 10)
    );
}

#[test]
fn reads_the_legacy_single_group_form_as_weight_one() {
    let w = weights(&[legacy(BLUE)]).unwrap();
    assert_eq!(w.0.len(), 1);
    assert_eq!(w.get(BLUE), 1);
}

#[test]
fn forward_config_wins_over_the_legacy_field() {
    let mut action = forward(&[(BLUE, 7)], None);
    action.target_group_arn = Some(BLUE.to_string());
    assert_eq!(weights(&[action]).unwrap().get(BLUE), 7);
}

#[test]
fn a_missing_weight_is_an_error_unless_the_group_is_alone() {
    let alone = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(tuple(BLUE, None))
                .build(),
        )
        .build();
    assert_eq!(weights(&[alone]).unwrap().get(BLUE), 1);

    let shared = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(tuple(BLUE, Some(1)))
                .target_groups(tuple(GREEN, None))
                .build(),
        )
        .build();
    assert_eq!(
        weights(&[shared]),
        Err(ForwardError::MissingWeight(GREEN.to_string()))
    );
}

#[test]
fn no_forward_action_says_what_is_there() {
    let err = weights(&[fixed("503")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "has no forward action (it has fixed-response)"
    );
    let err = weights(&[]).unwrap_err();
    assert_eq!(err.to_string(), "has no forward action (it has no actions)");
}

#[test]
fn rewrite_keeps_stickiness_and_group_order() {
    let actions = [forward(&[(GREEN, 0), (BLUE, 100)], Some(sticky()))];
    let out = rewrite(&actions, &Weights::pair(BLUE, 20, GREEN, 80))
        .unwrap()
        .unwrap();
    let config = forward_of(&out).forward_config().unwrap();
    assert_eq!(config.target_group_stickiness_config(), Some(&sticky()));
    assert_eq!(
        config.target_groups(),
        &[tuple(GREEN, Some(80)), tuple(BLUE, Some(20))]
    );
}

#[test]
fn rewrite_keeps_other_actions_in_order_and_keeps_the_oidc_secret() {
    let mut fwd = forward(&[(BLUE, 100), (GREEN, 0)], None);
    fwd.order = Some(2);
    let actions = [oidc(), fwd];
    let out = rewrite(&actions, &Weights::pair(BLUE, 50, GREEN, 50))
        .unwrap()
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].r#type(), Some(&ActionTypeEnum::AuthenticateOidc));
    assert_eq!(out[0].order(), Some(1));
    let sent = out[0].authenticate_oidc_config().unwrap();
    let read = actions[0].authenticate_oidc_config().unwrap();
    assert_eq!(sent.issuer(), read.issuer());
    assert_eq!(sent.client_id(), read.client_id());
    assert_eq!(sent.use_existing_client_secret(), Some(true));
    assert_eq!(out[1].order(), Some(2));
    assert_eq!(weights(&out).unwrap(), Weights::pair(BLUE, 50, GREEN, 50));
}

#[test]
fn rewrite_leaves_unnamed_groups_alone() {
    let actions = [forward(&[(BLUE, 90), (OTHER, 10)], None)];
    let mut wanted = Weights::default();
    wanted.0.insert(BLUE.to_string(), 80);
    let out = rewrite(&actions, &wanted).unwrap().unwrap();
    assert_eq!(weights(&out).unwrap(), Weights::pair(BLUE, 80, OTHER, 10));
}

#[test]
fn rewrite_adds_a_missing_group_after_the_others() {
    let actions = [forward(&[(BLUE, 100)], Some(sticky()))];
    let out = rewrite(&actions, &Weights::pair(BLUE, 90, GREEN, 10))
        .unwrap()
        .unwrap();
    let config = forward_of(&out).forward_config().unwrap();
    assert_eq!(
        config.target_groups(),
        &[tuple(BLUE, Some(90)), tuple(GREEN, Some(10))]
    );
    assert_eq!(config.target_group_stickiness_config(), Some(&sticky()));
}

#[test]
fn rewrite_turns_the_legacy_form_into_a_forward_config() {
    let out = rewrite(&[legacy(BLUE)], &Weights::pair(BLUE, 100, GREEN, 0))
        .unwrap()
        .unwrap();
    let action = forward_of(&out);
    assert_eq!(action.target_group_arn(), None);
    assert_eq!(
        action.forward_config().unwrap().target_groups(),
        &[tuple(BLUE, Some(100)), tuple(GREEN, Some(0))]
    );
}

#[test]
fn rewrite_with_nothing_to_change_sends_nothing() {
    let actions = [forward(&[(BLUE, 90), (GREEN, 10)], Some(sticky()))];
    assert_eq!(
        rewrite(&actions, &Weights::pair(BLUE, 90, GREEN, 10)),
        Ok(None)
    );
    let mut legacy_weight = Weights::default();
    legacy_weight.0.insert(BLUE.to_string(), 1);
    assert_eq!(rewrite(&[legacy(BLUE)], &legacy_weight), Ok(None));
}

#[test]
fn weights_above_999_are_refused_before_sending() {
    let actions = [forward(&[(BLUE, 100), (GREEN, 0)], None)];
    assert_eq!(
        rewrite(&actions, &Weights::pair(BLUE, 0, GREEN, 1000)),
        Err(ForwardError::WeightOutOfRange {
            target_group: GREEN.to_string(),
            weight: 1000,
        })
    );
    assert!(rewrite(&actions, &Weights::pair(BLUE, 0, GREEN, 999)).is_ok());
}

#[test]
fn rewrite_refuses_a_sixth_group() {
    let tgs: Vec<String> = (0..5).map(|i| format!("{OTHER}{i}")).collect();
    let groups: Vec<(&str, i32)> = tgs.iter().map(|tg| (tg.as_str(), 1)).collect();
    let actions = [forward(&groups, None)];
    let mut wanted = Weights::default();
    wanted.0.insert(GREEN.to_string(), 1);
    assert_eq!(
        rewrite(&actions, &wanted),
        Err(ForwardError::TooManyTargetGroups(6))
    );
}

#[test]
fn rewrite_without_a_forward_action_is_refused() {
    assert!(matches!(
        rewrite(&[fixed("404")], &Weights::pair(BLUE, 1, GREEN, 0)),
        Err(ForwardError::NoForward(_))
    ));
}

#[test]
fn stickiness_reads_the_forward_actions_group_stickiness() {
    let on = Stickiness {
        enabled: true,
        duration_seconds: 3600,
    };
    assert_eq!(
        stickiness(&[forward(&[(BLUE, 100)], Some(sticky()))]).unwrap(),
        on
    );
    assert_eq!(
        stickiness(&[forward(&[(BLUE, 100)], None)]).unwrap(),
        Stickiness::default()
    );
    assert_eq!(stickiness(&[legacy(BLUE)]).unwrap(), Stickiness::default());
}

#[test]
fn rewrite_stickiness_turns_it_off_keeping_groups_weights_and_other_actions() {
    let mut fwd = forward(&[(GREEN, 0), (BLUE, 100)], Some(sticky()));
    fwd.order = Some(2);
    let actions = [oidc(), fwd];
    let off = Stickiness {
        enabled: false,
        duration_seconds: 3600,
    };
    let out = rewrite_stickiness(&actions, off).unwrap().unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].r#type(), Some(&ActionTypeEnum::AuthenticateOidc));
    let config = forward_of(&out).forward_config().unwrap();
    assert_eq!(
        config.target_groups(),
        &[tuple(GREEN, Some(0)), tuple(BLUE, Some(100))]
    );
    assert_eq!(stickiness(&out).unwrap(), off);
    assert_eq!(forward_of(&out).order(), Some(2));
    // Already as wanted: nothing to send.
    assert_eq!(rewrite_stickiness(&out, off).unwrap(), None);
}

#[test]
fn rewrite_stickiness_refuses_a_duration_elb_does_not_accept() {
    let actions = [forward(&[(BLUE, 100)], None)];
    for d in [0, 604_801] {
        let err = rewrite_stickiness(
            &actions,
            Stickiness {
                enabled: true,
                duration_seconds: d,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("1 to 604800"), "{err}");
    }
}
