//! Shard leases in their own DynamoDB table, next to the desired-state table.
//!
//! A separate table keeps lease churn (a write per held shard every few
//! seconds) out of the records' stream, which every replica follows, and out
//! of the records' Scan; and writers never see items that are not records.
//! Items are keyed by `lease`: `shard/007` holds `holder`, `token`, `beat`
//! and `shards`; `replica/<id>` holds a heartbeat `beat` and `expires_at`
//! (epoch seconds, for DynamoDB's TTL to clean up after replicas that are
//! gone for good; no decision reads it); `feed/0` and `feed/1` hold
//! `holder`, `token`, `beat`, `opened` and `reading` (see
//! [`crate::cloud::lease::FeedLease`]); `relay/007` holds the relay's logs
//! (see [`super::relay`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveSpecification};

use super::calls::{ApiCalls, dynamodb_client};
use super::error::{code, from_sdk};
use super::item::Item;
use super::table::{number, string, whole};
use crate::cloud::lease::{
    FeedFence, FeedLease, FeedSlot, LeaseView, Member, Shard, ShardLease, feed_item, member_item,
    parse_feed_item, parse_member_item, parse_shard_item, shard_item,
};
use crate::cloud::relay::RelayLog;
use crate::cloud::{CloudError, ErrorKind, Fence, Leases};

/// The relay logs this replica last wrote (see `relay.rs`), by slot and shard: what the next write
/// of each expects to find.
pub(super) type Written = Arc<Mutex<HashMap<(FeedSlot, Shard), RelayLog>>>;

pub const LEASE_KEY: &str = "lease";
const HOLDER: &str = "holder";
const TOKEN: &str = "token";
const BEAT: &str = "beat";
const SHARDS: &str = "shards";
const EXPIRES_AT: &str = "expires_at";
const OPENED: &str = "opened";
const READING: &str = "reading";
/// Heartbeat items of replicas that stopped are deleted by TTL this long
/// after their last beat; only tidiness depends on it.
const MEMBER_RETENTION: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone, Debug)]
pub struct DynamoLeases {
    pub(super) dynamodb: Client,
    pub(super) table: String,
    /// The relay logs this replica last wrote (see [`super::relay`]).
    pub(super) relayed: Written,
}

