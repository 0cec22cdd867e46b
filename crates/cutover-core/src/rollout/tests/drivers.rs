//! What every driver shares through the one loop: the same failed gate ends
//! a rollout the same way, a revision stays failed until retried, and what
//! is read before a decision agrees with what the decision drives.

use std::time::Duration;

use serde_json::json;

use super::codedeploy::{Cd, cd_record};
use super::fixture::{World, outcomes, record};
use crate::rollout::deployment::{DeploymentStatus, EventStatus};
use crate::rollout::gate::{Reading, Verdict};
use crate::rollout::{
    Desired, EcsService, Observed, Outcome, Phase, ServiceKey, ServiceState, Status, decide,
    parse_record, reads,
};
use crate::time::Timestamp;

const S5: Duration = Duration::from_secs(5);

fn smoke_gate() -> serde_json::Value {
    json!({"http": [{"name": "smoke", "url": "http://smoke/ok", "failure_threshold": 1}]})
}

fn failing(at: Timestamp) -> Reading {
    Reading {
        at,
        verdict: Verdict::Fail,
        detail: "HTTP 500".into(),
    }
}

#[test]
fn a_failed_gate_ends_a_rollout_the_same_way_under_both_drivers() {
    // Task sets: the gate fails while shifting, production goes back.
    let mut body = record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "5m"}),
    );
    body["gates"] = smoke_gate();
    let mut ecs = World::new(body);
    assert!(ecs.run_until(Phase::Shifting, S5, 10));
    ecs.advance(Duration::from_secs(15));
    ecs.readings.insert("smoke".into(), failing(ecs.now));
    let mut ecs_events = Vec::new();
    for _ in 0..50 {
        let d = ecs.step();
        ecs_events.extend(d.events);
        if ecs.status.rollout.is_none() {
            break;
        }
        ecs.advance(S5);
    }

    // CodeDeploy: the gate fails while it shifts; CodeDeploy rolls back.
    let mut body = cd_record("web:2");
    body["gates"] = smoke_gate();
    let mut cd = Cd::new(body);
    cd.step();
    cd.set_status(DeploymentStatus::InProgress);
    cd.last()
        .lifecycle
        .insert("AllowTraffic".into(), EventStatus::InProgress);
    cd.step();
    cd.advance(Duration::from_secs(15));
    let at = cd.now;
    cd.readings.insert("smoke".into(), failing(at));
    cd.step();
    cd.set_status(DeploymentStatus::Stopped);
    cd.step();

    for (driver, status, events) in [
        ("ecs", &ecs.status, &ecs_events),
        ("codedeploy", &cd.status, &cd.events),
    ] {
        assert_eq!(status.phase(), Phase::Failed, "{driver}");
        assert!(status.rollout.is_none(), "{driver}");
        let failure = status.failed.as_ref().expect("the revision failed");
        assert!(
            failure.reason.contains("gate smoke failed"),
            "{driver}: {failure:?}"
        );
        assert_eq!(outcomes(events), vec![Outcome::RolledBack], "{driver}");
    }
}

#[test]
fn a_failed_revision_stays_failed_under_both_drivers_until_retried() {
    let mut body = record("web:2", json!("all_at_once"));
    body["gates"] = smoke_gate();
    let mut ecs = World::new(body);
    assert!(ecs.run_until(Phase::Shifting, S5, 10));
    ecs.advance(Duration::from_secs(15));
    ecs.readings.insert("smoke".into(), failing(ecs.now));
    assert_eq!(ecs.settle(), Phase::Failed);
    let failed_at = ecs.status.failed.clone().expect("failed");
    ecs.readings.clear();
    for _ in 0..5 {
        let d = ecs.step();
        assert!(
            d.commands.is_empty(),
            "a failed revision is not deployed again"
        );
        ecs.advance(Duration::from_secs(60));
    }
    assert_eq!(ecs.status.failed.as_ref(), Some(&failed_at));

    // A retry of exactly that rollout starts attempt 2.
    ecs.set("control", json!({"retry": failed_at.rollout.to_string()}));
    ecs.step();
    let r = ecs.status.rollout.as_ref().expect("retried");
    assert_eq!(r.id.attempt, 2);
}

/// A record, a service state and a status under which `reads` asks for
/// nothing: the decision then needs nothing read either, and sends nothing.
fn assert_quiet(desired: &Desired, service: Option<ServiceState>, status: &Status, why: &str) {
    let now = Timestamp(1_700_000_000_000);
    let r = reads(desired, service.as_ref(), status, now);
    assert!(r.is_empty(), "{why}: {r:?}");
    let observed = Observed {
        service,
        ..Observed::default()
    };
    let d = decide(desired, &observed, status, now);
    assert!(d.commands.is_empty(), "{why}: {:?}", d.commands);
}

#[test]
fn reads_and_the_decision_agree_where_a_service_cannot_be_driven() {
    let key = ServiceKey::new("prod", "web");
    let ecs = parse_record(&key, &record("web:2", json!("all_at_once"))).expect("valid");
    let cd = parse_record(&key, &cd_record("web:2")).expect("valid");
    let svc = |controller: &str| EcsService {
        desired_count: 2,
        deployment_controller: controller.into(),
        native: None,
        task_sets: vec![],
    };
    let status = Status::default();
    for (desired, service, why, held) in [
        (&ecs, None, "not observed yet", false),
        (&ecs, Some(ServiceState::Missing), "missing", true),
        (&ecs, Some(ServiceState::ClusterMissing), "no cluster", true),
        (
            &ecs,
            Some(ServiceState::Found(svc("CODE_DEPLOY"))),
            "task sets on a CODE_DEPLOY service",
            true,
        ),
        (
            &ecs,
            Some(ServiceState::Found(svc("ECS"))),
            "task sets on an ECS service",
            true,
        ),
        (
            &cd,
            Some(ServiceState::Found(svc("EXTERNAL"))),
            "CodeDeploy on an EXTERNAL service",
            true,
        ),
    ] {
        let desired = Desired::Valid(desired);
        assert_quiet(&desired, service.clone(), &status, why);
        let observed = Observed {
            service,
            ..Observed::default()
        };
        let d = decide(&desired, &observed, &status, Timestamp(1_700_000_000_000));
        assert_eq!(d.status.phase() == Phase::Invalid, held, "{why}");
    }

    // An invalid record with no rollout in flight: held, nothing read.
    let bad = parse_record(&key, &json!({"service": "prod/web"}));
    let desired = Desired::of(&bad);
    assert_quiet(
        &desired,
        Some(ServiceState::Found(svc("EXTERNAL"))),
        &status,
        "an invalid record",
    );
}
