//! Writers' changes to a record: what they may touch, and what must hold for
//! a change to apply. Shared by every store, so the DynamoDB table and the
//! simulated one refuse the same things.

use std::collections::BTreeMap;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{CloudError, ErrorKind, StoredRecord};
use crate::rollout::spec::{KEY_ATTRIBUTE, STATUS_ATTRIBUTE};

/// Set by the store on every spec write, so the controller can measure how
/// long a change took to be noticed.
pub const UPDATED_AT_ATTRIBUTE: &str = "updated_at";
/// The controller's concurrency token for `status`.
pub const STATUS_VERSION_ATTRIBUTE: &str = "status_version";

/// Attribute name to its new value; `None` removes the attribute.
pub type SpecChanges = BTreeMap<String, Option<Value>>;

/// What must be true of the stored record for a spec write to apply.
#[derive(Clone, Debug, PartialEq)]
pub enum Precondition {
    /// The record exists, whatever it holds: for changes that are right
    /// whatever else a concurrent writer did (setting `paused`).
    Exists,
    /// No record exists yet: a new service.
    Absent,
    /// The record exists and its `updated_at` is still what the writer read
    /// (`None`: it had none). A read-modify-write uses this, so a change
    /// someone else made in between is refused rather than overwritten.
    Unchanged { updated_at: Option<Value> },
}

impl Precondition {
    /// `Unchanged` as of `record`, as it was read.
    pub fn unchanged_since(record: &StoredRecord) -> Precondition {
        Precondition::Unchanged {
            updated_at: record.body.get(UPDATED_AT_ATTRIBUTE).cloned(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecWrite {
    /// Applied; `updated_at` is the value the store wrote (RFC 3339), which a
    /// following write can name in `Precondition::Unchanged`.
    Written { updated_at: String },
    /// The precondition did not hold; nothing was written.
    PreconditionFailed,
}

/// Refuses changes to attributes writers do not own: the key, the
/// controller's status and its version, and the store's own `updated_at`.
pub fn check_changes(operation: &'static str, changes: &SpecChanges) -> Result<(), CloudError> {
    for name in changes.keys() {
        let reason = match name.as_str() {
            "" => "an attribute name is empty",
            KEY_ATTRIBUTE => "the key cannot be changed: write a record under the other key",
            STATUS_ATTRIBUTE | STATUS_VERSION_ATTRIBUTE => "is written by the controller only",
            UPDATED_AT_ATTRIBUTE => "is set by the store on every write",
            _ => continue,
        };
        return Err(CloudError::new(
            ErrorKind::Invalid,
            operation,
            format!("attribute `{name}`: {reason}"),
        ));
    }
    Ok(())
}

/// The `updated_at` a write at `now` stores: later than `previous` by at
/// least `tick` (the precision it is stored with), so a writer holding the
/// old value always sees the change, even when two writes fall within one
/// tick or a clock steps back.
pub fn next_updated_at(
    now: SystemTime,
    previous: Option<SystemTime>,
    tick: Duration,
) -> SystemTime {
    match previous {
        Some(p) if p + tick > now => p + tick,
        _ => now,
    }
}

/// An `updated_at` value as written: RFC 3339 (or epoch seconds, as
/// `timestamp_of` in the DynamoDB adapter accepts).
pub fn parse_updated_at(v: &Value) -> Option<SystemTime> {
    match v {
        Value::String(s) => humantime::parse_rfc3339_weak(s.trim()).ok(),
        Value::Number(n) => n
            .as_f64()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .and_then(|n| Duration::try_from_secs_f64(if n >= 1e11 { n / 1000.0 } else { n }).ok())
            .map(|d| UNIX_EPOCH + d),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rollout::ServiceKey;

    fn changes(names: &[&str]) -> SpecChanges {
        names
            .iter()
            .map(|n| (n.to_string(), Some(json!(true))))
            .collect()
    }

    #[test]
    fn owners_attributes_are_refused_by_name() {
        for name in ["status", "status_version", "service", "updated_at", ""] {
            let err = check_changes("op", &changes(&[name])).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Invalid, "{name}");
            assert!(err.message.contains(&format!("`{name}`")), "{err}");
        }
        check_changes("op", &changes(&["paused", "control", "task_definition"])).unwrap();
    }

    #[test]
    fn updated_at_always_moves_forward() {
        let at = |ms| UNIX_EPOCH + Duration::from_millis(ms);
        let tick = Duration::from_millis(1);
        assert_eq!(next_updated_at(at(10), None, tick), at(10));
        assert_eq!(next_updated_at(at(10), Some(at(5)), tick), at(10));
        assert_eq!(next_updated_at(at(10), Some(at(10)), tick), at(11));
        assert_eq!(next_updated_at(at(10), Some(at(30)), tick), at(31));
    }

    #[test]
    fn updated_at_reads_rfc3339_and_epoch_numbers() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_123);
        assert_eq!(parse_updated_at(&json!("2023-11-14T22:15:23Z")), Some(at));
        assert_eq!(parse_updated_at(&json!(1_700_000_123)), Some(at));
        assert_eq!(parse_updated_at(&json!(1_700_000_123_000u64)), Some(at));
        assert_eq!(parse_updated_at(&json!("yesterday")), None);
        assert_eq!(parse_updated_at(&json!(null)), None);
    }

    #[test]
    fn unchanged_since_names_what_was_read() {
        let record = StoredRecord {
            key: ServiceKey::new("prod", "web"),
            body: json!({"service": "prod/web", "updated_at": "2026-01-01T00:00:00Z"}),
            status: None,
            status_version: 0,
            written_at: None,
            unreadable: Vec::new(),
        };
        assert_eq!(
            Precondition::unchanged_since(&record),
            Precondition::Unchanged {
                updated_at: Some(json!("2026-01-01T00:00:00Z"))
            }
        );
    }
}
