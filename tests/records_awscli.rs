//! Records written the way platform teams write them, with the real AWS CLI
//! (`aws dynamodb put-item` and `batch-write-item`, every DynamoDB type),
//! into the emulator, and
//! read back by cutover's DynamoDB store: each is valid as the README says,
//! or `Invalid` with a message that names the field and the type written.
//!
//! The CLI is the pinned one `scripts/awscli install` puts in
//! `.venv-awscli/`. Where it cannot be installed, the test says so on
//! stderr in one line and skips.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use cutover::aws::DynamoStore;
use cutover::cloud::DesiredStore;
use cutover::rollout::ServiceKey;
use serde_json::{Value, json};

use support::aws::REGION;
use support::emulator::exclusive;

const TABLE: &str = "cutover-desired";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `aws dynamodb <args>` against the emulator with dummy credentials.
fn aws(cli: &Path, endpoint: &str, args: &[&str]) {
    let out = Command::new(cli)
        .args(["dynamodb", "--endpoint-url", endpoint, "--region", REGION])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/nonexistent/cutover-test")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/cutover-test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap_or_else(|e| panic!("running aws: {e}"));
    assert!(
        out.status.success(),
        "aws dynamodb {}: {}",
        args.first().copied().unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `--item` of the README's `aws dynamodb put-item` example, as written.
fn readme_item() -> Value {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let section = readme
        .split("### Writing a record with `aws dynamodb`")
        .nth(1)
        .expect("the README's aws dynamodb section");
    let item = section
        .split("--item '")
        .nth(1)
        .and_then(|rest| rest.split("'\n").next())
        .expect("an --item '…' in the README's aws dynamodb section");
    serde_json::from_str(item).expect("the README's item is JSON")
}

/// The README's item for another service, with `changes` applied (a null
/// change removes the attribute).
fn item_for(name: &str, changes: Value) -> Value {
    let mut item = readme_item();
    item["service"] = json!({"S": format!("prod/{name}")});
    for (k, v) in changes.as_object().expect("a map of changes") {
        match v {
            Value::Null => {
                item.as_object_mut().expect("an item").remove(k);
            }
            v => item[k] = v.clone(),
        }
    }
    item
}

const BLUE: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/checkout-blue/73e2d6bc24d8a067";
const GREEN: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/checkout-green/2453ed029918f21f";

#[tokio::test(flavor = "multi_thread")]
async fn records_written_with_the_aws_cli_are_read_strictly() {
    let Some(cli) = support::awscli::path("records_awscli") else {
        return;
    };
    let emulator = exclusive().await;
    let config = support::aws::config(&emulator).await;
    let store = DynamoStore::new(&config, TABLE);
    store.create_table().await.expect("the table");
    let endpoint = emulator.endpoint();

    let long = "x".repeat(200_000);
    // (service, changes to the README's item, the outcome: Ok, or the start
    // of the message).
    let cases: Vec<(&str, Value, Result<(), &str>)> = vec![
        (
            "numbers-and-maps",
            json!({
                "bake": {"N": "900"},
                "paused": {"BOOL": false},
                "strategy": {"M": {"type": {"S": "canary"}, "percent": {"N": "10"}, "interval": {"S": "5m"}}},
                "labels": {"M": {"team": {"S": "payments"}}},
                "hooks": {"M": {"before_install": {"M": {"url": {"S": "https://hooks.example/check"}}}}},
            }),
            Ok(()),
        ),
        (
            "binary-container",
            json!({"container": {"B": "YXBw"}}),
            Err("field `container`: is binary (B): write a string (S)"),
        ),
        (
            "string-set-target-groups",
            json!({"target_groups": {"SS": [BLUE, GREEN]}}),
            Err(
                "field `target_groups`: is a string set (SS), which has no order: write a list (L) of the two target group ARNs (S)",
            ),
        ),
        (
            "number-set-port",
            json!({"container_port": {"NS": ["8080", "8081"]}}),
            Err(
                "field `container_port`: is a number set (NS): write a whole number (N) from 1 to 65535",
            ),
        ),
        (
            "binary-set-labels",
            json!({"labels": {"BS": ["YQ=="]}}),
            Err("field `labels`: is a binary set (BS): write a map (M)"),
        ),
        (
            "list-of-hooks",
            json!({"hooks": {"L": [{"M": {"url": {"S": "https://hooks.example/check"}}}]}}),
            Err("field `hooks`: is a list (L): write a map (M)"),
        ),
        (
            "null-paused",
            json!({"paused": {"NULL": true}}),
            Err(
                "field `paused`: is null (NULL): write true or false (BOOL), or leave the field out",
            ),
        ),
        (
            "boolean-strategy",
            json!({"strategy": {"BOOL": true}}),
            Err("field `strategy`: is a boolean (BOOL): write a strategy name (S)"),
        ),
        (
            "string-port",
            json!({"container_port": {"S": "8080"}}),
            Err(
                "field `container_port`: is a string (S): write a whole number (N) from 1 to 65535",
            ),
        ),
        (
            "huge-port",
            json!({"container_port": {"N": "100000000000000000000000000000000000000000"}}),
            Err("field `container_port`: must be from 1 to 65535"),
        ),
        (
            "every-fault",
            json!({
                "container_port": {"N": "70000"},
                "stratgy": {"S": "canary"},
                "container": {"B": "YXBw"},
            }),
            Err(
                "field `container`: is binary (B): write a string (S); field `container_port`: must be from 1 to 65535; field `stratgy`: is not a field of the record: remove it, or did you mean `strategy`?",
            ),
        ),
        (
            "control-characters",
            json!({"container": {"S": "app\u{1b}[2J"}, "image": {"S": "web\nlatest"}, "task_definition": null}),
            Err("field `image`: \"web\\nlatest\" is not an image reference"),
        ),
        (
            "long-strategy",
            json!({"strategy": {"S": long}}),
            Err(
                "field `strategy`: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…\" is not a known strategy name",
            ),
        ),
    ];

    // The README's own example, exactly as documented.
    let dir = std::env::temp_dir().join(format!("cutover-records-awscli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let readme = dir.join("readme.json");
    std::fs::write(&readme, readme_item().to_string()).expect("writes");
    aws(
        &cli,
        &endpoint,
        &[
            "put-item",
            "--table-name",
            TABLE,
            "--item",
            &format!("file://{}", readme.display()),
        ],
    );
    // The rest in one call: each CLI run starts a Python interpreter.
    let requests: Vec<Value> = cases
        .iter()
        .map(|(name, changes, _)| json!({"PutRequest": {"Item": item_for(name, changes.clone())}}))
        .collect();
    let batch = dir.join("batch.json");
    std::fs::write(&batch, json!({ TABLE: requests }).to_string()).expect("writes");
    aws(
        &cli,
        &endpoint,
        &[
            "batch-write-item",
            "--request-items",
            &format!("file://{}", batch.display()),
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);

    let readme = store
        .get(&ServiceKey::new("prod", "checkout"))
        .await
        .expect("reads")
        .expect("the README's record");
    let spec = readme
        .spec()
        .unwrap_or_else(|e| panic!("the README's record: {e}"));
    assert_eq!(spec.traffic.container_port, 8080);
    assert_eq!(
        spec.traffic.target_groups,
        [BLUE.to_string(), GREEN.to_string()]
    );
    assert_eq!(spec.bake.as_secs(), 15 * 60);

    for (name, _, outcome) in cases {
        let record = store
            .get(&ServiceKey::new("prod", name))
            .await
            .expect("reads")
            .unwrap_or_else(|| panic!("prod/{name} was written"));
        match (record.spec(), outcome) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(start)) => {
                let e = e.to_string();
                assert!(e.starts_with(start), "prod/{name}: {e}");
                assert!(!e.chars().any(char::is_control), "prod/{name}: {e:?}");
                assert!(e.len() < 1000, "prod/{name}: {} bytes", e.len());
            }
            (Ok(spec), Err(start)) => panic!("prod/{name} is accepted ({spec:?}), not {start:?}"),
            (Err(e), Ok(())) => panic!("prod/{name} is refused: {e}"),
        }
    }
}
