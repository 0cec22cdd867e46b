//! SDK errors sorted into [`CloudError`]s by what the controller should do
//! about them. The SDK has already retried what it considers retryable by the
//! time an error reaches here.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::RequestId;

use super::ecs_convert::{Subject, name_missing};
use crate::cloud::{CloudError, ErrorKind};

/// The SDK's own list of throttling codes, plus what ECS and ELB say.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

const TRANSIENT: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalServerError",
    "InternalFailure",
    "InternalError",
    "ServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

/// Credentials or permissions: only whoever runs the controller can fix these.
const DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
];

const NOT_FOUND: &[&str] = &["ServiceNotActiveException", "NoSuchEntity"];

const INVALID: &[&str] = &["ClientException", "SerializationException"];

/// Sorts an error code (and the HTTP status, when the code says nothing).
pub fn classify(code: Option<&str>, http_status: Option<u16>) -> ErrorKind {
    if let Some(code) = code {
        if THROTTLING.contains(&code) {
            return ErrorKind::Throttled;
        }
        if TRANSIENT.contains(&code) {
            return ErrorKind::Transient;
        }
        if DENIED.contains(&code) {
            return ErrorKind::Denied;
        }
        if NOT_FOUND.contains(&code)
            || code.ends_with("NotFound")
            || code.ends_with("NotFoundException")
        {
            return ErrorKind::NotFound;
        }
        if INVALID.contains(&code) || code.starts_with("Validation") || code.starts_with("Invalid")
        {
            return ErrorKind::Invalid;
        }
    }
    match http_status {
        Some(429) => ErrorKind::Throttled,
        Some(s) if s >= 500 => ErrorKind::Transient,
        Some(403) => ErrorKind::Denied,
        _ => ErrorKind::Other,
    }
}

/// Converts any SDK operation error. `operation` names the call the way IAM
/// does, e.g. `dynamodb:UpdateItem`.
pub fn from_sdk<E>(operation: &'static str, err: SdkError<E>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let request_id = err
        .request_id()
        .or_else(|| err.as_service_error().and_then(|e| e.meta().request_id()))
        .map(str::to_string);
    let (kind, message) = match &err {
        SdkError::ServiceError(service) => {
            let meta = service.err().meta();
            let status = service.raw().status().as_u16();
            let kind = classify(meta.code(), Some(status));
            let message = match (meta.code(), meta.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                _ => format!("HTTP {status}: {}", DisplayErrorContext(&err)),
            };
            (kind, message)
        }
        SdkError::ResponseError(response) => {
            let status = response.raw().status().as_u16();
            (
                classify(None, Some(status)),
                format!(
                    "unreadable response (HTTP {status}): {}",
                    DisplayErrorContext(&err)
                ),
            )
        }
        SdkError::TimeoutError(_) => (
            ErrorKind::Transient,
            format!("timed out: {}", DisplayErrorContext(&err)),
        ),
        SdkError::DispatchFailure(failure) => {
            // A user error is a broken local setup (no region, no credentials,
            // a bad endpoint URL): retrying cannot fix it.
            let kind = if failure.is_user() {
                ErrorKind::Other
            } else {
                ErrorKind::Transient
            };
            (kind, DisplayErrorContext(&err).to_string())
        }
        _ => (ErrorKind::Other, DisplayErrorContext(&err).to_string()),
    };
    CloudError {
        kind,
        operation,
        message,
        request_id,
    }
}

/// The error code of a service error, for callers that treat one code as a
/// normal outcome (a failed condition, a table that already exists).
pub fn code<E: ProvideErrorMetadata>(err: &SdkError<E>) -> Option<&str> {
    err.as_service_error().and_then(|e| e.code())
}

/// [`from_sdk`], with ECS's not-found answers naming what was not found.
pub(super) fn ecs_error<E>(op: &'static str, subject: &Subject<'_>, err: SdkError<E>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = code(&err).map(str::to_string);
    let message = err
        .as_service_error()
        .and_then(|e| e.message())
        .map(str::to_string);
    name_missing(
        from_sdk(op, err),
        code.as_deref(),
        message.as_deref(),
        subject,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_codes_are_throttled_whatever_the_status() {
        assert_eq!(
            classify(Some("ThrottlingException"), Some(400)),
            ErrorKind::Throttled
        );
        assert_eq!(
            classify(Some("ProvisionedThroughputExceededException"), Some(400)),
            ErrorKind::Throttled
        );
        assert_eq!(classify(None, Some(429)), ErrorKind::Throttled);
    }

    #[test]
    fn server_errors_are_transient() {
        assert_eq!(
            classify(Some("ServerException"), Some(500)),
            ErrorKind::Transient
        );
        assert_eq!(classify(None, Some(503)), ErrorKind::Transient);
        assert_eq!(
            classify(Some("SomethingNew"), Some(502)),
            ErrorKind::Transient
        );
    }

    #[test]
    fn missing_resources_are_not_found() {
        for code in [
            "ResourceNotFoundException",
            "ClusterNotFoundException",
            "TargetGroupNotFound",
            "ListenerNotFound",
            "ServiceNotActiveException",
        ] {
            assert_eq!(
                classify(Some(code), Some(400)),
                ErrorKind::NotFound,
                "{code}"
            );
        }
    }

    #[test]
    fn refused_requests_are_invalid_and_permissions_are_denied() {
        assert_eq!(
            classify(Some("ValidationException"), Some(400)),
            ErrorKind::Invalid
        );
        assert_eq!(
            classify(Some("InvalidParameterException"), Some(400)),
            ErrorKind::Invalid
        );
        assert_eq!(
            classify(Some("ClientException"), Some(400)),
            ErrorKind::Invalid
        );
        assert_eq!(
            classify(Some("AccessDeniedException"), Some(400)),
            ErrorKind::Denied
        );
        assert_eq!(classify(Some("ExpiredToken"), Some(403)), ErrorKind::Denied);
        assert_eq!(classify(None, Some(403)), ErrorKind::Denied);
    }

    #[test]
    fn anything_else_is_other() {
        assert_eq!(
            classify(Some("ConditionalCheckFailedException"), Some(400)),
            ErrorKind::Other
        );
        assert_eq!(classify(None, Some(400)), ErrorKind::Other);
        assert_eq!(classify(None, None), ErrorKind::Other);
    }
}
