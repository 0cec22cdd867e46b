//! The relay items in the lease table (see [`crate::cloud::relay`]).
//!
//! `relay/007` holds, for each stream reader slot that wrote it, `seq_<slot>`
//! (the number of the last change relayed) and `recent_<slot>`: a list of
//! maps `{s: number, k: "<cluster>/<service>", t: epoch ms}` (`t` only when
//! the stream said when the record was written). Each slot's two
//! attributes have one writer, the slot's holder, so the two readers never
//! contend: a log is rewritten whole with the condition that its `seq` is
//! still what this writer last wrote, and read again when it is not.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::error::{code, from_sdk};
use super::item::Item;
use super::leases::{DynamoLeases, LEASE_KEY, feed_lease};
use super::table::{number, whole};
use crate::cloud::lease::{FEED_READERS, FeedSlot, Shard, feed_item, parse_feed_item};
use crate::cloud::relay::{
    Relay, RelayItem, RelayLog, RelayRead, Relayed, parse_relay_item, relay_item,
};
use crate::cloud::{Change, CloudError, ErrorKind};
use crate::time::Timestamp;

/// The most keys one `BatchGetItem` takes.
const KEYS_PER_BATCH: usize = 100;
/// Rounds of `UnprocessedKeys` (throttling) before a poll gives up; the
/// next poll comes about a second later anyway.
const BATCH_ROUNDS: u32 = 4;
/// Writes of one log before a publish gives up: each retry follows a
/// write by someone else (a reader that held the slot before).
const PUBLISH_ATTEMPTS: u32 = 3;

const SEQ: &str = "s";
const KEY: &str = "k";
const AT: &str = "t";

fn seq_attribute(slot: FeedSlot) -> String {
    format!("seq_{slot}")
}

fn recent_attribute(slot: FeedSlot) -> String {
    format!("recent_{slot}")
}

impl DynamoLeases {
    fn written(&self) -> std::sync::MutexGuard<'_, HashMap<(FeedSlot, Shard), RelayLog>> {
        // A map insert or removal; a panic elsewhere leaves it usable.
        self.relayed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `slot`'s log in `shard`'s relay item, as stored now.
    async fn read_log(&self, slot: FeedSlot, shard: Shard) -> Result<RelayLog, CloudError> {
        let item = self.get(&relay_item(shard)).await?;
        Ok(item.map(|item| log_of(&item, slot)).unwrap_or_default())
    }

    /// Stores `log` as `slot`'s log, only if its number is still
    /// `expected`; false when someone else wrote it since.
    async fn write_log(
        &self,
        slot: FeedSlot,
        shard: Shard,
        expected: u64,
        log: &RelayLog,
    ) -> Result<bool, CloudError> {
        const OP: &str = "dynamodb:UpdateItem";
        let condition = if expected == 0 {
            "attribute_not_exists(#seq) OR #seq = :expected"
        } else {
            "#seq = :expected"
        };
        let result = self
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .key(LEASE_KEY, AttributeValue::S(relay_item(shard)))
            .update_expression("SET #seq = :seq, #recent = :recent")
            .condition_expression(condition)
            .expression_attribute_names("#seq", seq_attribute(slot))
            .expression_attribute_names("#recent", recent_attribute(slot))
            .expression_attribute_values(":seq", number(log.seq))
            .expression_attribute_values(":recent", recent_value(log))
            .expression_attribute_values(":expected", number(expected))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if code(&e) == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(from_sdk(OP, e)),
        }
    }

    /// The items named, in one consistent read per hundred, retrying the
    /// keys DynamoDB left unprocessed.
    async fn batch_get(&self, names: &[String]) -> Result<Vec<Item>, CloudError> {
        const OP: &str = "dynamodb:BatchGetItem";
        let keys = names
            .iter()
            .map(|n| HashMap::from([(LEASE_KEY.to_string(), AttributeValue::S(n.clone()))]))
            .collect();
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| CloudError::new(ErrorKind::Invalid, OP, e.to_string()))?;
        let mut items = Vec::new();
        for round in 0..BATCH_ROUNDS {
            let out = self
                .dynamodb
                .batch_get_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(|e| from_sdk(OP, e))?;
            if let Some(mut responses) = out.responses {
                items.extend(responses.remove(&self.table).unwrap_or_default());
            }
            let rest = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .filter(|k| !k.keys().is_empty());
            match rest {
                None => return Ok(items),
                Some(rest) => {
                    pending = rest;
                    // DynamoDB advises backing off before asking again.
                    tokio::time::sleep(Duration::from_millis(50 << round)).await;
                }
            }
        }
        Err(CloudError::new(
            ErrorKind::Throttled,
            OP,
            format!(
                "some relay items of {} were left unprocessed {BATCH_ROUNDS} times",
                self.table
            ),
        ))
    }
}

#[async_trait]
impl Relay for DynamoLeases {
    async fn publish(
        &self,
        slot: FeedSlot,
        shard: Shard,
        changes: &[Change],
    ) -> Result<(), CloudError> {
        if changes.is_empty() {
            return Ok(());
        }
        for _ in 0..PUBLISH_ATTEMPTS {
            let cached = self.written().get(&(slot, shard)).cloned();
            let before = match cached {
                Some(log) => log,
                None => self.read_log(slot, shard).await?,
            };
            let mut after = before.clone();
            after.append(changes);
            match self.write_log(slot, shard, before.seq, &after).await {
                Ok(true) => {
                    self.written().insert((slot, shard), after);
                    return Ok(());
                }
                // Written by someone else since (the slot's previous
                // holder): read it again.
                Ok(false) => {
                    self.written().remove(&(slot, shard));
                }
                // Whether it was written is unknown: read it next time.
                Err(e) => {
                    self.written().remove(&(slot, shard));
                    return Err(e);
                }
            }
        }
        Err(CloudError::new(
            ErrorKind::Transient,
            "dynamodb:UpdateItem",
            format!(
                "the relay log of feed slot {slot} in {} kept changing under this writer",
                relay_item(shard)
            ),
        ))
    }

