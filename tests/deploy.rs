//! The deployment files agree with the code and with each other: the
//! terraform task role grants exactly the IAM policy's actions, on the same
//! resources and under the same conditions, statement by statement; tagging
//! is granted only on task definitions as they are registered; every CUTOVER_* variable it sets is a configuration key; the
//! image and the task definition check health with `cutover probe`; the
//! role assumed in other accounts grants the same ECS and ELB statements,
//! trusts only the controller's role with the external id, and the
//! controller may assume it and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// What one statement grants: its actions, its resources, and its
/// conditions as `(test, variable, value)`.
#[derive(Debug, PartialEq, Eq, Default)]
struct Grant {
    actions: BTreeSet<String>,
    resources: BTreeSet<String>,
    conditions: BTreeSet<(String, String, String)>,
}

/// A string or a list of strings, as IAM JSON allows either.
fn strings(value: &Value, what: &str) -> BTreeSet<String> {
    match value {
        Value::String(a) => BTreeSet::from([a.clone()]),
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
        other => panic!("{what} is {other}"),
    }
}

/// Statement id to what it grants, from a JSON policy.
fn json_policy(path: &str) -> BTreeMap<String, Grant> {
    let policy: Value = serde_json::from_str(&read(path)).unwrap();
    let mut out = BTreeMap::new();
    for statement in policy["Statement"].as_array().unwrap() {
        let sid = statement["Sid"].as_str().unwrap().to_string();
        let mut conditions = BTreeSet::new();
        if let Some(tests) = statement.get("Condition").and_then(Value::as_object) {
            for (test, variables) in tests {
                for (variable, values) in variables.as_object().unwrap() {
                    for value in strings(values, &format!("{sid}: {variable}")) {
                        conditions.insert((test.clone(), variable.clone(), value));
                    }
                }
            }
        }
        let grant = Grant {
            actions: strings(&statement["Action"], &format!("{sid}: Action")),
            resources: strings(&statement["Resource"], &format!("{sid}: Resource")),
            conditions,
        };
        out.insert(sid, grant);
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

/// A terraform ARN written the way the JSON policy writes it: the table
/// references become the tables' default names, and the partition, region
/// and account become `aws`, `REGION` and `ACCOUNT`.
fn as_json_arn(terraform: &str) -> String {
    let desired = "arn:aws:dynamodb:REGION:ACCOUNT:table/cutover-desired";
    let leases = "arn:aws:dynamodb:REGION:ACCOUNT:table/cutover-leases";
    terraform
        .replace("${aws_dynamodb_table.desired.arn}", desired)
        .replace("${aws_dynamodb_table.leases.arn}", leases)
        .replace("aws_dynamodb_table.desired.arn", desired)
        .replace("aws_dynamodb_table.leases.arn", leases)
        .replace("${local.partition}", "aws")
        .replace("${var.region}", "REGION")
        .replace("${local.account}", "ACCOUNT")
}

/// The items of the list assigned to `name` (`name = [...]`), unquoted.
fn list(text: &str, name: &str) -> BTreeSet<String> {
    text.split(name)
        .skip(1)
        .filter(|s| s.trim_start().starts_with('='))
        .filter_map(|s| s.split_once('[').and_then(|(_, s)| s.split_once(']')))
        .flat_map(|(items, _)| items.split(','))
        .map(|item| item.trim().trim_matches('"').to_string())
        .filter(|item| !item.is_empty())
        .map(|item| as_json_arn(&item))
        .collect()
}

/// The quoted value assigned to `name` (`name = "..."`).
fn scalar(text: &str, name: &str) -> String {
    text.split(name)
        .skip(1)
        .find(|s| s.trim_start().starts_with('='))
        .and_then(|s| s.split('"').nth(1))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .to_string()
}

/// Statement id to what it grants, from the terraform policy document `cutover`.
fn terraform_policy() -> BTreeMap<String, Grant> {
    let iam = read("deploy/terraform/iam.tf");
    let start = iam
        .find("data \"aws_iam_policy_document\" \"cutover\"")
        .expect("the cutover policy document");
    let document = block(&iam, start + iam[start..].find('{').unwrap());
    let mut out = BTreeMap::new();
    let mut rest = document;
    while let Some(at) = rest.find("statement {") {
        let statement = block(rest, at + "statement ".len());
        let sid = scalar(statement, "sid");
        let mut conditions = BTreeSet::new();
        let mut within = statement;
        while let Some(at) = within.find("condition {") {
            let condition = block(within, at + "condition ".len());
            for value in list(condition, "values") {
                conditions.insert((
                    scalar(condition, "test"),
                    scalar(condition, "variable"),
                    value,
                ));
            }
            within = &within[at + condition.len()..];
        }
        let grant = Grant {
            actions: list(statement, "actions"),
            resources: list(statement, "resources"),
            conditions,
        };
        out.insert(sid, grant);
        rest = &rest[at + statement.len()..];
    }
    out
}

#[test]
fn the_terraform_task_role_grants_exactly_the_iam_policy() {
    let json = json_policy("deploy/iam/cutover-policy.json");
    assert!(json.len() >= 8, "{json:?}");
    let terraform = terraform_policy();
    assert_eq!(
        terraform.keys().collect::<Vec<_>>(),
        json.keys().collect::<Vec<_>>()
    );
    for (sid, grant) in &json {
        assert_eq!(&terraform[sid], grant, "statement {sid}");
    }
}

/// RegisterTaskDefinition with tags is also authorized as ecs:TagResource on
/// the new task definition, and cutover never tags anything else:
/// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html
#[test]
fn tagging_is_granted_only_on_task_definitions_being_registered() {
    let registering = BTreeSet::from([(
        "StringEquals".to_string(),
        "ecs:CreateAction".to_string(),
        "RegisterTaskDefinition".to_string(),
    )]);
    let task_definitions =
        BTreeSet::from(["arn:aws:ecs:REGION:ACCOUNT:task-definition/*:*".to_string()]);
    for path in [
        "deploy/iam/cutover-policy.json",
        "deploy/iam/cutover-set-policy.json",
    ] {
        let tagging: Vec<_> = json_policy(path)
            .into_iter()
            .filter(|(_, g)| {
                g.actions
                    .iter()
                    .any(|a| a == "ecs:TagResource" || a == "ecs:*")
            })
            .collect();
        assert_eq!(tagging.len(), 1, "{path}: {tagging:?}");
        for (sid, grant) in tagging {
            assert_eq!(
                grant.actions,
                BTreeSet::from(["ecs:TagResource".to_string()]),
                "{path} {sid}"
            );
            assert_eq!(grant.resources, task_definitions, "{path} {sid}");
            assert_eq!(grant.conditions, registering, "{path} {sid}");
        }
    }
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

/// The role cutover assumes in another account grants what the controller's
/// own role grants on ECS and the load balancers, in any region, and
/// nothing of the tables (they stay in the controller's account), CodeDeploy
/// or CloudWatch (read in the controller's own account and region only).
#[test]
fn the_target_role_grants_the_controllers_ecs_and_elb_statements_in_any_region() {
    let controller = json_policy("deploy/iam/cutover-policy.json");
    let target = json_policy("deploy/iam/cutover-target-policy.json");
    assert!(target.len() >= 8, "{target:?}");
    for (sid, grant) in &target {
        let own = &controller[sid];
        assert_eq!(grant.actions, own.actions, "statement {sid}");
        let conditions: BTreeSet<(String, String, String)> = own
            .conditions
            .iter()
            .map(|(t, k, v)| (t.clone(), k.clone(), v.replace(":REGION:", ":*:")))
            .collect();
        assert_eq!(grant.conditions, conditions, "statement {sid}");
        let anywhere: BTreeSet<String> = own
            .resources
            .iter()
            .map(|r| r.replace(":REGION:", ":*:"))
            .collect();
        assert_eq!(grant.resources, anywhere, "statement {sid}");
        for action in &grant.actions {
            assert!(
                action.starts_with("ecs:")
                    || action.starts_with("elasticloadbalancing:")
                    || action == "iam:PassRole",
                "{sid} grants {action}"
            );
        }
    }
    let left_out: Vec<_> = controller
        .iter()
        .filter(|(sid, _)| !target.contains_key(*sid))
        .flat_map(|(_, g)| g.actions.iter())
        .filter(|a| a.starts_with("ecs:") || a.starts_with("elasticloadbalancing:"))
        .collect();
    assert!(
        left_out.is_empty(),
        "ECS or ELB actions the target role lacks: {left_out:?}"
    );
}

#[test]
fn the_target_role_trusts_only_the_controllers_role_with_the_external_id() {
    let trust: Value =
        serde_json::from_str(&read("deploy/iam/cutover-target-trust-policy.json")).unwrap();
    let statements = trust["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1);
    let s = &statements[0];
    assert_eq!(s["Action"], "sts:AssumeRole");
    assert!(
        s["Principal"]["AWS"]
            .as_str()
            .unwrap()
            .ends_with(":role/cutover-task"),
        "{s}"
    );
    assert_eq!(
        s["Condition"]["StringEquals"]["sts:ExternalId"],
        "EXTERNAL_ID"
    );
}

#[test]
fn the_controller_may_assume_the_target_role_and_nothing_else() {
    let assume = json_policy("deploy/iam/cutover-assume-policy.json");
    let grant = &assume["AssumeTargetRoles"];
    assert_eq!(
        grant.actions,
        BTreeSet::from(["sts:AssumeRole".to_string()])
    );
    assert!(
        grant
            .resources
            .iter()
            .all(|r| r.starts_with("arn:aws:iam::") && r.ends_with(":role/cutover-target")),
        "{grant:?}"
    );
    // Terraform grants the same, one ARN per listed account.
    let iam = read("deploy/terraform/iam.tf");
    let start = iam
        .find("data \"aws_iam_policy_document\" \"assume_targets\"")
        .expect("the assume_targets policy document");
    let document = block(&iam, start + iam[start..].find('{').unwrap());
    assert!(document.contains("\"sts:AssumeRole\""), "{document}");
    assert!(
        document.contains(":role/${var.target_role_name}"),
        "{document}"
    );
    assert!(!document.contains("\"*\""), "{document}");
}
