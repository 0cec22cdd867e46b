//! The service deployment adapter against mocked SDK responses: what it
//! sends ECS, and how it reads the answers and the errors.

use std::sync::{Arc, Mutex};

use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::error::ErrorMetadata;
use aws_sdk_ecs::operation::continue_service_deployment::{
    ContinueServiceDeploymentError, ContinueServiceDeploymentOutput,
};
use aws_sdk_ecs::operation::describe_service_deployments::{
    DescribeServiceDeploymentsError, DescribeServiceDeploymentsOutput,
};
use aws_sdk_ecs::operation::describe_service_revisions::{
    DescribeServiceRevisionsError, DescribeServiceRevisionsOutput,
};
use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::operation::describe_task_definition::{
    DescribeTaskDefinitionError, DescribeTaskDefinitionOutput,
};
use aws_sdk_ecs::operation::list_service_deployments::ListServiceDeploymentsOutput;
use aws_sdk_ecs::operation::list_task_definitions::ListTaskDefinitionsOutput;
use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionOutput;
use aws_sdk_ecs::operation::stop_service_deployment::{
    StopServiceDeploymentError, StopServiceDeploymentOutput,
};
use aws_sdk_ecs::operation::update_service::{
    UpdateServiceError, UpdateServiceInput, UpdateServiceOutput,
};
use aws_sdk_ecs::types::error::{
    ConflictException, InvalidParameterException, ServiceDeploymentNotFoundException,
};
use aws_sdk_ecs::types::{
    AdvancedConfiguration, ContainerDefinition, DeploymentAlarms, DeploymentCircuitBreaker,
    DeploymentLifecycleHookDetail, DeploymentLifecycleHookStatus, Failure, LoadBalancer, Rollback,
    ServiceDeploymentBrief, ServiceDeploymentLifecycleStage, ServiceRevisionSummary,
    TaskDefinition,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};

use super::*;

const ARN: &str = "arn:aws:ecs:us-east-1:1:service-deployment/prod/web/abc";
const LAMBDA: &str = "arn:aws:lambda:us-east-1:1:function:smoke";
const REVISION: &str = "arn:aws:ecs:us-east-1:1:service-revision/prod/web/7";
const TASK_DEFINITION: &str = "arn:aws:ecs:us-east-1:1:task-definition/web:7";
const BLUE: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-blue/1";
const GREEN: &str = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-green/2";

fn key() -> ServiceKey {
    ServiceKey::new("prod", "web")
}

/// The error code and message the SDK reads from a real response.
fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn request(version: Version, strategy: NativeStrategy) -> StartServiceDeployment {
    StartServiceDeployment {
        version,
        strategy,
        bake_minutes: 15,
        pauses: vec![
            LifecycleStage::PostTestTrafficShift,
            LifecycleStage::PreProductionTrafficShift,
        ],
        pause_timeout_minutes: 120,
    }
}

fn canary() -> NativeStrategy {
    NativeStrategy::Canary {
        percent: 10,
        bake_minutes: 5,
    }
}

fn lambda_hook() -> DeploymentLifecycleHook {
    DeploymentLifecycleHook::builder()
        .target_type(DeploymentLifecycleHookTargetType::AwsLambda)
        .hook_target_arn(LAMBDA)
        .role_arn("arn:aws:iam::1:role/hooks")
        .lifecycle_stages(DeploymentLifecycleHookStage::PostScaleUp)
        .build()
}

/// What a service's owner set: a circuit breaker, alarms, task
/// percentages, a Lambda hook, and the PAUSE hook an earlier cutover
/// release left there.
fn owners_configuration() -> DeploymentConfiguration {
    let earlier_pause = DeploymentLifecycleHook::builder()
        .target_type(DeploymentLifecycleHookTargetType::Pause)
        .lifecycle_stages(DeploymentLifecycleHookStage::PreScaleUp)
        .timeout_configuration(
            DeploymentLifecycleHookTimeoutConfiguration::builder()
                .timeout_in_minutes(60)
                .action(DeploymentLifecycleHookAction::Rollback)
                .build(),
        )
        .build();
    DeploymentConfiguration::builder()
        .deployment_circuit_breaker(
            DeploymentCircuitBreaker::builder()
                .enable(true)
                .rollback(true)
                .build(),
        )
        .alarms(
            DeploymentAlarms::builder()
                .alarm_names("web-5xx")
                .enable(true)
                .rollback(true)
                .build()
                .unwrap(),
        )
        .maximum_percent(200)
        .minimum_healthy_percent(100)
        .strategy(DeploymentStrategy::Linear)
        .linear_configuration(
            LinearConfiguration::builder()
                .step_percent(20.0)
                .step_bake_time_in_minutes(3)
                .build(),
        )
        .lifecycle_hooks(lambda_hook())
        .lifecycle_hooks(earlier_pause)
        .build()
}

