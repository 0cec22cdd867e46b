//! What a notification says: one notice per event worth telling a team,
//! in cutover's own JSON or as a Slack message.

use serde::Serialize;
use serde_json::{Value, json};

use crate::rollout::spec::NotificationFormat;
use crate::rollout::{Event, Outcome, Phase, ServiceKey, Status};
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhaseChange {
    pub from: Phase,
    pub to: Phase,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CandidateWeights {
    pub active: u32,
    pub candidate: u32,
}

/// cutover's own payload (the `json` format).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Notice {
    pub service: String,
    /// `rollout_started`, `step_completed`, `transition`, or how a rollout
    /// ended: `promoted`, `rolled_back`, `aborted`, `superseded`, `failed`.
    pub event: &'static str,
    pub phase: PhaseChange,
    pub reason: String,
    pub revision: Option<String>,
    pub rollout: Option<String>,
    /// The completed step, for `step_completed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    /// Production weights in percent, as last verified on the load balancer.
    pub weights: Option<CandidateWeights>,
    pub at: Timestamp,
}

impl Notice {
    pub fn body(&self, format: NotificationFormat) -> Value {
        match format {
            NotificationFormat::Json => json!(self),
            NotificationFormat::Slack => json!({"text": self.sentence()}),
        }
    }

    /// One line for people, as Slack shows it.
    pub fn sentence(&self) -> String {
        let rollout = self.rollout.as_deref().unwrap_or("?");
        let what = match self.event {
            "rollout_started" => format!("rollout {rollout} started"),
            "step_completed" => match &self.weights {
                Some(w) => format!(
                    "rollout {rollout} sends {}% of production traffic to the new version",
                    w.candidate
                ),
                None => format!("rollout {rollout} completed a step"),
            },
            "promoted" => {
                format!("rollout {rollout} is promoted: the new version serves everything")
            }
            "rolled_back" => format!("rollout {rollout} was rolled back: {}", self.reason),
            "aborted" => format!("rollout {rollout} was aborted and rolled back"),
            "superseded" => format!("rollout {rollout} was superseded by a newer version"),
            "failed" => format!("rollout {rollout} failed: {}", self.reason),
            "traffic_held" => format!(
                "rollout {rollout} holds production traffic: {}",
                self.reason
            ),
            _ => format!("{} → {}: {}", self.phase.from, self.phase.to, self.reason),
        };
        format!("{}: {what}", self.service)
    }
}

/// The phase transitions a team is told about; the others show as steps,
/// starts and ends. A rollout held by the fleet-wide halt is told too,
/// with the halt's reason: the team did not ask for it.
fn told(t: &crate::rollout::status::Transition) -> bool {
    matches!(t.to, Phase::RollingBack | Phase::Failed)
        || (t.to == Phase::Paused && crate::rollout::halt::is_halt_reason(&t.reason))
}

/// The notices for the events of one applied decision. `before` is the
/// phase the pass started from and `status` the one it stored.
pub fn notices(
    key: &ServiceKey,
    events: &[Event],
    before: Phase,
    status: &Status,
    at: Timestamp,
) -> Vec<Notice> {
    let weights = status
        .weights
        .map(|(active, candidate)| CandidateWeights { active, candidate });
    let pass = PhaseChange {
        from: before,
        to: status.phase(),
    };
    // A rollout's end names no reason itself; the transition it came with does.
    let last_reason = events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Transition(t) => Some(t.reason.clone()),
            _ => None,
        })
        .unwrap_or_else(|| status.message.clone());
    let notice = |event, phase: PhaseChange, reason: String, rollout: Option<_>, step| Notice {
        service: key.to_string(),
        event,
        phase,
        reason,
        revision: status.observed_revision.as_ref().map(ToString::to_string),
        rollout,
        step,
        weights: weights.clone(),
        at,
    };
    let current = status.rollout.as_ref().map(|r| r.id.to_string());
    let mut out = Vec::new();
    for event in events {
        match event {
            Event::Transition(t) if told(t) => {
                let mut n = notice(
                    "transition",
                    PhaseChange {
                        from: t.from,
                        to: t.to,
                    },
                    t.reason.clone(),
                    current.clone(),
                    None,
                );
                n.revision = t.revision.as_ref().map(ToString::to_string).or(n.revision);
                n.at = t.at;
                out.push(n);
            }
            Event::RolloutStarted { rollout } => out.push(notice(
                "rollout_started",
                pass.clone(),
                format!("rollout {rollout} started"),
                Some(rollout.to_string()),
                None,
            )),
            Event::StepCompleted {
                rollout,
                step,
                weight,
            } => out.push(notice(
                "step_completed",
                pass.clone(),
                format!("step {step} done: the candidate has {weight}% of production traffic"),
                Some(rollout.to_string()),
                Some(*step),
            )),
            Event::RolloutFinished {
                rollout, outcome, ..
            } => {
                let mut n = notice(
                    outcome.as_str(),
                    pass.clone(),
                    last_reason.clone(),
                    Some(rollout.to_string()),
                    None,
                );
                n.revision = Some(rollout.revision.to_string());
                if *outcome == Outcome::Promoted {
                    n.reason = format!("revision {} promoted", rollout.revision);
                }
                out.push(n);
            }
            Event::TrafficHeld {
                rollout, reason, ..
            } => out.push(notice(
                "traffic_held",
                pass.clone(),
                reason.clone(),
                Some(rollout.to_string()),
                None,
            )),
            Event::Alert {
                rollout,
                kind,
                reason,
            } => out.push(notice(
                kind.as_str(),
                pass.clone(),
                reason.clone(),
                Some(rollout.to_string()),
                None,
            )),
            Event::Transition(_)
            | Event::GateEvaluated { .. }
            | Event::RolloutAdopted { .. }
            | Event::ProductionRestored { .. } => {}
        }
    }
    out
}

#[cfg(test)]
mod halt_tests {
    use super::*;
    use crate::rollout::status::Transition;

    fn transition(to: Phase, reason: &str) -> Transition {
        Transition {
            at: Timestamp(1),
            from: Phase::Shifting,
            to,
            reason: reason.into(),
            revision: None,
        }
    }

    #[test]
    fn a_rollout_held_by_the_fleet_wide_halt_is_told_with_its_reason() {
        let halted = Halt {
            reason: "INC-7".into(),
            by: None,
            since: None,
        };
        assert!(told(&transition(Phase::Paused, &halted.to_string())));
        assert!(!told(&transition(
            Phase::Paused,
            "paused = true in the record"
        )));
        assert!(told(&transition(Phase::RollingBack, "gate failed")));
    }

    use crate::rollout::halt::Halt;
}
