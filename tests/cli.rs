//! The platform teams' commands through the real binary against the
//! emulator: an ECS service behind an ALB (set up as in `e2e/world.rs`),
//! the table created with `cutover init-table`, and the controller's status
//! written straight into the table where a test needs a phase (or, for
//! `set --wait`, the controller itself, `cutover run`).

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
use cutover::rollout::Status;
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
        weights: Some((90, 10)),
        message: "waiting for promotion with 10% on the candidate".into(),
        // 2026-01-01T00:01:00Z, when the rollout below reached its step.
        phase_since: cutover::time::Timestamp(1_767_225_660_000),
        ..Status::default()
    })
    .expect("encodes");
    status["phase"] = json!("AwaitingPromotion");
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
    // A port out of range is the record parser's to refuse, like any field:
    // exit 1 with its message, nothing written.
    let refused = run(
        &w,
        &[
            "set",
            &key(),
            "--task-definition",
            "web:2",
            "--container-port",
            "70000",
        ],
    )
    .expect(1);
    assert!(
        refused.stderr.contains("field `container_port`")
            && refused.stderr.contains("must be from 1 to 65535"),
        "{}",
        refused.stderr
    );
    assert_eq!(body(&w).await, record);
    // --auto-promote is a flag; --no-auto-promote says false.
    run(
        &w,
        &[
            "set",
            &key(),
            "--task-definition",
            "web:2",
            "--no-auto-promote",
        ],
    )
    .expect(0);
    assert_eq!(body(&w).await["auto_promote"], false);
    run(
        &w,
        &[
            "set",
            &key(),
            "--task-definition",
            "web:2",
            "--auto-promote",
            "--bake",
            "5m",
        ],
    )
    .expect(0);
    assert_eq!(body(&w).await["auto_promote"], true);
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

/// Waits for a started command to end (killing it after `within`), and
/// returns its exit code with every line it printed.
fn finish(
    child: &mut std::process::Child,
    lines: &mpsc::Receiver<String>,
    within: Duration,
) -> (Option<i32>, Vec<String>) {
    let until = Instant::now() + within;
    let mut seen = Vec::new();
    let code = loop {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            seen.push(line);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("still running after {within:?}: {seen:#?}");
        }
    };
    // The rest of stdout, up to its end.
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(2)) {
        seen.push(line);
    }
    (code, seen)
}

fn count(lines: &[String], text: &str) -> usize {
    lines.iter().filter(|l| l.contains(text)).count()
}

/// The revision the record asks for, in full.
async fn full_revision(w: &World) -> String {
    let revision = cutover::rollout::parse_record(&key().parse().expect("a key"), &body(w).await)
        .expect("valid")
        .revision;
    revision.as_str().to_string()
}

fn transition(at: &str, from: &str, to: &str, reason: &str, revision: &str) -> Value {
    json!({"at": at, "from": from, "to": to, "reason": reason, "revision": revision})
}

/// A status as the controller writes it for `revision`.
fn status_of(
    phase: &str,
    message: &str,
    revision: &str,
    stable: Option<&str>,
    history: &[Value],
) -> Value {
    // A phase of a rollout is written with the rollout in flight.
    let rollout = match phase {
        "Steady" | "Failed" | "Invalid" => Value::Null,
        _ => json!({
            "id": format!("{revision}#1"),
            "started_at": "2026-01-01T00:00:00Z",
            "from": null,
            "target_group": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/1",
            "step": 0,
            "step_started_at": "2026-01-01T00:00:00Z",
            "progress_at": "2026-01-01T00:00:00Z",
        }),
    };
    json!({
        "phase": phase,
        "observed_revision": revision,
        "stable_revision": stable,
        "active": null,
        "candidate": null,
        "weights": [100, 0],
        "rollout": rollout,
        "failed": null,
        "phase_since": "2026-01-01T00:00:00Z",
        "message": message,
        "last_error": null,
        "pending": null,
        "history": history,
    })
}

