//! The relay items of the lease table (see [`crate::cloud::relay`]): each
//! call costs a DynamoDB request, with the store's faults and latency.

use async_trait::async_trait;

use super::SimCloud;
use super::faults::ApiGroup;
use crate::cloud::lease::{FeedLease, FeedSlot, Shard};
use crate::cloud::relay::{Relay, RelayItem, RelayRead};
use crate::cloud::{Change, CloudError};

impl SimCloud {
    /// The relay item of `shard`, without cost or faults.
    pub fn relay_item(&self, shard: Shard) -> Option<RelayItem> {
        self.world().leases.relay.get(&shard).cloned()
    }

    /// The feed leases, without cost or faults.
    pub fn feed_leases(&self) -> Vec<FeedLease> {
        self.world().leases.feeds()
    }
}

#[async_trait]
impl Relay for SimCloud {
    async fn publish(
        &self,
        slot: FeedSlot,
        shard: Shard,
        changes: &[Change],
    ) -> Result<(), CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        // Relay items are never part of a transaction and each log has one
        // writer, so the write cannot conflict.
        let verdict = self.call(ApiGroup::Store, OP).await?;
        let mut w = self.world();
        let item = w.leases.relay.entry(shard).or_insert_with(|| RelayItem {
            shard,
            ..RelayItem::default()
        });
        item.logs.entry(slot).or_default().append(changes);
        drop(w);
        self.reply(OP, verdict, Ok(()))
    }

    async fn poll(&self, shards: &[Shard]) -> Result<RelayRead, CloudError> {
        self.call(ApiGroup::Store, "dynamodb:BatchGetItem").await?;
        let w = self.world();
        Ok(RelayRead {
            items: shards
                .iter()
                .filter_map(|s| w.leases.relay.get(s).cloned())
                .collect(),
            feeds: w.leases.feeds(),
        })
    }
}
