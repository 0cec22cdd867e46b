//! Late hook verdicts: a hook that answered 202 reports here when it is
//! done, and the verdict is written into the record's `control.hooks`,
//! where the decision looks for it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

use super::ApiState;
use super::error::{ApiError, unreadable_body};
use super::services::{path_error, service_key, unknown};
use super::write::{WRITE_ATTEMPTS, authorize};
use crate::cloud::{Precondition, SpecChanges, SpecWrite};
use crate::rollout::Status;
use crate::rollout::hook::{HookAnswer, HookPoint, HookVerdict};

/// The body: `{"rollout": "<revision>#<attempt>", "verdict": "pass"|"fail", "detail": "…"}`.
pub fn parse_verdict(body: &[u8]) -> Result<HookVerdict, String> {
    let explain = |e: &dyn std::fmt::Display| {
        format!(
            "the body must be a JSON object such as {{\"rollout\": \"<revision>#<attempt>\", \"verdict\": \"pass\", \"detail\": \"…\"}}: {e}"
        )
    };
    match serde_json::from_slice::<Value>(body).map_err(|e| explain(&e))? {
        v @ Value::Object(_) => serde_json::from_value(v).map_err(|e| explain(&e)),
        _ => Err(explain(&"it is not an object")),
    }
}

/// The `control` attribute with this verdict in it, or why it does not
/// apply to the record as it is now.
pub fn plan(
    body: &Value,
    status: Option<&Status>,
    point: HookPoint,
    verdict: &HookVerdict,
) -> Result<SpecChanges, String> {
    let declared = body
        .get("hooks")
        .and_then(|h| h.get(point.as_str()))
        .is_some_and(|h| !h.is_null());
    if !declared {
        return Err(format!("the record declares no {point} hook"));
    }
    let Some(r) = status.and_then(|s| s.rollout.as_ref()) else {
        return Err(format!(
            "no rollout is in flight, so rollout {} is not either",
            verdict.rollout
        ));
    };
    if r.id != verdict.rollout {
        return Err(format!(
            "rollout {} is not the one in flight ({}): the verdict is too late",
            verdict.rollout, r.id
        ));
    }
    if let Some(why) = &r.rollback {
        return Err(format!("rollout {} is already rolling back ({why})", r.id));
    }
    // Other requests and other hooks' verdicts in `control` stay as read;
    // the write is conditional on the record being unchanged since.
    let mut control = body
        .get("control")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(Map::new);
    let mut hooks = control
        .get("hooks")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(Map::new);
    hooks.insert(point.as_str().to_string(), json!(verdict));
    control.insert("hooks".to_string(), Value::Object(hooks));
    Ok(SpecChanges::from([(
        "control".to_string(),
        Some(Value::Object(control)),
    )]))
}

