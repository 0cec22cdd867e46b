//! Errors from the outside world, sorted by what the controller should do
//! about them.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Rate limited: retry later with backoff.
    Throttled,
    /// A 5xx, a timeout or a dropped connection: retry with backoff.
    Transient,
    /// Something named in the record does not exist: tell the service's owner.
    NotFound,
    /// AWS refused the request as invalid: tell the service's owner.
    Invalid,
    /// Not allowed: the controller's IAM permissions.
    Denied,
    /// Anything else.
    Other,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Throttled,
        ErrorKind::Transient,
        ErrorKind::NotFound,
        ErrorKind::Invalid,
        ErrorKind::Denied,
        ErrorKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Throttled => "throttled",
            ErrorKind::Transient => "transient",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Denied => "denied",
            ErrorKind::Other => "other",
        }
    }

    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Throttled | ErrorKind::Transient | ErrorKind::Other
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct CloudError {
    pub kind: ErrorKind,
    /// The API operation, e.g. `ecs:CreateTaskSet`.
    pub operation: &'static str,
    pub message: String,
    pub request_id: Option<String>,
}

impl CloudError {
    pub fn new(kind: ErrorKind, operation: &'static str, message: impl Into<String>) -> Self {
        CloudError {
            kind,
            operation,
            message: message.into(),
            request_id: None,
        }
    }

    pub fn not_found(operation: &'static str, what: impl fmt::Display) -> Self {
        Self::new(ErrorKind::NotFound, operation, format!("{what} not found"))
    }
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.operation, self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}
