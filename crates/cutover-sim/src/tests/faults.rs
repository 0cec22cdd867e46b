use serde_json::json;

use super::*;
use crate::cloud::{DesiredStore, ErrorKind, LoadBalancer};
use crate::rollout::Weights;
use crate::{FaultProfile, Faults, LogEntry};

#[tokio::test(start_paused = true)]
async fn every_call_is_counted_by_operation() {
    let sim = sim(50);
    let arns = web(&sim);
    service(&sim, &arns.key).await;
    service(&sim, &arns.key).await;
    sim.target_health(arns.blue()).await.unwrap();
    sim.weights(&arns.production).await.unwrap();
    sim.list().await.unwrap();
    let calls = sim.calls();
    assert_eq!(calls.get("ecs:DescribeServices"), Some(&2));
    assert_eq!(calls.get("elbv2:DescribeTargetHealth"), Some(&1));
    assert_eq!(calls.get("elbv2:DescribeListeners"), Some(&1));
    assert_eq!(sim.call_count("dynamodb:Scan"), 1);
}

#[tokio::test(start_paused = true)]
async fn throttling_and_server_errors_come_from_the_fault_profile() {
    let sim = SimCloud::builder(51)
        .clock(clock())
        .faults(Faults {
            ecs_read: FaultProfile::flaky(1.0, 0.0),
            elb_read: FaultProfile::flaky(0.0, 1.0),
            ..Faults::none()
        })
        .build();
    let arns = web(&sim);
    let err = sim
        .describe_services("prod", &["web".to_string()])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled);
    assert!(err.request_id.is_some());
    let err = sim.target_health(arns.blue()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient);
    assert_eq!(
        sim.call_count("ecs:DescribeServices"),
        1,
        "failed calls count too"
    );
    sim.weights(&arns.production).await.unwrap_err();
    sim.set_weights(
        &arns.production,
        &Weights::pair(arns.blue(), 100, arns.green(), 0),
    )
    .await
    .expect("mutations have their own profile");
}

#[tokio::test(start_paused = true)]
async fn a_lost_reply_still_applies_the_change_and_the_token_finds_it() {
    let sim = SimCloud::builder(52)
        .clock(clock())
        .faults(Faults {
            ecs_mutation: FaultProfile {
                lost_reply: 1.0,
                ..FaultProfile::NONE
            },
            ..Faults::none()
        })
        .build();
    let arns = web(&sim);
    let req = request(&arns, td("web:2"), "once");
    let err = sim.create_task_set(&arns.key, &req).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient);
    sim.set_faults(Faults::none());
    let retried = sim.create_task_set(&arns.key, &req).await.unwrap();
    let svc = service(&sim, &arns.key).await;
    assert_eq!(svc.task_sets.len(), 2);
    assert!(svc.by_arn(&retried.arn).is_some());
}

#[tokio::test(start_paused = true)]
async fn latency_takes_sim_time() {
    let sim = SimCloud::builder(53)
        .clock(clock())
        .faults(Faults::uniform(FaultProfile {
            latency: (secs(1), secs(1)),
            ..FaultProfile::NONE
        }))
        .build();
    let before = sim.now();
    sim.list().await.unwrap();
    // The tokio timer rounds up to the next millisecond.
    let took = sim.now().since(before);
    assert!(
        took >= secs(1) && took < Duration::from_millis(1010),
        "{took:?}"
    );
}

async fn scenario(seed: u64) -> Vec<LogEntry> {
    let sim = SimCloud::builder(seed)
        .clock(clock())
        .faults(Faults::uniform(FaultProfile::flaky(0.2, 0.2)))
        .build();
    let arns = web(&sim);
    sim.put_spec(&arns.key, arns.record("web:2", json!("all_at_once")));
    for i in 0..20 {
        let _ = sim
            .create_task_set(&arns.key, &request(&arns, td("web:2"), "t"))
            .await;
        let _ = sim.target_health(arns.green()).await;
        let w = (i * 5) % 100;
        let _ = sim
            .set_weights(
                &arns.production,
                &Weights::pair(arns.blue(), 100 - w, arns.green(), w),
            )
            .await;
        sim.run_for(secs(3)).await;
    }
    sim.event_log()
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_replays_the_same_history() {
    let a = scenario(7).await;
    let b = scenario(7).await;
    let c = scenario(8).await;
    assert!(a.len() > 50);
    assert_eq!(a, b);
    assert_ne!(a, c);
}