fn active_service(task_definition: &str) -> Service {
    Service::builder()
        .service_name("web")
        .status("ACTIVE")
        .task_definition(task_definition)
        .deployment_configuration(owners_configuration())
        .build()
}

fn describe_services(task_definition: &'static str) -> aws_smithy_mocks::Rule {
    mock!(Client::describe_services)
        .match_requests(|r| r.cluster() == Some("prod") && r.services() == ["web"])
        .then_output(move || {
            DescribeServicesOutput::builder()
                .services(active_service(task_definition))
                .build()
        })
}

/// An UpdateService rule that keeps what it was sent.
fn update_service(sent: &Arc<Mutex<Option<UpdateServiceInput>>>) -> aws_smithy_mocks::Rule {
    let sent = Arc::clone(sent);
    mock!(Client::update_service).then_compute_output(move |input| {
        *sent.lock().unwrap() = Some(input.clone());
        UpdateServiceOutput::builder()
            .service(
                Service::builder()
                    .service_name("web")
                    .current_service_deployment(ARN)
                    .build(),
            )
            .build()
    })
}

#[tokio::test]
async fn starting_keeps_the_owners_configuration_and_replaces_cutovers_pause() {
    let sent = Arc::default();
    let (describe, update) = (describe_services("web:6"), update_service(&sent));
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&describe, &update]);
    let adapter = ServiceDeploymentsAdapter::from_client(client);
    let started = adapter
        .start(
            &key(),
            &request(Version::TaskDefinition("web:7".into()), canary()),
        )
        .await
        .unwrap();
    assert_eq!(started.as_deref(), Some(ARN));
    let input = sent.lock().unwrap().clone().unwrap();
    assert_eq!(input.cluster(), Some("prod"));
    assert_eq!(input.service(), Some("web"));
    assert_eq!(input.task_definition(), Some("web:7"));
    assert_eq!(input.force_new_deployment(), None, "never forced");
    let config = input.deployment_configuration().unwrap();
    let owners = owners_configuration();
    assert_eq!(
        config.deployment_circuit_breaker(),
        owners.deployment_circuit_breaker()
    );
    assert_eq!(config.alarms(), owners.alarms());
    assert_eq!(config.maximum_percent(), Some(200));
    assert_eq!(config.minimum_healthy_percent(), Some(100));
    assert_eq!(config.strategy(), Some(&DeploymentStrategy::Canary));
    assert_eq!(config.bake_time_in_minutes(), Some(15));
    let canary = config.canary_configuration().unwrap();
    assert_eq!(canary.canary_percent(), Some(10.0));
    assert_eq!(canary.canary_bake_time_in_minutes(), Some(5));
    assert_eq!(
        config.linear_configuration(),
        None,
        "the old strategy's goes"
    );
    let hooks = config.lifecycle_hooks();
    assert_eq!(hooks.len(), 2, "{hooks:?}");
    assert_eq!(
        hooks[0],
        lambda_hook(),
        "the owner's Lambda hook is kept as set"
    );
    let pause = &hooks[1];
    assert_eq!(
        pause.target_type(),
        Some(&DeploymentLifecycleHookTargetType::Pause)
    );
    assert_eq!(
        pause.lifecycle_stages(),
        [
            DeploymentLifecycleHookStage::PostTestTrafficShift,
            DeploymentLifecycleHookStage::PreProductionTrafficShift
        ]
    );
    assert_eq!(pause.hook_target_arn(), None);
    assert_eq!(pause.role_arn(), None, "a PAUSE hook passes no role");
    let timeout = pause.timeout_configuration().unwrap();
    assert_eq!(timeout.timeout_in_minutes(), Some(120));
    assert_eq!(
        timeout.action(),
        Some(&DeploymentLifecycleHookAction::Rollback)
    );
}

