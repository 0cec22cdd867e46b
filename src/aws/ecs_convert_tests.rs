use aws_sdk_ecs::types::{
    DeploymentController, DeploymentControllerType, LoadBalancer, Scale, ScaleUnit,
};

use super::*;
use crate::rollout::spec::CapacityProvider;

const TS_ARN: &str = "arn:aws:ecs:us-east-1:1:task-set/prod/web/ecs-svc/1";
const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-blue/abc";

fn sdk_task_set(status: &str) -> SdkTaskSet {
    SdkTaskSet::builder()
        .id("ecs-svc/1")
        .task_set_arn(TS_ARN)
        .task_definition("arn:aws:ecs:us-east-1:1:task-definition/web:7")
        .external_id("cutover:abc")
        .status(status)
        .stability_status(StabilityStatus::SteadyState)
        .scale(
            Scale::builder()
                .value(50.0)
                .unit(ScaleUnit::Percent)
                .build(),
        )
        .computed_desired_count(2)
        .running_count(0)
        .pending_count(2)
        .created_at(aws_smithy_types::DateTime::from_millis(1_700_000_000_123))
        .load_balancers(
            LoadBalancer::builder()
                .target_group_arn(TG)
                .container_name("app")
                .container_port(8080)
                .build(),
        )
        .build()
}

fn service(name: &str, status: &str, task_sets: Vec<SdkTaskSet>) -> Service {
    Service::builder()
        .service_name(name)
        .service_arn(format!("arn:aws:ecs:us-east-1:1:service/prod/{name}"))
        .status(status)
        .desired_count(4)
        .deployment_controller(
            DeploymentController::builder()
                .r#type(DeploymentControllerType::External)
                .build()
                .unwrap(),
        )
        .set_task_sets(Some(task_sets))
        .build()
}

fn missing(arn: &str) -> Failure {
    Failure::builder().arn(arn).reason("MISSING").build()
}

#[test]
fn every_task_set_field_is_mapped() {
    let t = task_set(&sdk_task_set("PRIMARY"), Reported::ALL).unwrap();
    assert_eq!(
        t,
        TaskSet {
            id: "ecs-svc/1".into(),
            arn: TS_ARN.into(),
            task_definition: "arn:aws:ecs:us-east-1:1:task-definition/web:7".into(),
            external_id: Some("cutover:abc".into()),
            status: TaskSetStatus::Primary,
            stability: Stability::SteadyState,
            scale_percent: 50.0,
            computed_desired: Some(2),
            running: Some(0),
            pending: Some(2),
            target_group: Some(TG.into()),
            created_at: Some(crate::time::Timestamp(1_700_000_000_123)),
        }
    );
    for (s, want) in [
        ("ACTIVE", TaskSetStatus::Active),
        ("DRAINING", TaskSetStatus::Draining),
    ] {
        assert_eq!(
            task_set(&sdk_task_set(s), Reported::ALL).unwrap().status,
            want
        );
    }
}

#[test]
fn counts_ecs_did_not_send_are_unknown_not_zero() {
    let reported = Reported {
        computed_desired: true,
        running: false,
        pending: false,
    };
    let t = task_set(&sdk_task_set("ACTIVE"), reported).unwrap();
    assert_eq!(t.computed_desired, Some(2));
    assert_eq!(t.running, None);
    assert_eq!(t.pending, None);
}

#[test]
fn odd_task_sets_are_refused_or_read_cautiously() {
    let e = task_set(&sdk_task_set("LAUNCHING"), Reported::ALL).unwrap_err();
    assert!(e.contains("LAUNCHING"), "{e}");
    let mut unstable = sdk_task_set("ACTIVE");
    unstable.stability_status = Some(StabilityStatus::Stabilizing);
    assert_eq!(
        task_set(&unstable, Reported::ALL).unwrap().stability,
        Stability::Stabilizing
    );
    unstable.stability_status = None;
    assert_eq!(
        task_set(&unstable, Reported::ALL).unwrap().stability,
        Stability::Stabilizing
    );
    let mut unscaled = sdk_task_set("ACTIVE");
    unscaled.scale = None;
    assert!(task_set(&unscaled, Reported::ALL).is_err());
    let mut anonymous = sdk_task_set("ACTIVE");
    anonymous.external_id = Some(String::new());
    anonymous.load_balancers = None;
    let t = task_set(&anonymous, Reported::ALL).unwrap();
    assert_eq!(t.external_id, None, "an empty external id is none");
    assert_eq!(t.target_group, None);
}

