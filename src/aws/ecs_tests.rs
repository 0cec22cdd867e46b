//! The ECS adapter against mocked SDK responses, for what the emulator
//! cannot show: the images of services on the ECS deployment controller.

use aws_sdk_ecs::error::ErrorMetadata;
use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::operation::describe_task_definition::{
    DescribeTaskDefinitionError, DescribeTaskDefinitionOutput,
};
use aws_sdk_ecs::types::{
    ContainerDefinition, DeploymentController, DeploymentControllerType, Service, TaskDefinition,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};

use super::*;

const TD: &str = "arn:aws:ecs:us-east-1:1:task-definition/web:7";

fn service(name: &str, controller: DeploymentControllerType) -> Service {
    Service::builder()
        .service_name(name)
        .status("ACTIVE")
        .task_definition(TD)
        .current_service_deployment("arn:aws:ecs:us-east-1:1:service-deployment/prod/web/abc")
        .deployment_controller(
            DeploymentController::builder()
                .r#type(controller)
                .build()
                .unwrap(),
        )
        .build()
}

fn describe_services(controller: DeploymentControllerType) -> aws_smithy_mocks::Rule {
    mock!(Client::describe_services).then_compute_output(move |r| {
        DescribeServicesOutput::builder()
            .set_services(Some(
                r.services()
                    .iter()
                    .map(|name| service(name, controller.clone()))
                    .collect(),
            ))
            .build()
    })
}

fn task_definition() -> aws_smithy_mocks::Rule {
    mock!(Client::describe_task_definition)
        .match_requests(|r| r.task_definition() == Some(TD))
        .then_output(|| {
            let container = |name: &str, image: &str| {
                ContainerDefinition::builder()
                    .name(name)
                    .image(image)
                    .build()
            };
            DescribeTaskDefinitionOutput::builder()
                .task_definition(
                    TaskDefinition::builder()
                        .task_definition_arn(TD)
                        .container_definitions(container("app", "repo/web:2"))
                        .container_definitions(container("log", "fluent:2"))
                        .build(),
                )
                .build()
        })
}

fn native(
    found: &[(String, ServiceState)],
    i: usize,
) -> &crate::rollout::service_deployment::ServiceRevision {
    match &found[i].1 {
        ServiceState::Found(s) => s.native.as_ref().expect("on the ECS controller"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn images_of_a_task_definition_are_read_once_for_every_service_and_sweep() {
    let (services, td) = (
        describe_services(DeploymentControllerType::Ecs),
        task_definition(),
    );
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&services, &td]);
    let adapter = EcsAdapter::from_client(client);
    let names = vec!["web".to_string(), "api".to_string()];
    for _ in 0..3 {
        let found = adapter.describe_services("prod", &names).await.unwrap();
        for i in 0..2 {
            let rev = native(&found, i);
            assert_eq!(rev.task_definition, TD);
            assert_eq!(rev.images["app"], "repo/web:2");
            assert_eq!(rev.images["log"], "fluent:2");
        }
    }
    assert_eq!(services.num_calls(), 3);
    assert_eq!(td.num_calls(), 1, "a revision never changes: read once");
}

#[tokio::test]
async fn a_task_definition_that_cannot_be_read_leaves_the_images_empty() {
    let services = describe_services(DeploymentControllerType::Ecs);
    let td = mock!(Client::describe_task_definition).then_error(|| {
        DescribeTaskDefinitionError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&services, &td]);
    let adapter = EcsAdapter::from_client(client);
    for _ in 0..2 {
        let found = adapter
            .describe_services("prod", &["web".to_string()])
            .await
            .unwrap();
        assert!(native(&found, 0).images.is_empty());
    }
    assert_eq!(td.num_calls(), 2, "a failed read is not remembered");
}

#[tokio::test]
async fn services_cutover_runs_task_sets_for_read_no_task_definition() {
    let (services, td) = (
        describe_services(DeploymentControllerType::External),
        task_definition(),
    );
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&services, &td]);
    let adapter = EcsAdapter::from_client(client);
    let found = adapter
        .describe_services("prod", &["web".to_string()])
        .await
        .unwrap();
    assert!(matches!(&found[0].1, ServiceState::Found(s) if s.native.is_none()));
    assert_eq!(td.num_calls(), 0);
}