async fn wait_until_started(lines: &mpsc::Receiver<String>) -> Vec<String> {
    let first = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("the waiter says what it waits for");
    assert!(first.starts_with("waiting up to "), "{first}");
    vec![first]
}

#[tokio::test(flavor = "multi_thread")]
async fn set_wait_follows_a_real_rollout_to_steady_printing_each_transition_once() {
    let w = ready().await;
    let daemon = world::Daemon::start(&w.endpoint());
    let groups = format!("{},{}", w.blue, w.green);
    let mut waiter = spawn(
        &w.endpoint(),
        TABLE,
        &[
            "set",
            &key(),
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
            "all_at_once",
            "--bake",
            "1s",
            "--wait",
            "--timeout",
            "100s",
        ],
    );
    let lines = lines_of(&mut waiter);
    // ECS would start the candidate's tasks and register them: play its part.
    let start = Instant::now();
    loop {
        let created = w
            .task_sets()
            .await
            .iter()
            .any(|(_, ext, _)| ext.as_deref().is_some_and(|e| e.starts_with("cutover:")));
        if created {
            w.register_targets(&w.green.clone(), 20).await;
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no candidate: {:?}\n{}",
            w.status().await,
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, out) = finish(&mut waiter, &lines, Duration::from_secs(110));
    assert_eq!(code, Some(0), "{out:#?}\n{}", daemon.logs());
    assert!(out[0].contains("wrote revision"), "{out:#?}");
    assert!(
        out[1].starts_with("waiting up to 1m 40s for prod/web revision"),
        "{out:#?}"
    );
    // Every transition the controller recorded, once each, in order.
    let transitions = [
        "Steady → Provisioning",
        "Provisioning → Testing",
        "Testing → Shifting",
        "Shifting → Baking",
        "Baking → Finalizing",
        "Finalizing → Steady",
    ];
    let mut at = 0;
    for t in transitions {
        assert_eq!(count(&out, t), 1, "{t}: {out:#?}");
        let i = out.iter().position(|l| l.contains(t)).expect("printed");
        assert!(i > at, "{t} out of order: {out:#?}");
        at = i;
    }
    let last = out.last().expect("a closing line");
    assert!(
        last.starts_with("released: prod/web revision ") && last.contains("is Steady"),
        "{out:#?}"
    );
    let st = w.status().await.expect("a status");
    assert_eq!(st["phase"], "Steady");
    let exit = daemon.stop();
    assert!(exit.success(), "exit {exit:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_fails_when_the_revision_is_rolled_back() {
    let w = ready().await;
    set_new(&w, &key(), "all_at_once").expect(0);
    let r = full_revision(&w).await;
    let earlier = transition(
        "2026-01-01T00:00:01Z",
        "Steady",
        "Provisioning",
        "new revision",
        &r,
    );
    let shifting = transition(
        "2026-01-01T00:00:30Z",
        "Provisioning",
        "Shifting",
        "candidate ready",
        &r,
    );
    write_status(
        &w,
        &status_of(
            "Shifting",
            "candidate has 100% of production traffic",
            &r,
            None,
            &[earlier.clone(), shifting.clone()],
        ),
    )
    .await;
    let mut waiter = spawn(&w.endpoint(), TABLE, &["wait", &key(), "--timeout", "60s"]);
    let lines = lines_of(&mut waiter);
    let mut out = wait_until_started(&lines).await;
    out.extend(collect(&lines, Duration::from_secs(3)));
    // Where it stands when the wait begins; the transitions before it are
    // history, not news.
    assert_eq!(
        count(&out, "candidate has 100% of production traffic"),
        1,
        "{out:#?}"
    );
    assert_eq!(count(&out, " → "), 0, "{out:#?}");

    let rolling_back = transition(
        "2026-01-01T00:01:00Z",
        "Shifting",
        "RollingBack",
        "gate target_health failed: 0/1 healthy targets",
        &r,
    );
    let mut status = status_of(
        "RollingBack",
        "rolling back: gate target_health failed: 0/1 healthy targets",
        &r,
        None,
        &[earlier.clone(), shifting.clone(), rolling_back.clone()],
    );
    write_status(&w, &status).await;
    out.extend(collect(&lines, Duration::from_secs(3)));
    assert_eq!(
        count(&out, "Shifting → RollingBack"),
        1,
        "printed as it happens: {out:#?}"
    );
    assert!(
        waiter.try_wait().expect("wait").is_none(),
        "not over until Failed"
    );

    let failed = transition(
        "2026-01-01T00:01:05Z",
        "RollingBack",
        "Failed",
        "gate target_health failed: 0/1 healthy targets; rolled back to the previous task set",
        &r,
    );
    status = status_of(
        "Failed",
        "revision failed",
        &r,
        None,
        &[earlier, shifting, rolling_back, failed],
    );
    status["failed"] = json!({
        "rollout": format!("{r}#1"),
        "reason": "gate target_health failed: 0/1 healthy targets",
        "at": "2026-01-01T00:01:05Z",
    });
    write_status(&w, &status).await;
    let (code, rest) = finish(&mut waiter, &lines, Duration::from_secs(20));
    out.extend(rest);
    assert_eq!(code, Some(1), "{out:#?}");
    assert_eq!(count(&out, "Shifting → RollingBack"), 1, "{out:#?}");
    assert_eq!(count(&out, "RollingBack → Failed"), 1, "{out:#?}");
    let last = out.last().expect("a closing line");
    assert!(
        last.starts_with(&format!("failed: prod/web revision {} failed", &r[..8]))
            && last.contains("gate target_health failed: 0/1 healthy targets"),
        "{out:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_fails_when_a_newer_revision_supersedes_the_one_it_waits_for() {
    let w = ready().await;
    let created = set_new(&w, &key(), "all_at_once").expect(0);
    let short = revision_of(&created.stdout);
    let r = full_revision(&w).await;
    write_status(
        &w,
        &status_of("Provisioning", "waiting for the candidate", &r, None, &[]),
    )
    .await;
    let mut waiter = spawn(
        &w.endpoint(),
        TABLE,
        &["wait", &key(), "--revision", &short, "--timeout", "60s"],
    );
    let lines = lines_of(&mut waiter);
    let mut out = wait_until_started(&lines).await;
    out.extend(collect(&lines, Duration::from_secs(3)));
    assert!(waiter.try_wait().expect("wait").is_none(), "{out:#?}");

    let newer = run(&w, &["set", &key(), "--task-definition", "web:3"]).expect(0);
    let (code, rest) = finish(&mut waiter, &lines, Duration::from_secs(20));
    out.extend(rest);
    assert_eq!(code, Some(1), "{out:#?}");
    let last = out.last().expect("a closing line");
    assert!(
        last.starts_with(&format!(
            "superseded: prod/web revision {short} will not be released"
        )) && last.contains(&format!("asks for revision {}", revision_of(&newer.stdout))),
        "{out:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_times_out_stops_on_ctrl_c_and_refuses_a_missing_record_each_clearly() {
    let w = ready().await;
    set_new(&w, &key(), "all_at_once").expect(0);
    let r = full_revision(&w).await;
    write_status(
        &w,
        &status_of("Shifting", "holding 10% on the candidate", &r, None, &[]),
    )
    .await;

    let started = Instant::now();
    let out = run(&w, &["wait", &key(), "--timeout", "3s"]).expect(3);
    assert!(started.elapsed() < Duration::from_secs(15), "{out:?}");
    let last = out.stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("timed out after 3s: prod/web revision ")
            && last.contains("is Shifting (holding 10% on the candidate)")
            && last.contains("the release goes on"),
        "{}",
        out.stdout
    );

    let mut waiter = spawn(
        &w.endpoint(),
        TABLE,
        &["set", &key(), "--task-definition", "web:2", "--wait"],
    );
    let lines = lines_of(&mut waiter);
    // `set` says what it wrote (here: nothing), then that it waits.
    let said = lines.recv_timeout(Duration::from_secs(20)).expect("a line");
    assert!(said.contains("nothing to change"), "{said}");
    let mut out = wait_until_started(&lines).await;
    out.extend(collect(&lines, Duration::from_secs(2)));
    Command::new("kill")
        .args(["-INT", &waiter.id().to_string()])
        .status()
        .expect("kill");
    let (code, rest) = finish(&mut waiter, &lines, Duration::from_secs(10));
    out.extend(rest);
    assert_eq!(code, Some(130), "{out:#?}");
    let last = out.last().expect("a closing line");
    assert!(
        last.starts_with("stopped waiting: prod/web revision ")
            && last.contains("the release goes on"),
        "{out:#?}"
    );

    let missing = run(&w, &["wait", &format!("{CLUSTER}/nobody")]).expect(1);
    assert!(
        missing
            .stderr
            .contains("prod/nobody has no record in table"),
        "{}",
        missing.stderr
    );
    let usage = run(&w, &["wait", &key(), "--timeout", "soon"]).expect(2);
    assert!(
        usage.stderr.contains("such as 90s, 15m or 1h30m"),
        "{}",
        usage.stderr
    );
    let usage = run(
        &w,
        &[
            "set",
            &key(),
            "--task-definition",
            "web:2",
            "--timeout",
            "5m",
        ],
    )
    .expect(2);
    assert!(usage.stderr.contains("--wait"), "{}", usage.stderr);
}

/// The words of a shell command line: quotes group, `#` starts a comment.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, '#') if word.is_none() => break,
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    words
}

/// Every `cutover …` command in the README's code blocks, continuation
/// lines joined.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let mut commands = Vec::new();
    let mut in_code = false;
    let mut open: Option<String> = None;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let text = line.trim().trim_start_matches("- ");
        let text = match open.take() {
            Some(before) => format!("{before} {text}"),
            None if text.starts_with("cutover ") => text.to_string(),
            None => continue,
        };
        match text.strip_suffix('\\') {
            Some(rest) => open = Some(rest.to_string()),
            None => commands.push(text),
        }
    }
    commands
}

