//! Requests from people (promote, abort, retry), written into the record's
//! `control` attribute by the CLI or the API. Each request names the exact
//! rollout (and step) it is meant for, so a stale request never acts on a
//! later rollout, and repeating a request is harmless.

use serde::{Deserialize, Serialize};

pub use super::rollout_id::RolloutId;

/// Promote the rollout past the pause it waits at (`step`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promote {
    pub rollout: RolloutId,
    pub step: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Control {
    pub promote: Option<Promote>,
    /// Roll back this rollout and do not start its revision again.
    pub abort: Option<RolloutId>,
    /// Start this failed rollout's revision again.
    pub retry: Option<RolloutId>,
    /// Verdicts of lifecycle hooks, by hook point.
    pub hooks: super::hook::HookVerdicts,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_ids_round_trip() {
        let id: RolloutId = "0123abcd#2".parse().unwrap();
        assert_eq!(id.attempt, 2);
        assert_eq!(id.to_string(), "0123abcd#2");
        assert!("0123abcd".parse::<RolloutId>().is_err());
        assert!("#1".parse::<RolloutId>().is_err());
        assert!("abc#x".parse::<RolloutId>().is_err());
    }
}
