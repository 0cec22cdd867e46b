//! One `cutover run` daemon rolls services in three places of one emulator:
//! `prod/web` in its own account and region, `us-west-2:prod/web` in its own
//! account in another region, and `eu-west-1:210987654321:prod/web` in
//! another account, reached through STS AssumeRole (the emulator hands out
//! credentials of the account the role ARN names, and routes every later
//! call by their access key). The three share names, and not a resource.

mod support;
#[path = "e2e/world.rs"]
#[allow(dead_code)]
mod world;

use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_ecs::types::{
    AwsVpcConfiguration, Compatibility, ContainerDefinition, DeploymentController,
    DeploymentControllerType, LaunchType, LoadBalancer, NetworkConfiguration, NetworkMode,
    PortMapping, Scale, ScaleUnit,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, ProtocolEnum, TargetDescription, TargetGroupTuple,
};
use serde_json::{Value, json};

use world::{Daemon, TABLE, init_table};

const HOME_REGION: &str = "us-east-1";
const OTHER_ACCOUNT: &str = "210987654321";
const ROLE: &str = "arn:aws:iam::210987654321:role/cutover-target";
const LIMIT: Duration = Duration::from_secs(60);

/// One ECS service behind an ALB, in the account and region `sdk` reaches.
struct Place {
    key: String,
    ecs: aws_sdk_ecs::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    blue: String,
    green: String,
    listener: String,
    region_arn: String,
}

/// The emulator's EC2 through its Query API (the EC2 SDK crate is slow to
/// build): `account` picks the account for this setup call alone.
async fn ec2(
    endpoint: &str,
    region: &str,
    account: Option<&str>,
    params: &[(&str, &str)],
    field: &str,
) -> String {
    let body = params
        .iter()
        .chain(&[("Version", "2016-11-15")])
        .map(|(k, v)| format!("{k}={}", v.replace('/', "%2F")))
        .collect::<Vec<_>>()
        .join("&");
    let mut req = reqwest::Client::new()
        .post(endpoint)
        .header(
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/ec2/aws4_request, \
                 SignedHeaders=host, Signature=0"
            ),
        )
        .header("Content-Type", "application/x-www-form-urlencoded");
    if let Some(account) = account {
        req = req.header("x-moto-account-id", account);
    }
    let text = req.body(body).send().await.unwrap().text().await.unwrap();
    let open = format!("<{field}>");
    let start = text
        .find(&open)
        .map(|i| i + open.len())
        .unwrap_or_else(|| panic!("{text}"));
    let end = start + text[start..].find('<').unwrap();
    text[start..end].to_string()
}

