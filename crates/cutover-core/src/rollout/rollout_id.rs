//! Names one attempt at rolling out one revision: `<revision>#<attempt>`.
//! Requests, hooks' verdicts and the status all name the rollout they are
//! about by it.

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
