//! What `/readyz` promises, through the `cutover run` binary against the
//! local AWS emulator: once it answers 200, every record written is seen
//! through the change feed (not at the next resync), and a desired-state
//! table that does not answer says so instead of looking like a start-up.

mod support;
// Shared with the other end-to-end tests, which use more of it.
#[allow(dead_code)]
#[path = "e2e/world.rs"]
mod world;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use world::{Daemon, init_table};

/// GET `path`: the status and the JSON body, or `None` while the daemon
/// does not answer yet.
async fn get_json(daemon: &Daemon, path: &str) -> Option<(u16, Value)> {
    let logs = daemon.logs();
    if !logs.contains("listen=") {
        return None;
    }
    let url = format!("http://{}{path}", daemon.address());
    let response = reqwest::get(&url).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.ok()?))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_written_as_soon_as_readyz_turns_200_is_reconciled_without_a_resync() {
    let w = world::world().await;
    init_table(&w.endpoint());
    // The change feed's GetShardIterator reaches the emulator 6 s late, and
    // the next resync is 5 minutes away.
    let proxy = support::slow_proxy::start(
        w.endpoint(),
        "DynamoDBStreams_20120810.GetShardIterator",
        Duration::from_secs(6),
    )
    .await;
    let daemon = Daemon::start_with(&proxy, &[("CUTOVER_RESYNC_INTERVAL", "5m")]);

    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not ready within 30 s:\n{}",
            daemon.logs()
        );
        if let Some((200, _)) = get_json(&daemon, "/readyz").await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Past the listing the daemon makes when it takes its shard leases at
    // start, which would otherwise pick the record up by chance.
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.put_record(&w.record("web:2", json!("all_at_once"), "60s"))
        .await;
    let written = Instant::now();
    loop {
        assert!(
            written.elapsed() < Duration::from_secs(20),
            "a record written just after /readyz turned 200 was not picked up within 20 s:\n{}",
            daemon.logs()
        );
        if w.status().await.is_some_and(|s| !s["rollout"].is_null()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let exit = daemon.stop();
    assert!(exit.success(), "exit {exit:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_desired_state_table_that_does_not_exist_makes_readyz_say_store_failing() {
    let emulator = support::emulator::exclusive().await;
    support::aws::config(&emulator).await;
    // The lease table exists (`cutover run` refuses to start without it);
    // the desired-state table it is told to read does not.
    let init = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("init-table")
        .env("CUTOVER_ENDPOINT_URL", emulator.endpoint())
        .env("CUTOVER_TABLE", "another-table")
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    let daemon = Daemon::start_with(&emulator.endpoint(), &[("CUTOVER_TABLE", "no-such-table")]);
    let start = Instant::now();
    let mut seen = Vec::new();
    let body = loop {
        assert!(
            start.elapsed() < Duration::from_secs(50),
            "no store_failing within 50 s, only {seen:?}:\n{}",
            daemon.logs()
        );
        if let Some((status, body)) = get_json(&daemon, "/readyz").await {
            assert_eq!(status, 503, "{body}");
            let reason = body["reason"].as_str().unwrap_or_default().to_string();
            if reason == "store_failing" {
                break body;
            }
            if seen.last() != Some(&reason) {
                seen.push(reason);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        start.elapsed() >= Duration::from_secs(30),
        "only after 30 s of failures"
    );
    assert_eq!(seen, ["not_synced"], "before that, it is starting");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("no-such-table"), "{message}");
    assert_eq!(body["error"], "not_ready");
    let exit = daemon.stop();
    assert!(exit.success(), "exit {exit:?}");
}
