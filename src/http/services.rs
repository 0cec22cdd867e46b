//! Reading services: the stored status of each, the record's validity and
//! the actions that apply now; for one service, also the production weights
//! the load balancer shows at this moment.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::ApiState;
use super::actions::available;
use super::error::ApiError;
use crate::cloud::StoredRecord;
use crate::rollout::ServiceKey;

/// The service key of a `/{cluster}/{service}` path, or why it is not one.
pub fn service_key(cluster: &str, service: &str) -> Result<ServiceKey, ApiError> {
    format!("{cluster}/{service}")
        .parse()
        .map_err(|e| ApiError::bad_request(format!("{e}")))
}

pub fn path_error(e: PathRejection) -> ApiError {
    ApiError::bad_request(format!("malformed path: {e}"))
}

fn view(record: &StoredRecord) -> Value {
    let spec = match record.spec() {
        Ok(spec) => json!({
            "valid": true,
            "revision": spec.revision,
            "paused": spec.paused,
        }),
        Err(problems) => json!({
            "valid": false,
            "problems": problems.to_string(),
        }),
    };
    json!({
        "service": record.key,
        "status": record.status,
        "record": spec,
        "actions": available(&record.body, record.status.as_ref()),
    })
}

pub async fn list(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let records = state.store.list().await.map_err(|e| ApiError::store(&e))?;
    let services: Vec<Value> = records.iter().map(view).collect();
    Ok(Json(json!({ "services": services })))
}

pub async fn one(
    State(state): State<ApiState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path((cluster, service)) = path.map_err(path_error)?;
    let key = service_key(&cluster, &service)?;
    let record = state
        .store
        .get(&key)
        .await
        .map_err(|e| ApiError::store(&e))?
        .ok_or_else(|| unknown(&key))?;
    let mut body = view(&record);
    // The stored weights are the last ones verified; these are what the
    // load balancer does right now, which is what someone debugging needs.
    let live = match record.spec() {
        // Under CodeDeploy the deployment group owns the load balancer.
        Ok(spec) if spec.driver.codedeploy().is_some() => {
            json!({ "codedeploy": "the deployment group owns the load balancer; see status.deployment" })
        }
        // ECS's own deployments weigh the routes themselves.
        Ok(spec) if spec.driver.native().is_some() => {
            json!({ "ecs_native": "ECS owns the load balancer; see status.weights and status.rollout.service_deployment" })
        }
        Ok(spec) => match state.lb.weights(&spec.traffic.production).await {
            Ok(weights) => json!({ "production": weights }),
            Err(e) => json!({ "error": e.to_string() }),
        },
        Err(_) => json!({ "error": "the record is invalid, so its production route is unknown" }),
    };
    body["live"] = live;
    Ok(Json(body))
}

pub fn unknown(key: &ServiceKey) -> ApiError {
    ApiError::not_found(format!(
        "no record for service {key}: write one to the desired-state table first"
    ))
}
