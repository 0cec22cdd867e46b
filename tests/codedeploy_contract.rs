//! The CodeDeploy adapter against the emulator. The emulator stores a
//! deployment but never moves it, and has no Stop or Continue: this checks
//! the request CreateDeployment sends, read back with GetDeployment, and
//! that cutover finds it again by listing the group.

mod support;

use aws_sdk_codedeploy::types::{
    ComputePlatform, DeploymentOption, DeploymentStyle, DeploymentType, EcsService,
};
use cutover::aws::calls::ApiCalls;
use cutover::aws::codedeploy::CodeDeployAdapter;
use cutover::cloud::CodeDeploy;
use cutover::rollout::ServiceKey;
use cutover::rollout::deployment::CreateDeployment;

#[tokio::test]
async fn create_deployment_sends_the_appspec_of_the_record() {
    let emulator = support::emulator::exclusive().await;
    let config = support::aws::config(&emulator).await;
    let cd = aws_sdk_codedeploy::Client::new(&config);
    cd.create_application()
        .application_name("web-app")
        .compute_platform(ComputePlatform::Ecs)
        .send()
        .await
        .expect("CreateApplication");
    cd.create_deployment_group()
        .application_name("web-app")
        .deployment_group_name("web-dg")
        .service_role_arn("arn:aws:iam::123456789012:role/codedeploy")
        .deployment_style(
            DeploymentStyle::builder()
                .deployment_type(DeploymentType::BlueGreen)
                .deployment_option(DeploymentOption::WithTrafficControl)
                .build(),
        )
        .ecs_services(
            EcsService::builder()
                .cluster_name("prod")
                .service_name("web")
                .build(),
        )
        .send()
        .await
        .expect("CreateDeploymentGroup");

    let calls = ApiCalls::new();
    let adapter = CodeDeployAdapter::new(&config, &calls);
    let request = CreateDeployment {
        application: "web-app".into(),
        deployment_group: "web-dg".into(),
        deployment_config: Some("CodeDeployDefault.ECSAllAtOnce".into()),
        description: "cutover rollout 0123abcd#1".into(),
        task_definition: "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7".into(),
        container: "app".into(),
        container_port: 8080,
        hooks: Default::default(),
    };
    let id = adapter
        .create(&ServiceKey::new("prod", "web"), &request)
        .await
        .expect("CreateDeployment");

    let got = cd
        .get_deployment()
        .deployment_id(&id)
        .send()
        .await
        .expect("GetDeployment")
        .deployment_info
        .expect("the deployment");
    assert_eq!(got.application_name(), Some("web-app"));
    assert_eq!(got.deployment_group_name(), Some("web-dg"));
    assert_eq!(got.description(), Some("cutover rollout 0123abcd#1"));
    assert_eq!(
        got.deployment_config_name(),
        Some("CodeDeployDefault.ECSAllAtOnce")
    );
    let content = got
        .revision()
        .and_then(|r| r.app_spec_content())
        .and_then(|c| c.content())
        .expect("an AppSpec in the revision");
    let appspec: serde_json::Value = serde_json::from_str(content).expect("JSON AppSpec");
    let props = &appspec["Resources"][0]["TargetService"]["Properties"];
    assert_eq!(props["TaskDefinition"], request.task_definition.as_str());
    assert_eq!(props["LoadBalancerInfo"]["ContainerName"], "app");
    assert_eq!(props["LoadBalancerInfo"]["ContainerPort"], 8080);

    // Read back through the port, as a pass does.
    let found = adapter
        .batch_get(std::slice::from_ref(&id))
        .await
        .expect("BatchGetDeployments");
    assert_eq!(found.len(), 1);
    assert!(found[0].status.in_flight(), "{:?}", found[0].status);
    assert_eq!(
        found[0].rollout().map(|r| r.to_string()).as_deref(),
        Some("0123abcd#1")
    );
    let listed = adapter
        .list("web-app", "web-dg", None)
        .await
        .expect("ListDeployments");
    assert_eq!(listed, vec![id.clone()]);
    assert_eq!(calls.count("codedeploy", "CreateDeployment"), 1);
}
