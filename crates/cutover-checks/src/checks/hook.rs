//! Calling a lifecycle hook. An unreachable hook is a failed hook, never an
//! error: an error fails the reconcile pass, which calls the hook again on
//! the next pass, so a hook that is down would hold the rollout forever
//! instead of rolling it back.

use std::time::Duration;

use serde::Deserialize;

use crate::rollout::hook::{HookAnswer, HookPayload};

use super::fetch::{self, Failure, origin};

/// How hard a hook is tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HookPolicy {
    /// One attempt, connecting included.
    pub timeout: Duration,
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The wait before the second attempt; it doubles after each.
    pub backoff: Duration,
}

impl Default for HookPolicy {
    fn default() -> Self {
        HookPolicy {
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_secs(1),
        }
    }
}

/// What a hook answers with a 200.
#[derive(Deserialize)]
struct Answer {
    verdict: HookAnswer,
    #[serde(default)]
    detail: String,
}

/// `Some` with the hook's verdict, or a failing one when it cannot be had;
/// `None` when the hook accepted the call (202) and reports later.
pub async fn call(
    client: &reqwest::Client,
    policy: &HookPolicy,
    url: &str,
    payload: &HookPayload,
) -> Option<(HookAnswer, String)> {
    let mut wait = policy.backoff;
    let mut last = String::new();
    for attempt in 1..=policy.attempts.max(1) {
        if attempt > 1 {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
        let request = client.post(url).json(payload);
        let why = match fetch::send(request, policy.timeout).await {
            Ok(a) if a.status == 200 => return Some(verdict(&a.body)),
            Ok(a) if a.status == 202 => return None,
            Ok(a) if a.status >= 500 => format!("it answered {}", a.status),
            Ok(a) => {
                return Some((
                    HookAnswer::Fail,
                    format!("the hook answered {}, not 200 or 202", a.status),
                ));
            }
            Err(Failure::TimedOut(d)) => Failure::TimedOut(d).to_string(),
            Err(Failure::Unreachable(why)) => why,
        };
        tracing::info!(
            hook = %payload.hook,
            endpoint = %origin(url),
            attempt,
            attempts = policy.attempts,
            "calling the {} hook of {} failed: {why}",
            payload.hook,
            payload.service
        );
        last = why;
    }
    Some((HookAnswer::Fail, format!("hook unreachable: {last}")))
}

fn verdict(body: &[u8]) -> (HookAnswer, String) {
    match serde_json::from_slice::<Answer>(body) {
        Ok(a) => (a.verdict, a.detail),
        Err(e) => (
            HookAnswer::Fail,
            format!(
                "the hook answered 200 without a verdict: the body must be {{\"verdict\": \"pass\" or \"fail\", \"detail\": \"…\"}} ({e})"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_200_without_a_verdict_fails() {
        assert_eq!(
            verdict(br#"{"verdict": "pass", "detail": "smoke tests green"}"#),
            (HookAnswer::Pass, "smoke tests green".into())
        );
        assert_eq!(
            verdict(br#"{"verdict": "fail"}"#),
            (HookAnswer::Fail, "".into())
        );
        let (v, why) = verdict(b"ok");
        assert_eq!(v, HookAnswer::Fail);
        assert!(why.contains("without a verdict"), "{why}");
    }
}
