//! What each action writes into a record, and when it does not apply. Pure:
//! the handler reads the record, asks here, and writes what comes back.
//!
//! `control` requests name the exact rollout (and step) they are meant for,
//! as the decision requires, so one that arrives late never acts on a newer
//! rollout.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::cloud::SpecChanges;
use crate::rollout::requests::{self, Refusal};
use crate::rollout::{Promote, RolloutId, Status};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Promote,
    Abort,
    Pause,
    Resume,
    Retry,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Promote,
        Action::Abort,
        Action::Pause,
        Action::Resume,
        Action::Retry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Promote => "promote",
            Action::Abort => "abort",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Retry => "retry",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                format!("unknown action {s:?}: use promote, abort, pause, resume or retry")
            })
    }
}

/// The optional request body: `{"rollout": "<revision>#<attempt>"}` makes
/// the action apply only to that rollout, as the caller last saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    #[serde(default)]
    pub rollout: Option<RolloutId>,
}

impl ActionRequest {
    /// An empty body is an empty request; anything else must be that object.
    pub fn parse(body: &[u8]) -> Result<ActionRequest, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(ActionRequest::default());
        }
        let explain = |e: &dyn fmt::Display| {
            format!(
                "the body must be empty or a JSON object such as {{\"rollout\": \"<revision>#<attempt>\"}}: {e}"
            )
        };
        // serde would also take `[]` for a struct; only an object is meant.
        match serde_json::from_slice::<Value>(body).map_err(|e| explain(&e))? {
            v @ Value::Object(_) => serde_json::from_value(v).map_err(|e| explain(&e)),
            _ => Err(explain(&"it is not an object")),
        }
    }
}

/// What to write, and words for the reply.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub changes: SpecChanges,
    pub rollout: Option<RolloutId>,
    pub message: String,
}

/// Why an action does not apply to the service as it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotApplicable(pub String);

fn with_control(body: &Value, field: &str, value: Value) -> SpecChanges {
    // The other requests in `control` stay: they may be meant for this
    // very rollout (an abort after a promote).
    let mut control = body
        .get("control")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(Map::new);
    control.insert(field.to_string(), value);
    SpecChanges::from([("control".to_string(), Some(Value::Object(control)))])
}

fn check_pinned(request: &ActionRequest, current: &RolloutId) -> Result<(), NotApplicable> {
    match &request.rollout {
        Some(asked) if asked != current => Err(NotApplicable(format!(
            "rollout {asked} is not the current one ({current}): look again and retry"
        ))),
        _ => Ok(()),
    }
}

/// Whether `action` applies to a record with this body and status.
pub fn plan(
    action: Action,
    body: &Value,
    status: Option<&Status>,
    request: &ActionRequest,
) -> Result<Plan, NotApplicable> {
    let refused = |r: Refusal| NotApplicable(r.to_string());
    let rollout = status.and_then(|s| s.rollout.as_ref());
    match action {
        Action::Promote => {
            let r = requests::promotable(status).map_err(refused)?;
            check_pinned(request, &r.id)?;
            let promote = Promote {
                rollout: r.id.clone(),
                step: r.step,
            };
            Ok(Plan {
                changes: with_control(body, "promote", json!(promote)),
                rollout: Some(r.id.clone()),
                message: format!("promotion of rollout {} at step {} requested", r.id, r.step),
            })
        }
        Action::Abort => {
            let r = requests::abortable(status).map_err(refused)?;
            check_pinned(request, &r.id)?;
            Ok(Plan {
                changes: with_control(body, "abort", json!(r.id)),
                rollout: Some(r.id.clone()),
                message: format!("abort of rollout {} requested", r.id),
            })
        }
        Action::Retry => {
            let failed = requests::retryable(status).map_err(refused)?;
            check_pinned(request, &failed.rollout)?;
            Ok(Plan {
                changes: with_control(body, "retry", json!(failed.rollout)),
                rollout: Some(failed.rollout.clone()),
                message: format!("retry of rollout {} requested", failed.rollout),
            })
        }
        Action::Pause | Action::Resume => {
            if let Some(r) = rollout {
                check_pinned(request, &r.id)?;
            }
            let paused = action == Action::Pause;
            Ok(Plan {
                changes: SpecChanges::from([("paused".to_string(), Some(json!(paused)))]),
                rollout: rollout.map(|r| r.id.clone()),
                message: format!("paused = {paused} written"),
            })
        }
    }
}

