//! The ECS adapter against the emulator: what the controller relies on from
//! ECS, with the services set up the way a platform team would, through the
//! plain SDK. The emulator reports no task counts and is steady at once.
//!
//! Services here want 0 tasks: for a task set of an awsvpc task definition
//! the emulator tries to run the tasks, fails on the network interface and
//! answers 500 after storing the task set (SDK retries then leak copies).
//! With no tasks to run it checks neither subnets nor target groups, so
//! those are made up.

mod support;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{
    AssignPublicIp, Compatibility, ContainerDefinition, DeploymentController,
    DeploymentControllerType, LaunchType, NetworkMode, PortMapping,
};
use cutover::aws::calls::ApiCalls;
use cutover::aws::ecs::EcsAdapter;
use cutover::cloud::{Ecs, ErrorKind};
use cutover::rollout::command::CreateTaskSet;
use cutover::rollout::spec::{Launch, Network, Placement};
use cutover::rollout::{
    EcsService, ServiceKey, ServiceState, Stability, TaskSet, TaskSetStatus, Version,
};

use support::emulator::{Exclusive, exclusive};

const CLUSTER: &str = "prod";
const BLUE: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-blue/0a1b2c";
const GREEN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/3d4e5f";

struct Fixture {
    // Holds the emulator for this test alone until the test ends.
    _emulator: Exclusive,
    calls: ApiCalls,
    ecs: EcsAdapter,
    /// What a platform team uses: the raw SDK, not counted.
    team: Client,
    subnets: [String; 2],
    security_group: String,
}

async fn fixture() -> Fixture {
    let emulator = exclusive().await;
    let config = support::aws::config(&emulator).await;
    let calls = ApiCalls::new();
    let team = Client::new(&config);
    team.create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .unwrap();
    Fixture {
        _emulator: emulator,
        ecs: EcsAdapter::new(&config, &calls),
        calls,
        team,
        subnets: ["subnet-0a1b2c3d".into(), "subnet-4e5f6a7b".into()],
        security_group: "sg-0c1d2e3f".into(),
    }
}

impl Fixture {
    fn placement(&self) -> Placement {
        Placement {
            network: Some(Network {
                subnets: self.subnets.to_vec(),
                security_groups: vec![self.security_group.clone()],
                assign_public_ip: true,
            }),
            launch: Some(Launch::LaunchType("FARGATE".into())),
        }
    }

    fn request(&self, version: Version, external_id: &str, target_group: &str) -> CreateTaskSet {
        CreateTaskSet {
            version,
            external_id: external_id.to_string(),
            client_token: format!("token-{external_id}"),
            target_group: target_group.to_string(),
            container: "app".into(),
            container_port: 8080,
            scale_percent: 100.0,
            template: None,
            placement: self.placement(),
        }
    }
}

fn key(service: &str) -> ServiceKey {
    ServiceKey::new(CLUSTER, service)
}

