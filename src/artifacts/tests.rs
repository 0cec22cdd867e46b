//! The fixtures of a CodePipeline release, and what goes wrong with them.

use std::path::{Path, PathBuf};

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/codepipeline")
        .join(name)
}

fn images() -> Vec<ImageDetail> {
    ImageDetail::parse_all(&[fixture("imageDetail.json").display().to_string()])
}

fn text(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

fn image(name: &str) -> (String, String) {
    (name.to_string(), "registry/repo:1".to_string())
}

#[test]
fn the_fixtures_make_a_release_with_the_image_filled_in() {
    let r = load(
        &fixture("taskdef.json"),
        &images(),
        Some(&fixture("appspec.yaml")),
    )
    .unwrap();
    assert_eq!(r.taskdef.family, "checkout");
    let web = &r.taskdef.json["containerDefinitions"][0];
    assert!(web["image"].as_str().unwrap().ends_with(
        "checkout@sha256:9b0c1a8e4f7d2c6b5a3e1f0d9c8b7a6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a"
    ));
    assert_eq!(r.traffic(), Some(("web", 8080)));
    let spec = r.appspec.as_ref().unwrap();
    let names: Vec<&str> = spec.hooks.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "BeforeInstall",
            "AfterAllowTestTraffic",
            "BeforeAllowTraffic"
        ]
    );
    let (subnets, groups, public) = spec.placement.network.clone().unwrap();
    assert_eq!((subnets.len(), groups.len(), public), (2, 1, false));
    assert_eq!(spec.placement.platform_version.as_deref(), Some("LATEST"));
}

#[test]
fn image_details_are_numbered_or_named() {
    let d = ImageDetail::parse_all(&[
        "a.json".into(),
        "SIDECAR_IMAGE=b.json".into(),
        "c.json".into(),
    ]);
    let names: Vec<&str> = d.iter().map(|i| i.placeholder.as_str()).collect();
    assert_eq!(names, ["IMAGE1_NAME", "SIDECAR_IMAGE", "IMAGE2_NAME"]);
}

#[test]
fn a_placeholder_without_a_value_names_its_field() {
    let e = TaskDef::parse(Path::new("taskdef.json"), &text("taskdef.json"), &[]).unwrap_err();
    assert_eq!(e.field, "containerDefinitions[0].image");
    assert!(e.to_string().starts_with("taskdef.json: field `containerDefinitions[0].image`: placeholder <IMAGE1_NAME> has no value"), "{e}");
    let filled = TaskDef::parse(
        Path::new("t"),
        &text("taskdef.json"),
        &[image("IMAGE1_NAME")],
    )
    .unwrap();
    assert_eq!(filled.containers[0].image, "registry/repo:1");
    assert_eq!(filled.containers[0].ports, [8080, 9090]);
}

#[test]
fn an_appspec_container_or_port_not_in_the_task_definition_is_refused() {
    let td = TaskDef::parse(
        Path::new("taskdef.json"),
        &text("taskdef.json"),
        &[image("IMAGE1_NAME")],
    )
    .unwrap();
    let wrong_name =
        text("appspec.yaml").replace("ContainerName: \"web\"", "ContainerName: \"api\"");
    let spec = AppSpec::parse(Path::new("appspec.yaml"), &wrong_name).unwrap();
    let e = td
        .check_target(Path::new("appspec.yaml"), &spec)
        .unwrap_err();
    assert_eq!(
        e.field,
        "Resources[0].TargetService.Properties.LoadBalancerInfo.ContainerName"
    );
    assert!(
        e.message.contains("\"api\" is not a container") && e.message.contains("web, log-router"),
        "{e}"
    );
    let wrong_port = text("appspec.yaml").replace("ContainerPort: 8080", "ContainerPort: 80");
    let spec = AppSpec::parse(Path::new("appspec.yaml"), &wrong_port).unwrap();
    let e = td
        .check_target(Path::new("appspec.yaml"), &spec)
        .unwrap_err();
    assert!(
        e.field.ends_with("ContainerPort") && e.message.contains("8080, 9090"),
        "{e}"
    );
}

#[test]
fn malformed_files_name_the_file_and_the_field() {
    let td = text("taskdef.json");
    let cases = [
        (
            td.replacen("\"family\": \"checkout\"", "\"family\": 7", 1),
            "family",
        ),
        (
            td.replacen("\"containerPort\": 8080", "\"containerPort\": \"8080\"", 1),
            "containerDefinitions[0].portMappings[0].containerPort",
        ),
        (
            td.replacen("\"cpu\": \"512\"", "\"cpus\": \"512\"", 1),
            "cpus",
        ),
        ("{not json".to_string(), ""),
    ];
    for (body, field) in cases {
        let e =
            TaskDef::parse(Path::new("taskdef.json"), &body, &[image("IMAGE1_NAME")]).unwrap_err();
        assert_eq!(e.field, field, "{e}");
        assert!(e.to_string().starts_with("taskdef.json: "), "{e}");
    }
    let spec = text("appspec.yaml");
    let cases = [
        (
            spec.replace("ContainerPort: 8080", "ContainerPort: eighty"),
            "Resources[0].TargetService.Properties.LoadBalancerInfo.ContainerPort",
        ),
        (
            spec.replace("Type: AWS::ECS::Service", "Type: AWS::Lambda::Function"),
            "Resources[0].TargetService.Type",
        ),
        (
            spec.replace("BeforeInstall:", "BeforeBlockTraffic:"),
            "Hooks[0].BeforeBlockTraffic",
        ),
        (
            spec.replace("AssignPublicIp: \"DISABLED\"", "AssignPublicIp: \"MAYBE\""),
            "Resources[0].TargetService.Properties.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp",
        ),
    ];
    for (body, field) in cases {
        let e = AppSpec::parse(Path::new("appspec.yaml"), &body).unwrap_err();
        assert_eq!(e.field, field, "{e}");
    }
    let e = image_uri(Path::new("imageDetail.json"), "{\"imageUri\": \"x\"}").unwrap_err();
    assert_eq!(
        (e.file.as_str(), e.field.as_str()),
        ("imageDetail.json", "ImageURI")
    );
}

#[test]
fn a_file_saved_from_describe_task_definition_registers_without_its_read_only_fields() {
    let mut v: serde_json::Value = serde_json::from_str(&text("taskdef.json")).unwrap();
    v["taskDefinitionArn"] = "arn:aws:ecs:eu-west-1:1:task-definition/checkout:3".into();
    v["revision"] = 3.into();
    v["status"] = "ACTIVE".into();
    let td = TaskDef::parse(Path::new("t"), &v.to_string(), &[image("IMAGE1_NAME")]).unwrap();
    assert_eq!(td.dropped.len(), 3);
    assert!(td.json.get("revision").is_none());
}