#[test]
fn without_pauses_no_pause_hook_is_left() {
    let mut request = request(
        Version::TaskDefinition("web:7".into()),
        NativeStrategy::Linear {
            percent: 25,
            bake_minutes: 2,
        },
    );
    request.pauses.clear();
    let config = deployment_configuration(Some(&owners_configuration()), &request);
    assert_eq!(config.lifecycle_hooks(), [lambda_hook()]);
    assert_eq!(config.canary_configuration(), None);
    assert_eq!(
        config.linear_configuration().unwrap().step_percent(),
        Some(25.0)
    );
    let fresh = deployment_configuration(None, &request);
    assert_eq!(fresh.strategy(), Some(&DeploymentStrategy::Linear));
    assert_eq!(
        fresh.lifecycle_hooks,
        Some(Vec::new()),
        "sent empty, so hooks removed are removed at ECS"
    );
}

#[tokio::test]
async fn an_image_release_registers_the_services_task_definition_with_the_new_image() {
    const BASE: &str = "arn:aws:ecs:us-east-1:1:task-definition/web:6";
    const NEXT: &str = "arn:aws:ecs:us-east-1:1:task-definition/web:7";
    let sent = Arc::default();
    let describe = describe_services(BASE);
    let base = mock!(Client::describe_task_definition)
        .match_requests(|r| r.task_definition() == Some(BASE))
        .then_output(|| {
            let td = TaskDefinition::builder()
                .family("web")
                .revision(6)
                .task_definition_arn(BASE)
                .container_definitions(
                    ContainerDefinition::builder()
                        .name("app")
                        .image("repo/web:1")
                        .build(),
                )
                .container_definitions(
                    ContainerDefinition::builder()
                        .name("log")
                        .image("fluent:2")
                        .build(),
                )
                .build();
            DescribeTaskDefinitionOutput::builder()
                .task_definition(td)
                .build()
        });
    let revisions = mock!(Client::list_task_definitions).then_output(|| {
        ListTaskDefinitionsOutput::builder()
            .task_definition_arns(BASE)
            .build()
    });
    let register = mock!(Client::register_task_definition)
        .match_requests(|r| {
            let image = |name: &str| {
                r.container_definitions()
                    .iter()
                    .find(|c| c.name() == Some(name))
                    .and_then(|c| c.image())
            };
            r.family() == Some("web")
                && image("app") == Some("repo/web:2")
                && image("log") == Some("fluent:2")
        })
        .then_output(|| {
            RegisterTaskDefinitionOutput::builder()
                .task_definition(TaskDefinition::builder().task_definition_arn(NEXT).build())
                .build()
        });
    let update = update_service(&sent);
    let client = mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&describe, &base, &revisions, &register, &update]
    );
    let adapter = ServiceDeploymentsAdapter::from_client(client);
    let version = Version::Image {
        image: "repo/web:2".into(),
        container: "app".into(),
    };
    adapter
        .start(&key(), &request(version, NativeStrategy::BlueGreen))
        .await
        .unwrap();
    assert_eq!(register.num_calls(), 1);
    let input = sent.lock().unwrap().clone().unwrap();
    assert_eq!(input.task_definition(), Some(NEXT));
    let config = input.deployment_configuration().unwrap();
    assert_eq!(config.strategy(), Some(&DeploymentStrategy::BlueGreen));
    assert_eq!(config.canary_configuration(), None);
    assert_eq!(config.linear_configuration(), None);
}

#[tokio::test]
async fn starting_on_a_missing_service_is_not_found_and_updates_nothing() {
    let describe = mock!(Client::describe_services).then_output(|| {
        DescribeServicesOutput::builder()
            .failures(
                Failure::builder()
                    .arn("arn:aws:ecs:us-east-1:1:service/prod/web")
                    .reason("MISSING")
                    .build(),
            )
            .build()
    });
    let update = update_service(&Arc::default());
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&describe, &update]);
    let adapter = ServiceDeploymentsAdapter::from_client(client);
    let e = adapter
        .start(
            &key(),
            &request(Version::TaskDefinition("web:7".into()), canary()),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert_eq!(update.num_calls(), 0);
}

