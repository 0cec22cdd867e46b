//! A tiny stand-in for the rollout logic, so the loop is tested on its own:
//! move all production traffic to one target group (green, or blue with the
//! label `goal=blue`), in one step, then settle.

use crate::rollout::status::{Rollout, Transition};
use crate::rollout::{
    Command, Decision, Desired, Event, Observed, Phase, Reads, Revision, RolloutId, ServiceState,
    Spec, Status, Wake, Weights,
};
use crate::time::Timestamp;

use super::super::policy::Policy;

pub const POLICY: Policy = Policy { reads, decide };

fn reads(
    desired: &Desired<'_>,
    _service: Option<&ServiceState>,
    _status: &Status,
    _now: Timestamp,
) -> Reads {
    match desired {
        Desired::Valid(spec) => Reads {
            production: Some(spec.traffic.production.clone()),
            test: None,
            target_health: spec.traffic.target_groups.to_vec(),
            ..Reads::default()
        },
        Desired::Invalid(_) => Reads::default(),
    }
}

pub fn goal(spec: &Spec) -> Weights {
    let [blue, green] = &spec.traffic.target_groups;
    match spec.labels.get("goal").map(String::as_str) {
        Some("blue") => Weights::pair(blue, 100, green, 0),
        _ => Weights::pair(blue, 0, green, 100),
    }
}

fn decide(desired: &Desired<'_>, observed: &Observed, status: &Status, now: Timestamp) -> Decision {
    let spec = match desired {
        Desired::Invalid(problems) => {
            return settle(status, Phase::Invalid, problems.to_string(), now, vec![]);
        }
        Desired::Valid(spec) => spec,
    };
    if spec.labels.contains_key("panic") {
        panic!("a bug in the decision");
    }
    let goal = goal(spec);
    let mut decision = if observed
        .production
        .as_ref()
        .is_some_and(|w| w.same_shares(&goal))
    {
        settle(status, Phase::Steady, "on goal".into(), now, vec![])
    } else {
        let command = Command::SetWeights {
            route: spec.traffic.production.clone(),
            weights: goal,
        };
        let mut d = settle(
            status,
            Phase::Shifting,
            "shifting".into(),
            now,
            vec![command],
        );
        d.wake = Wake::Poll;
        d
    };
    if let Some(at) = spec.labels.get("wake_at").and_then(|t| t.parse().ok()) {
        decision.wake = Wake::At(Timestamp(at));
    }
    decision
}

fn settle(
    previous: &Status,
    phase: Phase,
    message: String,
    now: Timestamp,
    commands: Vec<Command>,
) -> Decision {
    let mut status = previous.clone();
    status.message = message.clone();
    let mut events = Vec::new();
    if previous.phase() != phase {
        let t = Transition {
            at: now,
            from: previous.phase(),
            to: phase,
            reason: message,
            revision: None,
        };
        // Shifting is a rollout's phase: the stand-in has one in flight
        // while it shifts, and none once it settles.
        status.rollout = phase.in_rollout().then(|| {
            previous.rollout.clone().unwrap_or_else(|| {
                let id = RolloutId {
                    revision: Revision::from_raw("0123abcd"),
                    attempt: 1,
                };
                Rollout::new(id, None, String::new(), now)
            })
        });
        status.enter(phase);
        status.phase_since = now;
        status.record(t.clone());
        events.push(Event::Transition(t));
    }
    Decision {
        commands,
        status,
        wake: Wake::Idle,
        events,
    }
}
