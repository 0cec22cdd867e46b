//! Concurrency limits, as each driver sees them: a rollout that would
//! start waits while it is queued, and says where it stands; an admitted
//! one starts; a rollout in flight and a rollback go on whatever the limit.

use std::time::Duration;

use serde_json::json;

use super::codedeploy::{Cd, cd_record};
use super::fixture::{BLUE, GREEN, World, record};
use super::native::{Ecs, native_record};
use crate::rollout::admission::Admission;
use crate::rollout::deployment::DeploymentStatus;
use crate::rollout::service_deployment::ServiceDeploymentStatus;
use crate::rollout::{Outcome, Phase, Wake};

const S5: Duration = Duration::from_secs(5);

fn queued() -> Option<Admission> {
    Some(Admission::Queued {
        ahead: 2,
        limit: "2 per cluster prod".into(),
    })
}

const SAYS: &str = "queued: 2 ahead of it for a rollout slot (limit: 2 per cluster prod)";

fn linear() -> World {
    World::new(record(
        "web:2",
        json!({"type": "linear", "percent": 10, "interval": "1m"}),
    ))
}

#[test]
fn a_queued_rollout_of_task_sets_does_not_start_and_says_where_it_stands() {
    let mut w = linear();
    w.admission = queued();
    for _ in 0..20 {
        let d = w.step();
        assert!(d.commands.is_empty(), "{:?}", d.commands);
        assert_eq!(d.wake, Wake::Poll, "looks again at the next poll");
        w.advance(S5);
    }
    assert_eq!(w.created, 0);
    assert!(w.status.rollout.is_none(), "nothing in flight while queued");
    assert_eq!(w.production.percent(BLUE), 100);
    assert!(w.status.message.starts_with(SAYS), "{}", w.status.message);
    assert!(w.status.message.contains("revision"));
}

#[test]
fn a_rollout_of_task_sets_starts_once_admitted() {
    let mut w = linear();
    w.admission = queued();
    w.step();
    w.admission = Some(Admission::Admitted);
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.created, 1);
    assert_eq!(w.production.percent(GREEN), 100);
}

#[test]
fn no_limit_configured_starts_as_before() {
    let mut w = linear();
    assert_eq!(w.admission, None);
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.created, 1);
}

#[test]
fn a_rollout_of_task_sets_in_flight_is_never_stopped_by_a_limit() {
    let mut w = linear();
    assert!(w.run_until(Phase::Shifting, S5, 20));
    w.admission = queued();
    for _ in 0..3 {
        w.step();
        w.advance(S5);
    }
    assert!(!w.status.message.contains("queued"), "{}", w.status.message);
    assert_eq!(w.settle(), Phase::Steady);
    assert_eq!(w.production.percent(GREEN), 100);
    assert_eq!(w.created, 1);
}

#[test]
fn a_rollback_of_task_sets_runs_while_queued() {
    let mut w = linear();
    assert!(w.run_until(Phase::Shifting, S5, 20));
    for _ in 0..15 {
        w.step();
        w.advance(S5);
    }
    assert!(w.production.percent(GREEN) > 0);
    w.admission = queued();
    w.healthy.insert(GREEN.into(), 0);
    assert_eq!(w.settle(), Phase::Failed, "{}", w.status.message);
    assert_eq!(w.production.percent(BLUE), 100);
}

#[test]
fn a_queued_codedeploy_rollout_creates_no_deployment_until_admitted() {
    let mut w = Cd::new(cd_record("web:2"));
    w.admission = queued();
    for _ in 0..5 {
        let d = w.step();
        assert_eq!(d.wake, Wake::Poll);
        w.advance(S5);
    }
    assert!(w.created.is_empty());
    assert!(w.status.rollout.is_none());
    assert!(w.status.message.starts_with(SAYS), "{}", w.status.message);
    w.admission = Some(Admission::Admitted);
    w.step();
    assert_eq!(w.created.len(), 1);
    assert!(w.status.rollout.is_some());
}

#[test]
fn a_codedeploy_rollout_in_flight_and_its_rollback_go_on_while_queued() {
    let mut w = Cd::new(cd_record("web:2"));
    w.step();
    assert_eq!(w.created.len(), 1);
    w.admission = queued();
    w.set_status(DeploymentStatus::InProgress);
    w.step();
    assert!(!w.status.message.contains("queued"), "{}", w.status.message);
    let id = w.status.rollout.as_ref().unwrap().id.to_string();
    w.body["control"] = json!({"abort": id});
    w.step();
    assert_eq!(w.status.phase(), Phase::RollingBack);
    w.set_status(DeploymentStatus::Stopped);
    w.step();
    assert_eq!(w.status.phase(), Phase::Failed);
    assert_eq!(w.finished(), vec![Outcome::Aborted]);
}

#[test]
fn a_codedeploy_rollout_in_flight_succeeds_while_queued() {
    let mut w = Cd::new(cd_record("web:2"));
    w.step();
    w.admission = queued();
    w.set_status(DeploymentStatus::Succeeded);
    w.step();
    assert_eq!(w.status.phase(), Phase::Steady);
    assert_eq!(w.finished(), vec![Outcome::Promoted]);
}

#[test]
fn a_queued_native_rollout_starts_no_service_deployment_until_admitted() {
    let mut w = Ecs::new(native_record("web:2", json!("all_at_once")));
    w.admission = queued();
    for _ in 0..5 {
        let d = w.step();
        assert!(d.commands.is_empty(), "{:?}", d.commands);
        assert_eq!(d.wake, Wake::Poll);
        w.advance(S5);
    }
    assert!(w.started.is_empty());
    assert!(w.status.rollout.is_none());
    assert!(w.status.message.starts_with(SAYS), "{}", w.status.message);
    w.admission = Some(Admission::Admitted);
    w.step();
    assert_eq!(w.started.len(), 1);
    assert_eq!(w.status.phase(), Phase::Provisioning);
}

#[test]
fn a_native_rollout_in_flight_and_its_rollback_go_on_while_queued() {
    let mut w = Ecs::new(native_record("web:2", json!("all_at_once")));
    w.step();
    assert_eq!(w.started.len(), 1);
    w.admission = queued();
    w.advance(S5);
    w.step();
    assert!(w.status.rollout.is_some());
    assert!(!w.status.message.contains("queued"), "{}", w.status.message);
    let id = w.rollout_id();
    w.body["control"] = json!({"abort": id});
    w.step();
    assert_eq!(w.status.phase(), Phase::RollingBack, "{}", w.status.message);
    w.set_status(ServiceDeploymentStatus::RollbackInProgress);
    w.step();
    w.rolled_back();
    w.step();
    assert_eq!(w.status.phase(), Phase::Failed, "{}", w.status.message);
    assert_eq!(w.finished(), vec![Outcome::Aborted]);
    assert_eq!(w.started.len(), 1);
}
