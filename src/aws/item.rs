//! DynamoDB items <-> stored records.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use crate::cloud::StoredRecord;
use crate::rollout::schema::{NoJsonForm, PathPart, Unreadable};
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
    let (body, unreadable) = body_of(item);
    Ok(StoredRecord {
        key,
        body,
        status,
        status_version,
        written_at,
        unreadable,
    })
}

/// The writer's attributes as JSON, each kept as the type it was written
/// in: S, N, BOOL, NULL, L and M have a JSON form. Binaries and sets (B, BS,
/// NS, SS) have none, and no field of a record takes one (a set has no
/// order), so they become null and are listed at their path for the spec to
/// name with their real type. Types: <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_AttributeValue.html>
fn body_of(item: Item) -> (Value, Vec<Unreadable>) {
    let mut unreadable = Vec::new();
    let mut path = Vec::new();
    let body = Value::Object(fields_of(item, &mut path, &mut unreadable));
    (body, unreadable)
}

fn fields_of(
    map: HashMap<String, AttributeValue>,
    path: &mut Vec<PathPart>,
    unreadable: &mut Vec<Unreadable>,
) -> serde_json::Map<String, Value> {
    // In name order: the SDK's map has none, and the same record must give
    // the same message on every read.
    let mut fields: Vec<_> = map.into_iter().collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields
        .into_iter()
        .map(|(name, v)| {
            path.push(PathPart::Field(name.clone()));
            let json = json_of(v, path, unreadable);
            path.pop();
            (name, json)
        })
        .collect()
}

fn json_of(v: AttributeValue, path: &mut Vec<PathPart>, unreadable: &mut Vec<Unreadable>) -> Value {
    let mut without_json = |written_as| {
        unreadable.push(Unreadable {
            path: path.clone(),
            written_as,
        });
        Value::Null
    };
    match v {
        AttributeValue::S(s) => Value::String(s),
        AttributeValue::N(n) => match number_of(&n) {
            Some(n) => Value::Number(n),
            None => without_json(NoJsonForm::Unreadable),
        },
        AttributeValue::Bool(b) => Value::Bool(b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    path.push(PathPart::Index(i));
                    let json = json_of(v, path, unreadable);
                    path.pop();
                    json
                })
                .collect(),
        ),
        AttributeValue::M(map) => Value::Object(fields_of(map, path, unreadable)),
        AttributeValue::B(_) => without_json(NoJsonForm::Binary),
        AttributeValue::Bs(_) => without_json(NoJsonForm::BinarySet),
        AttributeValue::Ns(_) => without_json(NoJsonForm::NumberSet),
        AttributeValue::Ss(_) => without_json(NoJsonForm::StringSet),
        _ => without_json(NoJsonForm::Unreadable),
    }
}

