//! `/v1/releases`: fleet releases. Reading is open; starting one (`POST
//! /v1/releases/{name}` with the release as JSON) and pausing, resuming
//! or aborting it (`POST /v1/releases/{name}/{action}`) need the API token.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::ApiState;
use super::error::{ApiError, unreadable_body};
use super::write::authorize;
use crate::cloud::releases::{self, ReleaseAction, StoredRelease};
use crate::cloud::{CloudError, ErrorKind, SpecWrite};

fn view(r: &StoredRelease) -> Value {
    json!({
        "name": r.name.strip_prefix("release:").unwrap_or(&r.name),
        "release": r.body,
        "status": r.status,
    })
}

fn refused(e: CloudError) -> ApiError {
    match e.kind {
        ErrorKind::Invalid => ApiError::bad_request(e.message),
        _ => ApiError::store(&e),
    }
}

fn name_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(name) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    releases::item_name(&name).map_err(refused)?;
    Ok(name)
}

pub async fn list(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let all = releases::list(state.store.as_ref())
        .await
        .map_err(|e| ApiError::store(&e))?;
    Ok(Json(
        json!({"releases": all.iter().map(view).collect::<Vec<_>>()}),
    ))
}

pub async fn one(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = name_of(path)?;
    match releases::get(state.store.as_ref(), &name)
        .await
        .map_err(refused)?
    {
        Some(r) => Ok(Json(view(&r))),
        None => Err(ApiError::not_found(format!("there is no release {name}"))),
    }
}

pub async fn start(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    authorize(&state, &headers)?;
    let name = name_of(path)?;
    let body = body.map_err(unreadable_body)?;
    let release: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be the release as a JSON object: {e}"
        ))
    })?;
    match releases::start(state.store.as_ref(), &name, &release)
        .await
        .map_err(refused)?
    {
        SpecWrite::Written { .. } => {
            let item = releases::item_name(&name).map_err(refused)?;
            state.controller.release_written(&item);
            Ok((
                StatusCode::CREATED,
                Json(json!({"name": name, "started": true})),
            ))
        }
        SpecWrite::PreconditionFailed => Err(ApiError::conflict(format!(
            "release {name} exists already: a release deploys one change, so write a new one under a new name"
        ))),
    }
}

pub async fn act(
    State(state): State<ApiState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers)?;
    let Path((name, action)) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let action: ReleaseAction = action.parse().map_err(ApiError::bad_request)?;
    match releases::act(state.store.as_ref(), &name, action, state.clock.now())
        .await
        .map_err(refused)?
    {
        None => Err(ApiError::not_found(format!("there is no release {name}"))),
        Some(_) => {
            if let Ok(item) = releases::item_name(&name) {
                state.controller.release_written(&item);
            }
            Ok(Json(json!({"name": name, "requested": action.as_str()})))
        }
    }
}
