//! The deployment files agree with the code and with each other: the
//! terraform task role grants exactly the IAM policy's actions, statement by
//! statement; every CUTOVER_* variable it sets is a configuration key; the
//! image and the task definition check health with `cutover probe`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Statement id to actions, from the JSON policy.
fn json_policy() -> BTreeMap<String, BTreeSet<String>> {
    let policy: Value = serde_json::from_str(&read("deploy/iam/cutover-policy.json")).unwrap();
    let mut out = BTreeMap::new();
    for statement in policy["Statement"].as_array().unwrap() {
        let sid = statement["Sid"].as_str().unwrap().to_string();
        let actions = match &statement["Action"] {
            Value::String(a) => BTreeSet::from([a.clone()]),
            Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
            other => panic!("{sid}: Action is {other}"),
        };
        out.insert(sid, actions);
    }
    out
}

/// The text of the block that starts at `open` (at its `{`), braces balanced.
fn block(text: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open..=open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced braces after byte {open}");
}

/// Quoted strings in `text` that look like IAM actions.
fn actions(text: &str) -> BTreeSet<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.split_once(':').is_some_and(|(service, action)| {
                !service.is_empty()
                    && service.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                    && action.chars().all(|c| c.is_ascii_alphanumeric())
                    && action.starts_with(|c: char| c.is_ascii_uppercase())
            })
        })
        .map(str::to_string)
        .collect()
}

/// Statement id to actions, from the terraform policy document `cutover`.
fn terraform_policy() -> BTreeMap<String, BTreeSet<String>> {
    let iam = read("deploy/terraform/iam.tf");
    let start = iam
        .find("data \"aws_iam_policy_document\" \"cutover\"")
        .expect("the cutover policy document");
    let document = block(&iam, start + iam[start..].find('{').unwrap());
    let mut out = BTreeMap::new();
    let mut rest = document;
    while let Some(at) = rest.find("statement {") {
        let statement = block(rest, at + "statement ".len());
        let sid = statement
            .split("sid")
            .nth(1)
            .and_then(|s| s.split('"').nth(1))
            .expect("every statement has a sid")
            .to_string();
        let listed = statement
            .split("actions")
            .skip(1)
            .filter_map(|s| s.split_once('[').and_then(|(_, s)| s.split_once(']')))
            .map(|(list, _)| list)
            .collect::<String>();
        out.insert(sid, actions(&listed));
        rest = &rest[at + statement.len()..];
    }
    out
}

#[test]
fn the_terraform_task_role_grants_exactly_the_iam_policy() {
    let json = json_policy();
    assert!(json.len() >= 8, "{json:?}");
    assert_eq!(terraform_policy(), json);
}

#[test]
fn terraform_sets_only_configuration_keys() {
    let ecs = read("deploy/terraform/ecs.tf");
    let keys: BTreeSet<String> = cutover::config::KEYS
        .iter()
        .map(|(k, _, _)| format!("CUTOVER_{}", k.to_uppercase()))
        .collect();
    let set: BTreeSet<String> = ecs
        .split('"')
        .filter(|s| s.starts_with("CUTOVER_") && *s != "CUTOVER_API_TOKEN")
        .map(str::to_string)
        .collect();
    assert!(set.contains("CUTOVER_LEASE_TABLE"), "{set:?}");
    let unknown: Vec<_> = set.difference(&keys).collect();
    assert!(unknown.is_empty(), "not configuration keys: {unknown:?}");
}

#[test]
fn the_image_and_the_task_check_health_with_cutover_probe() {
    let dockerfile = read("Dockerfile");
    let healthcheck = dockerfile
        .lines()
        .skip_while(|l| !l.starts_with("HEALTHCHECK"))
        .take(2)
        .collect::<String>();
    assert!(healthcheck.contains("\"probe\""), "{healthcheck}");
    assert!(
        healthcheck.contains("http://127.0.0.1:8080/healthz"),
        "{healthcheck}"
    );
    assert!(
        dockerfile.lines().any(|l| l.starts_with("USER 65532")),
        "runs as non-root"
    );
    let ecs = read("deploy/terraform/ecs.tf");
    assert!(ecs.contains("\"probe\"") && ecs.contains("http://127.0.0.1:8080/healthz"));
    let scrape = read("deploy/terraform/prometheus-scrape.yml");
    let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&scrape).unwrap();
    assert_eq!(
        parsed["scrape_configs"][0]["metrics_path"].as_str(),
        Some("/metrics")
    );
}