/// A DynamoDB number (text, up to 38 digits) as JSON: whole numbers exactly
/// where they fit 64 bits, anything else as the nearest float.
fn number_of(n: &str) -> Option<serde_json::Number> {
    let n = n.trim();
    if let Ok(u) = n.parse::<u64>() {
        return Some(u.into());
    }
    if let Ok(i) = n.parse::<i64>() {
        return Some(i.into());
    }
    n.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
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

    /// Statuses the release before the reshaped status wrote (recorded in
    /// the core's tests) survive the DynamoDB attribute form both ways.
    #[test]
    fn recorded_statuses_round_trip_through_dynamodb_attributes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("crates/cutover-core/tests/recorded_statuses");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("the recorded statuses") {
            let path = entry.expect("an entry").path();
            let text = std::fs::read_to_string(&path).expect("a file");
            let status: Status = serde_json::from_str(&text).expect("decodes from JSON");
            let value = status_value(&status).expect("encodes as an attribute");
            let back: Status =
                serde_dynamo::from_attribute_value(value).expect("decodes from the attribute");
            assert_eq!(back, status, "{}", path.display());
            assert_eq!(back.phase(), status.phase(), "{}", path.display());
            seen += 1;
        }
        assert!(seen >= 16, "{seen}");
    }

    #[test]
    fn status_and_version_are_split_from_the_body() {
        let status = Status {
            weights: Some((90, 10)),
            message: "shifting".into(),
            ..Status::default()
        }
        .with_phase(Phase::Shifting);
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
    fn values_without_a_json_form_are_listed_at_their_path() {
        let record = record_from_item(item(&[
            ("service", s("prod/web")),
            ("blob", AttributeValue::B(vec![1u8, 2].into())),
            (
                "target_groups",
                AttributeValue::L(vec![s("a"), AttributeValue::Ss(vec!["b".into()])]),
            ),
        ]))
        .unwrap();
        assert_eq!(record.body["service"], "prod/web");
        assert_eq!(record.body["blob"], Value::Null);
        assert_eq!(record.body["target_groups"], json!(["a", null]));
        let mut unreadable = record.unreadable.clone();
        unreadable.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(
            unreadable,
            vec![
                Unreadable {
                    path: vec![PathPart::Field("blob".into())],
                    written_as: NoJsonForm::Binary,
                },
                Unreadable {
                    path: vec![PathPart::Field("target_groups".into()), PathPart::Index(1)],
                    written_as: NoJsonForm::StringSet,
                },
            ]
        );
    }

    const BLUE: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/checkout-blue/73e2d6bc24d8a067";
    const GREEN: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/checkout-green/2453ed029918f21f";

    fn m(pairs: &[(&str, AttributeValue)]) -> AttributeValue {
        AttributeValue::M(item(pairs))
    }

    /// The README's record, as DynamoDB holds it.
    fn readme_item() -> Item {
        item(&[
            ("service", s("prod/checkout")),
            ("task_definition", s("checkout:42")),
            ("container", s("app")),
            ("container_port", n("8080")),
            (
                "production_listener",
                s(
                    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2",
                ),
            ),
            ("target_groups", AttributeValue::L(vec![s(BLUE), s(GREEN)])),
            (
                "strategy",
                s("CodeDeployDefault.ECSCanary10Percent5Minutes"),
            ),
            ("bake", s("15m")),
        ])
    }

    fn spec_of(item: Item) -> Result<crate::rollout::Spec, String> {
        record_from_item(item)
            .expect("a record")
            .spec()
            .map_err(|e| e.to_string())
    }

    /// Every DynamoDB type in every kind of field: the kinds a field takes
    /// are read, every other type is `Invalid` with the type named.
    #[test]
    fn every_dynamodb_type_in_every_kind_of_field() {
        let types: [(&str, AttributeValue, &str); 10] = [
            ("S", s("x"), "is a string (S)"),
            ("N", n("5"), "is a number (N)"),
            ("B", AttributeValue::B(vec![1u8].into()), "is binary (B)"),
            (
                "SS",
                AttributeValue::Ss(vec!["a".into(), "b".into()]),
                "is a string set (SS)",
            ),
            (
                "NS",
                AttributeValue::Ns(vec!["1".into(), "2".into()]),
                "is a number set (NS)",
            ),
            (
                "BS",
                AttributeValue::Bs(vec![vec![1u8].into()]),
                "is a binary set (BS)",
            ),
            ("L", AttributeValue::L(vec![s("x")]), "is a list (L)"),
            ("M", m(&[("x", s("y"))]), "is a map (M)"),
            ("BOOL", AttributeValue::Bool(true), "is a boolean (BOOL)"),
            ("NULL", AttributeValue::Null(true), "is null (NULL)"),
        ];
        // Each kind of field, with a good value for each type it takes.
        let fields: [(&str, Vec<(&str, AttributeValue)>); 8] = [
            ("container", vec![("S", s("web"))]),
            ("container_port", vec![("N", n("8080"))]),
            ("paused", vec![("BOOL", AttributeValue::Bool(true))]),
            (
                "target_groups",
                vec![("L", AttributeValue::L(vec![s(GREEN), s(BLUE)]))],
            ),
            (
                "hooks",
                vec![(
                    "M",
                    m(&[("before_install", m(&[("url", s("https://hooks.example/"))]))]),
                )],
            ),
            ("bake", vec![("S", s("90s")), ("N", n("90"))]),
            (
                "strategy",
                vec![
                    ("S", s("all_at_once")),
                    (
                        "M",
                        m(&[
                            ("type", s("canary")),
                            ("percent", n("10")),
                            ("interval", s("5m")),
                        ]),
                    ),
                ],
            ),
            ("labels", vec![("M", m(&[("team", s("payments"))]))]),
        ];
        for (field, good) in &fields {
            for (ty, sample, found) in &types {
                let mut it = readme_item();
                let accepted = good.iter().find(|(t, _)| t == ty);
                let value = accepted.map_or(sample, |(_, v)| v).clone();
                it.insert(field.to_string(), value);
                let outcome = spec_of(it);
                match accepted {
                    Some(_) => assert!(outcome.is_ok(), "{field} as {ty}: {outcome:?}"),
                    None => {
                        let e = outcome.expect_err(&format!("{field} as {ty} is accepted"));
                        let wanted = format!("field `{field}`: {found}");
                        assert!(
                            e.starts_with(&wanted) && e.contains(": write "),
                            "{field} as {ty}: {e}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_readme_record_reads_as_documented() {
        let spec = spec_of(readme_item()).unwrap();
        assert_eq!(spec.traffic.container_port, 8080);
        assert_eq!(
            spec.traffic.target_groups,
            [BLUE.to_string(), GREEN.to_string()]
        );
        assert_eq!(spec.bake, Duration::from_secs(15 * 60));
    }

    #[test]
    fn numbers_keep_their_value_and_never_show_as_floats() {
        let mut it = readme_item();
        it.insert("container_port".into(), n("8080.0"));
        assert_eq!(spec_of(it).unwrap().traffic.container_port, 8080);
        for written in [
            "70000",
            "100000000000000000000000000000000000000000",
            "1E+41",
            "-5",
        ] {
            let mut it = readme_item();
            it.insert("container_port".into(), n(written));
            assert_eq!(
                spec_of(it).unwrap_err(),
                "field `container_port`: must be from 1 to 65535",
                "{written}"
            );
        }
    }

    /// The README's example message is what such a record gets.
    #[test]
    fn the_readme_example_message_is_the_real_one() {
        let readme = include_str!("../../README.md");
        let example = readme
            .split("names every field at fault")
            .nth(1)
            .and_then(|rest| rest.split("for example\n``").nth(1))
            .and_then(|rest| rest.split("``").next())
            .expect("the README's example message");
        let mut it = readme_item();
        it.insert(
            "target_groups".into(),
            AttributeValue::Ss(vec![BLUE.into(), GREEN.into()]),
        );
        it.insert(
            "strategy".into(),
            m(&[
                ("type", s("canary")),
                ("percent", n("150")),
                ("interval", s("5m")),
            ]),
        );
        assert_eq!(spec_of(it).unwrap_err(), example);
    }

    #[test]
    fn a_binary_string_never_reaches_a_task_set() {
        let mut it = readme_item();
        it.insert(
            "container".into(),
            AttributeValue::B(b"app".to_vec().into()),
        );
        let e = spec_of(it).unwrap_err();
        assert_eq!(e, "field `container`: is binary (B): write a string (S)");
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
