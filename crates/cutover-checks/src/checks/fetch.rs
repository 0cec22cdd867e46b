//! What gates, hooks and notifications share when they call an endpoint:
//! bounded answers, and failures told in a few words a person can act on.
//!
//! Endpoint URLs may carry credentials (a Slack webhook path, a token in a
//! query string), so nothing here ever puts a URL into a message.

use std::error::Error as _;
use std::io;
use std::time::Duration;

use crate::time::format_duration;

/// Answers are read up to this size; a health endpoint or a hook that
/// answers more is cut short rather than allowed to exhaust memory.
pub const MAX_BODY: usize = 1024 * 1024;

/// A request's answer, read in full (up to [`MAX_BODY`]).
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a request got no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    TimedOut(Duration),
    /// Anything else: refused, reset, unresolvable, a TLS failure.
    Unreachable(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::TimedOut(d) => write!(f, "timed out after {}", format_duration(*d)),
            Failure::Unreachable(why) => f.write_str(why),
        }
    }
}

/// Sends `request` and reads the whole answer, all within `timeout`.
pub async fn send(request: reqwest::RequestBuilder, timeout: Duration) -> Result<Answer, Failure> {
    let exchange = async {
        let mut response = request.send().await.map_err(describe)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            let room = MAX_BODY - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_BODY {
                break;
            }
        }
        Ok(Answer { status, body })
    };
    // One deadline for connecting, sending and reading: a server that
    // trickles its answer is as late as one that never answers.
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(Failure::TimedOut(timeout)),
    }
}

/// A reqwest error in a few words, without the URL it names.
fn describe(e: reqwest::Error) -> Failure {
    let e = e.without_url();
    let mut io_kind = None;
    let mut deepest = None;
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            io_kind = Some(io.kind());
        }
        deepest = Some(s.to_string());
        source = s.source();
    }
    let why = match io_kind {
        Some(io::ErrorKind::ConnectionRefused) => "connection refused".to_string(),
        Some(io::ErrorKind::ConnectionReset) => "connection reset".to_string(),
        Some(io::ErrorKind::ConnectionAborted) => "connection aborted".to_string(),
        Some(io::ErrorKind::UnexpectedEof) => "connection closed before an answer".to_string(),
        _ if e.is_connect() => format!(
            "cannot connect: {}",
            deepest.unwrap_or_else(|| e.to_string())
        ),
        _ => match deepest {
            Some(d) => format!("{e}: {d}"),
            None => e.to_string(),
        },
    };
    Failure::Unreachable(why)
}

pub use crate::rollout::hook::origin;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_keep_no_path_query_or_user_info() {
        assert_eq!(
            origin("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            origin("http://user:pw@10.0.0.1:8080/hook?token=x"),
            "http://10.0.0.1:8080"
        );
        assert_eq!(origin("http://host?token=x"), "http://host");
        assert_eq!(origin("nonsense"), "<not a URL>");
    }
}
