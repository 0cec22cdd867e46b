//! The CodeDeploy adapter against mocked SDK responses: what it asks
//! CodeDeploy for, and how it reads the answers.

use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::operation::batch_get_deployment_targets::BatchGetDeploymentTargetsOutput;
use aws_sdk_codedeploy::operation::batch_get_deployments::BatchGetDeploymentsOutput;
use aws_sdk_codedeploy::operation::create_deployment::CreateDeploymentError;
use aws_sdk_codedeploy::operation::create_deployment::CreateDeploymentOutput;
use aws_sdk_codedeploy::operation::list_deployments::ListDeploymentsOutput;
use aws_sdk_codedeploy::operation::stop_deployment::{StopDeploymentError, StopDeploymentOutput};
use aws_sdk_codedeploy::types::error::{
    DeploymentDoesNotExistException, DeploymentLimitExceededException,
};
use aws_sdk_codedeploy::types::{
    DeploymentTarget, EcsTarget, EcsTaskSet, ErrorCode, ErrorInformation, LifecycleEvent,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};

use super::*;

fn info(id: &str, status: SdkStatus) -> DeploymentInfo {
    DeploymentInfo::builder()
        .deployment_id(id)
        .status(status)
        .description("cutover rollout 0123abcd#1")
        .create_time(DateTime::from_millis(1_700_000_000_000))
        .build()
}

/// The error code the SDK reads from a real response.
fn code(code: &str) -> aws_sdk_codedeploy::error::ErrorMetadata {
    aws_sdk_codedeploy::error::ErrorMetadata::builder()
        .code(code)
        .build()
}

fn key() -> ServiceKey {
    ServiceKey::new("prod", "web")
}

#[tokio::test]
async fn every_codedeploy_status_maps_to_the_domains() {
    let cases = [
        (SdkStatus::Created, DeploymentStatus::Created),
        (SdkStatus::Queued, DeploymentStatus::Queued),
        (SdkStatus::InProgress, DeploymentStatus::InProgress),
        (SdkStatus::Baking, DeploymentStatus::Baking),
        (SdkStatus::Ready, DeploymentStatus::Ready),
        (SdkStatus::Succeeded, DeploymentStatus::Succeeded),
        (SdkStatus::Failed, DeploymentStatus::Failed),
        (SdkStatus::Stopped, DeploymentStatus::Stopped),
    ];
    let statuses = cases.clone();
    let rule = mock!(Client::batch_get_deployments).then_output(move || {
        BatchGetDeploymentsOutput::builder()
            .set_deployments_info(Some(
                statuses
                    .iter()
                    .enumerate()
                    .map(|(i, (s, _))| info(&format!("d-{i}"), s.clone()))
                    .collect(),
            ))
            .build()
    });
    let adapter = CodeDeployAdapter::from_client(mock_client!(aws_sdk_codedeploy, [&rule]));
    let ids: Vec<String> = (0..cases.len()).map(|i| format!("d-{i}")).collect();
    let found = adapter.batch_get(&ids).await.unwrap();
    let got: Vec<DeploymentStatus> = found.iter().map(|d| d.status).collect();
    let want: Vec<DeploymentStatus> = cases.iter().map(|(_, s)| *s).collect();
    assert_eq!(got, want);
    assert_eq!(found[0].rollout().unwrap().to_string(), "0123abcd#1");
    assert_eq!(found[0].created_at, Some(Timestamp(1_700_000_000_000)));
}

#[tokio::test]
async fn a_failed_deployment_carries_codedeploys_error() {
    let rule = mock!(Client::batch_get_deployments).then_output(|| {
        let failed = DeploymentInfo::builder()
            .deployment_id("d-1")
            .status(SdkStatus::Failed)
            .error_information(
                ErrorInformation::builder()
                    .code(ErrorCode::EcsUpdateError)
                    .message("tasks failed to start")
                    .build(),
            )
            .instance_termination_wait_time_started(false)
            .build();
        BatchGetDeploymentsOutput::builder()
            .deployments_info(failed)
            .build()
    });
    let adapter = CodeDeployAdapter::from_client(mock_client!(aws_sdk_codedeploy, [&rule]));
    let d = adapter.batch_get(&["d-1".into()]).await.unwrap();
    assert_eq!(
        d[0].error.as_deref(),
        Some("ECS_UPDATE_ERROR: tasks failed to start")
    );
}

#[tokio::test]
async fn more_than_25_ids_take_one_call_per_25() {
    let rule = mock!(Client::batch_get_deployments)
        .match_requests(|r| r.deployment_ids().len() <= BATCH_LIMIT)
        .then_compute_output(|r| {
            BatchGetDeploymentsOutput::builder()
                .set_deployments_info(Some(
                    r.deployment_ids()
                        .iter()
                        .map(|id| info(id, SdkStatus::InProgress))
                        .collect(),
                ))
                .build()
        });
    let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&rule]);
    let adapter = CodeDeployAdapter::from_client(client);
    let ids: Vec<String> = (0..30).map(|i| format!("d-{i}")).collect();
    assert_eq!(adapter.batch_get(&ids).await.unwrap().len(), 30);
    assert_eq!(rule.num_calls(), 2);
}

#[tokio::test]
async fn stopping_a_deployment_that_does_not_exist_is_not_found() {
    let rule = mock!(Client::stop_deployment).then_error(|| {
        StopDeploymentError::DeploymentDoesNotExistException(
            DeploymentDoesNotExistException::builder()
                .message("d-9 does not exist")
                .meta(code("DeploymentDoesNotExistException"))
                .build(),
        )
    });
    let adapter = CodeDeployAdapter::from_client(mock_client!(aws_sdk_codedeploy, [&rule]));
    let e = adapter.stop("d-9").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert_eq!(e.operation, "codedeploy:StopDeployment");
}