impl DynamoLeases {
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        DynamoLeases {
            dynamodb: Client::new(config),
            table: table.into(),
            relayed: Written::default(),
        }
    }

    /// Like [`DynamoLeases::new`], with every request attempt counted in
    /// `calls`.
    pub fn counted(config: &SdkConfig, table: impl Into<String>, calls: &ApiCalls) -> Self {
        DynamoLeases {
            dynamodb: dynamodb_client(config, calls),
            relayed: Written::default(),
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the lease table (on-demand, key `lease`, TTL on
    /// `expires_at`); returns false when it existed already.
    pub async fn create_table(&self) -> Result<bool, CloudError> {
        let (created, _) =
            super::table::create_keyed_table(&self.dynamodb, &self.table, LEASE_KEY, None).await?;
        if created {
            let ttl = TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(EXPIRES_AT)
                .build()
                .map_err(|e| {
                    CloudError::new(
                        ErrorKind::Invalid,
                        "dynamodb:UpdateTimeToLive",
                        e.to_string(),
                    )
                })?;
            self.dynamodb
                .update_time_to_live()
                .table_name(&self.table)
                .time_to_live_specification(ttl)
                .send()
                .await
                .map_err(|e| from_sdk("dynamodb:UpdateTimeToLive", e))?;
        }
        Ok(created)
    }

    pub(super) async fn get(&self, name: &str) -> Result<Option<Item>, CloudError> {
        self.dynamodb
            .get_item()
            .table_name(&self.table)
            .key(LEASE_KEY, AttributeValue::S(name.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map(|out| out.item)
            .map_err(|e| from_sdk("dynamodb:GetItem", e))
    }

    /// Takes the lease item `name` for `replica` with the next token and
    /// beat, and sets `also` (attribute, value placeholder, value) with
    /// them; only while the item is as `seen` (token, beat) left it, or
    /// absent when nothing was seen, so two replicas that read the same
    /// lease cannot both take it. The token taken, or `None` when another
    /// replica moved the lease first.
    async fn take(
        &self,
        name: &str,
        replica: &str,
        seen: Option<(u64, u64)>,
        also: (&str, &str, AttributeValue),
    ) -> Result<Option<u64>, CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        let (token, beat) = seen.map_or((1, 1), |(token, beat)| (token + 1, beat + 1));
        let (attribute, placeholder, value) = also;
        let also_name = format!("#{attribute}");
        let mut update = self
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .key(LEASE_KEY, AttributeValue::S(name.to_string()))
            .update_expression(format!(
                "SET #holder = :holder, #token = :token, #beat = :beat, {also_name} = {placeholder}"
            ))
            .expression_attribute_names("#holder", HOLDER)
            .expression_attribute_names("#token", TOKEN)
            .expression_attribute_names("#beat", BEAT)
            .expression_attribute_names(also_name, attribute)
            .expression_attribute_values(":holder", AttributeValue::S(replica.to_string()))
            .expression_attribute_values(":token", number(token))
            .expression_attribute_values(":beat", number(beat))
            .expression_attribute_values(placeholder, value);
        update = match seen {
            None => update
                .condition_expression("attribute_not_exists(#key)")
                .expression_attribute_names("#key", LEASE_KEY),
            Some((seen_token, seen_beat)) => update
                .condition_expression("#token = :seen_token AND #beat = :seen_beat")
                .expression_attribute_values(":seen_token", number(seen_token))
                .expression_attribute_values(":seen_beat", number(seen_beat)),
        };
        match update.send().await {
            Ok(_) => Ok(Some(token)),
            Err(e) if code(&e) == Some("ConditionalCheckFailedException") => {
                // The SDK retries a write whose reply was lost, and the retry
                // fails against our own first attempt: look whose it is.
                let ours = self.get(name).await?.is_some_and(|item| {
                    string(&item, HOLDER).as_deref() == Some(replica)
                        && whole(&item, TOKEN) == token
                        && whole(&item, BEAT) == beat
                });
                Ok(ours.then_some(token))
            }
            Err(e) => Err(from_sdk(OP, e)),
        }
    }

    /// A conditional update of a held lease: the beat moves on, and
    /// `extra` (e.g. `REMOVE holder`) is applied too.
    async fn touch(&self, fence: &Fence, extra: &str) -> Result<bool, CloudError> {
        let update = format!("ADD #beat :one {extra}");
        self.update_held(
            &shard_item(fence.shard),
            &fence.holder,
            fence.token,
            &update,
            &[],
        )
        .await
    }

    /// Applies `update` to the lease item `name`, only while it names
    /// `holder` with `token`; false when it does not. The update may use
    /// `#beat`, `#holder`, `#opened`, `#reading`, `:one`, and `values`.
    async fn update_held(
        &self,
        name: &str,
        holder: &str,
        token: u64,
        update: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<bool, CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        let mut request = self
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .key(LEASE_KEY, AttributeValue::S(name.to_string()))
            .update_expression(update)
            .condition_expression("#holder = :holder AND #token = :token")
            .expression_attribute_names("#holder", HOLDER)
            .expression_attribute_names("#token", TOKEN)
            .expression_attribute_values(":holder", AttributeValue::S(holder.to_string()))
            .expression_attribute_values(":token", number(token));
        // DynamoDB refuses names and values an expression does not use.
        for (placeholder, attribute) in
            [("#beat", BEAT), ("#opened", OPENED), ("#reading", READING)]
        {
            if update.contains(placeholder) {
                request = request.expression_attribute_names(placeholder, attribute);
            }
        }
        if update.contains(":one") {
            request = request.expression_attribute_values(":one", number(1));
        }
        for (placeholder, value) in values {
            request = request.expression_attribute_values(*placeholder, value.clone());
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if code(&e) == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(from_sdk(OP, e)),
        }
    }
}

#[async_trait]
impl Leases for DynamoLeases {
    async fn read(&self) -> Result<LeaseView, CloudError> {
        let mut pages = self
            .dynamodb
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .into_paginator()
            .send();
        let mut view = LeaseView::default();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| from_sdk("dynamodb:Scan", e))?;
            for item in page.items.unwrap_or_default() {
                let name = string(&item, LEASE_KEY).unwrap_or_default();
                if let Some(shard) = parse_shard_item(&name) {
                    view.shards.push(shard_lease(shard, &item));
                } else if let Some(replica) = parse_member_item(&name) {
                    view.members.push(Member {
                        replica: replica.to_string(),
                        beat: whole(&item, BEAT),
                    });
                } else if let Some(slot) = parse_feed_item(&name) {
                    view.feeds.push(feed_lease(slot, &item));
                }
            }
        }
        view.shards.sort_by_key(|l| l.shard);
        view.feeds.sort_by_key(|l| l.slot);
        Ok(view)
    }

    async fn heartbeat(&self, replica: &str) -> Result<(), CloudError> {
        let expires = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| (d + MEMBER_RETENTION).as_secs());
        self.dynamodb
            .update_item()
            .table_name(&self.table)
            .key(LEASE_KEY, AttributeValue::S(member_item(replica)))
            .update_expression("ADD #beat :one SET #expires = :expires")
            .expression_attribute_names("#beat", BEAT)
            .expression_attribute_names("#expires", EXPIRES_AT)
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":expires", number(expires))
            .send()
            .await
            .map(drop)
            .map_err(|e| from_sdk("dynamodb:UpdateItem", e))
    }

    async fn leave(&self, replica: &str) -> Result<(), CloudError> {
        self.dynamodb
            .delete_item()
            .table_name(&self.table)
            .key(LEASE_KEY, AttributeValue::S(member_item(replica)))
            .send()
            .await
            .map(drop)
            .map_err(|e| from_sdk("dynamodb:DeleteItem", e))
    }

    async fn acquire(
        &self,
        shard: Shard,
        shards: u32,
        replica: &str,
        seen: Option<&ShardLease>,
    ) -> Result<Option<Fence>, CloudError> {
        let shards = number(u64::from(shards));
        let seen = seen.map(|s| (s.token, s.beat));
        let token = self
            .take(
                &shard_item(shard),
                replica,
                seen,
                (SHARDS, ":shards", shards),
            )
            .await?;
        Ok(token.map(|token| Fence {
            shard,
            holder: replica.to_string(),
            token,
        }))
    }

    async fn renew(&self, fence: &Fence) -> Result<bool, CloudError> {
        self.touch(fence, "").await
    }

    async fn release(&self, fence: &Fence) -> Result<bool, CloudError> {
        self.touch(fence, "REMOVE #holder").await
    }

    async fn acquire_feed(
        &self,
        slot: FeedSlot,
        replica: &str,
        seen: Option<&FeedLease>,
    ) -> Result<Option<FeedFence>, CloudError> {
        let seen = seen.map(|s| (s.token, s.beat));
        // Not reading until the new holder's feed takes its position.
        let not_reading = (READING, ":false", AttributeValue::Bool(false));
        let token = self
            .take(&feed_item(slot), replica, seen, not_reading)
            .await?;
        Ok(token.map(|token| FeedFence {
            slot,
            holder: replica.to_string(),
            token,
        }))
    }

    async fn renew_feed(&self, fence: &FeedFence) -> Result<bool, CloudError> {
        let name = feed_item(fence.slot);
        self.update_held(&name, &fence.holder, fence.token, "ADD #beat :one", &[])
            .await
    }

    async fn mark_feed(&self, fence: &FeedFence, reading: bool) -> Result<bool, CloudError> {
        let name = feed_item(fence.slot);
        let update = if reading {
            "ADD #opened :one SET #reading = :reading"
        } else {
            "SET #reading = :reading"
        };
        let values = [(":reading", AttributeValue::Bool(reading))];
        self.update_held(&name, &fence.holder, fence.token, update, &values)
            .await
    }

    async fn release_feed(&self, fence: &FeedFence) -> Result<bool, CloudError> {
        let name = feed_item(fence.slot);
        let values = [(":false", AttributeValue::Bool(false))];
        let update = "ADD #beat :one SET #reading = :false REMOVE #holder";
        self.update_held(&name, &fence.holder, fence.token, update, &values)
            .await
    }
}

