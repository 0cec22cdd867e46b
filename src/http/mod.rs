//! The HTTP surface: probes for the orchestrator, metrics for Prometheus,
//! and a small JSON API for people (read services; promote, abort, pause,
//! resume, retry with a bearer token).

pub mod actions;
pub mod error;
mod halt;
pub mod hooks;
mod releases;
mod services;
pub mod token;
mod write;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cloud::{Clock, DesiredStore, LoadBalancer};
use crate::controller::ControllerHandle;
use crate::metrics::{self, Metrics};

pub use error::ApiError;
pub use token::{ApiToken, TokenError};

/// What the handlers share. Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn DesiredStore>,
    pub lb: Arc<dyn LoadBalancer>,
    pub controller: ControllerHandle,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    /// `None` disables the actions; reads stay open.
    pub token: Option<ApiToken>,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .route(
            "/v1/halt",
            get(halt::show).post(halt::put_on).delete(halt::lift),
        )
        .route("/v1/releases", get(releases::list))
        .route(
            "/v1/releases/{name}",
            get(releases::one).post(releases::start),
        )
        .route("/v1/releases/{name}/{action}", post(releases::act))
        .route("/v1/services", get(services::list))
        .route("/v1/services/{cluster}/{service}", get(services::one))
        .route(
            "/v1/services/{cluster}/{service}/{action}",
            post(write::act),
        )
        .route(
            "/v1/services/{cluster}/{service}/hooks/{point}",
            post(hooks::report),
        )
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::wrong_method)
        .layer(DefaultBodyLimit::max(error::BODY_LIMIT))
        .with_state(state)
}

/// Serves until `shutdown` is cancelled, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Alive as long as it answers: a controller that is stuck on AWS is still
/// better left running than restarted into the same AWS.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "alive"}))
}

async fn readyz(State(state): State<ApiState>) -> Response {
    match state.controller.readiness(state.clock.now()) {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "error": "not_ready",
                "reason": why.kind(),
                "message": why.to_string(),
            })),
        )
            .into_response(),
    }
}

async fn render_metrics(State(state): State<ApiState>) -> Response {
    match state.metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics_unavailable",
            format!("encoding the metrics failed: {e}"),
        )
        .into_response(),
    }
}
