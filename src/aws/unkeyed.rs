//! Items of the records table that are not records, and writes DynamoDB
//! refuses for the size of the item.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use super::item::{Item, VERSION_ATTRIBUTE};
use crate::cloud::{FleetItem, UnkeyedRecord};
use crate::rollout::ServiceKey;
use crate::rollout::Status;
use crate::rollout::spec::{KEY_ATTRIBUTE, STATUS_ATTRIBUTE};
use crate::rollout::unkeyed::quote_key;

/// The item as an [`UnkeyedRecord`], when its `service` attribute is a
/// string but not a `<cluster>/<service>` key. `None` for a record, and
/// for an item without a string `service` (the table's key schema allows
/// none).
pub fn unkeyed_from_item(mut item: Item) -> Option<UnkeyedRecord> {
    let given = match item.get(KEY_ATTRIBUTE) {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => return None,
    };
    let error = given.parse::<ServiceKey>().err()?;
    let status = item.remove(STATUS_ATTRIBUTE).and_then(|v| {
        serde_dynamo::from_attribute_value::<_, Status>(v)
            .inspect_err(|e| {
                tracing::debug!(service = %quote_key(&given), error = %e, "the stored status does not decode; ignoring it");
            })
            .ok()
    });
    let status_version = item
        .remove(VERSION_ATTRIBUTE)
        .and_then(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    // Only compared, to tell a rewritten item from the one already
    // answered; an attribute without a JSON form (binary) is compared by
    // its debug form, attribute by attribute so their order cannot matter.
    let body = serde_dynamo::from_item::<_, Value>(item.clone()).unwrap_or_else(|_| {
        Value::Object(
            item.iter()
                .map(|(name, v)| {
                    let json = serde_dynamo::from_attribute_value::<_, Value>(v.clone())
                        .unwrap_or_else(|_| Value::String(format!("{v:?}")));
                    (name.clone(), json)
                })
                .collect(),
        )
    });
    Some(UnkeyedRecord {
        given,
        error,
        body,
        status,
        status_version,
    })
}

/// A fleet item (the halt, a release) as read: every attribute but the
/// status as JSON, an attribute without a JSON form (binary, a set) as its
/// debug text, so whoever judges the item can say which one is wrong.
pub fn fleet_item_from(name: &str, mut item: Item) -> FleetItem {
    let status = item
        .remove(STATUS_ATTRIBUTE)
        .and_then(|v| serde_dynamo::from_attribute_value::<_, Value>(v).ok());
    let status_version = item
        .remove(VERSION_ATTRIBUTE)
        .and_then(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let body = Value::Object(
        item.iter()
            .map(|(name, v)| {
                let json = serde_dynamo::from_attribute_value::<_, Value>(v.clone())
                    .unwrap_or_else(|_| Value::String(format!("{v:?}")));
                (name.clone(), json)
            })
            .collect(),
    );
    FleetItem {
        name: name.to_string(),
        body,
        status,
        status_version,
    }
}

/// Whether DynamoDB refused a write because the item would pass 400 KB:
/// a `ValidationException` "Item size has exceeded the maximum allowed
/// size" (or "Item size to update …" for UpdateItem), and inside
/// `TransactWriteItems` a cancellation reason `ValidationError` with that
/// message (TransactionCanceledException:
/// https://docs.aws.amazon.com/botocore/latest/reference/services/dynamodb/client/exceptions/TransactionCanceledException.html;
/// item size: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html).
pub fn says_item_too_large(code: Option<&str>, message: Option<&str>) -> bool {
    let message = message.unwrap_or_default().to_ascii_lowercase();
    matches!(code, Some("ValidationException" | "ValidationError"))
        && message.contains("item size")
        && message.contains("exceeded")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    #[test]
    fn an_item_with_a_bad_key_is_unkeyed_with_its_status() {
        let status = Status {
            message: "before".into(),
            ..Status::default()
        };
        let item: Item = [
            ("service".to_string(), s("prod")),
            ("task_definition".to_string(), s("web:2")),
            (
                "status".to_string(),
                serde_dynamo::to_attribute_value(&status).unwrap(),
            ),
            ("status_version".to_string(), AttributeValue::N("4".into())),
        ]
        .into_iter()
        .collect();
        let u = unkeyed_from_item(item).unwrap();
        assert_eq!(u.given, "prod");
        assert!(u.error.why.contains("no '/'"), "{}", u.error);
        assert_eq!(u.status, Some(status));
        assert_eq!(u.status_version, 4);
        assert_eq!(
            u.body,
            serde_json::json!({"service": "prod", "task_definition": "web:2"})
        );
    }

    #[test]
    fn a_record_is_not_unkeyed() {
        let item: Item = [("service".to_string(), s("prod/web"))]
            .into_iter()
            .collect();
        assert_eq!(unkeyed_from_item(item), None);
    }

    #[test]
    fn size_refusals_are_told_from_other_validation_errors() {
        for (code, message) in [
            (
                "ValidationException",
                "Item size has exceeded the maximum allowed size",
            ),
            (
                "ValidationException",
                "Item size to update has exceeded the maximum allowed size",
            ),
            (
                "ValidationError",
                "Item size has exceeded the maximum allowed size",
            ),
        ] {
            assert!(says_item_too_large(Some(code), Some(message)), "{message}");
        }
        assert!(!says_item_too_large(
            Some("ValidationException"),
            Some("One or more parameter values were invalid")
        ));
        assert!(!says_item_too_large(None, Some("Item size has exceeded")));
    }
}