pub(super) fn feed_lease(slot: FeedSlot, item: &Item) -> FeedLease {
    FeedLease {
        slot,
        holder: string(item, HOLDER),
        token: whole(item, TOKEN),
        beat: whole(item, BEAT),
        opened: whole(item, OPENED),
        reading: item
            .get(READING)
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
    }
}

fn shard_lease(shard: Shard, item: &Item) -> ShardLease {
    ShardLease {
        shard,
        holder: string(item, HOLDER),
        token: whole(item, TOKEN),
        beat: whole(item, BEAT),
        shards: u32::try_from(whole(item, SHARDS)).unwrap_or(0),
    }
}

/// The ConditionCheck of a fenced status write: the lease item still names
/// the writer with its token.
pub fn fence_check(
    table: &str,
    fence: &Fence,
) -> Result<aws_sdk_dynamodb::types::ConditionCheck, aws_sdk_dynamodb::error::BuildError> {
    aws_sdk_dynamodb::types::ConditionCheck::builder()
        .table_name(table)
        .key(LEASE_KEY, AttributeValue::S(shard_item(fence.shard)))
        .condition_expression("#holder = :holder AND #token = :token")
        .expression_attribute_names("#holder", HOLDER)
        .expression_attribute_names("#token", TOKEN)
        .expression_attribute_values(":holder", AttributeValue::S(fence.holder.clone()))
        .expression_attribute_values(":token", number(fence.token))
        .build()
}

/// Whether the lease item still names `fence`'s holder and token.
pub async fn still_held(leases: &DynamoLeases, fence: &Fence) -> Result<bool, CloudError> {
    let item = leases.get(&shard_item(fence.shard)).await?;
    Ok(item.is_some_and(|item| {
        let l = shard_lease(fence.shard, &item);
        l.holder.as_deref() == Some(fence.holder.as_str()) && l.token == fence.token
    }))
}
