//! The desired-state table in DynamoDB.
//!
//! Teams own every attribute of a record except `status` and
//! `status_version`, which the controller owns. Status writes are conditional
//! updates of those two attributes only, so a team's concurrent write to the
//! spec is never lost and two controllers never overwrite each other.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, StreamSpecification, StreamViewType};
use tokio::sync::mpsc;

use super::calls::{ApiCalls, dynamodb_client, dynamodbstreams_client};
use super::error::{code, from_sdk};
use super::item::{ItemError, VERSION_ATTRIBUTE, key_value, record_from_item, status_value};
use super::leases::DynamoLeases;
use super::streams::Feed;
use super::table::{create_keyed_table, status_condition};
use super::unkeyed::{fleet_item_from, says_item_too_large, unkeyed_from_item};
use crate::cloud::scopes::Scopes;
use crate::cloud::write::{UPDATED_AT_ATTRIBUTE, check_changes, next_updated_at, parse_updated_at};
use crate::cloud::{
    Change, CloudError, DesiredStore, ErrorKind, Fence, FleetItem, Listing, Positioned,
    Precondition, SpecChanges, SpecWrite, StatusWrite, StoredRecord,
};
use crate::rollout::spec::{KEY_ATTRIBUTE, STATUS_ATTRIBUTE};
use crate::rollout::{ServiceKey, Status};

#[derive(Clone, Debug)]
pub struct DynamoStore {
    dynamodb: Client,
    streams: aws_sdk_dynamodbstreams::Client,
    table: String,
    poll: Duration,
    /// Where the shard leases that fence status writes live.
    leases: Option<DynamoLeases>,
    /// Told every record read, so the adapters know the accounts and
    /// roles the records name.
    scopes: Option<Arc<Scopes>>,
}

/// What `create_table` found or made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableReady {
    /// False when the table existed already.
    pub created: bool,
    /// The stream's view type, when a stream is enabled. The change feed
    /// needs `NEW_AND_OLD_IMAGES`; without it the controller only resyncs.
    pub stream_view: Option<String>,
}

impl DynamoStore {
    /// AWS's "Requested resource not found" does not say which: name the
    /// table, since a wrong `table` setting is the usual cause, and that
    /// message ends up in `/readyz` and the log.
    fn scan_error(&self, mut e: CloudError) -> CloudError {
        if e.kind == ErrorKind::NotFound {
            e.message = format!(
                "table {} does not exist in this account and region (check `table`; `cutover init-table` creates it): {}",
                self.table, e.message
            );
        }
        e
    }

    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        DynamoStore {
            dynamodb: Client::new(config),
            streams: aws_sdk_dynamodbstreams::Client::new(config),
            table: table.into(),
            poll: Duration::from_millis(500),
            leases: None,
            scopes: None,
        }
    }

    /// Like [`DynamoStore::new`], with every DynamoDB and Streams request
    /// attempt counted in `calls`.
    pub fn counted(config: &SdkConfig, table: impl Into<String>, calls: &ApiCalls) -> Self {
        DynamoStore {
            dynamodb: dynamodb_client(config, calls),
            streams: dynamodbstreams_client(config, calls),
            ..DynamoStore::new(config, table)
        }
    }

    /// Fences status writes with the shard leases in `leases`' table.
    pub fn with_leases(mut self, leases: DynamoLeases) -> Self {
        self.leases = Some(leases);
        self
    }

    /// Tells `scopes` of every record read.
    pub fn with_scopes(mut self, scopes: Arc<Scopes>) -> Self {
        self.scopes = Some(scopes);
        self
    }

    /// How often the change feed asks each shard for records.
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (on-demand billing, key `service`, a stream with
    /// old and new images) and waits until it is active. An existing table
    /// is fine if its key is right.
    pub async fn create_table(&self) -> Result<TableReady, CloudError> {
        let stream = StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::NewAndOldImages)
            .build()
            .map_err(|e| {
                CloudError::new(ErrorKind::Invalid, "dynamodb:CreateTable", e.to_string())
            })?;
        let (created, stream_view) =
            create_keyed_table(&self.dynamodb, &self.table, KEY_ATTRIBUTE, Some(stream)).await?;
        Ok(TableReady {
            created,
            stream_view,
        })
    }
}