pub async fn report(
    State(state): State<ApiState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers)?;
    let Path((cluster, service, point)) = path.map_err(path_error)?;
    let key = service_key(&cluster, &service)?;
    let point = HookPoint::parse(&point).ok_or_else(|| {
        let all: Vec<&str> = HookPoint::ALL.iter().map(|p| p.as_str()).collect();
        ApiError::bad_request(format!(
            "unknown hook point {point:?}: use one of {}",
            all.join(", ")
        ))
    })?;
    let body = body.map_err(unreadable_body)?;
    let verdict = parse_verdict(&body).map_err(ApiError::bad_request)?;

    for _ in 0..WRITE_ATTEMPTS {
        let record = state
            .store
            .get(&key)
            .await
            .map_err(|e| ApiError::store(&e))?
            .ok_or_else(|| unknown(&key))?;
        let changes =
            plan(&record.body, record.status.as_ref(), point, &verdict).map_err(|why| {
                ApiError::conflict(format!("cannot take the {point} verdict for {key}: {why}"))
            })?;
        let written = state
            .store
            .write_spec(&key, &changes, Precondition::unchanged_since(&record))
            .await
            .map_err(|e| ApiError::store(&e))?;
        match written {
            SpecWrite::Written { .. } => {
                let answer = match verdict.verdict {
                    HookAnswer::Pass => "pass",
                    HookAnswer::Fail => "fail",
                };
                tracing::info!(
                    service = %key,
                    hook = point.as_str(),
                    rollout = %verdict.rollout,
                    verdict = answer,
                    "API: {point} hook verdict {answer} for rollout {}",
                    verdict.rollout
                );
                state.controller.reconcile_now(key.clone());
                return Ok(Json(json!({
                    "service": key,
                    "hook": point.as_str(),
                    "rollout": verdict.rollout,
                    "verdict": answer,
                    "message": format!(
                        "{point} verdict {answer} recorded; the controller acts on it at its next look"
                    ),
                })));
            }
            SpecWrite::PreconditionFailed => continue,
        }
    }
    Err(ApiError::conflict(format!(
        "the record of {key} kept changing while the {point} verdict was being written: retry"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::status::{RollbackReason, Rollout};
    use crate::rollout::{Phase, Revision, RolloutId};
    use crate::time::Timestamp;

    fn id(attempt: u32) -> RolloutId {
        RolloutId {
            revision: Revision::from_raw("0123abcd"),
            attempt,
        }
    }

    fn testing() -> Status {
        Status {
            rollout: Some(Rollout::new(id(1), None, "tg".into(), Timestamp(0))),
            ..Status::default()
        }
        .with_phase(Phase::Testing)
    }

    fn verdict(attempt: u32) -> HookVerdict {
        HookVerdict {
            rollout: id(attempt),
            verdict: HookAnswer::Pass,
            detail: "smoke tests passed".into(),
        }
    }

    fn record() -> Value {
        json!({
            "hooks": {"after_test_traffic": {"url": "http://hooks/smoke"}},
            "control": {"abort": "ffff#1", "hooks": {"after_install": {"rollout": "0123abcd#1", "verdict": "pass"}}}
        })
    }

    #[test]
    fn a_verdict_joins_the_other_control_requests() {
        let point = HookPoint::AfterTestTraffic;
        let changes = plan(&record(), Some(&testing()), point, &verdict(1)).unwrap();
        assert_eq!(
            changes["control"],
            Some(json!({
                "abort": "ffff#1",
                "hooks": {
                    "after_install": {"rollout": "0123abcd#1", "verdict": "pass"},
                    "after_test_traffic": {"rollout": "0123abcd#1", "verdict": "pass", "detail": "smoke tests passed"}
                }
            }))
        );
    }

    #[test]
    fn a_verdict_for_another_rollout_or_an_undeclared_hook_does_not_apply() {
        let point = HookPoint::AfterTestTraffic;
        let stale = plan(&record(), Some(&testing()), point, &verdict(2)).unwrap_err();
        assert!(stale.contains("not the one in flight"), "{stale}");
        let none = plan(&record(), None, point, &verdict(1)).unwrap_err();
        assert!(none.contains("no rollout is in flight"), "{none}");
        let undeclared = plan(
            &record(),
            Some(&testing()),
            HookPoint::BeforeInstall,
            &verdict(1),
        );
        assert!(
            undeclared
                .unwrap_err()
                .contains("declares no before_install hook")
        );
        let mut back = testing();
        if let Some(r) = back.rollout.as_mut() {
            r.rollback = Some(RollbackReason::Aborted);
        }
        let late = plan(&record(), Some(&back), point, &verdict(1)).unwrap_err();
        assert!(late.contains("already rolling back"), "{late}");
    }

    #[test]
    fn bodies_must_name_the_rollout_and_a_verdict() {
        let v = parse_verdict(br#"{"rollout": "0123abcd#1", "verdict": "fail"}"#).unwrap();
        assert_eq!(v.verdict, HookAnswer::Fail);
        assert_eq!(v.detail, "");
        for bad in [
            &b""[..],
            b"[]",
            br#"{"verdict": "pass"}"#,
            br#"{"rollout": "0123abcd#1", "verdict": "maybe"}"#,
            br#"{"rollout": "0123abcd#1", "verdict": "pass", "extra": 1}"#,
        ] {
            assert!(parse_verdict(bad).is_err(), "{bad:?}");
        }
    }
}
