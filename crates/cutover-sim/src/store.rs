//! The desired-state table: records written by platform teams, each with a
//! status the controller writes conditionally, and a change feed.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use super::SimCloud;
use super::item_size::{ITEM_LIMIT, item_size};
use super::world::World;
use crate::cloud::write::{
    STATUS_VERSION_ATTRIBUTE, UPDATED_AT_ATTRIBUTE, check_changes, next_updated_at,
    parse_updated_at,
};
use crate::cloud::{
    Change, CloudError, ErrorKind, FleetItem, Listing, Positioned, Precondition, SpecChanges,
    SpecWrite, StatusWrite, StoredRecord, UnkeyedRecord,
};
use crate::rollout::halt::HALT_ITEM;
use crate::rollout::spec::{KEY_ATTRIBUTE, STATUS_ATTRIBUTE};
use crate::rollout::{ServiceKey, Status};
use crate::time::Timestamp;

#[derive(Debug)]
struct Item {
    body: Value,
    /// Kept raw, so a scenario can store a status the controller cannot decode.
    status: Option<Value>,
    status_version: u64,
    written_at: Timestamp,
}

/// How many processes may read the stream at once before DynamoDB Streams
/// throttles them.
pub const STREAM_READERS: usize = 2;

#[derive(Debug, Default)]
struct Feed {
    /// Each change with the time it becomes visible to the reader.
    changes: VecDeque<(Timestamp, Change)>,
    broken: bool,
}

/// The size of `item` stored under `key_text` with `status` at `version`.
fn item_bytes(key_text: &str, body: &Value, status: Option<&Value>, version: u64) -> usize {
    let key = Value::String(key_text.to_string());
    let version = Value::from(version);
    let fields = body.as_object();
    let has_key = fields.is_some_and(|f| f.contains_key(KEY_ATTRIBUTE));
    let attributes = fields
        .into_iter()
        .flatten()
        .filter(|(name, _)| name.as_str() != STATUS_ATTRIBUTE)
        .map(|(name, v)| (name.as_str(), v))
        .chain((!has_key).then_some((KEY_ATTRIBUTE, &key)))
        .chain(status.map(|s| (STATUS_ATTRIBUTE, s)))
        .chain([(STATUS_VERSION_ATTRIBUTE, &version)]);
    item_size(attributes)
}

