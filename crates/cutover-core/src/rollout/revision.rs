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
    /// Digest of a JSON value, keys sorted at every level. serde_json's
    /// maps keep insertion order when any crate in the build enables
    /// `preserve_order`; hashing them as they come would let a dependency
    /// change every service's revision, and so roll the whole fleet.
    pub fn digest(value: &serde_json::Value) -> Revision {
        let hash = Sha256::digest(canonical_json(value));
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

/// The bytes of `value` with every object's keys in sorted order.
pub fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&sorted(value)).unwrap_or_default()
}

fn sorted(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
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

    // sha256 of `{"traffic":{"container":"app"},"version":{"task_definition":"web:7"}}`.
    const PINNED: &str = "90fa8dbce367d54e";

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
    fn digest_ignores_key_order_at_every_level() {
        let mut a = serde_json::Map::new();
        a.insert("z".into(), json!(1));
        a.insert("a".into(), json!({"y": [{"q": 1, "b": 2}], "c": null}));
        let mut b = serde_json::Map::new();
        b.insert("a".into(), json!({"c": null, "y": [{"b": 2, "q": 1}]}));
        b.insert("z".into(), json!(1));
        let (a, b) = (serde_json::Value::Object(a), serde_json::Value::Object(b));
        assert_eq!(Revision::digest(&a), Revision::digest(&b));
        assert_eq!(
            String::from_utf8(canonical_json(&a)).unwrap(),
            r#"{"a":{"c":null,"y":[{"b":2,"q":1}]},"z":1}"#
        );
    }

    /// A revision is stored in every status and every task set's
    /// externalId: if this value changes, every service rolls out again.
    #[test]
    fn digest_is_pinned() {
        let value =
            json!({"version": {"task_definition": "web:7"}, "traffic": {"container": "app"}});
        assert_eq!(Revision::digest(&value).as_str(), PINNED);
    }

    #[test]
    fn external_id_round_trips() {
        let r = Revision::from_raw("0123456789abcdef");
        assert_eq!(Revision::from_external_id(&r.external_id()), Some(r));
        assert_eq!(Revision::from_external_id("someone-else"), None);
        assert_eq!(Revision::from_external_id("cutover:"), None);
    }
}
