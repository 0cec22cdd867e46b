//! `/v1/halt`: the fleet-wide halt. Reading it is open; putting it on
//! (`POST`, with `{"reason": "...", "by": "..."}`) and lifting it
//! (`DELETE`) need the API token, as every action does.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::error::{ApiError, unreadable_body};
use super::write::authorize;
use crate::cloud::ErrorKind;
use crate::cloud::halt::{self, Halting, Lifting};
use crate::rollout::halt::Halt;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HaltRequest {
    reason: Option<String>,
    by: Option<String>,
}

fn view(halt: Option<&Halt>) -> Value {
    match halt {
        None => json!({"halted": false}),
        Some(h) => json!({
            "halted": true,
            "reason": h.reason,
            "by": h.by,
            "since": h.since,
            "message": h.to_string(),
        }),
    }
}

pub async fn show(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let halt = halt::read(state.store.as_ref())
        .await
        .map_err(|e| ApiError::store(&e))?;
    Ok(Json(view(halt.as_ref())))
}

pub async fn put_on(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    authorize(&state, &headers)?;
    let body = body.map_err(unreadable_body)?;
    let request: HaltRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be a JSON object {{\"reason\": \"why\", \"by\": \"who\"}} (`by` optional): {e}"
        ))
    })?;
    let Some(reason) = request.reason else {
        return Err(ApiError::bad_request(
            "`reason` is missing: say why the fleet is halted; every service's status shows it",
        ));
    };
    let done = halt::halt(
        state.store.as_ref(),
        &reason,
        request.by.as_deref(),
        state.clock.now(),
    )
    .await
    .map_err(|e| match e.kind {
        ErrorKind::Invalid => ApiError::bad_request(e.message.clone()),
        _ => ApiError::store(&e),
    })?;
    Ok(match done {
        Halting::Halted(h) => (StatusCode::CREATED, Json(view(Some(&h)))),
        Halting::AlreadyHalted(h) => {
            let mut v = view(Some(&h));
            v["already"] = json!(true);
            (StatusCode::OK, Json(v))
        }
    })
}

pub async fn lift(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers)?;
    let done = halt::lift(state.store.as_ref())
        .await
        .map_err(|e| match e.kind {
            ErrorKind::Other => ApiError::conflict(e.message.clone()),
            _ => ApiError::store(&e),
        })?;
    Ok(Json(match done {
        Lifting::Lifted(h) => json!({"halted": false, "lifted": view(Some(&h))}),
        Lifting::NotHalted => json!({"halted": false}),
    }))
}
