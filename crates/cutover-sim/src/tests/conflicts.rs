//! DynamoDB's transaction conflicts and the item limit on transactions.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::cloud::{DesiredStore, ErrorKind, Fence, Leases, StatusWrite};
use crate::rollout::Status;
use crate::{FaultProfile, Faults};

/// Every store call takes exactly 100 ms, so writes overlap predictably.
fn slow_store(sim: &SimCloud) {
    sim.set_faults(Faults {
        store: FaultProfile {
            latency: (Duration::from_millis(100), Duration::from_millis(100)),
            ..FaultProfile::NONE
        },
        ..Faults::none()
    });
}

/// Two services in the only shard, and its lease.
async fn two_services_one_shard(sim: &SimCloud) -> (ServiceArns, ServiceArns, Fence) {
    let a = web(sim);
    let b = sim
        .add_service(ServiceSetup::new(ServiceKey::new("prod", "api")))
        .unwrap();
    for arns in [&a, &b] {
        sim.put_spec(&arns.key, arns.record("web:2", json!("all_at_once")));
    }
    let fence = sim.acquire(0, 1, "r1", None).await.unwrap().unwrap();
    (a, b, fence)
}

fn message(text: &str) -> Status {
    Status {
        message: text.to_string(),
        ..Status::default()
    }
}

async fn version(sim: &SimCloud, key: &ServiceKey) -> u64 {
    sim.get(key).await.unwrap().unwrap().status_version
}

#[tokio::test(start_paused = true)]
async fn a_transaction_arriving_while_another_checks_the_same_lease_is_cancelled() {
    let sim = sim(40);
    let (a, b, fence) = two_services_one_shard(&sim).await;
    let (va, vb) = (version(&sim, &a.key).await, version(&sim, &b.key).await);
    slow_store(&sim);

    let first = {
        let (sim, key, fence) = (sim.clone(), a.key.clone(), fence.clone());
        tokio::spawn(async move {
            sim.write_status_fenced(&key, va, &message("a"), &fence)
                .await
        })
    };
    sim.run_for(Duration::from_millis(50)).await;
    // Another record, but the same lease item in its ConditionCheck.
    let second = sim
        .write_status_fenced(&b.key, vb, &message("b"), &fence)
        .await
        .unwrap();
    assert_eq!(second, StatusWrite::Contended);
    assert!(matches!(
        first.await.unwrap().unwrap(),
        StatusWrite::Written { .. }
    ));
    let stored = sim.get(&b.key).await.unwrap().unwrap();
    assert_eq!(
        stored.status_version, vb,
        "the cancelled write wrote nothing"
    );
    assert_eq!(sim.transaction_conflicts(), 1);

    // Once the first one is applied, the same write goes through.
    let again = sim
        .write_status_fenced(&b.key, vb, &message("b"), &fence)
        .await
        .unwrap();
    assert!(matches!(again, StatusWrite::Written { .. }), "{again:?}");
}

#[tokio::test(start_paused = true)]
async fn a_lease_renewal_and_a_fenced_write_on_its_lease_conflict_whichever_comes_first() {
    let sim = sim(41);
    let (a, _, fence) = two_services_one_shard(&sim).await;
    let va = version(&sim, &a.key).await;
    slow_store(&sim);

    // A renewal in flight: the transaction checking the lease is cancelled.
    let renewal = {
        let (sim, fence) = (sim.clone(), fence.clone());
        tokio::spawn(async move { sim.renew(&fence).await })
    };
    sim.run_for(Duration::from_millis(50)).await;
    let write = sim
        .write_status_fenced(&a.key, va, &message("a"), &fence)
        .await
        .unwrap();
    assert_eq!(write, StatusWrite::Contended);
    assert!(renewal.await.unwrap().unwrap(), "the renewal went through");

    // A transaction in flight: the renewal is rejected.
    let write = {
        let (sim, key, fence) = (sim.clone(), a.key.clone(), fence.clone());
        tokio::spawn(async move {
            sim.write_status_fenced(&key, va, &message("a"), &fence)
                .await
        })
    };
    sim.run_for(Duration::from_millis(50)).await;
    let e = sim.renew(&fence).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Other);
    assert!(e.message.contains("TransactionConflict"), "{e}");
    assert!(matches!(
        write.await.unwrap().unwrap(),
        StatusWrite::Written { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_writers_update_in_flight_cancels_a_status_transaction_on_its_record() {
    let sim = sim(42);
    let (a, _, fence) = two_services_one_shard(&sim).await;
    let va = version(&sim, &a.key).await;
    slow_store(&sim);
    let update = {
        let (sim, key) = (sim.clone(), a.key.clone());
        tokio::spawn(async move {
            let changes = [("notes".to_string(), Some(json!("n")))].into();
            sim.write_spec(&key, &changes, crate::cloud::Precondition::Exists)
                .await
        })
    };
    sim.run_for(Duration::from_millis(50)).await;
    let write = sim
        .write_status_fenced(&a.key, va, &message("a"), &fence)
        .await
        .unwrap();
    assert_eq!(write, StatusWrite::Contended);
    update.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn plain_writes_on_one_item_never_conflict() {
    let sim = sim(43);
    let (a, _, _) = two_services_one_shard(&sim).await;
    let va = version(&sim, &a.key).await;
    slow_store(&sim);
    let update = {
        let (sim, key) = (sim.clone(), a.key.clone());
        tokio::spawn(async move {
            let changes = [("notes".to_string(), Some(json!("n")))].into();
            sim.write_spec(&key, &changes, crate::cloud::Precondition::Exists)
                .await
        })
    };
    sim.run_for(Duration::from_millis(50)).await;
    let write = sim.write_status(&a.key, va, &message("a")).await.unwrap();
    assert!(matches!(write, StatusWrite::Written { .. }), "{write:?}");
    update.await.unwrap().unwrap();
    assert_eq!(sim.transaction_conflicts(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_transaction_that_would_pass_400_kb_is_refused_and_writes_nothing() {
    let sim = sim(44);
    let (a, _, fence) = two_services_one_shard(&sim).await;
    let mut body = a.record("web:2", json!("all_at_once"));
    body["strategy"] = json!("s".repeat(300_000));
    sim.put_spec(&a.key, body);
    let va = version(&sim, &a.key).await;
    let refused = sim
        .write_status_fenced(&a.key, va, &message(&"m".repeat(110_000)), &fence)
        .await
        .unwrap();
    assert_eq!(refused, StatusWrite::TooLarge);
    let after = sim.get(&a.key).await.unwrap().unwrap();
    assert_eq!((after.status, after.status_version), (None, va));
}
