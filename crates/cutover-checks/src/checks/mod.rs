//! The IO side of analysis gates and lifecycle hooks: the [`Checks`] port
//! over HTTP (gate endpoints, Prometheus, webhooks) and CloudWatch.

pub mod cloudwatch;
pub mod fetch;
pub mod hook;
pub mod http;
pub mod prometheus;

use std::sync::Arc;

use async_trait::async_trait;

use crate::cloud::{Checks, Clock, CloudError};
use crate::rollout::ServiceKey;
use crate::rollout::gate::{Probe, Reading, Verdict};
use crate::rollout::hook::{HookAnswer, HookPayload};

pub use cloudwatch::{Alarm, AlarmBatcher, AlarmState, Alarms, Pacing};
pub use hook::HookPolicy;

/// Builds the HTTP client every check and notification shares. Redirects
/// are not followed: a gate or hook that moved is misconfigured, and
/// following one could send a payload to a host nobody named.
pub fn client() -> Result<reqwest::Client, CloudError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("cutover/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            CloudError::new(
                crate::cloud::ErrorKind::Other,
                "http:Client",
                format!("cannot build the HTTP client: {e}"),
            )
        })
}

/// The real [`Checks`].
pub struct LiveChecks {
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    alarms: Option<Arc<AlarmBatcher>>,
    hooks: HookPolicy,
}

impl LiveChecks {
    /// Readings are stamped with `clock`, the controller's own, so the
    /// decision can tell which it has already counted.
    pub fn new(client: reqwest::Client, clock: Arc<dyn Clock>) -> Self {
        LiveChecks {
            client,
            clock,
            alarms: None,
            hooks: HookPolicy::default(),
        }
    }

    /// Reads CloudWatch gates through `alarms`; without it they fail and say so.
    pub fn with_alarms(mut self, alarms: Arc<AlarmBatcher>) -> Self {
        self.alarms = Some(alarms);
        self
    }

    pub fn with_hook_policy(mut self, policy: HookPolicy) -> Self {
        self.hooks = policy;
        self
    }
}

#[async_trait]
impl Checks for LiveChecks {
    async fn read(&self, key: &ServiceKey, probe: &Probe) -> Reading {
        let (verdict, detail) = match probe {
            Probe::Http(g) => http::read(&self.client, g).await,
            Probe::Prometheus(g) => prometheus::read(&self.client, g).await,
            Probe::CloudWatch(g) => match &self.alarms {
                Some(alarms) => alarms.read(g).await,
                None => (
                    Verdict::Fail,
                    "this controller has no CloudWatch client".to_string(),
                ),
            },
        };
        if verdict != Verdict::Pass {
            tracing::debug!(
                service = %key,
                gate = probe.name(),
                kind = probe.kind(),
                verdict = verdict.as_str(),
                "gate {} read {}: {detail}",
                probe.name(),
                verdict.as_str()
            );
        }
        Reading {
            at: self.clock.now(),
            verdict,
            detail,
        }
    }

    async fn call_hook(
        &self,
        url: &str,
        payload: &HookPayload,
    ) -> Result<Option<(HookAnswer, String)>, CloudError> {
        Ok(hook::call(&self.client, &self.hooks, url, payload).await)
    }
}
