//! The actions people take on a rollout: promote, abort, pause, resume,
//! retry. Each is a conditional write of the record's `control` or `paused`
//! attribute; the controller notices it like any other change.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use super::ApiState;
use super::actions::{Action, ActionRequest, plan};
use super::error::{ApiError, unreadable_body};
use super::services::{path_error, service_key, unknown};
use super::token::{TOKEN_FILE_VAR, TOKEN_VAR};
use crate::cloud::{Precondition, SpecWrite};

/// A read-modify-write that loses to a concurrent writer reads again; after
/// this many losses the caller is told to try later.
pub(super) const WRITE_ATTEMPTS: usize = 3;

pub(super) fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &state.token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "mutations_disabled",
            format!(
                "actions are disabled because no API token is configured: set {TOKEN_VAR} to a token, or {TOKEN_FILE_VAR} to a file holding one, and restart cutover"
            ),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match given {
        Some(value) if token.allows(value) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the bearer token is not the configured one",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the API token as `Authorization: Bearer <token>`",
        )),
    }
}

pub async fn act(
    State(state): State<ApiState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    // Before anything else, so nothing about services leaks to callers
    // without the token.
    authorize(&state, &headers)?;
    let Path((cluster, service, action)) = path.map_err(path_error)?;
    let key = service_key(&cluster, &service)?;
    let action: Action = action.parse().map_err(ApiError::bad_request)?;
    let body = body.map_err(unreadable_body)?;
    let request = ActionRequest::parse(&body).map_err(ApiError::bad_request)?;

    for _ in 0..WRITE_ATTEMPTS {
        let record = state
            .store
            .get(&key)
            .await
            .map_err(|e| ApiError::store(&e))?
            .ok_or_else(|| unknown(&key))?;
        let plan = plan(action, &record.body, record.status.as_ref(), &request)
            .map_err(|e| ApiError::conflict(format!("cannot {action} {key}: {}", e.0)))?;
        // `paused` is right whatever else changed; a `control` request is
        // computed from what was read, so it must still be what is stored.
        let precondition = match action {
            Action::Pause | Action::Resume => Precondition::Exists,
            _ => Precondition::unchanged_since(&record),
        };
        let written = state
            .store
            .write_spec(&key, &plan.changes, precondition)
            .await
            .map_err(|e| ApiError::store(&e))?;
        match written {
            SpecWrite::Written { .. } => {
                let rollout = plan.rollout.as_ref().map(ToString::to_string);
                tracing::info!(
                    service = %key,
                    action = action.as_str(),
                    rollout = rollout.as_deref().unwrap_or(""),
                    "API: {} for {key}",
                    plan.message
                );
                state.controller.reconcile_now(key.clone());
                return Ok(Json(json!({
                    "service": key,
                    "action": action.as_str(),
                    "rollout": rollout,
                    "message": format!("{}; the controller acts on it at its next look", plan.message),
                })));
            }
            SpecWrite::PreconditionFailed => continue,
        }
    }
    Err(ApiError::conflict(format!(
        "the record of {key} kept changing while the {action} was being written: look again and retry"
    )))
}
