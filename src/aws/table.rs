//! The DynamoDB helpers the desired-state table, the lease table and the
//! change feed's relay share: creating a keyed table, the condition of a
//! status write, and reading and writing number and string attributes.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, StreamSpecification, TableStatus,
};

use super::error::{code, from_sdk};
use super::item::Item;
use crate::cloud::{CloudError, ErrorKind};

/// How long `create_table` waits for a new table to become usable.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);
const TABLE_POLL: Duration = Duration::from_secs(1);

/// The condition of a status write: the record still exists and its status
/// is at `expected`. A record that never had a status has no version
/// attribute; a version of 0 is accepted as the same thing.
pub(super) fn status_condition(expected: u64) -> String {
    let version_matches = if expected == 0 {
        "(attribute_not_exists(#version) OR #version = :expected)"
    } else {
        "#version = :expected"
    };
    format!("attribute_exists(#key) AND {version_matches}")
}

/// Creates the on-demand table `name` keyed by the string `key`, with
/// `stream` if given, and waits until it is active. Returns whether it was
/// created (false: it existed, with the right key) and its stream's view
/// type.
pub(super) async fn create_keyed_table(
    dynamodb: &Client,
    name: &str,
    key: &str,
    stream: Option<StreamSpecification>,
) -> Result<(bool, Option<String>), CloudError> {
    const OP: &str = "dynamodb:CreateTable";
    let build = |e: aws_sdk_dynamodb::error::BuildError| {
        CloudError::new(ErrorKind::Invalid, OP, e.to_string())
    };
    let created = dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build)?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(key)
                .key_type(KeyType::Hash)
                .build()
                .map_err(build)?,
        )
        .set_stream_specification(stream)
        .send()
        .await;
    let created = match created {
        Ok(_) => true,
        Err(e) if code(&e) == Some("ResourceInUseException") => false,
        Err(e) => return Err(from_sdk(OP, e)),
    };
    let stream_view = wait_until_active(dynamodb, name, key).await?;
    Ok((created, stream_view))
}

/// Waits until `name` is active and has the partition key `key` and no sort
/// key; returns its stream's view type, when a stream is enabled.
pub(super) async fn wait_until_active(
    dynamodb: &Client,
    name: &str,
    key: &str,
) -> Result<Option<String>, CloudError> {
    const OP: &str = "dynamodb:DescribeTable";
    let deadline = tokio::time::Instant::now() + TABLE_ACTIVE_TIMEOUT;
    loop {
        let out = dynamodb
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| from_sdk(OP, e))?;
        let Some(table) = out.table else {
            return Err(CloudError::not_found(OP, format!("table {name}")));
        };
        let key_ok = matches!(
            table.key_schema(),
            [k] if k.attribute_name() == key && *k.key_type() == KeyType::Hash
        );
        if !key_ok {
            return Err(CloudError::new(
                ErrorKind::Invalid,
                OP,
                format!(
                    "table {name} exists with another key: cutover needs a partition key `{key}` and no sort key"
                ),
            ));
        }
        if table.table_status() == Some(&TableStatus::Active) {
            let view = table
                .stream_specification()
                .filter(|s| s.stream_enabled())
                .and_then(|s| s.stream_view_type())
                .map(|v| v.as_str().to_string());
            return Ok(view);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CloudError::new(
                ErrorKind::Transient,
                OP,
                format!("table {name} is not active after {TABLE_ACTIVE_TIMEOUT:?}"),
            ));
        }
        tokio::time::sleep(TABLE_POLL).await;
    }
}

pub(super) fn number(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

pub(super) fn string(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

/// A number attribute, or 0 when it is missing or not a whole number: a
/// lease item someone edited by hand then looks fresh, never held twice.
pub(super) fn whole(item: &Item, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