#[tokio::test]
async fn a_refused_update_is_invalid_with_ecs_message() {
    let describe = describe_services("web:6");
    let update = mock!(Client::update_service).then_error(|| {
        UpdateServiceError::InvalidParameterException(
            InvalidParameterException::builder()
                .message("canaryPercent must be between 0.1 and 100")
                .meta(meta(
                    "InvalidParameterException",
                    "canaryPercent must be between 0.1 and 100",
                ))
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&describe, &update]);
    let adapter = ServiceDeploymentsAdapter::from_client(client);
    let e = adapter
        .start(
            &key(),
            &request(Version::TaskDefinition("web:7".into()), canary()),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    assert_eq!(e.operation, "ecs:UpdateService");
    assert!(e.message.contains("canaryPercent must be"), "{e}");
}

fn paused_deployment() -> SdkServiceDeployment {
    let pause = DeploymentLifecycleHookDetail::builder()
        .hook_id("ecs-pause-1")
        .target_type(DeploymentLifecycleHookTargetType::Pause)
        .status(DeploymentLifecycleHookStatus::AwaitingAction)
        .expires_at(DateTime::from_millis(1_700_000_600_000))
        .timeout_action(DeploymentLifecycleHookAction::Rollback)
        .build();
    let lambda = DeploymentLifecycleHookDetail::builder()
        .hook_id("ecs-lambda-1")
        .target_type(DeploymentLifecycleHookTargetType::AwsLambda)
        .target_arn(LAMBDA)
        .status(DeploymentLifecycleHookStatus::InProgress)
        .build();
    SdkServiceDeployment::builder()
        .service_deployment_arn(ARN)
        .status(SdkDeploymentStatus::InProgress)
        .status_reason("waiting for the pause")
        // Not in the SDK's enum: it arrives as its unknown variant.
        .lifecycle_stage(ServiceDeploymentLifecycleStage::from(
            "PRE_PRODUCTION_TRAFFIC_SHIFT",
        ))
        .lifecycle_hook_details(pause)
        .lifecycle_hook_details(lambda)
        .created_at(DateTime::from_millis(1_700_000_000_000))
        .target_service_revision(
            ServiceRevisionSummary::builder()
                .arn(REVISION)
                .requested_task_count(4)
                .running_task_count(1)
                .requested_production_traffic_weight(9.6)
                .build(),
        )
        .build()
}

fn describe_paused() -> aws_smithy_mocks::Rule {
    mock!(Client::describe_service_deployments)
        .match_requests(|r| r.service_deployment_arns() == [ARN])
        .then_output(|| {
            DescribeServiceDeploymentsOutput::builder()
                .service_deployments(paused_deployment())
                .build()
        })
}

/// The blue/green load balancer of a service on the ECS deployment
/// controller: its target group and the alternate one.
fn blue_green() -> LoadBalancer {
    LoadBalancer::builder()
        .target_group_arn(BLUE)
        .container_name("app")
        .container_port(8080)
        .advanced_configuration(
            AdvancedConfiguration::builder()
                .alternate_target_group_arn(GREEN)
                .production_listener_rule(
                    "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/web/1/2/3",
                )
                .role_arn("arn:aws:iam::1:role/ecs-elb")
                .build(),
        )
        .build()
}

/// DescribeServiceRevisions of REVISION, on task definition web:7 with
/// these load balancers.
fn describe_revision(load_balancers: fn() -> Vec<LoadBalancer>) -> aws_smithy_mocks::Rule {
    mock!(Client::describe_service_revisions)
        .match_requests(|r| r.service_revision_arns() == [REVISION])
        .then_output(move || {
            DescribeServiceRevisionsOutput::builder()
                .service_revisions(
                    SdkServiceRevision::builder()
                        .service_revision_arn(REVISION)
                        .service_arn("arn:aws:ecs:us-east-1:1:service/prod/web")
                        .task_definition(TASK_DEFINITION)
                        .set_load_balancers(Some(load_balancers()))
                        .build(),
                )
                .build()
        })
}

/// Task definition web:7: app runs repo/web:2, log runs fluent:2.
fn task_definition_output() -> DescribeTaskDefinitionOutput {
    let td = TaskDefinition::builder()
        .family("web")
        .revision(7)
        .task_definition_arn(TASK_DEFINITION)
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("repo/web:2")
                .build(),
        )
        .container_definitions(
            ContainerDefinition::builder()
                .name("log")
                .image("fluent:2")
                .build(),
        )
        .build();
    DescribeTaskDefinitionOutput::builder()
        .task_definition(td)
        .build()
}

fn task_definition_7() -> aws_smithy_mocks::Rule {
    mock!(Client::describe_task_definition)
        .match_requests(|r| r.task_definition() == Some(TASK_DEFINITION))
        .then_output(task_definition_output)
}

fn target_7(target_groups: &[&str]) -> TargetRevision {
    TargetRevision {
        task_definition: TASK_DEFINITION.into(),
        images: [("app", "repo/web:2"), ("log", "fluent:2")]
            .into_iter()
            .map(|(c, i)| (c.to_string(), i.to_string()))
            .collect(),
        target_groups: target_groups.iter().map(|t| t.to_string()).collect(),
        requested_tasks: Some(4),
    }
}

#[tokio::test]
async fn a_deployment_reads_its_stage_pauses_weight_and_target() {
    let (deployments, revisions, td) = (
        describe_paused(),
        describe_revision(|| vec![blue_green()]),
        task_definition_7(),
    );
    let client = mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&deployments, &revisions, &td]
    );
    let adapter = ServiceDeploymentsAdapter::from_client(client);
    let found = adapter.describe(&[ARN.to_string()]).await.unwrap();
    assert_eq!(
        found,
        [ServiceDeployment {
            arn: ARN.into(),
            status: ServiceDeploymentStatus::InProgress,
            status_reason: Some("waiting for the pause".into()),
            stage: Some(LifecycleStage::PreProductionTrafficShift),
            pauses: vec![Pause {
                hook_id: "ecs-pause-1".into(),
                status: PauseStatus::AwaitingAction,
                expires_at: Some(Timestamp(1_700_000_600_000)),
            }],
            created_at: Some(Timestamp(1_700_000_000_000)),
            target_weight: Some(10),
            rollback_reason: None,
            // Which of the two groups the new tasks are in is not
            // documented: both are listed, so both must be healthy.
            target: Some(target_7(&[BLUE, GREEN])),
        }],
        "the Lambda hook is not a pause"
    );
}

