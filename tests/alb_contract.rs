//! The ALB adapter against the emulator: weights read and written on a
//! listener's default action and on a listener rule, everything else about
//! the route kept, missing resources named, target health counted. The load
//! balancer is set up, and its raw state read back, with the plain SDK.

#[path = "alb_contract/fixture.rs"]
mod fixture;
mod support;

use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ProtocolEnum, RuleCondition};
use cutover::cloud::{ErrorKind, LoadBalancer};
use cutover::rollout::{Route, TargetCounts, Weights};

use fixture::{
    HOST, PRIORITY, fixed_response, fixture, forward, forward_config, missing, oidc, sticky,
};

#[tokio::test]
async fn listener_weights_round_trip_and_keep_stickiness_and_settings() {
    let f = fixture().await;
    let route = Route::Listener(f.production.clone());
    assert_eq!(
        f.alb.weights(&route).await.unwrap(),
        Weights::pair(&f.blue, 100, &f.green, 0)
    );

    f.alb
        .set_weights(&route, &Weights::pair(&f.blue, 90, &f.green, 10))
        .await
        .unwrap();
    // One read, then one write of the scarce mutation budget.
    assert_eq!(f.elb_calls("DescribeListeners"), 2);
    assert_eq!(f.elb_calls("ModifyListener"), 1);

    assert_eq!(
        f.alb.weights(&route).await.unwrap(),
        Weights::pair(&f.blue, 90, &f.green, 10)
    );
    let actions = f.raw_listener_actions(&f.production).await;
    assert_eq!(actions.len(), 1);
    let config = forward_config(&actions);
    assert_eq!(config.target_group_stickiness_config(), Some(&sticky()));
    let groups: Vec<(&str, i32)> = config
        .target_groups()
        .iter()
        .map(|t| (t.target_group_arn().unwrap(), t.weight().unwrap()))
        .collect();
    assert_eq!(groups, [(f.blue.as_str(), 90), (f.green.as_str(), 10)]);
    let listener = f
        .elb
        .describe_listeners()
        .listener_arns(&f.production)
        .send()
        .await
        .unwrap()
        .listeners
        .unwrap()
        .remove(0);
    assert_eq!(listener.port(), Some(80));
    assert_eq!(listener.protocol(), Some(&ProtocolEnum::Http));
}

#[tokio::test]
async fn rule_weights_round_trip_and_keep_conditions_and_priority() {
    let f = fixture().await;
    let route = Route::Rule(f.rule.clone());
    assert_eq!(
        f.alb.weights(&route).await.unwrap(),
        Weights::pair(&f.blue, 100, &f.green, 0)
    );

    f.alb
        .set_weights(&route, &Weights::pair(&f.blue, 0, &f.green, 100))
        .await
        .unwrap();

    assert_eq!(
        f.alb.weights(&route).await.unwrap(),
        Weights::pair(&f.blue, 0, &f.green, 100)
    );
    let rule = f.raw_rule(&f.rule).await;
    assert_eq!(rule.priority(), Some(PRIORITY.to_string().as_str()));
    let conditions = rule.conditions();
    assert_eq!(conditions.len(), 1);
    assert_eq!(conditions[0].field(), Some("host-header"));
    let hosts = conditions[0].host_header_config().map(|c| c.values());
    assert_eq!(hosts, Some(&[HOST.to_string()][..]));
    // The listener the rule hangs on is not touched.
    let default = f.raw_listener_actions(&f.test_listener).await;
    assert_eq!(default, [fixed_response()]);
}

