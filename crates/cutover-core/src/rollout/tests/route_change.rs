//! A record that moves its routes or target groups mid-rollout: the rollout
//! in flight gives production (and the test route) back to the active task
//! set on the routes it shifted, and only then removes its candidate; the
//! next rollout takes the new wiring.

use std::time::Duration;

use serde_json::json;

use super::fixture::{BLUE, GREEN, PROD, TEST, World, record};
use crate::rollout::{Command, Phase};

const S5: Duration = Duration::from_secs(5);
const NEW_PROD: &str = "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/web/1/443";
const NEW_TEST: &str = "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/web/1/9443";

/// Canary 10% with a test route, run until production gives the candidate
/// 10%.
fn at_ten_percent() -> World {
    let mut body = record(
        "web:2",
        json!({"type": "canary", "percent": 10, "interval": "10m"}),
    );
    body["test_listener"] = json!(TEST);
    let mut w = World::new(body);
    for _ in 0..200 {
        w.step();
        if w.production.percent(GREEN) == 10 {
            return w;
        }
        w.advance(S5);
    }
    panic!("never reached 10%: {:?}", w.status);
}

/// Steps until the rollout that was in flight is over, returning every
/// command sent meanwhile.
fn until_rollout_ends(w: &mut World) -> Vec<Command> {
    let first = w.status.rollout.as_ref().expect("a rollout").id.clone();
    let mut sent = Vec::new();
    for _ in 0..200 {
        let d = w.step();
        sent.extend(d.commands.clone());
        if w.status.rollout.as_ref().is_none_or(|r| r.id != first) {
            return sent;
        }
        w.advance(S5);
    }
    panic!("the rollout never ended: {:?}", w.status);
}

fn weights_sent_to(sent: &[Command], route: &str) -> usize {
    sent.iter()
        .filter(|c| matches!(c, Command::SetWeights { route: r, .. } if r.arn() == route))
        .count()
}

#[test]
fn a_new_production_listener_mid_rollout_returns_the_old_one_before_the_candidate_goes() {
    let mut w = at_ten_percent();
    let candidate = w.svc.task_sets.last().unwrap().arn.clone();
    w.set("production_listener", json!(NEW_PROD));
    w.set("test_listener", json!(NEW_TEST));

    let sent = until_rollout_ends(&mut w);
    assert_eq!(
        w.production.percent(BLUE),
        100,
        "the old listener is back on blue"
    );
    assert_eq!(w.test.percent(BLUE), 100, "the old test listener too");
    assert!(w.deleted.contains(&candidate), "the candidate was removed");
    assert_eq!(weights_sent_to(&sent, NEW_PROD), 0, "{sent:?}");
    assert_eq!(weights_sent_to(&sent, NEW_TEST), 0, "{sent:?}");
    let restored = sent
        .iter()
        .position(|c| matches!(c, Command::SetWeights { route, weights } if route.arn() == PROD && weights.percent(BLUE) == 100))
        .expect("production written back to blue");
    let removed = sent
        .iter()
        .position(
            |c| matches!(c, Command::DeleteTaskSet { task_set, .. } if *task_set == candidate),
        )
        .expect("the candidate removed");
    assert!(restored < removed, "{sent:?}");
}

#[test]
fn the_next_rollout_shifts_the_new_listener() {
    let mut w = at_ten_percent();
    w.set("production_listener", json!(NEW_PROD));
    until_rollout_ends(&mut w);
    for _ in 0..400 {
        w.step();
        if w.route_weights(NEW_PROD).percent(BLUE) < 100 {
            break;
        }
        w.advance(S5);
    }
    assert!(
        w.route_weights(NEW_PROD).percent(BLUE) < 100,
        "the new rollout moved traffic on the new listener: {:?}",
        w.status
    );
    assert_eq!(w.production.percent(BLUE), 100, "the old one is left alone");
    assert_ne!(w.status.phase(), Phase::Failed);
}
