//! SDK configuration that points at the emulator.

use std::sync::Once;

use aws_config::SdkConfig;
use cutover::aws::{Endpoint, sdk_config};

use super::emulator::Emulator;

pub const REGION: &str = "us-east-1";

/// Credentials still come from the standard provider chain, as in
/// production: the emulator accepts any, so the test process gets dummy
/// ones in its environment, and no developer profile is read by accident.
fn dummy_credentials() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: set once, before any SDK client of this test process
        // exists; the harness's own threads only read the environment
        // through std, which serializes with this.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
            std::env::remove_var("AWS_SESSION_TOKEN");
            std::env::remove_var("AWS_PROFILE");
            std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/cutover-test");
            std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/cutover-test");
            std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        }
    });
}

pub async fn config(emulator: &Emulator) -> SdkConfig {
    config_at(emulator.endpoint()).await
}

/// The same, for an endpoint in front of the emulator (a proxy).
pub async fn config_at(url: String) -> SdkConfig {
    dummy_credentials();
    sdk_config(&Endpoint {
        region: Some(REGION.to_string()),
        url: Some(url),
    })
    .await
}

/// A VPC with a subnet in each of two zones, made in the emulator: what a
/// load balancer and an awsvpc service need.
pub struct Network {
    pub vpc: String,
    pub subnets: Vec<String>,
}

/// Creates [`Network`] through the EC2 Query API over plain HTTP. The tests
/// need no more of EC2 than these two calls, and the EC2 SDK crate is among
/// the slowest to compile here. The emulator does not check signatures; it
/// reads the service and region from the credential scope.
pub async fn network(emulator: &Emulator) -> Network {
    let vpc = ec2_query(
        emulator,
        &[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")],
        "vpcId",
    )
    .await;
    let mut subnets = Vec::new();
    for (cidr, zone) in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")] {
        subnets.push(
            ec2_query(
                emulator,
                &[
                    ("Action", "CreateSubnet"),
                    ("VpcId", &vpc),
                    ("CidrBlock", cidr),
                    ("AvailabilityZone", zone),
                ],
                "subnetId",
            )
            .await,
        );
    }
    Network { vpc, subnets }
}

/// One EC2 Query API call; returns the text of the first `<field>` element
/// of the reply.
async fn ec2_query(emulator: &Emulator, params: &[(&str, &str)], field: &str) -> String {
    let body = params
        .iter()
        .chain(&[("Version", "2016-11-15")])
        .map(|(k, v)| format!("{k}={}", v.replace('/', "%2F")))
        .collect::<Vec<_>>()
        .join("&");
    let reply = reqwest::Client::new()
        .post(emulator.endpoint())
        .header(
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/ec2/aws4_request, \
                 SignedHeaders=host, Signature=0"
            ),
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("the emulator answers EC2 calls");
    let status = reply.status();
    let text = reply.text().await.expect("an EC2 reply body");
    assert!(status.is_success(), "EC2 {params:?}: {status} {text}");
    let open = format!("<{field}>");
    let start = text.find(&open).map(|i| i + open.len());
    let end = start.and_then(|s| text[s..].find('<').map(|e| s + e));
    match (start, end) {
        (Some(s), Some(e)) => text[s..e].to_string(),
        _ => panic!("EC2 {params:?}: no <{field}> in {text}"),
    }
}

/// A load balancer `name` in `subnets`, and the HTTP target groups
/// `web-blue` and `web-green` of IP targets on port 8080 in `vpc`, as the
/// emulator tests' services use them: the three ARNs.
pub async fn blue_green(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    name: &str,
    subnets: &[String],
    vpc: &str,
) -> (String, String, String) {
    use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetTypeEnum};
    let lb = elb
        .create_load_balancer()
        .name(name)
        .set_subnets(Some(subnets.to_vec()))
        .send()
        .await
        .unwrap()
        .load_balancers
        .unwrap()
        .remove(0)
        .load_balancer_arn
        .unwrap();
    let mut groups = Vec::new();
    for group in ["web-blue", "web-green"] {
        let tg = elb
            .create_target_group()
            .name(group)
            .protocol(ProtocolEnum::Http)
            .port(8080)
            .vpc_id(vpc)
            .target_type(TargetTypeEnum::Ip)
            .send()
            .await
            .unwrap();
        groups.push(
            tg.target_groups
                .unwrap()
                .remove(0)
                .target_group_arn
                .unwrap(),
        );
    }
    let [blue, green] = <[String; 2]>::try_from(groups).unwrap();
    (lb, blue, green)
}
