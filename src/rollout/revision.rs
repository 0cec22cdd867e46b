//! A revision names *what is deployed*: a digest of the record fields that
//! change the running software or its wiring. Writers never maintain a counter;
//! two records that deploy the same thing have the same revision.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Revision(String);

/// The `externalId` prefix that marks a task set as created by cutover.
pub const EXTERNAL_ID_PREFIX: &str = "cutover:";

impl Revision {
    /// Digest of a canonical JSON value (serde_json maps are ordered, so the
    /// encoding is stable across runs and machines).
    pub fn digest(canonical: &serde_json::Value) -> Revision {
        let bytes = serde_json::to_vec(canonical).unwrap_or_default();
        let hash = Sha256::digest(&bytes);
        Revision(hex::encode(&hash[..8]))
    }

    /// For tests and for values read back from storage.
    pub fn from_raw(s: impl Into<String>) -> Revision {
        Revision(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The short form shown to people.
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(8)]
    }

    pub fn external_id(&self) -> String {
        format!("{EXTERNAL_ID_PREFIX}{}", self.0)
    }

    /// The revision a task set was created for, if cutover created it.
    pub fn from_external_id(external_id: &str) -> Option<Revision> {
        external_id
            .strip_prefix(EXTERNAL_ID_PREFIX)
            .filter(|r| !r.is_empty())
            .map(|r| Revision(r.to_string()))
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn digest_is_stable_and_sensitive() {
        let a = Revision::digest(&json!({"task_definition": "web:1"}));
        let b = Revision::digest(&json!({"task_definition": "web:1"}));
        let c = Revision::digest(&json!({"task_definition": "web:2"}));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.as_str().len(), 16);
    }

    #[test]
    fn external_id_round_trips() {
        let r = Revision::from_raw("0123456789abcdef");
        assert_eq!(Revision::from_external_id(&r.external_id()), Some(r));
        assert_eq!(Revision::from_external_id("someone-else"), None);
        assert_eq!(Revision::from_external_id("cutover:"), None);
    }
}
