//! Every error the API returns: a status and a JSON body `{error, message}`,
//! where `error` is a stable word to branch on and `message` says what to do.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::cloud::CloudError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// The table did not answer; the request may be repeated.
    pub fn store(e: &CloudError) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            format!("the desired-state table did not answer: {e}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": self.error, "message": self.message}));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"cutover\""),
            );
        }
        response
    }
}

/// The most a request body may hold. An action's or a hook verdict's body
/// is a small JSON object; nothing legitimate comes near this.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A body that could not be read (too large, or cut off), in the same JSON
/// shape as every other error instead of axum's plain text.
pub fn unreadable_body(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the request body is over {} KiB: send an empty body or a small JSON object such as {{\"rollout\": \"<revision>#<attempt>\"}}",
                BODY_LIMIT / 1024
            ),
        )
    } else {
        ApiError::bad_request(format!("the request body could not be read: {rejection}"))
    }
}

/// Routes that do not exist, in the same JSON shape as every other error.
pub async fn no_route() -> ApiError {
    ApiError::not_found("no such endpoint: see GET /v1/services, /metrics, /healthz and /readyz")
}

pub async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method: reads are GET, actions are POST",
    )
}
