//! Requests from people (promote, abort, retry), written into the record's
//! `control` attribute by the CLI or the API. Each request names the exact
//! rollout (and step) it is meant for, so a stale request never acts on a
//! later rollout, and repeating a request is harmless.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::quote::quote;
use super::revision::Revision;

/// One attempt at rolling out one revision: `<revision>#<attempt>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RolloutId {
    pub revision: Revision,
    pub attempt: u32,
}

impl fmt::Display for RolloutId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.revision.as_str(), self.attempt)
    }
}

impl FromStr for RolloutId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (rev, attempt) = s.split_once('#').ok_or_else(|| {
            format!(
                "{} is not a rollout id of the form <revision>#<attempt>",
                quote(s)
            )
        })?;
        let attempt = attempt
            .parse()
            .map_err(|_| format!("{}: the attempt after '#' must be a whole number", quote(s)))?;
        if rev.is_empty() {
            return Err(format!("{}: the revision before '#' is empty", quote(s)));
        }
        Ok(RolloutId {
            revision: Revision::from_raw(rev),
            attempt,
        })
    }
}

impl Serialize for RolloutId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RolloutId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

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