#[tokio::test]
async fn the_target_revision_and_its_images_are_read_once() {
    let (deployments, revisions, td) = (
        describe_paused(),
        describe_revision(|| vec![blue_green()]),
        task_definition_7(),
    );
    let client = mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&deployments, &revisions, &td]
    );
    let adapter = ServiceDeploymentsAdapter::from_client(client);
    let first = adapter.describe(&[ARN.to_string()]).await.unwrap();
    let second = adapter.describe(&[ARN.to_string()]).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(second[0].target, Some(target_7(&[BLUE, GREEN])));
    assert_eq!(
        deployments.num_calls(),
        2,
        "the deployment is read each time"
    );
    assert_eq!(
        (revisions.num_calls(), td.num_calls()),
        (1, 1),
        "a revision never changes: read once"
    );
}

#[tokio::test]
async fn deployments_of_one_revision_read_it_in_one_call() {
    let deployments = mock!(Client::describe_service_deployments).then_compute_output(|r| {
        DescribeServiceDeploymentsOutput::builder()
            .set_service_deployments(Some(
                r.service_deployment_arns()
                    .iter()
                    .map(|a| {
                        let mut d = paused_deployment();
                        d.service_deployment_arn = Some(a.clone());
                        d
                    })
                    .collect(),
            ))
            .build()
    });
    let (revisions, td) = (
        describe_revision(|| vec![blue_green()]),
        task_definition_7(),
    );
    let client = mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&deployments, &revisions, &td]
    );
    let adapter = ServiceDeploymentsAdapter::from_client(client);
    let arns: Vec<String> = (0..3).map(|i| format!("{ARN}-{i}")).collect();
    let found = adapter.describe(&arns).await.unwrap();
    assert_eq!(found.len(), 3);
    assert!(found.iter().all(|d| d.target.is_some()), "{found:?}");
    assert_eq!((revisions.num_calls(), td.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_revision_without_load_balancers_has_no_target_group() {
    let (deployments, revisions, td) = (
        describe_paused(),
        describe_revision(Vec::new),
        task_definition_7(),
    );
    let client = mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&deployments, &revisions, &td]
    );
    let adapter = ServiceDeploymentsAdapter::from_client(client);
    let found = adapter.describe(&[ARN.to_string()]).await.unwrap();
    assert_eq!(found[0].target, Some(target_7(&[])));
}