#[tokio::test]
async fn actions_before_the_forward_are_kept_in_order() {
    let f = fixture().await;
    let mut fwd = forward(&[(&f.blue, 100), (&f.green, 0)], Some(sticky()));
    fwd.order = Some(2);
    let rule = f
        .elb
        .create_rule()
        .listener_arn(&f.test_listener)
        .priority(20)
        .conditions(
            RuleCondition::builder()
                .field("path-pattern")
                .values("/login/*")
                .build(),
        )
        .actions(oidc())
        .actions(fwd)
        .send()
        .await
        .unwrap()
        .rules
        .unwrap()
        .remove(0)
        .rule_arn
        .unwrap();
    let route = Route::Rule(rule.clone());

    f.alb
        .set_weights(&route, &Weights::pair(&f.blue, 50, &f.green, 50))
        .await
        .unwrap();

    let actions = f.raw_rule(&rule).await.actions.unwrap();
    let kinds: Vec<_> = actions.iter().map(|a| a.r#type().cloned()).collect();
    assert_eq!(
        kinds,
        [
            Some(ActionTypeEnum::AuthenticateOidc),
            Some(ActionTypeEnum::Forward)
        ]
    );
    let (read, sent) = (
        actions[0].authenticate_oidc_config().unwrap(),
        oidc().authenticate_oidc_config.unwrap(),
    );
    assert_eq!(read.issuer(), sent.issuer());
    assert_eq!(read.client_id(), sent.client_id());
    assert_eq!(read.token_endpoint(), sent.token_endpoint());
    assert_eq!(actions[0].order(), Some(1));
    assert_eq!(actions[1].order(), Some(2));
    assert_eq!(
        forward_config(&actions).target_group_stickiness_config(),
        Some(&sticky())
    );
    assert_eq!(
        f.alb.weights(&route).await.unwrap(),
        Weights::pair(&f.blue, 50, &f.green, 50)
    );
}

#[tokio::test]
async fn a_legacy_single_group_forward_reads_as_weight_one_and_gains_the_new_group() {
    let f = fixture().await;
    f.elb
        .modify_listener()
        .listener_arn(&f.production)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&f.blue)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let route = Route::Listener(f.production.clone());
    let mut only_blue = Weights::default();
    only_blue.0.insert(f.blue.clone(), 1);
    assert_eq!(f.alb.weights(&route).await.unwrap(), only_blue);

    f.alb
        .set_weights(&route, &Weights::pair(&f.blue, 80, &f.green, 20))
        .await
        .unwrap();

    assert_eq!(
        f.alb.weights(&route).await.unwrap(),
        Weights::pair(&f.blue, 80, &f.green, 20)
    );
    let actions = f.raw_listener_actions(&f.production).await;
    assert_eq!(actions[0].target_group_arn(), None);
}

#[tokio::test]
async fn a_route_without_a_forward_action_is_invalid_and_says_what_it_has() {
    let f = fixture().await;
    let route = Route::Listener(f.test_listener.clone());
    let err = f.alb.weights(&route).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert_eq!(err.operation, "elasticloadbalancing:DescribeListeners");
    assert_eq!(
        err.message,
        format!(
            "listener {} has no forward action (it has fixed-response)",
            f.test_listener
        )
    );
    let err = f
        .alb
        .set_weights(&route, &Weights::pair(&f.blue, 1, &f.green, 0))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert_eq!(
        f.raw_listener_actions(&f.test_listener).await,
        [fixed_response()]
    );
}

#[tokio::test]
async fn weights_out_of_range_are_refused_and_nothing_changes() {
    let f = fixture().await;
    let route = Route::Listener(f.production.clone());
    let err = f
        .alb
        .set_weights(&route, &Weights::pair(&f.blue, 1000, &f.green, 0))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert_eq!(err.operation, "elasticloadbalancing:ModifyListener");
    assert!(err.message.contains("1000"), "{err}");
    assert_eq!(f.calls.total(), 0, "refused before any request");
    assert_eq!(
        f.alb.weights(&route).await.unwrap(),
        Weights::pair(&f.blue, 100, &f.green, 0)
    );
}

#[tokio::test]
async fn setting_the_weights_already_in_place_writes_nothing() {
    let f = fixture().await;
    let route = Route::Rule(f.rule.clone());
    let before = f.raw_rule(&f.rule).await;
    f.alb
        .set_weights(&route, &Weights::pair(&f.blue, 100, &f.green, 0))
        .await
        .unwrap();
    assert_eq!(f.raw_rule(&f.rule).await, before);
    assert_eq!(f.elb_calls("DescribeRules"), 1);
    assert_eq!(f.elb_calls("ModifyRule"), 0);
}

