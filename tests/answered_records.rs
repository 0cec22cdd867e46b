//! Every record written to the emulator's table gets an answer in its
//! status, whatever is wrong with it, and each bad key one warning, not one
//! per scan: the whole controller over DynamoDB and ECS in the emulator.
//!
//! One test alone in its binary: it captures the log with a thread-local
//! subscriber, which shares tracing's per-callsite caches with every thread
//! of the process, so tests running beside it could make it miss lines.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use cutover::aws::DynamoStore;
use cutover::aws::alb::AlbAdapter;
use cutover::aws::calls::ApiCalls;
use cutover::aws::ecs::EcsAdapter;
use cutover::cloud::{DesiredStore, SystemClock};
use cutover::controller::{Controller, ControllerConfig};
use cutover::rollout::{Phase, Status};

use support::emulator::exclusive;

const TABLE: &str = "cutover-desired";
const BAD_KEYS: [&str; 4] = ["prod", "a/b/c", "/web", "prod/we\u{7}b"];
const WARNING: &str = "a record's key is not <cluster>/<service>";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn lines(&self, text: &str) -> Vec<String> {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| l.contains(text))
            .map(str::to_string)
            .collect()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn put(team: &Client, body: Value) {
    team.put_item()
        .table_name(TABLE)
        .set_item(Some(serde_dynamo::to_item(body).expect("an item")))
        .send()
        .await
        .expect("PutItem");
}

fn record(key: &str) -> Value {
    json!({
        "service": key,
        "task_definition": "web:1",
        "container": "app",
        "container_port": 8080,
        "target_groups": [
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/1",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/green/2"
        ],
        "production_listener": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/lb/1/2",
        "strategy": "all_at_once",
        "network": {"subnets": ["subnet-0a1b2c3d"], "security_groups": [], "assign_public_ip": false},
    })
}

async fn status_at(team: &Client, given: &str) -> Option<Status> {
    let item = team
        .get_item()
        .table_name(TABLE)
        .key(
            "service",
            aws_sdk_dynamodb::types::AttributeValue::S(given.into()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item?;
    let status = item.get("status")?.clone();
    serde_dynamo::from_attribute_value(status).ok()
}

#[tokio::test]
async fn every_record_in_the_table_gets_a_status_and_each_bad_key_one_warning() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let c = captured.clone();
            move || c.clone()
        })
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    // The test's runtime is single-threaded, so every task logs here.
    let _guard = tracing::subscriber::set_default(subscriber);

    let emulator = exclusive().await;
    let config = support::aws::config(&emulator).await;
    let calls = ApiCalls::new();
    let store = DynamoStore::counted(&config, TABLE, &calls);
    store.create_table().await.expect("the table");
    let team = Client::new(&config);
    for given in BAD_KEYS {
        put(&team, json!({"service": given, "task_definition": "web:2"})).await;
    }
    put(&team, record("nocluster/web")).await;
    let mut big = record("prod/big");
    big["strategy"] = json!("s".repeat(300_000));
    put(&team, big).await;

    let resync = Duration::from_secs(2);
    let controller = Controller::new(
        Arc::new(store.clone()) as Arc<dyn DesiredStore>,
        Arc::new(EcsAdapter::new(&config, &calls)),
        Arc::new(AlbAdapter::counted(&config, &calls)),
        Arc::new(SystemClock),
        ControllerConfig {
            poll_interval: Duration::from_millis(500),
            resync_interval: resync,
            concurrency: 2,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(2),
            seed: 1,
        },
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(controller.run(shutdown.clone()));
    // The first listing and at least three resyncs.
    tokio::time::sleep(resync * 4).await;

    for given in BAD_KEYS {
        let status = status_at(&team, given).await;
        let status = status.unwrap_or_else(|| panic!("{given:?} has no status"));
        assert_eq!(status.phase(), Phase::Invalid, "{given:?}");
        assert!(status.message.contains("`service`"), "{}", status.message);
        assert!(
            status.message.contains("<cluster>/<service>"),
            "{}",
            status.message
        );
    }
    let warnings = captured.lines(WARNING);
    assert_eq!(
        warnings.len(),
        BAD_KEYS.len(),
        "one warning each: {warnings:#?}"
    );

    let nocluster = status_at(&team, "nocluster/web").await;
    let nocluster = nocluster.expect("the record for a missing cluster has a status");
    assert_eq!(nocluster.phase(), Phase::Invalid);
    assert!(
        nocluster
            .message
            .starts_with("ECS cluster nocluster not found"),
        "{}",
        nocluster.message
    );
    // Two records in clusters that do not exist (`prod` is none either):
    // polled every 0.5 s they would make 32 calls in 8 s; they wait for
    // the resyncs instead.
    let described = calls.count("ecs", "DescribeServices");
    assert!(described <= 12, "{described} DescribeServices calls");

    let big = status_at(&team, "prod/big").await;
    let big = big.expect("the 300 KB record has a status");
    assert_eq!(big.phase(), Phase::Invalid);
    assert!(big.message.contains("strategy"), "{}", big.message);

    // A new value under a bad key is warned about again, once.
    put(
        &team,
        json!({"service": "prod", "task_definition": "web:3"}),
    )
    .await;
    tokio::time::sleep(resync * 2).await;
    let warnings = captured.lines(WARNING);
    assert_eq!(warnings.len(), BAD_KEYS.len() + 1, "{warnings:#?}");
    // No status write made an item.
    let items = team
        .scan()
        .table_name(TABLE)
        .send()
        .await
        .expect("Scan")
        .count;
    assert_eq!(items, BAD_KEYS.len() as i32 + 2);

    shutdown.cancel();
    let _ = task.await;
}