#[test]
fn each_load_balancer_gives_its_target_group_and_its_alternate_once() {
    let plain = LoadBalancer::builder()
        .target_group_arn(BLUE)
        .container_name("app")
        .container_port(8080)
        .build();
    let other = LoadBalancer::builder()
        .target_group_arn("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-admin/3")
        .container_name("admin")
        .container_port(9090)
        .build();
    let classic = LoadBalancer::builder()
        .load_balancer_name("web-classic")
        .container_name("app")
        .container_port(8080)
        .build();
    let r = SdkServiceRevision::builder()
        .task_definition(TASK_DEFINITION)
        .load_balancers(blue_green())
        .load_balancers(plain)
        .load_balancers(other)
        .load_balancers(classic)
        .build();
    assert_eq!(
        revision(&r).unwrap().target_groups,
        [
            BLUE,
            GREEN,
            "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-admin/3"
        ]
    );
    let without = SdkServiceRevision::builder()
        .load_balancers(blue_green())
        .build();
    assert_eq!(revision(&without), None, "no task definition, no revision");
}

#[tokio::test]
async fn a_revision_that_cannot_be_read_leaves_the_target_unknown_and_is_asked_again() {
    let deployments = describe_paused();
    let refused = mock!(Client::describe_service_revisions).then_error(|| {
        DescribeServiceRevisionsError::generic(meta(
            "AccessDeniedException",
            "not authorized to perform ecs:DescribeServiceRevisions",
        ))
    });
    let client = mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&deployments, &refused],
        |c| c.retry_config(RetryConfig::disabled())
    );
    let adapter = ServiceDeploymentsAdapter::from_client(client);
    for _ in 0..2 {
        let found = adapter.describe(&[ARN.to_string()]).await.unwrap();
        assert_eq!(found.len(), 1, "the deployment is still described");
        assert_eq!(found[0].target, None);
        assert_eq!(
            found[0].stage,
            Some(LifecycleStage::PreProductionTrafficShift)
        );
    }
    assert_eq!(refused.num_calls(), 2, "a failed read is not remembered");
}

#[tokio::test]
async fn a_missing_revision_leaves_the_target_unknown() {
    let deployments = describe_paused();
    let missing = mock!(Client::describe_service_revisions).then_output(|| {
        DescribeServiceRevisionsOutput::builder()
            .failures(Failure::builder().arn(REVISION).reason("MISSING").build())
            .build()
    });
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&deployments, &missing]);
    let adapter = ServiceDeploymentsAdapter::from_client(client);
    let found = adapter.describe(&[ARN.to_string()]).await.unwrap();
    assert_eq!(found[0].target, None);
    assert_eq!(missing.num_calls(), 1);
}

#[tokio::test]
async fn a_target_whose_images_cannot_be_read_is_unknown_until_they_are() {
    let (deployments, revisions) = (describe_paused(), describe_revision(|| vec![blue_green()]));
    let td = mock!(Client::describe_task_definition)
        .sequence()
        .error(|| {
            DescribeTaskDefinitionError::generic(meta("AccessDeniedException", "not authorized"))
        })
        .output(task_definition_output)
        .build();
    let client = mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&deployments, &revisions, &td],
        |c| c.retry_config(RetryConfig::disabled())
    );
    let adapter = ServiceDeploymentsAdapter::from_client(client);
    let found = adapter.describe(&[ARN.to_string()]).await.unwrap();
    assert_eq!(
        found[0].target, None,
        "empty images would say it deploys no image"
    );
    let found = adapter.describe(&[ARN.to_string()]).await.unwrap();
    assert_eq!(found[0].target, Some(target_7(&[BLUE, GREEN])));
    assert_eq!(
        revisions.num_calls(),
        1,
        "the revision itself was read the first time"
    );
}

