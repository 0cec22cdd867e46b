//! The `cutover run` binary against the local AWS emulator: a record written
//! with a plain PutItem rolls out to the end, a candidate that never gets
//! healthy is rolled back at its deadline, and the previous version written
//! back whole with `aws dynamodb put-item` while the new one bakes switches
//! back at once.

mod support;
#[path = "e2e/world.rs"]
mod world;

use std::time::{Duration, Instant};

use serde_json::json;

use world::{Daemon, World, init_table};

const LIMIT: Duration = Duration::from_secs(90);

async fn candidate(w: &World) -> Option<String> {
    w.task_sets()
        .await
        .into_iter()
        .find(|(_, ext, _)| ext.as_deref().is_some_and(|e| e.starts_with("cutover:")))
        .map(|(arn, _, _)| arn)
}

fn phase(status: &Option<serde_json::Value>) -> String {
    status
        .as_ref()
        .and_then(|s| s["phase"].as_str())
        .unwrap_or("-")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_written_with_put_item_rolls_out_to_the_end() {
    let w = world::world().await;
    init_table(&w.endpoint());
    let daemon = Daemon::start(&w.endpoint());
    w.put_record(&w.record(
        "web:2",
        json!({"type": "canary", "percent": 30, "interval": "3s"}),
        "60s",
    ))
    .await;

    let start = Instant::now();
    let mut registered = false;
    let mut shares = vec![w.green_share(&w.production).await];
    let mut test_saw_candidate = false;
    loop {
        assert!(
            start.elapsed() < LIMIT,
            "no Steady within {LIMIT:?}: {:?}\n{}",
            w.status().await,
            daemon.logs()
        );
        if !registered && candidate(&w).await.is_some() {
            // ECS would start the tasks and register them: play its part.
            w.register_targets(&w.green.clone(), 20).await;
            registered = true;
        }
        let share = w.green_share(&w.production).await;
        if shares.last() != Some(&share) {
            shares.push(share);
        }
        test_saw_candidate |= w.green_share(&w.test_listener).await == 100;
        let status = w.status().await;
        let done = phase(&status) == "Steady"
            && status.as_ref().is_some_and(|s| {
                s["rollout"].is_null() && s["history"].as_array().is_some_and(|h| h.len() > 2)
            });
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert_eq!(
        shares,
        vec![0, 30, 100],
        "production weights moved as the canary says"
    );
    assert!(
        test_saw_candidate,
        "the test listener carried the candidate first"
    );
    let sets = w.task_sets().await;
    assert_eq!(sets.len(), 1, "the old task set was deleted: {sets:?}");
    let (arn, ext, status) = &sets[0];
    assert_ne!(arn, &w.initial_task_set);
    assert!(ext.as_deref().is_some_and(|e| e.starts_with("cutover:")));
    assert_eq!(status, "PRIMARY", "the primary task set switched");
    let st = w.status().await.unwrap();
    assert_eq!(st["active"]["target_group"], json!(w.green));
    assert_eq!(st["stable_revision"], st["observed_revision"]);
    let phases: Vec<&str> = st["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["to"].as_str())
        .collect();
    assert_eq!(
        phases,
        [
            "Provisioning",
            "Testing",
            "Shifting",
            "Baking",
            "Finalizing",
            "Steady"
        ]
    );

    // Every AWS request the daemon made is counted, the table's included.
    let metrics = daemon.get("/metrics").await;
    for (service, operation) in [
        ("dynamodb", "Scan"),
        ("dynamodb", "TransactWriteItems"),
        ("dynamodb", "GetRecords"),
        ("ecs", "DescribeServices"),
        ("ecs", "CreateTaskSet"),
        ("elasticloadbalancing", "ModifyListener"),
    ] {
        let series = format!(
            "cutover_aws_requests_total{{operation=\"{operation}\",outcome=\"ok\",service=\"{service}\"}}"
        );
        assert!(
            metrics.contains(&series),
            "{series} missing from:\n{metrics}"
        );
    }

    let exit = daemon.stop();
    assert!(exit.success(), "exit {exit:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_candidate_without_healthy_targets_is_rolled_back_at_the_deadline() {
    let w = world::world().await;
    init_table(&w.endpoint());
    let daemon = Daemon::start(&w.endpoint());
    w.put_record(&w.record("web:2", json!("all_at_once"), "30s"))
        .await;

    let start = Instant::now();
    let mut created = false;
    loop {
        assert!(
            start.elapsed() < LIMIT,
            "no Failed within {LIMIT:?}: {:?}\n{}",
            w.status().await,
            daemon.logs()
        );
        created |= candidate(&w).await.is_some();
        // Production must never move to a group without healthy targets.
        assert_eq!(w.green_share(&w.production).await, 0);
        if phase(&w.status().await) == "Failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let waited = start.elapsed();
    assert!(created, "a candidate task set was created");
    assert!(
        waited >= Duration::from_secs(30),
        "not before the deadline: {waited:?}"
    );
    let sets = w.task_sets().await;
    assert_eq!(sets.len(), 1, "the candidate was deleted: {sets:?}");
    assert_eq!(sets[0].0, w.initial_task_set);
    assert_eq!(sets[0].2, "PRIMARY");
    assert_eq!(
        w.green_share(&w.production).await,
        0,
        "100% on the active task set"
    );
    let st = w.status().await.unwrap();
    let message = st["message"].as_str().unwrap_or_default();
    assert!(message.contains("progress deadline"), "{message}");
    assert!(message.contains("healthy targets"), "{message}");
    let exit = daemon.stop();
    assert!(exit.success(), "exit {exit:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_previous_version_put_back_whole_while_baking_switches_back_at_once() {
    let w = world::world().await;
    init_table(&w.endpoint());
    let daemon = Daemon::start(&w.endpoint());
    let mut record = w.record(
        "web:2",
        json!({"type": "linear", "percent": 50, "interval": "2s"}),
        "60s",
    );
    record["bake"] = json!("10m");
    w.put_record(&record).await;

    let start = Instant::now();
    let mut registered = false;
    loop {
        assert!(
            start.elapsed() < LIMIT,
            "never baking with all traffic on green: {:?}\n{}",
            w.status().await,
            daemon.logs()
        );
        if !registered && candidate(&w).await.is_some() {
            w.register_targets(&w.green.clone(), 20).await;
            registered = true;
        }
        let green_primary = w
            .task_sets()
            .await
            .iter()
            .any(|(arn, _, status)| arn != &w.initial_task_set && status == "PRIMARY");
        if green_primary && phase(&w.status().await) == "Baking" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(w.green_share(&w.production).await, 100);

    // The README's own way of writing a record: the whole item, web:1 again.
    record["task_definition"] = json!("web:1");
    // It drops the status with everything else: the history below starts
    // afresh.
    if !w.put_record_with_aws_cli(&record) {
        return;
    }

    let written = Instant::now();
    let mut shares = vec![100];
    loop {
        assert!(
            written.elapsed() < Duration::from_secs(30),
            "not back on web:1 within 30 s: {:?}\n{}",
            w.status().await,
            daemon.logs()
        );
        let share = w.green_share(&w.production).await;
        if shares.last() != Some(&share) {
            shares.push(share);
        }
        let status = w.status().await;
        if phase(&status) == "Steady" && w.task_sets().await.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(shares, vec![100, 0], "one weight change back, no steps");
    let sets = w.task_sets().await;
    assert_eq!(sets[0].0, w.initial_task_set, "the old task set serves");
    assert_eq!(sets[0].2, "PRIMARY");
    let st = w.status().await.unwrap();
    let phases: Vec<&str> = st["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["to"].as_str())
        .collect();
    assert_eq!(phases, ["Steady"], "{st}");
    let logs = daemon.logs();
    assert!(
        logs.contains("adopted in RollingBack"),
        "the takeover is logged as one:\n{logs}"
    );
    let exit = daemon.stop();
    assert!(exit.success(), "exit {exit:?}");
}
