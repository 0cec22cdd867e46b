//! The platform teams' commands through the real binary against the
//! emulator: an ECS service behind an ALB (set up as in `e2e/world.rs`),
//! the table created with `cutover init-table`, and the controller's status
//! written straight into the table where a test needs a phase.

mod support;
#[allow(dead_code)]
#[path = "e2e/world.rs"]
mod world;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use cutover::rollout::{Phase, Status};
use serde_json::{Value, json};

use support::cli::{Run, cutover, spawn};
use world::{CLUSTER, SERVICE, TABLE, World};

fn key() -> String {
    format!("{CLUSTER}/{SERVICE}")
}

async fn ready() -> World {
    let w = world::world().await;
    cutover(&w.endpoint(), TABLE, &["init-table"]).expect(0);
    w
}

fn run(w: &World, args: &[&str]) -> Run {
    cutover(&w.endpoint(), TABLE, args)
}

/// `cutover set` for a first release, with every wiring flag.
fn set_new(w: &World, service: &str, strategy: &str) -> Run {
    let groups = format!("{},{}", w.blue, w.green);
    run(
        w,
        &[
            "set",
            service,
            "--task-definition",
            "web:2",
            "--container",
            "app",
            "--container-port",
            "8080",
            "--production-listener",
            &w.production,
            "--test-listener",
            &w.test_listener,
            "--target-groups",
            &groups,
            "--strategy",
            strategy,
        ],
    )
}

async fn item(w: &World, service: &str) -> Option<HashMap<String, AttributeValue>> {
    w.ddb
        .get_item()
        .table_name(TABLE)
        .key("service", AttributeValue::S(service.to_string()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
}

async fn body(w: &World) -> Value {
    let item = item(w, &key()).await.expect("the record exists");
    serde_dynamo::from_item(item).expect("the item reads as JSON")
}

/// Writes a status as the controller would: only `status` and its version.
async fn write_status(w: &World, status: &Value) -> Status {
    let decoded: Status = serde_json::from_value(status.clone()).expect("a controller status");
    let value = serde_dynamo::to_attribute_value(&decoded).expect("encodes");
    w.ddb
        .update_item()
        .table_name(TABLE)
        .key("service", AttributeValue::S(key()))
        .update_expression("SET #s = :s, status_version = :v")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":s", value)
        .expression_attribute_values(":v", AttributeValue::N("7".into()))
        .send()
        .await
        .expect("UpdateItem");
    decoded
}

fn revision_of(stdout: &str) -> String {
    stdout
        .split("revision ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no revision in {stdout:?}"))
        .to_string()
}

fn awaiting_promotion(revision: &str) -> Value {
    let mut status = serde_json::to_value(Status {
        phase: Phase::AwaitingPromotion,
        weights: Some((90, 10)),
        message: "waiting for promotion with 10% on the candidate".into(),
        // 2026-01-01T00:01:00Z, when the rollout below reached its step.
        phase_since: cutover::time::Timestamp(1_767_225_660_000),
        ..Status::default()
    })
    .expect("encodes");
    status["rollout"] = json!({
        "id": format!("{revision}#1"),
        "started_at": "2026-01-01T00:00:00Z",
        "from": null,
        "target_group": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/1",
        "step": 1,
        "step_started_at": "2026-01-01T00:01:00Z",
        "progress_at": "2026-01-01T00:01:00Z",
    });
    status["history"] = json!([{
        "at": "2026-01-01T00:01:00Z",
        "from": "Shifting",
        "to": "AwaitingPromotion",
        "reason": "step 1 waits for promotion",
        "revision": revision,
    }]);
    status
}

