//! The ECS adapter against the emulator, on what a candidate task set takes
//! from the one it replaces and on the stopped tasks the `task_failures`
//! gate counts. Services want 0 tasks (see `ecs_contract.rs` for why); the
//! tests start and stop tasks themselves, as ECS would for a task set.

mod support;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, DeploymentController,
    DeploymentControllerType, LaunchType, LoadBalancer, NetworkConfiguration, NetworkMode,
    PortMapping, Scale, ScaleUnit, ServiceRegistry,
};
use cutover::aws::calls::ApiCalls;
use cutover::aws::ecs::EcsAdapter;
use cutover::cloud::Ecs;
use cutover::rollout::command::CreateTaskSet;
use cutover::rollout::spec::Placement;
use cutover::rollout::{ServiceKey, Version};

use support::emulator::exclusive;

const CLUSTER: &str = "prod";
const BLUE: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-blue/0a1b2c";
const GREEN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/3d4e5f";
const REGISTRY: &str = "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-web";

fn key() -> ServiceKey {
    ServiceKey::new(CLUSTER, "web")
}

async fn register(team: &Client) -> String {
    team.register_task_definition()
        .family("web")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("registry/web:1")
                .memory(512)
                .port_mappings(PortMapping::builder().container_port(8080).build())
                .build(),
        )
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap()
        .task_definition_arn
        .unwrap()
}

async fn external_service(team: &Client) {
    team.create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .unwrap();
    team.create_service()
        .cluster(CLUSTER)
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
}

/// The task set a platform team started the service with, by hand: Fargate
/// with Cloud Map, and the platform version ECS resolved `LATEST` to. (The
/// emulator runs a task set without a launch type on container instances,
/// and fails without any, so a capacity provider strategy, and never
/// sending both, is shown by the adapter's unit tests instead.)
async fn blue_by_hand(team: &Client, td: &str) -> String {
    let vpc = AwsVpcConfiguration::builder()
        .subnets("subnet-0a1b2c3d")
        .security_groups("sg-0c1d2e3f")
        .assign_public_ip(AssignPublicIp::Disabled)
        .build()
        .unwrap();
    team.create_task_set()
        .cluster(CLUSTER)
        .service("web")
        .task_definition(td)
        .external_id("by-hand")
        .load_balancers(
            LoadBalancer::builder()
                .target_group_arn(BLUE)
                .container_name("app")
                .container_port(8080)
                .build(),
        )
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(vpc)
                .build(),
        )
        .service_registries(
            ServiceRegistry::builder()
                .registry_arn(REGISTRY)
                .container_name("app")
                .container_port(8080)
                .build(),
        )
        .launch_type(LaunchType::Fargate)
        .platform_version("1.4.0")
        .scale(
            Scale::builder()
                .value(100.0)
                .unit(ScaleUnit::Percent)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .task_set
        .unwrap()
        .task_set_arn
        .unwrap()
}

fn candidate(td: &str, template: &str) -> CreateTaskSet {
    CreateTaskSet {
        version: Version::TaskDefinition(td.to_string()),
        external_id: "cutover:rev-2".into(),
        client_token: "token-rev-2".into(),
        target_group: GREEN.into(),
        container: "app".into(),
        container_port: 8080,
        scale_percent: 100.0,
        template: Some(template.to_string()),
        placement: Placement::default(),
    }
}

#[tokio::test]
async fn the_candidate_keeps_cloud_map_its_launch_type_and_the_platform_family() {
    let emulator = exclusive().await;
    let config = support::aws::config(&emulator).await;
    let team = Client::new(&config);
    let ecs = EcsAdapter::new(&config, &ApiCalls::new());
    let td = register(&team).await;
    external_service(&team).await;
    let blue = blue_by_hand(&team, &td).await;

    let green = ecs
        .create_task_set(&key(), &candidate(&td, &blue))
        .await
        .unwrap();
    let raw = team
        .describe_task_sets()
        .cluster(CLUSTER)
        .service("web")
        .task_sets(&green.arn)
        .send()
        .await
        .unwrap();
    let green = &raw.task_sets()[0];
    let registries: Vec<_> = green
        .service_registries()
        .iter()
        .map(|r| (r.registry_arn(), r.container_name(), r.container_port()))
        .collect();
    assert_eq!(registries, [(Some(REGISTRY), Some("app"), Some(8080))]);
    assert_eq!(green.launch_type(), Some(&LaunchType::Fargate));
    assert!(green.capacity_provider_strategy().is_empty());
    assert_eq!(green.platform_version(), Some("LATEST"));
}

/// A bridge-mode task definition for the tasks the test starts: the
/// emulator wants a real subnet for an awsvpc task, and which task
/// definition a stopped task ran does not matter to the gate.
async fn register_bridge(team: &Client) -> String {
    team.register_task_definition()
        .family("web-tasks")
        .network_mode(NetworkMode::Bridge)
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("registry/web:1")
                .memory(512)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap()
        .task_definition_arn
        .unwrap()
}

/// Starts one task as ECS starts a task set's tasks, with `startedBy` = the
/// task set's id.
async fn start_task(team: &Client, td: &str, started_by: &str) -> String {
    team.run_task()
        .cluster(CLUSTER)
        .task_definition(td)
        .launch_type(LaunchType::Fargate)
        .started_by(started_by)
        .send()
        .await
        .unwrap()
        .tasks()[0]
        .task_arn()
        .unwrap()
        .to_string()
}

async fn stop_task(team: &Client, task: &str) {
    team.stop_task()
        .cluster(CLUSTER)
        .task(task)
        .reason("Task failed ELB health checks")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_task_failures_gate_counts_the_candidate_s_stopped_tasks() {
    let emulator = exclusive().await;
    let config = support::aws::config(&emulator).await;
    let team = Client::new(&config);
    let calls = ApiCalls::new();
    let ecs = EcsAdapter::new(&config, &calls);
    let td = register(&team).await;
    external_service(&team).await;
    let blue = blue_by_hand(&team, &td).await;
    let green = ecs
        .create_task_set(&key(), &candidate(&td, &blue))
        .await
        .unwrap();
    assert!(green.id.starts_with("ecs-svc/"), "{}", green.id);
    let blue_id = blue.rsplit_once("/web/").map(|(_, id)| id).unwrap();
    let td = register_bridge(&team).await;

    assert_eq!(ecs.stopped_tasks(&key(), &green.arn).await.unwrap(), 0);
    let running = start_task(&team, &td, &green.id).await;
    let failing = start_task(&team, &td, &green.id).await;
    assert_eq!(
        ecs.stopped_tasks(&key(), &green.arn).await.unwrap(),
        0,
        "running tasks are not failures"
    );

    stop_task(&team, &failing).await;
    // A stopped task of the old task set is not the candidate's.
    let old = start_task(&team, &td, blue_id).await;
    stop_task(&team, &old).await;
    assert_eq!(ecs.stopped_tasks(&key(), &green.arn).await.unwrap(), 1);
    assert_eq!(ecs.stopped_tasks(&key(), &blue).await.unwrap(), 1);

    stop_task(&team, &running).await;
    assert_eq!(ecs.stopped_tasks(&key(), &green.arn).await.unwrap(), 2);
    assert!(calls.count("ecs", "DescribeTasks") > 0);
}
