//! A member of a release as the release sees it: its record and its
//! status, read by the controller, and what they say about the release's
//! change on that service.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::status::Outcome;
use crate::rollout::control::RolloutId;
use crate::rollout::key::ServiceKey;
use crate::rollout::revision::Revision;
use crate::rollout::status::{Settled, Status};

/// A service record as the controller read it for a release's decision.
#[derive(Clone, Debug)]
pub struct MemberView<'a> {
    pub key: ServiceKey,
    /// The record's `labels` (empty when it has none).
    pub labels: &'a BTreeMap<String, String>,
    /// The record's attributes, `status` aside.
    pub body: &'a Value,
    /// The record's `updated_at` as read, if it has one: a write names it,
    /// so a writer's change made since is never overwritten.
    pub updated_at: Option<Value>,
    /// The service's status, once cutover wrote one.
    pub status: Option<&'a Status>,
    /// The revision the record names, when it is valid.
    pub revision: Option<Revision>,
}

/// What the target attributes hold in a record now; null where absent.
pub(crate) fn values(
    body: &Value,
    target: &BTreeMap<String, Option<String>>,
) -> BTreeMap<String, Value> {
    target
        .keys()
        .map(|k| (k.clone(), body.get(k).cloned().unwrap_or(Value::Null)))
        .collect()
}

/// Whether the record says what the release sets.
pub(crate) fn at_target(body: &Value, target: &BTreeMap<String, Option<String>>) -> bool {
    target.iter().all(|(k, want)| match (want, body.get(k)) {
        (Some(want), Some(Value::String(have))) => want == have,
        (None, None | Some(Value::Null)) => true,
        _ => false,
    })
}

/// Where a record that says what the release sets has got to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Progress {
    pub outcome: Outcome,
    pub detail: Option<String>,
    /// The rollout in flight, or the one that failed.
    pub rollout: Option<RolloutId>,
}

impl Progress {
    fn waiting(why: &str) -> Progress {
        Progress {
            outcome: Outcome::Waiting,
            detail: Some(why.into()),
            rollout: None,
        }
    }
}

/// The longest detail a member's entry keeps: the status holds one per
/// member, and the service's own status has the whole story.
const DETAIL_LIMIT: usize = 120;

pub(crate) fn short(text: &str) -> String {
    match text.char_indices().nth(DETAIL_LIMIT) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// How far a record at the release's target has got, from its status.
/// Only a status computed for the record's revision says anything about
/// it: until cutover has read the record, the service is waiting.
pub(crate) fn progress(view: &MemberView<'_>) -> Progress {
    let Some(status) = view.status else {
        return Progress::waiting("cutover has not read the record yet");
    };
    let Some(revision) = &view.revision else {
        if status.phase() == crate::rollout::Phase::Invalid {
            return Progress {
                outcome: Outcome::Failed,
                detail: Some(short(&format!("record is invalid: {}", status.message))),
                rollout: None,
            };
        }
        return Progress::waiting("cutover has not read the record yet");
    };
    if let Some(r) = &status.rollout {
        if &r.id.revision == revision {
            return Progress {
                outcome: Outcome::InFlight,
                detail: Some(short(&format!("{}: {}", status.phase(), status.message))),
                rollout: Some(r.id.clone()),
            };
        }
        return Progress::waiting("an earlier rollout is still in flight");
    }
    if status.observed_revision.as_ref() != Some(revision) {
        return Progress::waiting("cutover has not read the record yet");
    }
    match status.settled {
        Settled::Steady if status.stable_revision.as_ref() == Some(revision) => Progress {
            outcome: Outcome::Succeeded,
            detail: None,
            rollout: None,
        },
        Settled::Failed => match &status.failed {
            Some(f) if &f.rollout.revision == revision => {
                if control_names(view.body, "retry", &f.rollout) {
                    return Progress {
                        outcome: Outcome::Waiting,
                        detail: Some(format!("retry of {} requested", f.rollout)),
                        rollout: Some(f.rollout.clone()),
                    };
                }
                Progress {
                    outcome: Outcome::Failed,
                    detail: Some(short(&format!(
                        "rollout {} failed: {}",
                        f.rollout, f.reason
                    ))),
                    rollout: Some(f.rollout.clone()),
                }
            }
            _ => Progress::waiting("cutover has not started the rollout yet"),
        },
        Settled::Invalid => Progress {
            outcome: Outcome::Failed,
            detail: Some(short(&format!("cannot be deployed: {}", status.message))),
            rollout: None,
        },
        Settled::Steady => Progress::waiting("cutover has not started the rollout yet"),
    }
}

/// Whether the record's `paused` is true.
pub(crate) fn paused(body: &Value) -> bool {
    body.get("paused") == Some(&Value::Bool(true))
}

/// Whether the record's `control.<request>` names `id`.
pub(crate) fn control_names(body: &Value, request: &str, id: &RolloutId) -> bool {
    body.get("control")
        .and_then(|c| c.get(request))
        .and_then(Value::as_str)
        == Some(id.to_string().as_str())
}

/// The record's `control` as it is, with `request` naming `id`: the
/// other requests in it (a promotion, hooks' verdicts) are kept.
pub(crate) fn control_with(body: &Value, request: &str, id: &RolloutId) -> Value {
    let mut control = match body.get("control") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    control.insert(request.to_string(), Value::String(id.to_string()));
    Value::Object(control)
}