#[test]
fn every_cutover_command_in_the_readme_is_accepted_as_written() {
    use clap::Parser;
    let commands = readme_commands();
    assert!(commands.len() >= 15, "{commands:#?}");
    for wanted in [
        "cutover set prod/checkout --image",
        "cutover wait prod/checkout",
    ] {
        assert!(
            commands
                .iter()
                .any(|c| c.starts_with(wanted) && c.contains("--timeout")),
            "no `{wanted} … --timeout` example: {commands:#?}"
        );
    }
    for command in &commands {
        let words = words(command);
        // `cutover init-table && cutover run` is two commands.
        for argv in words.split(|w| ["&&", "||", ";", "|"].contains(&w.as_str())) {
            if argv.first().map(String::as_str) != Some("cutover") {
                continue;
            }
            if let Err(e) = cutover::cli::Cli::try_parse_from(argv) {
                panic!("README: `{command}` is refused:\n{e}");
            }
        }
    }
}

#[tokio::test]
async fn halt_and_unhalt_write_the_halt_item_that_status_shows_and_never_replace_another() {
    let w = ready().await;
    set_new(&w, &key(), "all_at_once").expect(0);
    let halted = run(
        &w,
        &[
            "halt",
            "--reason",
            "INC-4411: checkout errors",
            "--by",
            "oncall",
        ],
    )
    .expect(0);
    assert!(
        halted
            .stdout
            .contains("halted fleet-wide: INC-4411: checkout errors"),
        "{}",
        halted.stdout
    );
    let stored = item(&w, "halt").await.expect("the halt item");
    assert_eq!(
        stored.get("reason"),
        Some(&AttributeValue::S("INC-4411: checkout errors".into()))
    );
    // A second halt leaves the first one, and says whose it is.
    let again = run(&w, &["halt", "--reason", "something else"]).expect(0);
    assert!(again.stdout.contains("halted already"), "{}", again.stdout);
    assert!(again.stdout.contains("INC-4411"), "{}", again.stdout);
    let status = run(&w, &["status"]).expect(0);
    assert!(
        status
            .stdout
            .starts_with("FLEET HALTED: halted fleet-wide: INC-4411"),
        "{}",
        status.stdout
    );
    // An empty reason is refused by name.
    let refused = run(&w, &["halt", "--reason", "  "]).expect(1);
    assert!(refused.stderr.contains("`reason`"), "{}", refused.stderr);

    let lifted = run(&w, &["unhalt"]).expect(0);
    assert!(
        lifted.stdout.contains("lifted the halt"),
        "{}",
        lifted.stdout
    );
    assert!(item(&w, "halt").await.is_none());
    let status = run(&w, &["status"]).expect(0);
    assert!(!status.stdout.contains("FLEET HALTED"), "{}", status.stdout);
    let twice = run(&w, &["unhalt"]).expect(0);
    assert!(twice.stdout.contains("not halted"), "{}", twice.stdout);
}