impl DynamoStore {
    /// Sets the status of the item under `key`, only if it exists and its
    /// status is at `expected`: never a new item.
    async fn update_status(
        &self,
        key: AttributeValue,
        expected: u64,
        status: &Status,
    ) -> Result<StatusWrite, CloudError> {
        let value = status_value(status).map_err(|e| {
            CloudError::new(
                ErrorKind::Other,
                "dynamodb:UpdateItem",
                format!("encoding the status: {e}"),
            )
        })?;
        self.update_status_value(key, expected, value).await
    }

    async fn update_status_value(
        &self,
        key: AttributeValue,
        expected: u64,
        value: AttributeValue,
    ) -> Result<StatusWrite, CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        let next = expected + 1;
        let result = self
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, key.clone())
            .update_expression("SET #status = :status, #version = :next")
            .condition_expression(status_condition(expected))
            .expression_attribute_names("#key", KEY_ATTRIBUTE)
            .expression_attribute_names("#status", STATUS_ATTRIBUTE)
            .expression_attribute_names("#version", VERSION_ATTRIBUTE)
            .expression_attribute_values(":status", value)
            .expression_attribute_values(":expected", AttributeValue::N(expected.to_string()))
            .expression_attribute_values(":next", AttributeValue::N(next.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(StatusWrite::Written { version: next }),
            Err(e) if code(&e) == Some("ConditionalCheckFailedException") => {
                // The condition does not say which half failed: look.
                Ok(if self.exists(key).await? {
                    StatusWrite::Conflict
                } else {
                    StatusWrite::Gone
                })
            }
            Err(e)
                if says_item_too_large(
                    code(&e),
                    e.as_service_error().and_then(|s| s.message()),
                ) =>
            {
                Ok(StatusWrite::TooLarge)
            }
            Err(e) => Err(from_sdk(OP, e)),
        }
    }

    /// A writer's conditional change to the attributes of the item under
    /// `key` (a record's, or a fleet item's); always sets `updated_at`.
    async fn write_attributes(
        &self,
        key: AttributeValue,
        changes: &SpecChanges,
        precondition: Precondition,
    ) -> Result<SpecWrite, CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        check_changes(OP, changes)?;
        let previous = match &precondition {
            Precondition::Unchanged {
                updated_at: Some(v),
            } => parse_updated_at(v),
            _ => None,
        };
        let at = next_updated_at(SystemTime::now(), previous, Duration::from_micros(1));
        let updated_at = humantime::format_rfc3339_micros(at).to_string();
        let mut update = self
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, key.clone())
            .expression_attribute_names("#key", KEY_ATTRIBUTE)
            .expression_attribute_names("#updated", UPDATED_AT_ATTRIBUTE)
            .expression_attribute_values(":updated", AttributeValue::S(updated_at.clone()));
        let mut sets = vec!["#updated = :updated".to_string()];
        let mut removes = Vec::new();
        // Placeholders for every name: attribute names are the writer's
        // choice and may be DynamoDB reserved words.
        for (i, (name, value)) in changes.iter().enumerate() {
            let placeholder = format!("#a{i}");
            update = update.expression_attribute_names(&placeholder, name);
            match value {
                Some(v) => {
                    let value_name = format!(":v{i}");
                    let v = serde_dynamo::to_attribute_value(v).map_err(|e| {
                        CloudError::new(ErrorKind::Invalid, OP, format!("attribute `{name}`: {e}"))
                    })?;
                    update = update.expression_attribute_values(&value_name, v);
                    sets.push(format!("{placeholder} = {value_name}"));
                }
                None => removes.push(placeholder),
            }
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let condition = match &precondition {
            Precondition::Exists => "attribute_exists(#key)",
            Precondition::Absent => "attribute_not_exists(#key)",
            Precondition::Unchanged { updated_at: None } => {
                "attribute_exists(#key) AND attribute_not_exists(#updated)"
            }
            Precondition::Unchanged {
                updated_at: Some(expected),
            } => {
                let expected = serde_dynamo::to_attribute_value(expected).map_err(|e| {
                    CloudError::new(ErrorKind::Invalid, OP, format!("`updated_at`: {e}"))
                })?;
                update = update.expression_attribute_values(":expected", expected);
                "attribute_exists(#key) AND #updated = :expected"
            }
        };
        let result = update
            .update_expression(expression)
            .condition_expression(condition)
            .send()
            .await;
        match result {
            Ok(_) => Ok(SpecWrite::Written { updated_at }),
            Err(e) if code(&e) == Some("ConditionalCheckFailedException") => {
                // The SDK retries a write whose reply was lost; the retry
                // then fails the condition against our own first attempt.
                // Our `updated_at` in the item means the write happened.
                let ours = self.updated_at(key).await?.as_deref() == Some(updated_at.as_str());
                Ok(if ours {
                    SpecWrite::Written { updated_at }
                } else {
                    SpecWrite::PreconditionFailed
                })
            }
            Err(e) => Err(from_sdk(OP, e)),
        }
    }

    /// The `updated_at` of the item under `key`, read consistently.
    async fn updated_at(&self, key: AttributeValue) -> Result<Option<String>, CloudError> {
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, key)
            .consistent_read(true)
            .projection_expression("#updated")
            .expression_attribute_names("#updated", UPDATED_AT_ATTRIBUTE)
            .send()
            .await
            .map_err(|e| from_sdk("dynamodb:GetItem", e))?;
        Ok(out
            .item
            .and_then(|mut i| i.remove(UPDATED_AT_ATTRIBUTE))
            .and_then(|v| v.as_s().ok().cloned()))
    }

    /// Whether an item is stored under `key` (a consistent read of the key alone).
    pub(super) async fn exists(&self, key: AttributeValue) -> Result<bool, CloudError> {
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, key)
            .consistent_read(true)
            .projection_expression("#key")
            .expression_attribute_names("#key", KEY_ATTRIBUTE)
            .send()
            .await
            .map_err(|e| from_sdk("dynamodb:GetItem", e))?;
        Ok(out.item.is_some())
    }
}