#[tokio::test]
async fn a_second_deployment_in_a_busy_group_is_refused_as_invalid() {
    let rule = mock!(Client::create_deployment).then_error(|| {
        CreateDeploymentError::DeploymentLimitExceededException(
            DeploymentLimitExceededException::builder()
                .message("The Deployment Group 'web-dg' already has an active Deployment")
                .meta(code("DeploymentLimitExceededException"))
                .build(),
        )
    });
    let adapter = CodeDeployAdapter::from_client(mock_client!(aws_sdk_codedeploy, [&rule]));
    let request = CreateDeployment {
        application: "web-app".into(),
        deployment_group: "web-dg".into(),
        deployment_config: None,
        description: "cutover rollout 0123abcd#1".into(),
        task_definition: "web:2".into(),
        container: "app".into(),
        container_port: 8080,
        hooks: BTreeMap::new(),
    };
    let e = adapter.create(&key(), &request).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    assert!(
        e.message.contains("DeploymentLimitExceededException"),
        "{e}"
    );
}

#[tokio::test]
async fn abort_stops_with_codedeploys_rollback() {
    let rule = mock!(Client::stop_deployment)
        .match_requests(|r| {
            r.deployment_id() == Some("d-1") && r.auto_rollback_enabled() == Some(true)
        })
        .then_output(|| StopDeploymentOutput::builder().build());
    let adapter = CodeDeployAdapter::from_client(mock_client!(aws_sdk_codedeploy, [&rule]));
    adapter.stop("d-1").await.unwrap();
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn a_deployment_is_created_with_the_appspec_of_the_request() {
    let request = CreateDeployment {
        application: "web-app".into(),
        deployment_group: "web-dg".into(),
        deployment_config: Some("CodeDeployDefault.ECSAllAtOnce".into()),
        description: "cutover rollout 0123abcd#1".into(),
        task_definition: "arn:aws:ecs:us-east-1:1:task-definition/web:2".into(),
        container: "app".into(),
        container_port: 8080,
        hooks: BTreeMap::new(),
    };
    let appspec = request.appspec();
    let rule = mock!(Client::create_deployment)
        .match_requests(move |r| {
            let content = r
                .revision()
                .and_then(|rev| rev.app_spec_content())
                .and_then(|c| c.content());
            r.application_name() == Some("web-app")
                && r.deployment_group_name() == Some("web-dg")
                && r.deployment_config_name() == Some("CodeDeployDefault.ECSAllAtOnce")
                && r.description() == Some("cutover rollout 0123abcd#1")
                && content == Some(appspec.as_str())
        })
        .then_output(|| {
            CreateDeploymentOutput::builder()
                .deployment_id("d-NEW")
                .build()
        });
    let adapter = CodeDeployAdapter::from_client(mock_client!(aws_sdk_codedeploy, [&rule]));
    assert_eq!(adapter.create(&key(), &request).await.unwrap(), "d-NEW");
}

#[tokio::test]
async fn lifecycle_events_and_traffic_come_from_the_ecs_target() {
    let rule = mock!(Client::batch_get_deployment_targets)
        .match_requests(|r| r.target_ids() == ["prod:web"])
        .then_output(|| {
            let event = |name: &str, s: LifecycleEventStatus| {
                LifecycleEvent::builder()
                    .lifecycle_event_name(name)
                    .status(s)
                    .build()
            };
            let set = |label: TargetLabel, w: f64| {
                EcsTaskSet::builder()
                    .task_set_label(label)
                    .traffic_weight(w)
                    .build()
            };
            let target = EcsTarget::builder()
                .lifecycle_events(event("Install", LifecycleEventStatus::Succeeded))
                .lifecycle_events(event("AllowTraffic", LifecycleEventStatus::InProgress))
                .task_sets_info(set(TargetLabel::Blue, 90.0))
                .task_sets_info(set(TargetLabel::Green, 10.0))
                .build();
            BatchGetDeploymentTargetsOutput::builder()
                .deployment_targets(DeploymentTarget::builder().ecs_target(target).build())
                .build()
        });
    let adapter = CodeDeployAdapter::from_client(mock_client!(aws_sdk_codedeploy, [&rule]));
    let (events, traffic) = adapter.lifecycle("d-1", &key()).await.unwrap();
    assert_eq!(events["AllowTraffic"], EventStatus::InProgress);
    assert_eq!(traffic, Some((90, 10)));
}

#[tokio::test]
async fn in_flight_lists_the_unfinished_states_and_since_lists_by_creation() {
    let in_flight = mock!(Client::list_deployments)
        .match_requests(|r| {
            r.include_only_statuses().len() == 5
                && !r.include_only_statuses().contains(&SdkStatus::Succeeded)
                && r.create_time_range().is_none()
        })
        .then_output(|| ListDeploymentsOutput::builder().deployments("d-1").build());
    let since = mock!(Client::list_deployments)
        .match_requests(|r| {
            r.include_only_statuses().is_empty()
                && r.create_time_range().and_then(|t| t.start())
                    == Some(&DateTime::from_millis(1_000))
        })
        .then_output(|| {
            ListDeploymentsOutput::builder()
                .deployments("d-2")
                .deployments("d-3")
                .build()
        });
    let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&in_flight, &since]);
    let adapter = CodeDeployAdapter::from_client(client);
    assert_eq!(adapter.list("a", "g", None).await.unwrap(), ["d-1"]);
    assert_eq!(
        adapter
            .list("a", "g", Some(Timestamp(1_000)))
            .await
            .unwrap(),
        ["d-2", "d-3"]
    );
}
