//! The load balancer every test starts from, built with the plain SDK, and
//! raw reads for assertions.

use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, AuthenticateOidcActionConfig, FixedResponseActionConfig,
    ForwardActionConfig, HostHeaderConditionConfig, ProtocolEnum, Rule, RuleCondition,
    TargetDescription, TargetGroupStickinessConfig, TargetGroupTuple,
};
use cutover::aws::alb::AlbAdapter;
use cutover::aws::calls::ApiCalls;

use crate::support;
use crate::support::emulator::{Exclusive, exclusive};

pub const HOST: &str = "web.example.com";
pub const PRIORITY: i32 = 10;
pub const STICKY_SECONDS: i32 = 300;

pub struct Fixture {
    // Holds the emulator for this test alone until the test ends.
    _emulator: Exclusive,
    pub alb: AlbAdapter,
    /// The adapter's requests only: setup and raw reads are not counted.
    pub calls: ApiCalls,
    /// Someone else's view of the load balancer: the raw SDK, not cutover.
    pub elb: Client,
    pub blue: String,
    pub green: String,
    /// Port 80: a weighted, sticky forward as its default action.
    pub production: String,
    /// Port 8080: a fixed response by default, and `rule`.
    pub test_listener: String,
    /// On the test listener: host-header condition, forward to both groups.
    pub rule: String,
}

pub async fn fixture() -> Fixture {
    let emulator = exclusive().await;
    let config = support::aws::config(&emulator).await;
    let elb = Client::new(&config);

    let support::aws::Network { vpc, subnets } = support::aws::network(&emulator).await;
    let (lb, blue, green) = support::aws::blue_green(&elb, "web", &subnets, &vpc).await;

    let production = elb
        .create_listener()
        .load_balancer_arn(&lb)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(forward(&[(&blue, 100), (&green, 0)], Some(sticky())))
        .send()
        .await
        .unwrap()
        .listeners
        .unwrap()
        .remove(0)
        .listener_arn
        .unwrap();
    let test_listener = elb
        .create_listener()
        .load_balancer_arn(&lb)
        .protocol(ProtocolEnum::Http)
        .port(8080)
        .default_actions(fixed_response())
        .send()
        .await
        .unwrap()
        .listeners
        .unwrap()
        .remove(0)
        .listener_arn
        .unwrap();
    let rule = elb
        .create_rule()
        .listener_arn(&test_listener)
        .priority(PRIORITY)
        .conditions(host_header())
        .actions(forward(&[(&blue, 100), (&green, 0)], None))
        .send()
        .await
        .unwrap()
        .rules
        .unwrap()
        .remove(0)
        .rule_arn
        .unwrap();

    let calls = ApiCalls::new();
    Fixture {
        _emulator: emulator,
        alb: AlbAdapter::counted(&config, &calls),
        calls,
        elb,
        blue,
        green,
        production,
        test_listener,
        rule,
    }
}

pub fn forward(groups: &[(&str, i32)], stickiness: Option<TargetGroupStickinessConfig>) -> Action {
    let mut config = ForwardActionConfig::builder().set_target_group_stickiness_config(stickiness);
    for (tg, weight) in groups {
        config = config.target_groups(
            TargetGroupTuple::builder()
                .target_group_arn(*tg)
                .weight(*weight)
                .build(),
        );
    }
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(config.build())
        .build()
}

pub fn sticky() -> TargetGroupStickinessConfig {
    TargetGroupStickinessConfig::builder()
        .enabled(true)
        .duration_seconds(STICKY_SECONDS)
        .build()
}

pub fn fixed_response() -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::FixedResponse)
        .fixed_response_config(
            FixedResponseActionConfig::builder()
                .status_code("404")
                .content_type("text/plain")
                .message_body("no route")
                .build(),
        )
        .build()
}

pub fn host_header() -> RuleCondition {
    RuleCondition::builder()
        .field("host-header")
        .host_header_config(HostHeaderConditionConfig::builder().values(HOST).build())
        .build()
}

pub fn oidc() -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::AuthenticateOidc)
        .order(1)
        .authenticate_oidc_config(
            AuthenticateOidcActionConfig::builder()
                .issuer("https://idp.example.com")
                .authorization_endpoint("https://idp.example.com/authorize")
                .token_endpoint("https://idp.example.com/token")
                .user_info_endpoint("https://idp.example.com/userinfo")
                .client_id("web")
                .client_secret("s3cret")
                .build(),
        )
        .build()
}

impl Fixture {
    pub async fn raw_listener_actions(&self, arn: &str) -> Vec<Action> {
        self.elb
            .describe_listeners()
            .listener_arns(arn)
            .send()
            .await
            .unwrap()
            .listeners
            .unwrap()
            .remove(0)
            .default_actions
            .unwrap()
    }

    pub async fn raw_rule(&self, arn: &str) -> Rule {
        self.elb
            .describe_rules()
            .rule_arns(arn)
            .send()
            .await
            .unwrap()
            .rules
            .unwrap()
            .remove(0)
    }

    pub async fn register(&self, tg: &str, ips: &[&str]) {
        let mut call = self.elb.register_targets().target_group_arn(tg);
        for ip in ips {
            call = call.targets(TargetDescription::builder().id(*ip).port(8080).build());
        }
        call.send().await.unwrap();
    }
}

pub fn forward_config(actions: &[Action]) -> &ForwardActionConfig {
    actions
        .iter()
        .find(|a| a.r#type() == Some(&ActionTypeEnum::Forward))
        .and_then(|a| a.forward_config())
        .unwrap()
}

impl Fixture {
    /// Attempts the adapter made of an ELB operation.
    pub fn elb_calls(&self, operation: &str) -> u64 {
        self.calls.count("elasticloadbalancing", operation)
    }
}

/// A well-formed ARN of the same kind that names nothing.
pub fn missing(arn: &str) -> String {
    let (head, _) = arn.rsplit_once('/').unwrap();
    format!("{head}/0123456789abcdef")
}