#[async_trait]
impl DesiredStore for DynamoStore {
    async fn list(&self) -> Result<Vec<StoredRecord>, CloudError> {
        Ok(self.scan().await?.records)
    }

    async fn scan(&self) -> Result<Listing, CloudError> {
        let mut pages = self
            .dynamodb
            .scan()
            .table_name(&self.table)
            .into_paginator()
            .send();
        let mut listing = Listing::default();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.scan_error(from_sdk("dynamodb:Scan", e)))?;
            for item in page.items.unwrap_or_default() {
                match record_from_item(item.clone()) {
                    Ok(r) => listing.records.push(r),
                    // The controller answers these in their status, and
                    // warns once for each; not here, on every scan.
                    Err(ItemError::BadKey(_)) => listing.unkeyed.extend(unkeyed_from_item(item)),
                    Err(e) => {
                        tracing::debug!(table = %self.table, error = %e, "skipping an item")
                    }
                }
            }
        }
        if let Some(scopes) = &self.scopes {
            scopes.learn_all(&listing.records);
        }
        Ok(listing)
    }

    async fn get(&self, key: &ServiceKey) -> Result<Option<StoredRecord>, CloudError> {
        const OP: &str = "dynamodb:GetItem";
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, key_value(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| from_sdk(OP, e))?;
        let record = match out.item {
            None => None,
            Some(item) => Some(
                record_from_item(item)
                    .map_err(|e| CloudError::new(ErrorKind::Invalid, OP, format!("{key}: {e}")))?,
            ),
        };
        if let Some(scopes) = &self.scopes {
            match &record {
                Some(record) => scopes.learn(record),
                None => scopes.forget(key),
            }
        }
        Ok(record)
    }

    async fn write_status(
        &self,
        key: &ServiceKey,
        expected: u64,
        status: &Status,
    ) -> Result<StatusWrite, CloudError> {
        self.update_status(key_value(key), expected, status).await
    }

    async fn write_unkeyed_status(
        &self,
        given: &str,
        expected: u64,
        status: &Status,
    ) -> Result<StatusWrite, CloudError> {
        self.update_status(AttributeValue::S(given.to_string()), expected, status)
            .await
    }

    async fn write_spec(
        &self,
        key: &ServiceKey,
        changes: &SpecChanges,
        precondition: Precondition,
    ) -> Result<SpecWrite, CloudError> {
        self.write_attributes(key_value(key), changes, precondition)
            .await
    }

    async fn get_item(&self, name: &str) -> Result<Option<FleetItem>, CloudError> {
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, AttributeValue::S(name.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| from_sdk("dynamodb:GetItem", e))?;
        Ok(out.item.map(|item| fleet_item_from(name, item)))
    }

    async fn write_item(
        &self,
        name: &str,
        changes: &SpecChanges,
        precondition: Precondition,
    ) -> Result<SpecWrite, CloudError> {
        self.write_attributes(AttributeValue::S(name.to_string()), changes, precondition)
            .await
    }

    async fn delete_item(
        &self,
        name: &str,
        precondition: Precondition,
    ) -> Result<SpecWrite, CloudError> {
        const OP: &str = "dynamodb:DeleteItem";
        let mut delete = self
            .dynamodb
            .delete_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, AttributeValue::S(name.to_string()));
        match &precondition {
            Precondition::Exists => {}
            Precondition::Absent => return Ok(SpecWrite::PreconditionFailed),
            Precondition::Unchanged { updated_at: None } => {
                delete = delete
                    .condition_expression("attribute_not_exists(#updated)")
                    .expression_attribute_names("#updated", UPDATED_AT_ATTRIBUTE);
            }
            Precondition::Unchanged {
                updated_at: Some(expected),
            } => {
                let expected = serde_dynamo::to_attribute_value(expected).map_err(|e| {
                    CloudError::new(ErrorKind::Invalid, OP, format!("`updated_at`: {e}"))
                })?;
                delete = delete
                    .condition_expression("#updated = :expected")
                    .expression_attribute_names("#updated", UPDATED_AT_ATTRIBUTE)
                    .expression_attribute_values(":expected", expected);
            }
        }
        match delete.send().await {
            Ok(_) => Ok(SpecWrite::Written {
                updated_at: String::new(),
            }),
            Err(e) if code(&e) == Some("ConditionalCheckFailedException") => {
                Ok(SpecWrite::PreconditionFailed)
            }
            Err(e) => Err(from_sdk(OP, e)),
        }
    }

    async fn write_item_status(
        &self,
        name: &str,
        expected: u64,
        status: &serde_json::Value,
    ) -> Result<StatusWrite, CloudError> {
        let value = serde_dynamo::to_attribute_value(status).map_err(|e| {
            CloudError::new(
                ErrorKind::Other,
                "dynamodb:UpdateItem",
                format!("encoding the status: {e}"),
            )
        })?;
        self.update_status_value(AttributeValue::S(name.to_string()), expected, value)
            .await
    }

    async fn write_status_fenced(
        &self,
        key: &ServiceKey,
        expected: u64,
        status: &Status,
        fence: &Fence,
    ) -> Result<StatusWrite, CloudError> {
        let Some(leases) = &self.leases else {
            return Err(CloudError::new(
                ErrorKind::Invalid,
                "dynamodb:TransactWriteItems",
                format!("no lease table to fence the status of {key} with"),
            ));
        };
        let table = &self.table;
        super::fenced::write_status(
            &self.dynamodb,
            table,
            leases,
            self,
            key,
            expected,
            status,
            fence,
        )
        .await
    }

    async fn watch(
        &self,
        changes: mpsc::Sender<Change>,
        positioned: Positioned,
    ) -> Result<(), CloudError> {
        Feed::new(&self.dynamodb, &self.streams, &self.table, self.poll)
            .run(changes, positioned)
            .await
    }
}