/// Where an item is: under a service's key, or under a `service` attribute
/// that is not one.
#[derive(Clone, Copy, Debug)]
enum At<'a> {
    Service(&'a ServiceKey),
    Unkeyed(&'a str),
}

impl At<'_> {
    fn text(&self) -> String {
        match self {
            At::Service(k) => k.to_string(),
            At::Unkeyed(given) => given.to_string(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Records {
    items: BTreeMap<ServiceKey, Item>,
    /// Items whose `service` attribute is not `<cluster>/<service>`, by it.
    unkeyed: BTreeMap<String, Item>,
    /// One counter for every version ever handed out, so a replaced item
    /// never reuses a version a controller may still hold.
    last_version: u64,
    feeds: BTreeMap<u64, Feed>,
    next_feed: u64,
    /// The most change feeds ever open at once: readers of the stream.
    pub most_readers: usize,
    /// Change feeds refused because two were open already.
    pub readers_throttled: u64,
    /// Streams keep each key's order, so no change overtakes an earlier one.
    last_visible: Timestamp,
    /// Each record as it was before each of its recent changes, with the
    /// time of the change, for eventually consistent scans (kept only while
    /// scans may be stale, and only as far back as they may be).
    past: BTreeMap<ServiceKey, VecDeque<(Timestamp, Option<StoredRecord>)>>,
}

impl Records {
    fn next_version(&mut self) -> u64 {
        self.last_version += 1;
        self.last_version
    }

    fn announce(&mut self, key: &ServiceKey, at: Timestamp, visible: Timestamp) {
        let visible = visible.max(self.last_visible);
        self.last_visible = visible;
        for feed in self.feeds.values_mut() {
            feed.changes.push_back((
                visible,
                Change {
                    key: key.clone(),
                    at: Some(at),
                },
            ));
        }
    }

    fn stored(key: &ServiceKey, item: &Item) -> StoredRecord {
        StoredRecord {
            key: key.clone(),
            body: item.body.clone(),
            status: item
                .status
                .clone()
                .and_then(|s| serde_json::from_value::<Status>(s).ok()),
            status_version: item.status_version,
            written_at: Some(item.written_at),
            unreadable: Vec::new(),
        }
    }

    pub fn list(&self) -> Vec<StoredRecord> {
        self.items.iter().map(|(k, i)| Self::stored(k, i)).collect()
    }

    pub fn get(&self, key: &ServiceKey) -> Option<StoredRecord> {
        self.items.get(key).map(|i| Self::stored(key, i))
    }

    pub fn listing(&self) -> Listing {
        let unkeyed = self
            .unkeyed
            .iter()
            .filter_map(|(given, item)| {
                let error = given.parse::<ServiceKey>().err()?;
                Some(UnkeyedRecord {
                    given: given.clone(),
                    error,
                    body: item.body.clone(),
                    status: item
                        .status
                        .clone()
                        .and_then(|s| serde_json::from_value::<Status>(s).ok()),
                    status_version: item.status_version,
                })
            })
            .collect();
        Listing {
            records: self.list(),
            unkeyed,
        }
    }

    fn item(&self, at: At<'_>) -> Option<&Item> {
        match at {
            At::Service(k) => self.items.get(k),
            At::Unkeyed(given) => self.unkeyed.get(given),
        }
    }

    fn item_mut(&mut self, at: At<'_>) -> Option<&mut Item> {
        match at {
            At::Service(k) => self.items.get_mut(k),
            At::Unkeyed(given) => self.unkeyed.get_mut(given),
        }
    }
}

/// Splits the status attribute off a whole item.
fn without_status(mut body: Value) -> (Value, Option<Value>) {
    let status = body
        .as_object_mut()
        .and_then(|o| o.remove(STATUS_ATTRIBUTE));
    (body, status)
}

impl World {
    /// When a change made now reaches the feeds' readers.
    fn feed_visible_at(&mut self) -> Timestamp {
        let delay = self.config.feed_delay;
        // No draw without a delay, so scenarios without one keep their seeds.
        if delay == (Duration::ZERO, Duration::ZERO) {
            return self.now;
        }
        self.now + self.draw(delay)
    }

    /// Keeps the record as it is, before a change, for stale scans.
    fn remember(&mut self, key: &ServiceKey) {
        let staleness = self.config.scan_staleness;
        if staleness.is_zero() {
            return;
        }
        let now = self.now;
        let before = self.records.get(key);
        let past = self.records.past.entry(key.clone()).or_default();
        past.push_back((now, before));
        while past
            .front()
            .is_some_and(|(changed, _)| *changed + staleness < now)
        {
            past.pop_front();
        }
    }

    /// A `Scan`: DynamoDB's default, eventually consistent read, which "might
    /// not contain the results from other recently completed write
    /// operations" (ScanRequest ConsistentRead,
    /// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Scan.html,
    /// and https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html).
    /// The guide bounds the lag only as "a short time"; the simulation draws
    /// it per item up to `scan_staleness`, so one scan may mix fresh and old
    /// items, and a deleted record may still be listed.
    pub fn scanned(&mut self) -> Listing {
        let mut listing = self.records.listing();
        let staleness = self.config.scan_staleness;
        if staleness.is_zero() {
            return listing;
        }
        let keys: Vec<ServiceKey> = self
            .records
            .items
            .keys()
            .chain(self.records.past.keys())
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut records = Vec::with_capacity(keys.len());
        for key in keys {
            let lag = self.draw((Duration::ZERO, staleness));
            let seen_at = Timestamp(self.now.0.saturating_sub(lag.as_millis() as i64));
            let as_then = self
                .records
                .past
                .get(&key)
                .and_then(|past| past.iter().find(|(changed, _)| *changed > seen_at))
                .map(|(_, before)| before.clone());
            let record = match as_then {
                Some(before) => before,
                None => self.records.get(&key),
            };
            records.extend(record);
        }
        listing.records = records;
        listing
    }

    pub fn put_spec(&mut self, key: &ServiceKey, body: Value) {
        self.remember(key);
        let (body, _) = without_status(body);
        let now = self.now;
        let records = &mut self.records;
        match records.items.get_mut(key) {
            Some(item) => {
                item.body = body;
                item.written_at = now;
            }
            None => {
                let status_version = records.next_version();
                records.items.insert(
                    key.clone(),
                    Item {
                        body,
                        status: None,
                        status_version,
                        written_at: now,
                    },
                );
            }
        }
        let visible = self.feed_visible_at();
        self.records.announce(key, now, visible);
        self.log(format!("{key}: record spec written"));
    }

    pub fn put_item(&mut self, key: &ServiceKey, body: Value) {
        self.remember(key);
        let (body, status) = without_status(body);
        let now = self.now;
        let status_version = self.records.next_version();
        self.records.items.insert(
            key.clone(),
            Item {
                body,
                status,
                status_version,
                written_at: now,
            },
        );
        let visible = self.feed_visible_at();
        self.records.announce(key, now, visible);
        self.log(format!("{key}: record replaced"));
    }

    /// An item whose `service` attribute is `given`, which is not a
    /// `<cluster>/<service>` key (a valid key is stored as a record).
    pub fn put_unkeyed(&mut self, given: &str, body: Value) {
        if let Ok(key) = given.parse::<ServiceKey>() {
            return self.put_item(&key, body);
        }
        let (mut body, status) = without_status(body);
        if let Some(fields) = body.as_object_mut() {
            fields.insert(KEY_ATTRIBUTE.into(), Value::String(given.to_string()));
        }
        let now = self.now;
        let status_version = self.records.next_version();
        self.records.unkeyed.insert(
            given.to_string(),
            Item {
                body,
                status,
                status_version,
                written_at: now,
            },
        );
        if given == HALT_ITEM {
            self.halted_since.get_or_insert(now);
        }
        self.log(format!(
            "{given:?}: item written under a key that is not a service's"
        ));
    }

    pub fn delete_record(&mut self, key: &ServiceKey) -> bool {
        self.remember(key);
        let now = self.now;
        let existed = self.records.items.remove(key).is_some();
        if existed {
            let visible = self.feed_visible_at();
            self.records.announce(key, now, visible);
            self.log(format!("{key}: record deleted"));
        }
        existed
    }

    /// A writer's conditional change to a record's attributes (an
    /// UpdateItem with a condition); the status is kept.
    pub fn write_spec(
        &mut self,
        key: &ServiceKey,
        changes: &SpecChanges,
        precondition: &Precondition,
    ) -> Result<SpecWrite, CloudError> {
        check_changes("dynamodb:UpdateItem", changes)?;
        let existing = self.records.items.get(key);
        let holds = holds(precondition, existing);
        if !holds {
            self.log(format!("{key}: record write refused by its precondition"));
            return Ok(SpecWrite::PreconditionFailed);
        }
        let previous = existing.map(|item| {
            let stored = item
                .body
                .get(UPDATED_AT_ATTRIBUTE)
                .and_then(parse_updated_at);
            stored.map_or(item.written_at, |s| {
                item.written_at.max(Timestamp::from_system(s))
            })
        });
        // Stored with millisecond precision, so writes move on by at least that.
        let at = Timestamp::from_system(next_updated_at(
            self.now.to_system(),
            previous.map(Timestamp::to_system),
            Duration::from_millis(1),
        ));
        let (mut body, status, version) = match existing {
            Some(item) => (item.body.clone(), item.status.clone(), item.status_version),
            None => (
                serde_json::json!({ KEY_ATTRIBUTE: key.to_string() }),
                None,
                0,
            ),
        };
        if !body.is_object() {
            body = serde_json::json!({ KEY_ATTRIBUTE: key.to_string() });
        }
        apply_changes(&mut body, changes, at);
        if item_bytes(&key.to_string(), &body, status.as_ref(), version) > ITEM_LIMIT {
            self.log(format!(
                "{key}: record write refused: the item would pass 400 KB"
            ));
            return Err(CloudError::new(
                ErrorKind::Invalid,
                "dynamodb:UpdateItem",
                "Item size to update has exceeded the maximum allowed size",
            ));
        }
        let absent = existing.is_none();
        self.remember(key);
        if absent {
            let status_version = self.records.next_version();
            self.records.items.insert(
                key.clone(),
                Item {
                    body: serde_json::json!({ KEY_ATTRIBUTE: key.to_string() }),
                    status: None,
                    status_version,
                    written_at: at,
                },
            );
        }
        let Some(item) = self.records.items.get_mut(key) else {
            return Ok(SpecWrite::PreconditionFailed);
        };
        item.body = body;
        item.written_at = at;
        let visible = self.feed_visible_at();
        self.records.announce(key, at, visible);
        self.log(format!("{key}: record spec changed by a writer"));
        Ok(SpecWrite::Written {
            updated_at: at.to_string(),
        })
    }

    pub fn write_status(
        &mut self,
        key: &ServiceKey,
        expected: u64,
        status: &Status,
    ) -> Result<StatusWrite, CloudError> {
        self.write_status_at(At::Service(key), expected, status)
    }

    /// The status of the item whose `service` attribute is `given`, only if
    /// that item still exists: a status write never makes an item.
    pub fn write_unkeyed_status(
        &mut self,
        given: &str,
        expected: u64,
        status: &Status,
    ) -> Result<StatusWrite, CloudError> {
        match given.parse::<ServiceKey>() {
            Ok(key) => self.write_status(&key, expected, status),
            Err(_) => self.write_status_at(At::Unkeyed(given), expected, status),
        }
    }

    fn write_status_at(
        &mut self,
        at: At<'_>,
        expected: u64,
        status: &Status,
    ) -> Result<StatusWrite, CloudError> {
        let value = serde_json::to_value(status).map_err(|e| {
            CloudError::new(
                ErrorKind::Invalid,
                "dynamodb:UpdateItem",
                format!("status does not encode: {e}"),
            )
        })?;
        let said = match at {
            At::Service(key) => format!(
                "{key}: status {} written: {}",
                status.phase(),
                status.message
            ),
            At::Unkeyed(given) => format!("{given:?}: status {} written", status.phase()),
        };
        self.write_status_value_at(at, expected, value, said)
    }

    /// The status of the fleet item under `name` (a release's), only if it
    /// still exists.
    pub fn write_item_status(
        &mut self,
        name: &str,
        expected: u64,
        status: &Value,
    ) -> Result<StatusWrite, CloudError> {
        self.write_status_value_at(
            At::Unkeyed(name),
            expected,
            status.clone(),
            format!("{name:?}: status written"),
        )
    }

    fn write_status_value_at(
        &mut self,
        at: At<'_>,
        expected: u64,
        value: Value,
        said: String,
    ) -> Result<StatusWrite, CloudError> {
        let label = at.text();
        match self.records.item(at) {
            None => return Ok(StatusWrite::Gone),
            Some(item) if item.status_version != expected => return Ok(StatusWrite::Conflict),
            Some(item) => {
                let size = item_bytes(&label, &item.body, Some(&value), expected + 1);
                if size > ITEM_LIMIT {
                    self.log(format!(
                        "{label:?}: status write refused: the item would be {size} bytes, over 400 KB"
                    ));
                    return Ok(StatusWrite::TooLarge);
                }
            }
        }
        if let At::Service(key) = at {
            self.remember(key);
        }
        let version = self.records.next_version();
        let Some(item) = self.records.item_mut(at) else {
            return Ok(StatusWrite::Gone);
        };
        item.status = Some(value);
        item.status_version = version;
        self.log(said);
        Ok(StatusWrite::Written { version })
    }

    /// The fleet item under `name`, as a consistent read returns it.
    pub fn fleet_item(&self, name: &str) -> Option<FleetItem> {
        let item = self.records.unkeyed.get(name)?;
        Some(FleetItem {
            name: name.to_string(),
            body: item.body.clone(),
            status: item.status.clone(),
            status_version: item.status_version,
        })
    }

    /// A writer's conditional change to a fleet item (an UpdateItem with a
    /// condition), as `write_spec` for records; the status is kept.
    pub fn write_item(
        &mut self,
        name: &str,
        changes: &SpecChanges,
        precondition: &Precondition,
    ) -> Result<SpecWrite, CloudError> {
        check_changes("dynamodb:UpdateItem", changes)?;
        let existing = self.records.unkeyed.get(name);
        let holds = holds(precondition, existing);
        if !holds {
            self.log(format!("{name:?}: item write refused by its precondition"));
            return Ok(SpecWrite::PreconditionFailed);
        }
        let previous = existing.map(|item| item.written_at);
        let at = Timestamp::from_system(next_updated_at(
            self.now.to_system(),
            previous.map(Timestamp::to_system),
            Duration::from_millis(1),
        ));
        let (mut body, status, status_version) = match existing {
            Some(item) => (item.body.clone(), item.status.clone(), item.status_version),
            None => (
                serde_json::json!({ KEY_ATTRIBUTE: name }),
                None,
                self.records.next_version(),
            ),
        };
        apply_changes(&mut body, changes, at);
        self.records.unkeyed.insert(
            name.to_string(),
            Item {
                body,
                status,
                status_version,
                written_at: at,
            },
        );
        if name == HALT_ITEM {
            self.halted_since.get_or_insert(at);
        }
        self.log(format!("{name:?}: item written"));
        Ok(SpecWrite::Written {
            updated_at: at.to_string(),
        })
    }

    /// Removes the fleet item under `name`, if there is one and
    /// `precondition` holds.
    pub fn delete_item(&mut self, name: &str, precondition: &Precondition) -> SpecWrite {
        // A delete never makes an item, so `Absent` never holds.
        let existing = self.records.unkeyed.get(name);
        if matches!(precondition, Precondition::Absent) || !holds(precondition, existing) {
            return SpecWrite::PreconditionFailed;
        }
        if self.records.unkeyed.remove(name).is_some() {
            self.log(format!("{name:?}: item deleted"));
        }
        if name == HALT_ITEM {
            self.halted_since = None;
        }
        SpecWrite::Written {
            updated_at: self.now.to_string(),
        }
    }
}

/// Whether a writer's precondition holds of the item as stored.
fn holds(precondition: &Precondition, existing: Option<&Item>) -> bool {
    match (precondition, existing) {
        (Precondition::Absent, found) => found.is_none(),
        (_, None) => false,
        (Precondition::Exists, Some(_)) => true,
        (Precondition::Unchanged { updated_at }, Some(item)) => {
            item.body.get(UPDATED_AT_ATTRIBUTE) == updated_at.as_ref()
        }
    }
}

/// A writer's changes, applied to a copy of the item's attributes.
fn apply_changes(body: &mut Value, changes: &SpecChanges, at: Timestamp) {
    if let Some(fields) = body.as_object_mut() {
        for (name, value) in changes {
            match value {
                Some(v) => fields.insert(name.clone(), v.clone()),
                None => fields.remove(name),
            };
        }
        fields.insert(UPDATED_AT_ATTRIBUTE.into(), Value::String(at.to_string()));
    }
}

/// Unregisters a feed however `watch` ends, including when its future is dropped.
struct FeedGuard<'a> {
    cloud: &'a SimCloud,
    id: u64,
}

impl Drop for FeedGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut w) = self.cloud.inner.world.lock() {
            w.records.feeds.remove(&self.id);
        }
    }
}