    async fn poll(&self, shards: &[Shard]) -> Result<RelayRead, CloudError> {
        let mut names: Vec<String> = shards.iter().map(|s| relay_item(*s)).collect();
        names.extend((0..FEED_READERS).map(feed_item));
        let mut read = RelayRead::default();
        for chunk in names.chunks(KEYS_PER_BATCH) {
            for item in self.batch_get(chunk).await? {
                let Some(name) = item.get(LEASE_KEY).and_then(|v| v.as_s().ok()) else {
                    continue;
                };
                if let Some(shard) = parse_relay_item(name) {
                    read.items.push(relay_of(shard, &item));
                } else if let Some(slot) = parse_feed_item(name) {
                    read.feeds.push(feed_lease(slot, &item));
                }
            }
        }
        read.items.sort_by_key(|i| i.shard);
        read.feeds.sort_by_key(|f| f.slot);
        Ok(read)
    }
}

fn recent_value(log: &RelayLog) -> AttributeValue {
    AttributeValue::L(
        log.recent
            .iter()
            .map(|r| {
                let mut entry = HashMap::from([
                    (SEQ.to_string(), number(r.seq)),
                    (KEY.to_string(), AttributeValue::S(r.key.to_string())),
                ]);
                if let Some(at) = r.at {
                    entry.insert(AT.to_string(), AttributeValue::N(at.0.to_string()));
                }
                AttributeValue::M(entry)
            })
            .collect(),
    )
}

/// `slot`'s log in a relay item. An entry that does not decode is left out,
/// which a follower takes for a change it missed (and lists the shard).
fn log_of(item: &Item, slot: FeedSlot) -> RelayLog {
    let recent = item
        .get(&recent_attribute(slot))
        .and_then(|v| v.as_l().ok())
        .map(|entries| entries.iter().filter_map(relayed).collect())
        .unwrap_or_default();
    RelayLog {
        seq: whole(item, &seq_attribute(slot)),
        recent,
    }
}

fn relayed(entry: &AttributeValue) -> Option<Relayed> {
    let fields = entry.as_m().ok()?;
    let seq = fields.get(SEQ)?.as_n().ok()?.parse().ok()?;
    let key = fields.get(KEY)?.as_s().ok()?.parse().ok()?;
    let at = fields
        .get(AT)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .map(Timestamp::from_millis);
    Some(Relayed { seq, key, at })
}

fn relay_of(shard: Shard, item: &Item) -> RelayItem {
    let logs = item
        .keys()
        .filter_map(|name| name.strip_prefix("seq_")?.parse::<FeedSlot>().ok())
        .map(|slot| (slot, log_of(item, slot)))
        .collect();
    RelayItem { shard, logs }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::ServiceKey;

    /// DynamoDB's size of a value, as the developer guide counts it
    /// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
    /// strings their bytes, numbers a byte per two digits plus one, lists
    /// and maps three bytes plus one per element, map names like attribute
    /// names. Numbers are counted at their longest to stay on the safe side.
    fn size(value: &AttributeValue) -> usize {
        match value {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(_) => 21,
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::L(items) => 3 + items.iter().map(|v| 1 + size(v)).sum::<usize>(),
            AttributeValue::M(fields) => {
                3 + fields
                    .iter()
                    .map(|(name, v)| 1 + name.len() + size(v))
                    .sum::<usize>()
            }
            _ => usize::MAX / 4,
        }
    }

    #[test]
    fn a_relay_item_of_two_full_logs_of_the_longest_keys_stays_far_below_400_kb() {
        let longest = ServiceKey::new("c".repeat(255), "s".repeat(255));
        let changes: Vec<Change> = (0..1000)
            .map(|i| Change {
                key: longest.clone(),
                at: Some(Timestamp(i64::MAX - i)),
            })
            .collect();
        let mut log = RelayLog {
            seq: u64::MAX - 2000,
            ..RelayLog::default()
        };
        log.append(&changes);
        let mut item =
            HashMap::from([(LEASE_KEY.to_string(), AttributeValue::S(relay_item(1023)))]);
        for slot in 0..FEED_READERS {
            item.insert(seq_attribute(slot), number(log.seq));
            item.insert(recent_attribute(slot), recent_value(&log));
        }
        let bytes: usize = item.iter().map(|(n, v)| n.len() + size(v)).sum();
        assert!(bytes < 64 * 1024, "{bytes} bytes");
        // And it reads back as written.
        let read = relay_of(1023, &item);
        assert_eq!(read.logs.len(), FEED_READERS as usize);
        assert_eq!(read.logs[&0], log);
    }

    #[test]
    fn an_entry_that_does_not_decode_is_left_out() {
        let mut log = RelayLog::default();
        let key = ServiceKey::new("prod", "web");
        log.append(&[
            Change {
                key: key.clone(),
                at: None,
            },
            Change { key, at: None },
        ]);
        let mut recent = recent_value(&log);
        if let AttributeValue::L(entries) = &mut recent {
            entries[0] = AttributeValue::S("garbage".into());
        }
        let item = HashMap::from([
            (seq_attribute(1), number(log.seq)),
            (recent_attribute(1), recent),
        ]);
        let read = log_of(&item, 1);
        assert_eq!(read.seq, 2);
        assert_eq!(read.recent.len(), 1);
        assert_eq!(read.recent[0].seq, 2);
        assert_eq!(read.recent[0].at, None);
    }
}
