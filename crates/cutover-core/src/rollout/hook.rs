//! Lifecycle hooks at CodeDeploy's five points. A hook is a webhook: the
//! controller calls it once per rollout, and its verdict arrives in the
//! record's `control.hooks` — written by the controller when the hook answers
//! at once, or later through the API by a hook that runs long.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::quote::not_an_http_url;
use super::rollout_id::RolloutId;
use super::strategy::humantime_serde_compat as dur;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookPoint {
    /// Before the candidate task set is created.
    BeforeInstall,
    /// The candidate is ready, before any traffic.
    AfterInstall,
    /// The test route sends the candidate traffic.
    AfterTestTraffic,
    /// Before the first production weight moves.
    BeforeProductionTraffic,
    /// All production traffic is on the candidate, before the old task set goes.
    AfterProductionTraffic,
}

impl HookPoint {
    pub const ALL: [HookPoint; 5] = [
        HookPoint::BeforeInstall,
        HookPoint::AfterInstall,
        HookPoint::AfterTestTraffic,
        HookPoint::BeforeProductionTraffic,
        HookPoint::AfterProductionTraffic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HookPoint::BeforeInstall => "before_install",
            HookPoint::AfterInstall => "after_install",
            HookPoint::AfterTestTraffic => "after_test_traffic",
            HookPoint::BeforeProductionTraffic => "before_production_traffic",
            HookPoint::AfterProductionTraffic => "after_production_traffic",
        }
    }

    pub fn parse(s: &str) -> Option<HookPoint> {
        HookPoint::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(10 * 60)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    /// Receives a JSON POST; answers 200 with `{"verdict": "pass"|"fail"}`,
    /// or 202 and reports later through `POST /v1/services/{cluster}/{service}/hooks/{point}`.
    pub url: String,
    /// How long a verdict may take.
    #[serde(default = "default_timeout", with = "dur")]
    pub timeout: Duration,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hooks {
    pub before_install: Option<Hook>,
    pub after_install: Option<Hook>,
    pub after_test_traffic: Option<Hook>,
    pub before_production_traffic: Option<Hook>,
    pub after_production_traffic: Option<Hook>,
}

impl Hooks {
    pub fn get(&self, point: HookPoint) -> Option<&Hook> {
        match point {
            HookPoint::BeforeInstall => self.before_install.as_ref(),
            HookPoint::AfterInstall => self.after_install.as_ref(),
            HookPoint::AfterTestTraffic => self.after_test_traffic.as_ref(),
            HookPoint::BeforeProductionTraffic => self.before_production_traffic.as_ref(),
            HookPoint::AfterProductionTraffic => self.after_production_traffic.as_ref(),
        }
    }

    pub fn validate(&self) -> Vec<(String, String)> {
        let mut bad = Vec::new();
        for p in HookPoint::ALL {
            if let Some(h) = self.get(p) {
                if !(h.url.starts_with("http://") || h.url.starts_with("https://")) {
                    bad.push((format!("hooks.{p}.url"), not_an_http_url(&h.url)));
                }
                if h.timeout < Duration::from_secs(1) {
                    bad.push((format!("hooks.{p}.timeout"), "must be at least 1s".into()));
                }
            }
        }
        bad
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookAnswer {
    Pass,
    Fail,
}

/// A hook's verdict for one rollout, as stored in `control.hooks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookVerdict {
    pub rollout: RolloutId,
    pub verdict: HookAnswer,
    #[serde(default)]
    pub detail: String,
}

pub type HookVerdicts = BTreeMap<HookPoint, HookVerdict>;

/// `scheme://host[:port]` of a URL, for logs: paths and query strings of
/// webhooks are often the secret, and so is user info before an `@`.
pub fn origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}")
}

/// What a hook receives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HookPayload {
    pub service: String,
    pub hook: HookPoint,
    pub rollout: RolloutId,
    pub revision: String,
    pub phase: String,
    /// Production weights (active, candidate) in percent.
    pub weights: (u32, u32),
    /// Where to report a late verdict.
    pub report_to: String,
}