#[tokio::test]
async fn release_start_writes_a_checked_release_item_that_status_pause_and_abort_follow() {
    let w = ready().await;
    set_new(&w, &key(), "all_at_once").expect(0);
    // A bad wave is refused by name, and nothing is written.
    let refused = run(
        &w,
        &[
            "release",
            "start",
            "patch-1",
            "--image",
            "registry.example/web:2",
            "--services",
            &key(),
            "--waves",
            "0%",
        ],
    )
    .expect(1);
    assert!(refused.stderr.contains("waves"), "{}", refused.stderr);
    assert!(item(&w, "release:patch-1").await.is_none());

    run(
        &w,
        &[
            "release",
            "start",
            "patch-1",
            "--image",
            "registry.example/web:2",
            "--container",
            "app",
            "--services",
            &key(),
            "--waves",
            "1,100%",
            "--bake-between",
            "5m",
            "--max-failed",
            "1",
        ],
    )
    .expect(0);
    let stored = item(&w, "release:patch-1").await.expect("the release item");
    let waves = match stored.get("waves") {
        Some(AttributeValue::L(waves)) => waves.len(),
        other => panic!("waves: {other:?}"),
    };
    assert_eq!(waves, 2);
    // Written once: a second start under the name is refused.
    let taken = run(
        &w,
        &[
            "release",
            "start",
            "patch-1",
            "--image",
            "x:1",
            "--services",
            &key(),
        ],
    )
    .expect(1);
    assert!(taken.stderr.contains("exists already"), "{}", taken.stderr);

    let listed = run(&w, &["release", "status"]).expect(0);
    assert!(listed.stdout.contains("patch-1"), "{}", listed.stdout);
    assert!(
        listed.stdout.contains("has not looked at it yet"),
        "{}",
        listed.stdout
    );
    run(&w, &["release", "pause", "patch-1"]).expect(0);
    let stored = item(&w, "release:patch-1").await.unwrap();
    assert_eq!(stored.get("paused"), Some(&AttributeValue::Bool(true)));
    run(&w, &["release", "resume", "patch-1"]).expect(0);
    let stored = item(&w, "release:patch-1").await.unwrap();
    assert_eq!(stored.get("paused"), Some(&AttributeValue::Bool(false)));
    assert!(matches!(stored.get("resume"), Some(AttributeValue::S(_))));
    run(&w, &["release", "abort", "patch-1"]).expect(0);
    let missing = run(&w, &["release", "abort", "no-such"]).expect(1);
    assert!(
        missing.stderr.contains("no release no-such"),
        "{}",
        missing.stderr
    );
}
