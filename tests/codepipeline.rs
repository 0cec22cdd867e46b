//! A CodePipeline release's artifacts through `cutover set` against the
//! emulator: the record written, the task definition registered once.

mod support;
#[allow(dead_code)]
#[path = "e2e/world.rs"]
mod world;

use std::path::PathBuf;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_ecs::types::TaskDefinitionField;
use serde_json::Value;

use support::cli::{Run, cutover};
use world::{CLUSTER, SERVICE, TABLE, World};

const IMAGE: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/checkout@sha256:9b0c1a8e4f7d2c6b5a3e1f0d9c8b7a6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a";

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/codepipeline")
        .join(name)
        .display()
        .to_string()
}

fn set(w: &World) -> Run {
    let key = format!("{CLUSTER}/{SERVICE}");
    let groups = format!("{},{}", w.blue, w.green);
    cutover(
        &w.endpoint(),
        TABLE,
        &[
            "set",
            &key,
            "--taskdef",
            &fixture("taskdef.json"),
            "--image-detail",
            &fixture("imageDetail.json"),
            "--appspec",
            &fixture("appspec.yaml"),
            "--production-listener",
            &w.production,
            "--target-groups",
            &groups,
        ],
    )
}

async fn record(w: &World) -> Value {
    let item = w
        .ddb
        .get_item()
        .table_name(TABLE)
        .key("service", AttributeValue::S(format!("{CLUSTER}/{SERVICE}")))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
        .expect("the record exists");
    serde_dynamo::from_item(item).expect("the item reads as JSON")
}

async fn revisions(w: &World) -> Vec<String> {
    w.ecs
        .list_task_definitions()
        .family_prefix("checkout")
        .send()
        .await
        .expect("ListTaskDefinitions")
        .task_definition_arns
        .unwrap_or_default()
}

#[tokio::test]
async fn codepipeline_artifacts_become_a_record_and_one_registered_task_definition() {
    let w = world::world().await;
    cutover(&w.endpoint(), TABLE, &["init-table"]).expect(0);

    let first = set(&w).expect(0);
    assert!(
        first
            .stdout
            .contains("registered task definition checkout:1"),
        "{}",
        first.stdout
    );
    // Lambda hooks cannot run under cutover's own driver: said, not dropped silently.
    assert!(
        first.stderr.contains("hook BeforeInstall (arn:aws:lambda:"),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains("hook AfterAllowTestTraffic"),
        "{}",
        first.stderr
    );

    let body = record(&w).await;
    let arn = body["task_definition"]
        .as_str()
        .expect("a task definition")
        .to_string();
    assert!(
        arn.starts_with("arn:aws:ecs:") && arn.ends_with(":task-definition/checkout:1"),
        "{arn}"
    );
    assert_eq!(body["container"], "web");
    assert_eq!(body["container_port"], 8080);
    assert_eq!(
        body["hooks"]["before_production_traffic"]["url"],
        "https://hooks.example.com/checkout/before-traffic"
    );
    assert_eq!(body["network"]["subnets"][1], "subnet-4e5f6a7b");
    assert!(body.get("image").is_none());

    let described = w
        .ecs
        .describe_task_definition()
        .task_definition(&arn)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .expect("DescribeTaskDefinition");
    let td = described.task_definition.expect("a task definition");
    let web = &td.container_definitions()[0];
    assert_eq!(web.image(), Some(IMAGE), "the placeholder is filled");
    assert_eq!(web.port_mappings()[0].container_port(), Some(8080));
    assert_eq!(td.container_definitions()[1].name(), Some("log-router"));
    let tags = described.tags.unwrap_or_default();
    assert!(
        tags.iter()
            .any(|t| t.key() == Some("team") && t.value() == Some("payments"))
    );

    // The same artifacts again: the revision is reused and nothing changes.
    let second = set(&w).expect(0);
    assert!(
        second
            .stdout
            .contains("reusing identical task definition checkout:1"),
        "{}",
        second.stdout
    );
    assert!(
        second.stdout.contains("nothing to change"),
        "{}",
        second.stdout
    );
    assert_eq!(revisions(&w).await.len(), 1, "no second revision");
    assert_eq!(record(&w).await["task_definition"], arn.as_str());
}

#[tokio::test]
async fn an_appspec_whose_container_is_not_in_the_task_definition_writes_and_registers_nothing() {
    let w = world::world().await;
    cutover(&w.endpoint(), TABLE, &["init-table"]).expect(0);
    let dir = std::env::temp_dir().join(format!("cutover-appspec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let appspec = dir.join("appspec.yaml");
    let text = std::fs::read_to_string(fixture("appspec.yaml")).unwrap();
    std::fs::write(
        &appspec,
        text.replace("ContainerName: \"web\"", "ContainerName: \"api\""),
    )
    .unwrap();
    let key = format!("{CLUSTER}/{SERVICE}");
    let groups = format!("{},{}", w.blue, w.green);
    let run = cutover(
        &w.endpoint(),
        TABLE,
        &[
            "set",
            &key,
            "--taskdef",
            &fixture("taskdef.json"),
            "--image-detail",
            &fixture("imageDetail.json"),
            "--appspec",
            &appspec.display().to_string(),
            "--production-listener",
            &w.production,
            "--target-groups",
            &groups,
        ],
    )
    .expect(1);
    assert!(
        run.stderr.contains("LoadBalancerInfo.ContainerName") && run.stderr.contains("\"api\""),
        "{}",
        run.stderr
    );
    assert!(revisions(&w).await.is_empty());
    // Without an imageDetail the placeholder has no value.
    let run = cutover(
        &w.endpoint(),
        TABLE,
        &[
            "set",
            &key,
            "--taskdef",
            &fixture("taskdef.json"),
            "--container",
            "web",
            "--container-port",
            "8080",
            "--production-listener",
            &w.production,
            "--target-groups",
            &groups,
        ],
    )
    .expect(1);
    assert!(
        run.stderr
            .contains("placeholder <IMAGE1_NAME> has no value"),
        "{}",
        run.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}