#[test]
fn a_rolled_back_deployment_says_why() {
    let mut d = paused_deployment();
    d.status = Some(SdkDeploymentStatus::RollbackSuccessful);
    d.rollback = Some(Rollback::builder().reason("alarm web-5xx in ALARM").build());
    d.lifecycle_stage = None;
    let read = service_deployment(&d).unwrap();
    assert_eq!(read.status, ServiceDeploymentStatus::RollbackSuccessful);
    assert_eq!(
        read.rollback_reason.as_deref(),
        Some("alarm web-5xx in ALARM")
    );
    assert_eq!(read.stage, None);
}

#[tokio::test]
async fn describe_asks_twenty_at_a_time_and_leaves_missing_ones_out() {
    let rule = mock!(Client::describe_service_deployments)
        .match_requests(|r| r.service_deployment_arns().len() <= DESCRIBE_LIMIT)
        .then_compute_output(|r| {
            let (missing, found): (Vec<&String>, Vec<&String>) = r
                .service_deployment_arns()
                .iter()
                .partition(|a| a.ends_with("-gone"));
            DescribeServiceDeploymentsOutput::builder()
                .set_service_deployments(Some(
                    found
                        .into_iter()
                        .map(|a| {
                            SdkServiceDeployment::builder()
                                .service_deployment_arn(a)
                                .status(SdkDeploymentStatus::Successful)
                                .build()
                        })
                        .collect(),
                ))
                .set_failures(Some(
                    missing
                        .into_iter()
                        .map(|a| Failure::builder().arn(a).reason("MISSING").build())
                        .collect(),
                ))
                .build()
        });
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&rule]);
    let adapter = ServiceDeploymentsAdapter::from_client(client);
    let mut arns: Vec<String> = (0..24).map(|i| format!("{ARN}-{i}")).collect();
    arns.push(format!("{ARN}-gone"));
    let found = adapter.describe(&arns).await.unwrap();
    assert_eq!(found.len(), 24);
    assert_eq!(rule.num_calls(), 2);
    assert!(adapter.describe(&[]).await.unwrap().is_empty());
    assert_eq!(rule.num_calls(), 2, "nothing asked, nothing sent");
}

#[tokio::test]
async fn ongoing_lists_the_five_ongoing_statuses_since_and_follows_the_next_token() {
    let asks =
        |r: &aws_sdk_ecs::operation::list_service_deployments::ListServiceDeploymentsInput| {
            let mut statuses: Vec<&str> = r.status().iter().map(|s| s.as_str()).collect();
            statuses.sort();
            r.cluster() == Some("prod")
                && r.service() == Some("web")
                && r.max_results() == Some(100)
                && statuses
                    == [
                        "IN_PROGRESS",
                        "PENDING",
                        "ROLLBACK_IN_PROGRESS",
                        "ROLLBACK_REQUESTED",
                        "STOP_REQUESTED",
                    ]
                && r.created_at().and_then(|c| c.after()) == Some(&DateTime::from_millis(1_000))
        };
    let brief = |arn: &str| {
        ServiceDeploymentBrief::builder()
            .service_deployment_arn(arn)
            .build()
    };
    let first = mock!(Client::list_service_deployments)
        .match_requests(move |r| asks(r) && r.next_token().is_none())
        .then_output(move || {
            ListServiceDeploymentsOutput::builder()
                .service_deployments(brief("a"))
                .service_deployments(brief("b"))
                .next_token("page-2")
                .build()
        });
    let second = mock!(Client::list_service_deployments)
        .match_requests(move |r| asks(r) && r.next_token() == Some("page-2"))
        .then_output(move || {
            ListServiceDeploymentsOutput::builder()
                .service_deployments(brief("c"))
                .build()
        });
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&first, &second]);
    let adapter = ServiceDeploymentsAdapter::from_client(client);
    let arns = adapter
        .ongoing(&key(), Some(Timestamp(1_000)))
        .await
        .unwrap();
    assert_eq!(arns, ["a", "b", "c"]);
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}