/// The actions that apply now, for people deciding what they can do:
/// `pause` only for a record that is not paused, `resume` only for one
/// that is (writing either again is accepted, but changes nothing).
pub fn available(body: &Value, status: Option<&Status>) -> Vec<&'static str> {
    let paused = body.get("paused").and_then(Value::as_bool).unwrap_or(false);
    Action::ALL
        .into_iter()
        .filter(|a| plan(*a, body, status, &ActionRequest::default()).is_ok())
        .filter(|a| match a {
            Action::Pause => requests::pause_request(paused, true).is_ok(),
            Action::Resume => requests::pause_request(paused, false).is_ok(),
            _ => true,
        })
        .map(Action::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::Phase;
    use crate::rollout::Revision;
    use crate::rollout::status::{Failure, RollbackReason, Rollout};
    use crate::time::Timestamp;

    fn id(attempt: u32) -> RolloutId {
        RolloutId {
            revision: Revision::from_raw("0123abcd"),
            attempt,
        }
    }

    fn in_flight(phase: Phase) -> Status {
        Status {
            rollout: Some(Rollout {
                step: 2,
                ..Rollout::new(id(1), None, "tg".into(), Timestamp(0))
            }),
            ..Status::default()
        }
        .with_phase(phase)
    }

    #[test]
    fn promote_names_the_rollout_and_step_and_keeps_other_requests() {
        let body = json!({"control": {"abort": "ffff#1"}});
        let status = in_flight(Phase::AwaitingPromotion);
        let p = plan(
            Action::Promote,
            &body,
            Some(&status),
            &ActionRequest::default(),
        )
        .unwrap();
        assert_eq!(
            p.changes["control"],
            Some(json!({"abort": "ffff#1", "promote": {"rollout": "0123abcd#1", "step": 2}}))
        );
    }

    #[test]
    fn promote_applies_only_while_awaiting_promotion() {
        let status = in_flight(Phase::Shifting);
        let e = plan(
            Action::Promote,
            &json!({}),
            Some(&status),
            &ActionRequest::default(),
        );
        assert!(e.unwrap_err().0.contains("Shifting"));
        assert!(plan(Action::Promote, &json!({}), None, &ActionRequest::default()).is_err());
    }

    #[test]
    fn a_request_pinned_to_another_rollout_does_not_apply() {
        let status = in_flight(Phase::AwaitingPromotion);
        let stale = ActionRequest {
            rollout: Some(id(2)),
        };
        assert!(plan(Action::Promote, &json!({}), Some(&status), &stale).is_err());
        let current = ActionRequest {
            rollout: Some(id(1)),
        };
        assert!(plan(Action::Promote, &json!({}), Some(&status), &current).is_ok());
    }

    #[test]
    fn abort_needs_a_rollout_that_can_still_return() {
        let req = ActionRequest::default();
        assert!(plan(Action::Abort, &json!({}), None, &req).is_err());
        assert!(
            plan(
                Action::Abort,
                &json!({}),
                Some(&in_flight(Phase::Finalizing)),
                &req
            )
            .is_err()
        );
        let mut rolling_back = in_flight(Phase::RollingBack);
        if let Some(r) = rolling_back.rollout.as_mut() {
            r.rollback = Some(RollbackReason::Aborted);
        }
        assert!(plan(Action::Abort, &json!({}), Some(&rolling_back), &req).is_err());
        let p = plan(
            Action::Abort,
            &json!({}),
            Some(&in_flight(Phase::Baking)),
            &req,
        )
        .unwrap();
        assert_eq!(p.changes["control"], Some(json!({"abort": "0123abcd#1"})));
    }

    #[test]
    fn retry_applies_only_to_a_failed_revision() {
        let req = ActionRequest::default();
        assert!(
            plan(
                Action::Retry,
                &json!({}),
                Some(&in_flight(Phase::Shifting)),
                &req
            )
            .is_err()
        );
        let failed = Status {
            failed: Some(Failure {
                rollout: id(3),
                reason: "gate".into(),
                at: Timestamp(0),
            }),
            ..Status::default()
        }
        .with_phase(Phase::Failed);
        let p = plan(Action::Retry, &json!({}), Some(&failed), &req).unwrap();
        assert_eq!(p.changes["control"], Some(json!({"retry": "0123abcd#3"})));
        assert_eq!(available(&json!({}), Some(&failed)), ["pause", "retry"]);
    }

    #[test]
    fn resume_is_offered_only_while_paused_and_pause_only_while_not() {
        let shifting = in_flight(Phase::Shifting);
        assert_eq!(available(&json!({}), Some(&shifting)), ["abort", "pause"]);
        assert_eq!(available(&json!({"paused": false}), None), ["pause"]);
        let paused = in_flight(Phase::Paused);
        assert_eq!(
            available(&json!({"paused": true}), Some(&paused)),
            ["abort", "resume"]
        );
    }

    #[test]
    fn pause_and_resume_write_the_paused_field() {
        let req = ActionRequest::default();
        let p = plan(Action::Pause, &json!({}), None, &req).unwrap();
        assert_eq!(p.changes["paused"], Some(json!(true)));
        let p = plan(Action::Resume, &json!({}), None, &req).unwrap();
        assert_eq!(p.changes["paused"], Some(json!(false)));
    }

    #[test]
    fn bodies_are_empty_or_a_known_object() {
        assert_eq!(ActionRequest::parse(b"").unwrap(), ActionRequest::default());
        assert_eq!(
            ActionRequest::parse(b" \n").unwrap(),
            ActionRequest::default()
        );
        let r = ActionRequest::parse(br#"{"rollout": "0123abcd#1"}"#).unwrap();
        assert_eq!(r.rollout, Some(id(1)));
        for bad in [
            &b"{"[..],
            b"[]",
            br#"{"rollout": "nope"}"#,
            br#"{"step": 1}"#,
        ] {
            assert!(ActionRequest::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn actions_parse_from_their_names() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>(), Ok(a));
        }
        assert!(
            "frobnicate"
                .parse::<Action>()
                .unwrap_err()
                .contains("promote")
        );
    }
}