impl SimCloud {
    /// Writes the writer's attributes, keeping the status (an UpdateItem).
    pub fn put_spec(&self, key: &ServiceKey, body: Value) {
        self.world().put_spec(key, body);
        self.inner.changes.notify_waiters();
    }

    /// Replaces the whole item, status included (a PutItem). A `status`
    /// attribute in `body` is stored as the status, decodable or not.
    pub fn put_item(&self, key: &ServiceKey, body: Value) {
        self.world().put_item(key, body);
        self.inner.changes.notify_waiters();
    }

    /// Stores an item whose `service` attribute is `given` (a PutItem), as
    /// a writer that got the key wrong would: `prod`, `a/b/c`, `/web`.
    pub fn put_unkeyed(&self, given: &str, body: Value) {
        self.world().put_unkeyed(given, body);
    }

    /// Deletes an item whose key is not a service's (lifting the halt the
    /// way `aws dynamodb delete-item` would).
    pub fn delete_unkeyed(&self, given: &str) {
        self.world().delete_item(given, &Precondition::Exists);
    }

    /// Deletes a record; returns whether it existed.
    pub fn delete(&self, key: &ServiceKey) -> bool {
        let existed = self.world().delete_record(key);
        self.inner.changes.notify_waiters();
        existed
    }

    /// Ends every open change feed with a transient error, as when a stream
    /// iterator expires; the controller must fall back to resync.
    pub fn break_change_feeds(&self) {
        for feed in self.world().records.feeds.values_mut() {
            feed.broken = true;
        }
        self.inner.changes.notify_waiters();
    }