async fn place(endpoint: &str, sdk: &SdkConfig, account: Option<&str>, key: &str) -> Place {
    let region = sdk.region().unwrap().to_string();
    let vpc = ec2(
        endpoint,
        &region,
        account,
        &[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")],
        "vpcId",
    )
    .await;
    let mut subnets = vec![];
    for (cidr, zone) in [("10.0.1.0/24", "a"), ("10.0.2.0/24", "b")] {
        let zone = format!("{region}{zone}");
        subnets.push(
            ec2(
                endpoint,
                &region,
                account,
                &[
                    ("Action", "CreateSubnet"),
                    ("VpcId", &vpc),
                    ("CidrBlock", cidr),
                    ("AvailabilityZone", &zone),
                ],
                "subnetId",
            )
            .await,
        );
    }
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    let ecs = aws_sdk_ecs::Client::new(sdk);
    let (lb, blue, green) = support::aws::blue_green(&elb, "shop", &subnets, &vpc).await;
    let forward = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(
                    TargetGroupTuple::builder()
                        .target_group_arn(&blue)
                        .weight(100)
                        .build(),
                )
                .target_groups(
                    TargetGroupTuple::builder()
                        .target_group_arn(&green)
                        .weight(0)
                        .build(),
                )
                .build(),
        )
        .build();
    let listener = elb
        .create_listener()
        .load_balancer_arn(&lb)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(forward)
        .send()
        .await
        .unwrap()
        .listeners
        .unwrap()
        .remove(0)
        .listener_arn
        .unwrap();
    ecs.create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .unwrap();
    for image in ["registry.example/web:1", "registry.example/web:2"] {
        ecs.register_task_definition()
            .family("web")
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image(image)
                    .memory(512)
                    .port_mappings(PortMapping::builder().container_port(8080).build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    ecs.create_service()
        .cluster("prod")
        .service_name("web")
        .desired_count(0)
        .deployment_controller(
            DeploymentController::builder()
                .r#type(DeploymentControllerType::External)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let ts = ecs
        .create_task_set()
        .cluster("prod")
        .service("web")
        .task_definition("web:1")
        .launch_type(LaunchType::Fargate)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .set_subnets(Some(subnets))
                        .security_groups("sg-0123456789abcdef0")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .load_balancers(
            LoadBalancer::builder()
                .target_group_arn(&blue)
                .container_name("app")
                .container_port(8080)
                .build(),
        )
        .scale(
            Scale::builder()
                .unit(ScaleUnit::Percent)
                .value(100.0)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .task_set
        .unwrap()
        .task_set_arn
        .unwrap();
    ecs.update_service_primary_task_set()
        .cluster("prod")
        .service("web")
        .primary_task_set(&ts)
        .send()
        .await
        .unwrap();
    let p = Place {
        key: key.to_string(),
        ecs,
        elb,
        blue,
        green,
        region_arn: listener.split(':').nth(3).unwrap().to_string()
            + ":"
            + listener.split(':').nth(4).unwrap(),
        listener,
    };
    p.register(&p.blue.clone(), 10).await;
    p
}

impl Place {
    fn record(&self, extra: Value) -> Value {
        let mut r = json!({
            "service": self.key,
            "task_definition": "web:2",
            "container": "app",
            "container_port": 8080,
            "production_listener": self.listener,
            "target_groups": [self.blue, self.green],
            "strategy": "all_at_once",
            "bake": "1s",
            "progress_deadline": "45s",
        });
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    }

    /// What ECS would do when tasks start: IP targets in the group.
    async fn register(&self, target_group: &str, octet: u8) {
        let mut req = self.elb.register_targets().target_group_arn(target_group);
        for i in 1..=2 {
            req = req.targets(
                TargetDescription::builder()
                    .id(format!("10.0.{octet}.{i}"))
                    .port(8080)
                    .build(),
            );
        }
        req.send().await.unwrap();
    }

    /// Whether cutover made a task set here.
    async fn has_candidate(&self) -> bool {
        let svc = self
            .ecs
            .describe_services()
            .cluster("prod")
            .services("web")
            .send()
            .await
            .unwrap();
        svc.services()[0]
            .task_sets()
            .iter()
            .any(|t| t.external_id().is_some_and(|e| e.starts_with("cutover:")))
    }

    async fn primary_task_definition(&self) -> String {
        let svc = self
            .ecs
            .describe_services()
            .cluster("prod")
            .services("web")
            .send()
            .await
            .unwrap();
        svc.services()[0]
            .task_sets()
            .iter()
            .find(|t| t.status() == Some("PRIMARY"))
            .and_then(|t| t.task_definition())
            .unwrap_or_default()
            .to_string()
    }
}

async fn home_in(endpoint: &str, region: &str) -> SdkConfig {
    support::aws::config_at(endpoint.to_string())
        .await
        .to_builder()
        .region(Region::new(region.to_string()))
        .build()
}

/// The other account, as a team there sees it: through the role.
async fn assumed(endpoint: &str, region: &str) -> SdkConfig {
    let base = home_in(endpoint, region).await;
    let provider = aws_config::sts::AssumeRoleProvider::builder(ROLE)
        .session_name("cutover-test")
        .configure(&base)
        .build()
        .await;
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(provider)
        .load()
        .await
}

async fn status(ddb: &aws_sdk_dynamodb::Client, key: &str) -> Option<Value> {
    let out = ddb
        .get_item()
        .table_name(TABLE)
        .key("service", AttributeValue::S(key.to_string()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let v: Value = serde_dynamo::from_item(out.item?).unwrap();
    v.get("status").cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_daemon_rolls_services_in_two_regions_and_another_account() {
    let emulator = support::emulator::exclusive().await;
    let endpoint = emulator.endpoint();
    let places = [
        place(
            &endpoint,
            &home_in(&endpoint, HOME_REGION).await,
            None,
            "prod/web",
        )
        .await,
        place(
            &endpoint,
            &home_in(&endpoint, "us-west-2").await,
            None,
            "us-west-2:prod/web",
        )
        .await,
        place(
            &endpoint,
            &assumed(&endpoint, "eu-west-1").await,
            Some(OTHER_ACCOUNT),
            &format!("eu-west-1:{OTHER_ACCOUNT}:prod/web"),
        )
        .await,
    ];
    // Three places, three sets of resources: same names, other ARNs.
    assert!(
        places[1].region_arn.starts_with("us-west-2:123456789012"),
        "{}",
        places[1].region_arn
    );
    assert_eq!(places[2].region_arn, format!("eu-west-1:{OTHER_ACCOUNT}"));

    init_table(&endpoint);
    let ddb = aws_sdk_dynamodb::Client::new(&home_in(&endpoint, HOME_REGION).await);
    let daemon = Daemon::start_with(
        &endpoint,
        &[("CUTOVER_ACCOUNTS", "{external_id = \"cutover-test\"}")],
    );
    let extras = [
        json!({}),
        json!({"region": "us-west-2"}),
        json!({"region": "eu-west-1", "role_arn": ROLE}),
    ];
    for (p, extra) in places.iter().zip(extras) {
        let item: std::collections::HashMap<String, AttributeValue> =
            serde_dynamo::to_item(p.record(extra)).unwrap();
        ddb.put_item()
            .table_name(TABLE)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }

    let start = Instant::now();
    let mut registered = [false; 3];
    loop {
        let mut phases = vec![];
        for (i, p) in places.iter().enumerate() {
            if !registered[i] && p.has_candidate().await {
                p.register(&p.green.clone(), 20).await;
                registered[i] = true;
            }
            let st = status(&ddb, &p.key).await;
            phases.push(
                st.as_ref()
                    .and_then(|s| s["phase"].as_str())
                    .unwrap_or("-")
                    .to_string(),
            );
        }
        if phases.iter().all(|p| p == "Steady") && registered.iter().all(|r| *r) {
            break;
        }
        assert!(
            start.elapsed() < LIMIT,
            "not all Steady within {LIMIT:?}: {phases:?}\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for p in &places {
        assert!(
            p.primary_task_definition()
                .await
                .ends_with("task-definition/web:2"),
            "{}: {}",
            p.key,
            p.primary_task_definition().await
        );
        let st = status(&ddb, &p.key).await.unwrap();
        assert_eq!(st["active"]["target_group"], json!(p.green), "{}", p.key);
    }
    // The API serves a scoped key under its own path.
    let one = daemon
        .get(&format!("/v1/services/eu-west-1:{OTHER_ACCOUNT}:prod/web"))
        .await;
    assert!(one.contains("Steady"), "{one}");
    // So does the CLI: `plan` reads the service where it is.
    let plan = support::cli::cutover(
        &endpoint,
        TABLE,
        &["plan", &format!("eu-west-1:{OTHER_ACCOUNT}:prod/web")],
    )
    .expect(0);
    assert!(plan.stdout.contains("Steady"), "{}", plan.stdout);
    let exit = daemon.stop();
    assert!(exit.success(), "exit {exit:?}");
}