#[tokio::test]
async fn missing_listeners_rules_and_target_groups_are_not_found_by_arn() {
    let f = fixture().await;
    let weights = Weights::pair(&f.blue, 50, &f.green, 50);

    let listener = missing(&f.production);
    let route = Route::Listener(listener.clone());
    for err in [
        f.alb.weights(&route).await.unwrap_err(),
        f.alb.set_weights(&route, &weights).await.unwrap_err(),
    ] {
        assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
        assert_eq!(err.operation, "elasticloadbalancing:DescribeListeners");
        assert_eq!(err.message, format!("listener {listener} not found"));
    }

    let rule = missing(&f.rule);
    let route = Route::Rule(rule.clone());
    for err in [
        f.alb.weights(&route).await.unwrap_err(),
        f.alb.set_weights(&route, &weights).await.unwrap_err(),
    ] {
        assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
        assert_eq!(err.operation, "elasticloadbalancing:DescribeRules");
        assert_eq!(err.message, format!("rule {rule} not found"));
    }

    let tg = missing(&f.blue);
    let err = f.alb.target_health(&tg).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert_eq!(err.operation, "elasticloadbalancing:DescribeTargetHealth");
    assert_eq!(err.message, format!("target group {tg} not found"));
}

#[tokio::test]
async fn target_health_counts_registered_targets() {
    let f = fixture().await;
    f.register(&f.blue, &["10.0.1.10", "10.0.1.11", "10.0.2.10"])
        .await;

    assert_eq!(
        f.alb.target_health(&f.blue).await.unwrap(),
        TargetCounts {
            healthy: 3,
            ..TargetCounts::default()
        }
    );
    assert_eq!(
        f.alb.target_health(&f.green).await.unwrap(),
        TargetCounts::default()
    );
}

#[tokio::test]
async fn a_missing_target_group_in_new_weights_is_not_found_and_the_rule_is_kept() {
    let f = fixture().await;
    let route = Route::Rule(f.rule.clone());
    let before = f.raw_rule(&f.rule).await;
    let gone = missing(&f.green);

    let err = f
        .alb
        .set_weights(&route, &Weights::pair(&f.blue, 90, &gone, 10))
        .await
        .unwrap_err();

    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert_eq!(err.operation, "elasticloadbalancing:ModifyRule");
    assert!(err.message.contains(&gone), "{err}");
    assert_eq!(f.raw_rule(&f.rule).await, before);
}

#[tokio::test]
async fn several_routes_are_read_in_one_call_per_kind_and_a_missing_one_fails_alone() {
    let f = fixture().await;
    let listeners = [
        Route::Listener(f.production.clone()),
        Route::Listener(f.test_listener.clone()),
    ];
    let rule = Route::Rule(f.rule.clone());
    let before_listeners = f.elb_calls("DescribeListeners");
    let before_rules = f.elb_calls("DescribeRules");
    let routes = [listeners[0].clone(), rule.clone(), listeners[1].clone()];
    let answers = f.alb.weights_of(&routes).await;
    assert_eq!(f.elb_calls("DescribeListeners") - before_listeners, 1);
    assert_eq!(f.elb_calls("DescribeRules") - before_rules, 1);
    assert_eq!(answers.len(), 3);
    // The same answers as reading each route alone.
    assert_eq!(answers[0], f.alb.weights(&listeners[0]).await);
    assert_eq!(answers[1], f.alb.weights(&rule).await);
    // The test listener's default action is a fixed response: its own
    // answer says so, and the others are unaffected.
    assert_eq!(answers[2].as_ref().unwrap_err().kind, ErrorKind::Invalid);

    let gone = Route::Listener(missing(&f.production));
    let answers = f
        .alb
        .weights_of(&[gone.clone(), listeners[0].clone()])
        .await;
    let err = answers[0].as_ref().unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert_eq!(err.message, format!("{gone} not found"));
    assert!(answers[1].is_ok(), "{:?}", answers[1]);
}