    /// Change feeds open now: processes reading the stream.
    pub fn stream_readers(&self) -> usize {
        self.world().records.feeds.len()
    }

    /// The most change feeds that were ever open at once.
    pub fn most_stream_readers(&self) -> usize {
        self.world().records.most_readers
    }

    /// Change feeds refused because [`STREAM_READERS`] were open already.
    pub fn stream_readers_throttled(&self) -> u64 {
        self.world().records.readers_throttled
    }

    pub(crate) async fn run_feed(
        &self,
        tx: mpsc::Sender<Change>,
        positioned: Positioned,
    ) -> Result<(), CloudError> {
        let id = {
            let mut w = self.world();
            // The table has one stream, modelled as one stream shard that
            // every feed reads: a third reader is throttled, as DynamoDB
            // Streams throttles more than two processes reading one shard
            // at once (LimitExceededException,
            // https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html,
            // and https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html#Streams.Processing).
            // It is refused before it reads anything; the two already
            // reading keep reading, which is kinder than AWS.
            if w.records.feeds.len() >= STREAM_READERS {
                w.records.readers_throttled += 1;
                let reading = w.records.feeds.len();
                w.log(format!(
                    "a change feed was throttled: {reading} processes read the stream already"
                ));
                drop(w);
                return Err(CloudError::new(
                    ErrorKind::Throttled,
                    "dynamodb:GetRecords",
                    "LimitExceededException: more than 2 processes are reading from the same streams shard at the same time",
                ));
            }
            w.records.next_feed += 1;
            let id = w.records.next_feed;
            w.records.feeds.insert(id, Feed::default());
            w.records.most_readers = w.records.most_readers.max(w.records.feeds.len());
            id
        };
        let _guard = FeedGuard { cloud: self, id };
        // Registered: every write from now on lands in this feed's queue.
        let _ = positioned.send(());
        loop {
            // Registered before draining, so a change made in between still wakes us.
            let notified = self.inner.changes.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (batch, broken, next) = {
                let mut w = self.world();
                let now = w.now;
                match w.records.feeds.get_mut(&id) {
                    Some(feed) => {
                        let mut batch = VecDeque::new();
                        while let Some((visible, _)) = feed.changes.front()
                            && *visible <= now
                        {
                            batch.extend(feed.changes.pop_front().map(|(_, c)| c));
                        }
                        let next = feed.changes.front().map(|(t, _)| *t);
                        (batch, feed.broken, next)
                    }
                    None => (VecDeque::new(), true, None),
                }
            };
            let idle = batch.is_empty();
            for change in batch {
                if tx.send(change).await.is_err() {
                    return Ok(());
                }
            }
            if broken {
                return Err(CloudError::new(
                    ErrorKind::Transient,
                    "dynamodb:GetRecords",
                    "the change stream ended",
                ));
            }
            if idle {
                let clock = self.clock();
                let pending = async {
                    match next {
                        Some(t) => clock.sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = &mut notified => {}
                    _ = pending => {}
                    _ = tx.closed() => return Ok(()),
                }
            }
        }
    }
}