#[tokio::test]
async fn ongoing_without_since_sends_no_creation_range() {
    let rule = mock!(Client::list_service_deployments)
        .match_requests(|r| r.created_at().is_none())
        .then_output(|| ListServiceDeploymentsOutput::builder().build());
    let adapter = ServiceDeploymentsAdapter::from_client(mock_client!(aws_sdk_ecs, [&rule]));
    assert!(adapter.ongoing(&key(), None).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_answer_always_names_its_action() {
    let answered = |action: DeploymentLifecycleHookAction| {
        mock!(Client::continue_service_deployment)
            .match_requests(move |r| {
                r.service_deployment_arn() == Some(ARN)
                    && r.hook_id() == Some("ecs-pause-1")
                    && r.action() == Some(&action)
            })
            .then_output(|| ContinueServiceDeploymentOutput::builder().build())
    };
    let go_on = answered(DeploymentLifecycleHookAction::Continue);
    let back = answered(DeploymentLifecycleHookAction::Rollback);
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&go_on, &back]);
    let adapter = ServiceDeploymentsAdapter::from_client(client);
    adapter
        .answer(ARN, "ecs-pause-1", PauseAction::Continue)
        .await
        .unwrap();
    adapter
        .answer(ARN, "ecs-pause-1", PauseAction::Rollback)
        .await
        .unwrap();
    assert_eq!((go_on.num_calls(), back.num_calls()), (1, 1));
}

#[tokio::test]
async fn stopping_rolls_back() {
    let rule = mock!(Client::stop_service_deployment)
        .match_requests(|r| {
            r.service_deployment_arn() == Some(ARN)
                && r.stop_type() == Some(&StopServiceDeploymentStopType::Rollback)
        })
        .then_output(|| StopServiceDeploymentOutput::builder().build());
    let adapter = ServiceDeploymentsAdapter::from_client(mock_client!(aws_sdk_ecs, [&rule]));
    adapter.stop(ARN).await.unwrap();
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn answering_a_deployment_that_does_not_exist_is_not_found_and_names_it() {
    let rule = mock!(Client::continue_service_deployment).then_error(|| {
        ContinueServiceDeploymentError::ServiceDeploymentNotFoundException(
            ServiceDeploymentNotFoundException::builder()
                .message("The service deployment does not exist.")
                .meta(meta(
                    "ServiceDeploymentNotFoundException",
                    "The service deployment does not exist.",
                ))
                .build(),
        )
    });
    let adapter = ServiceDeploymentsAdapter::from_client(mock_client!(aws_sdk_ecs, [&rule]));
    let e = adapter
        .answer(ARN, "ecs-pause-1", PauseAction::Continue)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert_eq!(e.operation, "ecs:ContinueServiceDeployment");
    assert!(e.message.contains(ARN), "{e}");
}

#[tokio::test]
async fn a_conflicting_stop_is_retried() {
    let rule = mock!(Client::stop_service_deployment).then_error(|| {
        StopServiceDeploymentError::ConflictException(
            ConflictException::builder()
                .message("the deployment is already stopping")
                .meta(meta(
                    "ConflictException",
                    "the deployment is already stopping",
                ))
                .build(),
        )
    });
    let adapter = ServiceDeploymentsAdapter::from_client(mock_client!(aws_sdk_ecs, [&rule]));
    let e = adapter.stop(ARN).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.kind.is_retryable());
    assert_eq!(e.operation, "ecs:StopServiceDeployment");
}

#[tokio::test]
async fn a_throttled_read_is_throttled() {
    let rule = mock!(Client::describe_service_deployments).then_error(|| {
        DescribeServiceDeploymentsError::generic(meta("ThrottlingException", "Rate exceeded"))
    });
    // No SDK retries here: the error as the adapter sees it after them.
    let client = mock_client!(aws_sdk_ecs, RuleMode::Sequential, [&rule], |c| c
        .retry_config(RetryConfig::disabled()));
    let adapter = ServiceDeploymentsAdapter::from_client(client);
    let e = adapter.describe(&[ARN.to_string()]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Throttled, "{e}");
    assert_eq!(e.operation, "ecs:DescribeServiceDeployments");
}
