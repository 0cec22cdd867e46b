//! DynamoDB items <-> stored records.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use crate::cloud::StoredRecord;
use crate::rollout::spec::{KEY_ATTRIBUTE, STATUS_ATTRIBUTE};
use crate::rollout::{ServiceKey, Status};
use crate::time::Timestamp;

pub type Item = HashMap<String, AttributeValue>;

/// The controller's concurrency token for `status`. It is no part of the
/// writer's record, so it stays out of the body like `status` itself.
pub const VERSION_ATTRIBUTE: &str = "status_version";
/// Optional writer timestamp, used to measure detection latency.
pub const UPDATED_AT_ATTRIBUTE: &str = "updated_at";

/// Why an item is not a record at all.
#[derive(Debug, thiserror::Error)]
pub enum ItemError {
    #[error("the item has no string attribute `{KEY_ATTRIBUTE}`")]
    NoKey,
    #[error(transparent)]
    BadKey(#[from] crate::rollout::key::KeyError),
}

pub fn key_of(item: &Item) -> Result<ServiceKey, ItemError> {
    match item.get(KEY_ATTRIBUTE) {
        Some(AttributeValue::S(s)) => Ok(s.parse()?),
        _ => Err(ItemError::NoKey),
    }
}

pub fn key_value(key: &ServiceKey) -> AttributeValue {
    AttributeValue::S(key.to_string())
}

/// Converts a whole item. A status that no longer decodes is dropped (the
/// controller rebuilds it from the live service) rather than failing the
/// record, so a bad status never hides the owner's spec.
pub fn record_from_item(mut item: Item) -> Result<StoredRecord, ItemError> {
    let key = key_of(&item)?;
    let status = item
        .remove(STATUS_ATTRIBUTE)
        .and_then(|v| match serde_dynamo::from_attribute_value::<_, Status>(v) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(service = %key, error = %e, "the stored status does not decode; ignoring it");
                None
            }
        });
    let status_version = match item.remove(VERSION_ATTRIBUTE) {
        None => 0,
        Some(v) => match v.as_n().ok().and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => {
                // Status writes will conflict until someone removes it; say so.
                tracing::warn!(service = %key, value = ?v, "`{VERSION_ATTRIBUTE}` is not a whole number");
                0
            }
        },
    };
    let written_at = item.get(UPDATED_AT_ATTRIBUTE).and_then(timestamp_of);
    let body = body_of(item);
    Ok(StoredRecord {
        key,
        body,
        status,
        status_version,
        written_at,
    })
}

/// The writer's attributes as JSON. Binary attributes have no JSON form: they
/// become a string that says so, and the spec parser names the field.
fn body_of(item: Item) -> Value {
    match serde_dynamo::from_item::<_, Value>(item.clone()) {
        Ok(v) => v,
        Err(_) => Value::Object(
            item.into_iter()
                .map(|(name, v)| {
                    let json =
                        serde_dynamo::from_attribute_value::<_, Value>(v).unwrap_or_else(|e| {
                            Value::String(format!("<attribute without a JSON form: {e}>"))
                        });
                    (name, json)
                })
                .collect(),
        ),
    }
}

/// An RFC 3339 string, or a number of seconds (or milliseconds, when it is
/// too large to be seconds) since the Unix epoch.
pub fn timestamp_of(v: &AttributeValue) -> Option<Timestamp> {
    match v {
        AttributeValue::S(s) => humantime::parse_rfc3339_weak(s.trim())
            .ok()
            .map(Timestamp::from_system),
        AttributeValue::N(n) => {
            let n: f64 = n.parse().ok()?;
            if !n.is_finite() || n < 0.0 {
                return None;
            }
            // 1e11 seconds is the year 5138; 1e11 milliseconds is 1973.
            let secs = if n >= 1e11 { n / 1000.0 } else { n };
            Duration::try_from_secs_f64(secs)
                .ok()
                .map(|d| Timestamp::from_system(UNIX_EPOCH + d))
        }
        _ => None,
    }
}

pub fn status_value(status: &Status) -> Result<AttributeValue, serde_dynamo::Error> {
    serde_dynamo::to_attribute_value(status)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rollout::Phase;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    fn n(v: &str) -> AttributeValue {
        AttributeValue::N(v.into())
    }

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn status_and_version_are_split_from_the_body() {
        let status = Status {
            phase: Phase::Shifting,
            weights: Some((90, 10)),
            message: "shifting".into(),
            ..Status::default()
        };
        let record = record_from_item(item(&[
            ("service", s("prod/web")),
            ("container_port", n("8080")),
            ("paused", AttributeValue::Bool(false)),
            ("status", status_value(&status).unwrap()),
            ("status_version", n("7")),
        ]))
        .unwrap();
        assert_eq!(record.key, ServiceKey::new("prod", "web"));
        assert_eq!(record.status, Some(status));
        assert_eq!(record.status_version, 7);
        assert_eq!(
            record.body,
            json!({"service": "prod/web", "container_port": 8080, "paused": false})
        );
    }

    #[test]
    fn an_undecodable_status_is_dropped_and_the_spec_kept() {
        let record = record_from_item(item(&[
            ("service", s("prod/web")),
            ("status", s("not a status")),
            ("status_version", n("3")),
        ]))
        .unwrap();
        assert_eq!(record.status, None);
        assert_eq!(record.status_version, 3);
        assert_eq!(record.body, json!({"service": "prod/web"}));
    }

    #[test]
    fn a_record_without_status_starts_at_version_zero() {
        let record = record_from_item(item(&[("service", s("prod/web"))])).unwrap();
        assert_eq!((record.status, record.status_version), (None, 0));
    }

    #[test]
    fn items_without_a_valid_key_are_not_records() {
        assert!(matches!(
            record_from_item(item(&[("task_definition", s("web:1"))])),
            Err(ItemError::NoKey)
        ));
        assert!(matches!(
            record_from_item(item(&[("service", s("no-slash"))])),
            Err(ItemError::BadKey(_))
        ));
    }

    #[test]
    fn binary_attributes_do_not_hide_the_rest_of_the_record() {
        let record = record_from_item(item(&[
            ("service", s("prod/web")),
            ("blob", AttributeValue::B(vec![1u8, 2].into())),
        ]))
        .unwrap();
        assert_eq!(record.body["service"], "prod/web");
        assert!(
            record.body["blob"]
                .as_str()
                .unwrap()
                .starts_with("<attribute")
        );
    }

    #[test]
    fn written_at_reads_rfc3339_and_epoch_seconds_or_millis() {
        let at = Timestamp(1_700_000_123_000);
        assert_eq!(timestamp_of(&s("2023-11-14T22:15:23Z")), Some(at));
        assert_eq!(timestamp_of(&n("1700000123")), Some(at));
        assert_eq!(timestamp_of(&n("1700000123000")), Some(at));
        assert_eq!(
            timestamp_of(&n("1700000123.5")),
            Some(Timestamp(1_700_000_123_500))
        );
        assert_eq!(timestamp_of(&s("yesterday")), None);
        assert_eq!(timestamp_of(&n("-1")), None);
        let record = record_from_item(item(&[
            ("service", s("prod/web")),
            ("updated_at", s("2023-11-14T22:15:23Z")),
        ]))
        .unwrap();
        assert_eq!(record.written_at, Some(at));
        assert_eq!(record.body["updated_at"], "2023-11-14T22:15:23Z");
    }
}