/// Memory on the container as well as the task: the emulator answers 500
/// to a task definition with task-level memory only.
async fn register(team: &Client, family: &str, image: &str) -> String {
    team.register_task_definition()
        .family(family)
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
        .container_definitions(
            ContainerDefinition::builder()
                .name("log-router")
                .image("fluent-bit:3")
                .memory(64)
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

async fn external_service(team: &Client, name: &str) {
    team.create_service()
        .cluster(CLUSTER)
        .service_name(name)
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

async fn service(ecs: &EcsAdapter, name: &str) -> EcsService {
    let found = ecs
        .describe_services(CLUSTER, &[name.to_string()])
        .await
        .unwrap();
    match found.as_slice() {
        [(n, ServiceState::Found(s))] if n == name => s.clone(),
        other => panic!("{name} not found: {other:?}"),
    }
}

fn by_arn<'a>(service: &'a EcsService, arn: &str) -> &'a TaskSet {
    service
        .by_arn(arn)
        .unwrap_or_else(|| panic!("no task set {arn} in {service:?}"))
}

#[tokio::test]
async fn task_sets_are_created_promoted_and_deleted() {
    let f = fixture().await;
    let td = register(&f.team, "web", "registry/web:1").await;
    external_service(&f.team, "web").await;
    let blue = f
        .ecs
        .create_task_set(
            &key("web"),
            &f.request(Version::TaskDefinition(td.clone()), "rev-1", BLUE),
        )
        .await
        .unwrap();
    assert_eq!(blue.external_id.as_deref(), Some("rev-1"));
    assert_eq!(blue.target_group.as_deref(), Some(BLUE));
    assert_eq!(blue.scale_percent, 100.0);
    assert_eq!(blue.task_definition, td);
    assert_eq!(blue.status, TaskSetStatus::Active);
    assert!(blue.arn.contains(":task-set/prod/web/"), "{}", blue.arn);
    // The emulator sends no counts: they must read as unknown, not as 0.
    assert_eq!(
        (blue.computed_desired, blue.running, blue.pending),
        (None, None, None)
    );

    let seen = service(&f.ecs, "web").await;
    assert!(seen.is_external());
    assert_eq!(seen.desired_count, 0);
    assert_eq!(by_arn(&seen, &blue.arn), &blue);
    assert_eq!(by_arn(&seen, &blue.arn).stability, Stability::SteadyState);

    f.ecs.set_primary(&key("web"), &blue.arn).await.unwrap();
    assert_eq!(
        service(&f.ecs, "web").await.primary().map(|t| &t.arn),
        Some(&blue.arn)
    );

    let mut next = f.request(Version::TaskDefinition(td), "rev-2", GREEN);
    next.template = Some(blue.arn.clone());
    let green = f.ecs.create_task_set(&key("web"), &next).await.unwrap();
    assert_eq!(green.target_group.as_deref(), Some(GREEN));
    f.ecs.set_primary(&key("web"), &green.arn).await.unwrap();
    let seen = service(&f.ecs, "web").await;
    assert_eq!(by_arn(&seen, &green.arn).status, TaskSetStatus::Primary);
    assert_eq!(by_arn(&seen, &blue.arn).status, TaskSetStatus::Active);
    // Creation times tell the task set a rollout started from (older) from
    // its candidate (newer) when the status is lost.
    assert!(
        by_arn(&seen, &blue.arn).older_than(by_arn(&seen, &green.arn)),
        "{seen:?}"
    );

    f.ecs.delete_task_set(&key("web"), &blue.arn).await.unwrap();
    let seen = service(&f.ecs, "web").await;
    // Real ECS keeps it DRAINING for a while; the emulator drops it at once.
    assert!(
        seen.by_arn(&blue.arn)
            .is_none_or(|t| t.status == TaskSetStatus::Draining),
        "{seen:?}"
    );
    let again = f
        .ecs
        .delete_task_set(&key("web"), &blue.arn)
        .await
        .unwrap_err();
    assert_eq!(again.kind, ErrorKind::NotFound, "{again}");
    assert_eq!(again.operation, "ecs:DeleteTaskSet");
    assert!(again.message.contains(&blue.arn), "{again}");

    assert_eq!(f.calls.count("ecs", "CreateTaskSet"), 2);
    assert_eq!(f.calls.count("ecs", "DescribeTaskSets"), 1, "the template");
    assert_eq!(f.calls.count("ecs", "UpdateServicePrimaryTaskSet"), 2);
    assert_eq!(f.calls.count("ecs", "DeleteTaskSet"), 2);
}

#[tokio::test]
async fn twenty_five_services_cost_three_describe_calls() {
    let f = fixture().await;
    let td = register(&f.team, "web", "registry/web:1").await;
    let names: Vec<String> = (0..25).map(|i| format!("svc-{i:02}")).collect();
    for name in &names {
        external_service(&f.team, name).await;
    }
    let with_task_set = &names[13];
    f.ecs
        .create_task_set(
            &key(with_task_set),
            &f.request(Version::TaskDefinition(td), "rev-1", BLUE),
        )
        .await
        .unwrap();

    let before = f.calls.count("ecs", "DescribeServices");
    let found = f.ecs.describe_services(CLUSTER, &names).await.unwrap();
    assert_eq!(f.calls.count("ecs", "DescribeServices") - before, 3);
    assert_eq!(f.calls.count("ecs", "DescribeTaskSets"), 0);
    let found_names: Vec<&String> = found.iter().map(|(n, _)| n).collect();
    assert_eq!(found_names, names.iter().collect::<Vec<_>>());
    for (name, state) in &found {
        let ServiceState::Found(s) = state else {
            panic!("{name}: {state:?}");
        };
        let expected = usize::from(name == with_task_set);
        assert_eq!(s.task_sets.len(), expected, "{name}");
    }
}

#[tokio::test]
async fn missing_services_and_clusters() {
    let f = fixture().await;
    external_service(&f.team, "web").await;
    let found = f
        .ecs
        .describe_services(CLUSTER, &["web".into(), "gone".into()])
        .await
        .unwrap();
    assert!(matches!(found[0], (ref n, ServiceState::Found(_)) if n == "web"));
    assert_eq!(found[1], ("gone".to_string(), ServiceState::Missing));

    f.team
        .delete_service()
        .cluster(CLUSTER)
        .service("web")
        .force(true)
        .send()
        .await
        .unwrap();
    let found = f
        .ecs
        .describe_services(CLUSTER, &["web".into()])
        .await
        .unwrap();
    assert_eq!(found, vec![("web".to_string(), ServiceState::Missing)]);

    // The emulator, like ECS, refuses the call with ClusterNotFoundException.
    let found = f
        .ecs
        .describe_services("nowhere", &["web".into(), "api".into()])
        .await
        .unwrap();
    assert_eq!(
        found,
        vec![
            ("web".to_string(), ServiceState::ClusterMissing),
            ("api".to_string(), ServiceState::ClusterMissing),
        ]
    );

    assert!(
        f.ecs
            .describe_services(CLUSTER, &[])
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_image_release_registers_one_revision_and_reuses_it() {
    let f = fixture().await;
    let base = register(&f.team, "web", "registry/web:1").await;
    external_service(&f.team, "web").await;
    let blue = f
        .ecs
        .create_task_set(
            &key("web"),
            &f.request(Version::TaskDefinition(base.clone()), "rev-1", BLUE),
        )
        .await
        .unwrap();
    let image = Version::Image {
        image: "registry/web:2".into(),
        container: "app".into(),
    };
    let mut green_request = f.request(image.clone(), "rev-2", GREEN);
    green_request.template = Some(blue.arn.clone());
    let green = f
        .ecs
        .create_task_set(&key("web"), &green_request)
        .await
        .unwrap();
    assert_eq!(f.calls.count("ecs", "RegisterTaskDefinition"), 1);
    assert_ne!(green.task_definition, base);
    assert!(green.task_definition.ends_with("/web:2"), "{green:?}");

    let registered = f
        .team
        .describe_task_definition()
        .task_definition(&green.task_definition)
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap();
    let images: Vec<(&str, &str)> = registered
        .container_definitions()
        .iter()
        .map(|c| (c.name().unwrap(), c.image().unwrap()))
        .collect();
    assert_eq!(
        images,
        vec![("app", "registry/web:2"), ("log-router", "fluent-bit:3")]
    );
    assert_eq!(registered.cpu(), Some("256"));
    assert_eq!(registered.memory(), Some("512"));
    assert_eq!(registered.network_mode(), Some(&NetworkMode::Awsvpc));

    // A retried or restarted rollout asks again: same revision, no new one.
    f.ecs
        .delete_task_set(&key("web"), &green.arn)
        .await
        .unwrap();
    let again = f
        .ecs
        .create_task_set(&key("web"), &green_request)
        .await
        .unwrap();
    assert_eq!(again.task_definition, green.task_definition);
    assert_eq!(f.calls.count("ecs", "RegisterTaskDefinition"), 1);

    // The image the template already runs needs no revision at all.
    let mut same = f.request(
        Version::Image {
            image: "registry/web:1".into(),
            container: "app".into(),
        },
        "rev-3",
        GREEN,
    );
    same.template = Some(blue.arn.clone());
    f.ecs
        .delete_task_set(&key("web"), &again.arn)
        .await
        .unwrap();
    let unchanged = f.ecs.create_task_set(&key("web"), &same).await.unwrap();
    assert_eq!(unchanged.task_definition, base);
    assert_eq!(f.calls.count("ecs", "RegisterTaskDefinition"), 1);
}

#[tokio::test]
async fn an_image_for_an_unknown_container_is_refused() {
    let f = fixture().await;
    let base = register(&f.team, "web", "registry/web:1").await;
    external_service(&f.team, "web").await;
    let blue = f
        .ecs
        .create_task_set(
            &key("web"),
            &f.request(Version::TaskDefinition(base), "rev-1", BLUE),
        )
        .await
        .unwrap();
    let mut r = f.request(
        Version::Image {
            image: "registry/web:2".into(),
            container: "api".into(),
        },
        "rev-2",
        GREEN,
    );
    r.template = Some(blue.arn);
    let e = f.ecs.create_task_set(&key("web"), &r).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    assert!(e.message.contains("\"api\""), "{e}");
    assert_eq!(f.calls.count("ecs", "RegisterTaskDefinition"), 0);
}

#[tokio::test]
async fn placement_is_copied_from_the_template() {
    let f = fixture().await;
    let td = register(&f.team, "web", "registry/web:1").await;
    external_service(&f.team, "web").await;
    let blue = f
        .ecs
        .create_task_set(
            &key("web"),
            &f.request(Version::TaskDefinition(td.clone()), "rev-1", BLUE),
        )
        .await
        .unwrap();
    let mut next = f.request(Version::TaskDefinition(td), "rev-2", GREEN);
    next.template = Some(blue.arn.clone());
    // What the record says now must not matter: the template wins.
    next.placement = Placement {
        network: Some(Network {
            subnets: vec![f.subnets[1].clone()],
            security_groups: vec![],
            assign_public_ip: false,
        }),
        launch: Some(Launch::LaunchType("EC2".into())),
    };
    let green = f.ecs.create_task_set(&key("web"), &next).await.unwrap();

    let raw = f
        .team
        .describe_task_sets()
        .cluster(CLUSTER)
        .service("web")
        .task_sets(&green.arn)
        .send()
        .await
        .unwrap();
    let green_raw = &raw.task_sets()[0];
    let vpc = green_raw
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .expect("a network configuration");
    assert_eq!(vpc.subnets(), f.subnets);
    assert_eq!(
        vpc.security_groups(),
        std::slice::from_ref(&f.security_group)
    );
    assert_eq!(vpc.assign_public_ip(), Some(&AssignPublicIp::Enabled));
    assert_eq!(green_raw.launch_type(), Some(&LaunchType::Fargate));
}

#[tokio::test]
async fn create_names_what_is_missing() {
    let f = fixture().await;
    let td = register(&f.team, "web", "registry/web:1").await;
    let e = f
        .ecs
        .create_task_set(
            &key("nope"),
            &f.request(Version::TaskDefinition(td), "rev-1", BLUE),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert_eq!(e.message, "service prod/nope not found");

    external_service(&f.team, "web").await;
    let e = f
        .ecs
        .create_task_set(
            &key("web"),
            &f.request(Version::TaskDefinition("web:9".into()), "rev-1", BLUE),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert_eq!(e.message, "task definition web:9 not found");
}