#[tokio::test(flavor = "multi_thread")]
async fn set_writes_a_valid_record_and_refuses_an_invalid_one_naming_the_field() {
    let w = ready().await;
    let created = set_new(
        &w,
        &key(),
        r#"{"type":"canary","percent":10,"interval":"5m"}"#,
    )
    .expect(0);
    assert!(created.stdout.contains("new record"), "{}", created.stdout);
    let revision = revision_of(&created.stdout);
    let record = body(&w).await;
    assert_eq!(record["task_definition"], "web:2");
    assert_eq!(record["target_groups"], json!([w.blue, w.green]));
    assert_eq!(record["strategy"]["percent"], 10);
    assert!(record["updated_at"].is_string(), "{record}");
    assert!(record.get("status").is_none());

    let again = run(&w, &["set", &key(), "--task-definition", "web:2"]).expect(0);
    assert!(
        again.stdout.contains("nothing to change"),
        "{}",
        again.stdout
    );
    assert_eq!(revision_of(&again.stdout), revision);

    // Invalid as a new record: refused before anything is written.
    let other = format!("{CLUSTER}/other");
    let refused = set_new(
        &w,
        &other,
        r#"{"type":"canary","percent":150,"interval":"5m"}"#,
    )
    .expect(1);
    assert!(
        refused.stderr.contains("field `strategy.percent`"),
        "{}",
        refused.stderr
    );
    assert_eq!(item(&w, &other).await, None);
    // Invalid as a change: the record stays as it was.
    let refused = run(&w, &["set", &key(), "--task-definition", "web:latest"]).expect(1);
    assert!(
        refused.stderr.contains("field `task_definition`"),
        "{}",
        refused.stderr
    );
    assert_eq!(body(&w).await, record);
    // A new record without its wiring is a usage error.
    let usage = run(&w, &["set", &other, "--image", "registry.example/web:3"]).expect(2);
    assert!(usage.stderr.contains("--target-groups"), "{}", usage.stderr);

    let table = run(&w, &["status"]).expect(0);
    let row = table
        .stdout
        .lines()
        .find(|l| l.starts_with(&key()))
        .unwrap_or_else(|| panic!("no row for {}:\n{}", key(), table.stdout));
    assert!(row.contains("not yet seen by the controller"), "{row}");
    assert!(table.stdout.starts_with("SERVICE"), "{}", table.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_prints_the_controllers_next_step_and_changes_nothing() {
    let w = ready().await;
    let created = set_new(&w, &key(), "all_at_once").expect(0);
    let revision = revision_of(&created.stdout);
    let before = item(&w, &key()).await;
    let task_sets = w.task_sets().await;

    let plan = run(&w, &["plan", &key()]).expect(0);
    assert!(
        plan.stdout.contains("Steady → Provisioning"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains(&format!("1. create task set cutover:{revision}")),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("(web:2) in web-green"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("nothing was executed"),
        "{}",
        plan.stdout
    );

    assert_eq!(item(&w, &key()).await, before, "the table is untouched");
    assert_eq!(w.task_sets().await, task_sets, "no task set was created");

    let missing = run(&w, &["plan", &format!("{CLUSTER}/nobody")]).expect(1);
    assert!(
        missing.stderr.contains("has no record"),
        "{}",
        missing.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn promote_and_abort_act_only_on_the_rollout_the_status_names() {
    let w = ready().await;
    let created = set_new(&w, &key(), "all_at_once").expect(0);
    let revision = revision_of(&created.stdout);
    let full = {
        // The status names rollouts by the full revision; `set` prints its
        // short form, which the full one starts with.
        let r = serde_json::to_value(
            cutover::rollout::parse_record(&key().parse().expect("a key"), &body(&w).await)
                .expect("valid")
                .revision,
        )
        .expect("encodes");
        r.as_str().expect("a string").to_string()
    };
    assert!(full.starts_with(&revision));

    // Nothing is in flight yet.
    write_status(
        &w,
        &serde_json::to_value(Status::default()).expect("encodes"),
    )
    .await;
    let refused = run(&w, &["abort", &key()]).expect(1);
    assert!(
        refused.stderr.contains("nothing is in flight"),
        "{}",
        refused.stderr
    );
    let refused = run(&w, &["promote", &key()]).expect(1);
    assert!(
        refused
            .stderr
            .contains("not waiting for promotion: it is Steady"),
        "{}",
        refused.stderr
    );
    assert!(body(&w).await.get("control").is_none());

    let status = write_status(&w, &awaiting_promotion(&full)).await;
    let detail = run(&w, &["status", &key()]).expect(0);
    assert!(
        detail.stdout.contains("AwaitingPromotion for"),
        "{}",
        detail.stdout
    );
    assert!(
        detail.stdout.contains(&format!("{full}#1")),
        "{}",
        detail.stdout
    );
    let history = run(&w, &["history", &key()]).expect(0);
    assert!(
        history.stdout.contains("Shifting → AwaitingPromotion")
            && history.stdout.contains("step 1 waits for promotion"),
        "{}",
        history.stdout
    );

    let promoted = run(&w, &["promote", &key()]).expect(0);
    assert!(
        promoted.stdout.contains("past step 1"),
        "{}",
        promoted.stdout
    );
    let record = body(&w).await;
    assert_eq!(
        record["control"],
        json!({"promote": {"rollout": format!("{full}#1"), "step": 1}})
    );
    let stored: Status = serde_json::from_value(record["status"].clone()).expect("a status");
    assert_eq!(stored, status, "status untouched");
    assert_eq!(record["status_version"], 7);

    let paused = run(&w, &["pause", &key()]).expect(0);
    assert!(
        paused.stdout.contains("holds where it is"),
        "{}",
        paused.stdout
    );
    assert_eq!(body(&w).await["paused"], true);
    let aborted = run(&w, &["abort", &key()]).expect(0);
    assert!(
        aborted.stdout.contains(&format!("{full}#1")),
        "{}",
        aborted.stdout
    );
    let record = body(&w).await;
    assert_eq!(record["control"]["abort"], format!("{full}#1"));
    assert_eq!(
        record["control"]["promote"]["step"], 1,
        "other requests are kept"
    );
}

/// Lines of a running command's stdout, as they come.
fn lines_of(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The lines until `within` has passed.
fn collect(lines: &mpsc::Receiver<String>, within: Duration) -> Vec<String> {
    let until = Instant::now() + within;
    let mut seen = Vec::new();
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn status_watch_redraws_only_when_a_record_changes_and_stops_on_ctrl_c() {
    let w = ready().await;
    set_new(&w, &key(), "all_at_once").expect(0);
    let mut watch = spawn(&w.endpoint(), TABLE, &["status", "--watch"]);
    let lines = lines_of(&mut watch);

    let first = collect(&lines, Duration::from_secs(5));
    let draws = |seen: &[String]| seen.iter().filter(|l| l.starts_with("as of ")).count();
    assert_eq!(draws(&first), 1, "{first:#?}");
    assert!(first.iter().any(|l| l.starts_with(&key())), "{first:#?}");
    // Several polls with nothing changed: nothing new is printed.
    let quiet = collect(&lines, Duration::from_secs(3));
    assert!(quiet.is_empty(), "{quiet:#?}");

    run(&w, &["pause", &key()]).expect(0);
    let after = collect(&lines, Duration::from_secs(5));
    assert_eq!(draws(&after), 1, "one redraw for the change: {after:#?}");
    // Not a terminal: no escape codes in the output.
    assert!(
        first.iter().chain(&after).all(|l| !l.contains('\x1b')),
        "{first:#?}"
    );

    let pid = watch.id().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    let until = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = watch.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > until {
            let _ = watch.kill();
            panic!("status --watch did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_malformed_service_key_is_a_usage_error() {
    let out = cutover("http://127.0.0.1:9", TABLE, &["promote", "no-slash"]).expect(2);
    assert!(out.stderr.contains("<cluster>/<service>"), "{}", out.stderr);
}