#[test]
fn answers_come_back_in_the_order_asked_by_the_name_given() {
    let names: Vec<String> = [
        "gone",
        "web",
        "old",
        "arn:aws:ecs:us-east-1:1:service/prod/api",
    ]
    .map(String::from)
    .to_vec();
    let services = [
        service("web", "ACTIVE", vec![sdk_task_set("PRIMARY")]),
        service("old", "INACTIVE", vec![]),
        service("api", "DRAINING", vec![]),
    ];
    let failures = [missing("arn:aws:ecs:us-east-1:1:service/prod/gone")];
    let got = describe_result(&names, &services, &failures, &Reports::default()).unwrap();
    let got_names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        got_names,
        names.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(got[0].1, ServiceState::Missing);
    let ServiceState::Found(web) = &got[1].1 else {
        panic!("web should be found: {:?}", got[1].1);
    };
    assert_eq!(web.desired_count, 4);
    assert!(web.is_external());
    assert_eq!(web.task_sets.len(), 1);
    assert_eq!(got[2].1, ServiceState::Missing, "INACTIVE is deleted");
    assert_eq!(got[3].1, ServiceState::Missing, "DRAINING is being deleted");
}

#[test]
fn a_name_matches_only_the_last_arn_segment() {
    assert!(names_service("arn:aws:ecs:r:1:service/prod/web", "web"));
    assert!(names_service("arn:aws:ecs:r:1:service/web", "web"));
    assert!(!names_service(
        "arn:aws:ecs:r:1:service/prod/api-web",
        "web"
    ));
    let failures = [missing("arn:aws:ecs:r:1:service/prod/api-web")];
    let got = describe_result(&["web".into()], &[], &failures, &Reports::default()).unwrap();
    assert_eq!(got, vec![("web".to_string(), ServiceState::Missing)]);
}

#[test]
fn failures_other_than_missing_are_errors() {
    let failures = [Failure::builder()
        .arn("arn:aws:ecs:r:1:service/prod/web")
        .reason("ACCESS_DENIED")
        .detail("no")
        .build()];
    let e = describe_result(&["web".into()], &[], &failures, &Reports::default()).unwrap_err();
    assert!(e.contains("web") && e.contains("ACCESS_DENIED"), "{e}");
}

#[test]
fn a_service_without_a_controller_is_ecs_controlled() {
    let mut s = service("web", "ACTIVE", vec![]);
    s.deployment_controller = None;
    let ServiceState::Found(found) = service_state(&s, &Reports::default()).unwrap() else {
        panic!("found");
    };
    assert_eq!(found.deployment_controller, "ECS");
    assert!(!found.is_external());
}

#[test]
fn placement_becomes_awsvpc_and_a_launch_choice() {
    let placement = Placement {
        network: Some(Network {
            subnets: vec!["subnet-1".into(), "subnet-2".into()],
            security_groups: vec!["sg-1".into()],
            assign_public_ip: false,
        }),
        launch: Some(Launch::CapacityProviders(vec![CapacityProvider {
            provider: "FARGATE_SPOT".into(),
            weight: 3,
            base: 1,
        }])),
    };
    let l = Launching::from_placement(&placement).unwrap();
    let vpc = l.network.unwrap().awsvpc_configuration.unwrap();
    assert_eq!(vpc.subnets, vec!["subnet-1", "subnet-2"]);
    assert_eq!(vpc.security_groups(), ["sg-1"]);
    assert_eq!(vpc.assign_public_ip, Some(AssignPublicIp::Disabled));
    assert_eq!(l.launch_type, None);
    let cps = l.capacity_providers.unwrap();
    assert_eq!(
        (
            cps[0].capacity_provider.as_str(),
            cps[0].weight,
            cps[0].base
        ),
        ("FARGATE_SPOT", 3, 1)
    );

    let fargate = Placement {
        network: None,
        launch: Some(Launch::LaunchType("FARGATE".into())),
    };
    let l = Launching::from_placement(&fargate).unwrap();
    assert_eq!(l.launch_type, Some(LaunchType::Fargate));
    assert_eq!(l.network, None);
    assert_eq!(
        Launching::from_placement(&Placement::default()).unwrap(),
        Launching::default()
    );
}

