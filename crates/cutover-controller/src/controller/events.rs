//! Publishing what decisions report. Each event is logged, counted and
//! broadcast by the same call, so the log, the metrics and the subscribers
//! (demo, notifications) never disagree.

use tokio::sync::broadcast;

use crate::metrics::Metrics;
use crate::rollout::{Event, Revision, ServiceKey};
use crate::time::format_duration;

/// How many events a slow subscriber may fall behind before it misses some.
pub const EVENT_BUFFER: usize = 1024;

pub type EventSender = broadcast::Sender<(ServiceKey, Event)>;
pub type EventReceiver = broadcast::Receiver<(ServiceKey, Event)>;

pub fn channel() -> EventSender {
    broadcast::channel(EVENT_BUFFER).0
}

pub fn publish(events: &EventSender, metrics: Option<&Metrics>, key: &ServiceKey, event: Event) {
    log(key, &event);
    if let Some(m) = metrics {
        m.event(&event);
    }
    // No subscriber is not an error: the log line above already happened.
    let _ = events.send((key.clone(), event));
}

fn revision(event: &Event) -> Option<&Revision> {
    match event {
        Event::Transition(t) => t.revision.as_ref(),
        // The reconcile span carries the revision.
        Event::GateEvaluated { .. } | Event::ProductionRestored { .. } => None,
        Event::RolloutStarted { rollout }
        | Event::RolloutAdopted { rollout, .. }
        | Event::TrafficHeld { rollout, .. }
        | Event::Alert { rollout, .. }
        | Event::StepCompleted { rollout, .. }
        | Event::RolloutFinished { rollout, .. } => Some(&rollout.revision),
    }
}

fn log(key: &ServiceKey, event: &Event) {
    let revision = revision(event).map(|r| r.to_string());
    let revision = revision.as_deref().unwrap_or("");
    match event {
        Event::Transition(t) => tracing::info!(
            service = %key,
            revision,
            from = t.from.as_str(),
            to = t.to.as_str(),
            "{} → {}: {}",
            t.from,
            t.to,
            t.reason
        ),
        Event::RolloutStarted { rollout } => {
            tracing::info!(service = %key, revision, %rollout, "rollout {rollout} started")
        }
        Event::RolloutAdopted {
            rollout,
            phase,
            reason,
        } => tracing::info!(
            service = %key,
            revision,
            %rollout,
            phase = phase.as_str(),
            "rollout {rollout} adopted in {phase}: {reason}"
        ),
        Event::StepCompleted {
            rollout,
            step,
            weight,
        } => tracing::info!(
            service = %key,
            revision,
            %rollout,
            step,
            weight,
            "rollout {rollout} completed step {step}: candidate at {weight}%"
        ),
        Event::RolloutFinished {
            rollout,
            outcome,
            duration,
        } => tracing::info!(
            service = %key,
            revision,
            %rollout,
            outcome = outcome.as_str(),
            "rollout {rollout} finished: {} after {}",
            outcome.as_str(),
            format_duration(*duration)
        ),
        // Production sits on a side without healthy targets, or is about
        // to: someone should look.
        Event::TrafficHeld {
            rollout,
            neither_serves,
            reason,
        } => tracing::warn!(
            service = %key,
            revision,
            %rollout,
            held = Event::held_kind(*neither_serves),
            "rollout {rollout} holds production traffic: {reason}"
        ),
        Event::Alert {
            rollout,
            kind,
            reason,
        } => tracing::warn!(
            service = %key,
            revision,
            %rollout,
            alert = kind.as_str(),
            "rollout {rollout}: {reason}"
        ),
        // Someone else's weights were on production: worth a look.
        Event::ProductionRestored { seen, written } => tracing::warn!(
            service = %key,
            "production showed {seen}, not everything on the active task set; wrote {written} back"
        ),
        // Every poll of a rollout checks its gates: passes are routine.
        Event::GateEvaluated { gate, passed: true } => {
            tracing::debug!(service = %key, gate, result = "pass", "gate {gate} passed")
        }
        Event::GateEvaluated {
            gate,
            passed: false,
        } => tracing::info!(service = %key, gate, result = "fail", "gate {gate} failed a check"),
    }
}