#[test]
fn a_template_is_copied_whole() {
    let mut t = sdk_task_set("PRIMARY");
    let vpc = AwsVpcConfiguration::builder()
        .subnets("subnet-9")
        .assign_public_ip(AssignPublicIp::Enabled)
        .build()
        .unwrap();
    t.network_configuration = Some(
        NetworkConfiguration::builder()
            .awsvpc_configuration(vpc)
            .build(),
    );
    t.launch_type = Some(LaunchType::Fargate);
    t.platform_version = Some("1.4.0".into());
    let registry = ServiceRegistry::builder()
        .registry_arn("arn:aws:servicediscovery:us-east-1:123456789012:service/srv-web")
        .container_name("app")
        .container_port(8080)
        .build();
    t.service_registries = Some(vec![registry.clone()]);
    let l = Launching::copy_of(&t);
    assert_eq!(l.network, t.network_configuration);
    assert_eq!(l.launch_type, Some(LaunchType::Fargate));
    assert_eq!(l.capacity_providers, None);
    assert_eq!(l.service_registries, Some(vec![registry]));
    // The platform family, not the version ECS resolved it to.
    assert_eq!(l.platform_version.as_deref(), Some("LATEST"));
}

#[test]
fn a_template_with_a_capacity_provider_strategy_sends_no_launch_type() {
    let mut t = sdk_task_set("PRIMARY");
    // ECS may report the launch type the strategy resolved to.
    t.launch_type = Some(LaunchType::Fargate);
    t.capacity_provider_strategy = Some(vec![
        CapacityProviderStrategyItem::builder()
            .capacity_provider("FARGATE_SPOT")
            .weight(1)
            .build()
            .unwrap(),
    ]);
    let l = Launching::copy_of(&t);
    assert_eq!(l.launch_type, None);
    assert_eq!(l.capacity_providers, t.capacity_provider_strategy);

    // An empty strategy is no strategy: the launch type stays.
    t.capacity_provider_strategy = Some(vec![]);
    let l = Launching::copy_of(&t);
    assert_eq!(l.launch_type, Some(LaunchType::Fargate));
    assert_eq!(l.capacity_providers, None);
}

#[test]
fn not_found_answers_name_the_thing() {
    let err = || CloudError::new(ErrorKind::Invalid, "ecs:CreateTaskSet", "raw");
    let subject = Subject {
        cluster: "prod",
        service: Some("web"),
        task_set: Some(TS_ARN),
        task_definition: Some("web:9"),
        target_group: Some(TG),
    };
    let named =
        |code: &str, message: &str| name_missing(err(), Some(code), Some(message), &subject);
    let e = named("ClusterNotFoundException", "Cluster not found.");
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::NotFound, "cluster prod not found")
    );
    assert_eq!(
        named("ServiceNotFoundException", "Service not found.").message,
        "service prod/web not found"
    );
    assert_eq!(
        named(
            "InvalidParameterException",
            &format!("The target group with targetGroupArn {TG} does not exist.")
        )
        .message,
        format!("target group {TG} not found")
    );
    assert_eq!(
        named("ClientException", "The specified task set does not exist.").message,
        format!("task set {TS_ARN} not found")
    );
    assert_eq!(
        named("ClientException", "Unable to describe task definition.").message,
        "task definition web:9 not found"
    );
    let e = named("ClientException", "Task set limit reached.");
    assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Invalid, "raw"));
    let e = name_missing(err(), None, None, &subject);
    assert_eq!(e, err());
}
