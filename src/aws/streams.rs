//! The change feed: the table's DynamoDB stream, read shard by shard.
//!
//! Only the fact that a key changed matters (the controller re-reads the
//! record), so records are not ordered across shards, and a gap after an
//! expired iterator is tolerable: the periodic resync covers it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodbstreams::Client as StreamsClient;
use aws_sdk_dynamodbstreams::types::{
    AttributeValue, OperationType, Record, ShardIteratorType, StreamViewType,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::error::{code, from_sdk};
use super::item::VERSION_ATTRIBUTE;
use crate::cloud::{Change, CloudError, ErrorKind, Positioned};
use crate::rollout::ServiceKey;
use crate::rollout::spec::{KEY_ATTRIBUTE, STATUS_ATTRIBUTE};
use crate::time::Timestamp;

/// The most GetRecords returns at once.
const RECORDS_PER_CALL: i32 = 1000;
/// A closed shard triggers a new listing at once; this catches children that
/// the listing did not show yet.
const RELIST_EVERY: Duration = Duration::from_secs(10);

type Image = HashMap<String, AttributeValue>;

pub(super) struct Feed<'a> {
    dynamodb: &'a Client,
    streams: &'a StreamsClient,
    table: &'a str,
    poll: Duration,
}

/// Where reading one shard stands.
struct Cursor {
    shard: String,
    iterator: Option<String>,
    /// Where a new iterator starts when there is none or it expired.
    from: Start,
    closed: bool,
}

#[derive(Clone)]
enum Start {
    Latest,
    TrimHorizon,
    After(String),
}

impl Cursor {
    fn new(shard: String, from: Start) -> Self {
        Cursor {
            shard,
            iterator: None,
            from,
            closed: false,
        }
    }
}

impl<'a> Feed<'a> {
    pub(super) fn new(
        dynamodb: &'a Client,
        streams: &'a StreamsClient,
        table: &'a str,
        poll: Duration,
    ) -> Self {
        Feed {
            dynamodb,
            streams,
            table,
            poll,
        }
    }

    /// Sends a [`Change`] per spec change until the receiver is dropped or
    /// the stream fails. Tells `positioned` once it holds an iterator on
    /// every open shard.
    pub(super) async fn run(
        self,
        changes: mpsc::Sender<Change>,
        positioned: Positioned,
    ) -> Result<(), CloudError> {
        let stream = self.stream_arn().await?;
        let mut known = HashSet::new();
        let mut cursors = Vec::new();
        // What is in the stream already happened before we started watching.
        for (shard, open) in self.shards(&stream).await? {
            if open {
                cursors.push(Cursor::new(shard.clone(), Start::Latest));
            }
            known.insert(shard);
        }
        // A LATEST iterator starts just after the most recent record in the
        // shard at the moment GetShardIterator answers, not at the first
        // GetRecords: so a write is delivered only if it lands after that
        // answer. Taking every iterator now, before saying so, lets the
        // controller list the records knowing that any later write reaches
        // it through the feed.
        // https://docs.aws.amazon.com/goto/cli2/streams-dynamodb-2012-08-10/GetShardIterator
        for cursor in &mut cursors {
            match self.iterator(&stream, cursor).await? {
                Some(iterator) => cursor.iterator = Some(iterator),
                None => cursor.closed = true,
            }
        }
        let _ = positioned.send(());
        let mut relist_at = Instant::now() + RELIST_EVERY;
        loop {
            let mut any_closed = false;
            for cursor in &mut cursors {
                for record in self.read(&stream, cursor).await? {
                    if let Some(change) = change_of(&record)
                        && changes.send(change).await.is_err()
                    {
                        return Ok(());
                    }
                }
                any_closed |= cursor.closed;
            }
            cursors.retain(|c| !c.closed);
            if any_closed || Instant::now() >= relist_at {
                // A stream that is disabled and enabled again is a new
                // stream with a new ARN (LatestStreamArn); the old one only
                // keeps its records for 24 hours and never gets a new write.
                // Ending here lets the controller open the feed on the new
                // stream and list every record for what fell in between.
                // https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html#Streams.Enabling
                let latest = self.stream_arn().await?;
                if latest != stream {
                    return Err(CloudError::new(
                        ErrorKind::Other,
                        "dynamodb:DescribeTable",
                        format!(
                            "the stream of table {} was replaced (disabled and enabled again): reopening the change feed on the new one",
                            self.table
                        ),
                    ));
                }
                let listing = self.shards(&stream).await?;
                for (shard, _) in &listing {
                    // Born after we started: every record in it is news.
                    if known.insert(shard.clone()) {
                        cursors.push(Cursor::new(shard.clone(), Start::TrimHorizon));
                    }
                }
                // Shards past the retention period drop out of the listing.
                let listed: HashSet<&String> = listing.iter().map(|(s, _)| s).collect();
                known.retain(|s| listed.contains(s));
                relist_at = Instant::now() + RELIST_EVERY;
            }
            if changes.is_closed() {
                return Ok(());
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    async fn stream_arn(&self) -> Result<String, CloudError> {
        const OP: &str = "dynamodb:DescribeTable";
        let out = self
            .dynamodb
            .describe_table()
            .table_name(self.table)
            .send()
            .await
            .map_err(|e| from_sdk(OP, e))?;
        let table = out
            .table
            .ok_or_else(|| CloudError::not_found(OP, format!("table {}", self.table)))?;
        let spec = table.stream_specification().filter(|s| s.stream_enabled());
        let (Some(spec), Some(arn)) = (spec, table.latest_stream_arn()) else {
            return Err(CloudError::new(
                ErrorKind::NotFound,
                OP,
                format!(
                    "table {} has no stream: enable one with NEW_AND_OLD_IMAGES to get changes as they happen",
                    self.table
                ),
            ));
        };
        if spec.stream_view_type().map(|v| v.as_str())
            != Some(StreamViewType::NewAndOldImages.as_str())
        {
            tracing::warn!(
                table = self.table,
                "the table's stream does not carry old and new images: status writes will look like changes too"
            );
        }
        Ok(arn.to_string())
    }

    /// Every shard in the stream, with whether it is still open.
    async fn shards(&self, stream: &str) -> Result<Vec<(String, bool)>, CloudError> {
        const OP: &str = "dynamodb:DescribeStream";
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let out = self
                .streams
                .describe_stream()
                .stream_arn(stream)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|e| from_sdk(OP, e))?;
            let Some(description) = out.stream_description else {
                return Err(CloudError::not_found(OP, format!("stream {stream}")));
            };
            for shard in description.shards.unwrap_or_default() {
                let open = shard
                    .sequence_number_range()
                    .is_none_or(|r| r.ending_sequence_number().is_none());
                if let Some(id) = shard.shard_id {
                    shards.push((id, open));
                }
            }
            match description.last_evaluated_shard_id {
                Some(last) => start = Some(last),
                None => return Ok(shards),
            }
        }
    }

    /// The next batch of one shard; marks the cursor closed once the shard
    /// is closed and read to its end.
    async fn read(&self, stream: &str, cursor: &mut Cursor) -> Result<Vec<Record>, CloudError> {
        let iterator = match cursor.iterator.take() {
            Some(i) => i,
            None => match self.iterator(stream, cursor).await? {
                Some(i) => i,
                None => {
                    cursor.closed = true;
                    return Ok(Vec::new());
                }
            },
        };
        let out = self
            .streams
            .get_records()
            .shard_iterator(iterator)
            .limit(RECORDS_PER_CALL)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            // Iterators last 15 minutes; take a new one from where we were.
            Err(e) if code(&e) == Some("ExpiredIteratorException") => return Ok(Vec::new()),
            // Records aged out of the stream before we read them.
            Err(e) if code(&e) == Some("TrimmedDataAccessException") => {
                cursor.from = Start::TrimHorizon;
                return Ok(Vec::new());
            }
            Err(e) => return Err(from_sdk("dynamodb:GetRecords", e)),
        };
        let records = out.records.unwrap_or_default();
        if let Some(last) = records
            .iter()
            .rev()
            .find_map(|r| r.dynamodb().and_then(|d| d.sequence_number()))
        {
            cursor.from = Start::After(last.to_string());
        }
        match out.next_shard_iterator {
            Some(next) => cursor.iterator = Some(next),
            None => cursor.closed = true,
        }
        Ok(records)
    }

    async fn iterator(&self, stream: &str, cursor: &Cursor) -> Result<Option<String>, CloudError> {
        let request = self
            .streams
            .get_shard_iterator()
            .stream_arn(stream)
            .shard_id(&cursor.shard);
        let request = match &cursor.from {
            Start::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            Start::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            Start::After(seq) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
        };
        match request.send().await {
            Ok(out) => Ok(out.shard_iterator),
            // The shard aged out of the stream: nothing left to read.
            Err(e) if code(&e) == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(from_sdk("dynamodb:GetShardIterator", e)),
        }
    }
}

/// The change a stream record stands for, unless it only wrote the status
/// (the controller's own writes must not wake it up again).
fn change_of(record: &Record) -> Option<Change> {
    let data = record.dynamodb()?;
    let key = match data.keys().and_then(|k| k.get(KEY_ATTRIBUTE)) {
        Some(AttributeValue::S(s)) => match s.parse::<ServiceKey>() {
            Ok(k) => k,
            // Not a service's record: the next resync answers it in its
            // status and warns once, rather than on every change.
            Err(e) => {
                tracing::debug!(
                    why = e.why,
                    "ignoring a change to an item whose key is not a service's"
                );
                return None;
            }
        },
        _ => return None,
    };
    if record.event_name() == Some(&OperationType::Modify)
        && let (Some(old), Some(new)) = (data.old_image(), data.new_image())
        && same_spec(old, new)
    {
        return None;
    }
    let at = data
        .approximate_creation_date_time()
        .and_then(|t| t.to_millis().ok())
        .map(Timestamp::from_millis);
    Some(Change { key, at })
}

fn controller_owned(attribute: &str) -> bool {
    attribute == STATUS_ATTRIBUTE || attribute == VERSION_ATTRIBUTE
}

/// Equal but for the attributes the controller owns.
fn same_spec(a: &Image, b: &Image) -> bool {
    let spec = |image: &'_ Image| {
        image
            .iter()
            .filter(|(name, _)| !controller_owned(name))
            .count()
    };
    spec(a) == spec(b)
        && a.iter()
            .filter(|(name, _)| !controller_owned(name))
            .all(|(name, v)| b.get(name) == Some(v))
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodbstreams::primitives::DateTime;
    use aws_sdk_dynamodbstreams::types::StreamRecord;

    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    fn image(pairs: &[(&str, AttributeValue)]) -> Image {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn record(event: OperationType, old: Option<Image>, new: Option<Image>) -> Record {
        Record::builder()
            .event_name(event)
            .dynamodb(
                StreamRecord::builder()
                    .keys(KEY_ATTRIBUTE, s("prod/web"))
                    .set_old_image(old)
                    .set_new_image(new)
                    .approximate_creation_date_time(DateTime::from_millis(1_700_000_000_000))
                    .build(),
            )
            .build()
    }

    fn spec(image_tag: &str, status: &str, version: &str) -> Image {
        image(&[
            ("service", s("prod/web")),
            ("image", s(image_tag)),
            ("status", AttributeValue::M(image(&[("phase", s(status))]))),
            ("status_version", AttributeValue::N(version.into())),
        ])
    }

    #[test]
    fn a_status_only_write_is_not_a_change() {
        let r = record(
            OperationType::Modify,
            Some(spec("web:1", "Steady", "1")),
            Some(spec("web:1", "Shifting", "2")),
        );
        assert_eq!(change_of(&r), None);
    }

    #[test]
    fn a_spec_write_is_a_change_with_its_time() {
        let r = record(
            OperationType::Modify,
            Some(spec("web:1", "Steady", "1")),
            Some(spec("web:2", "Steady", "1")),
        );
        assert_eq!(
            change_of(&r),
            Some(Change {
                key: ServiceKey::new("prod", "web"),
                at: Some(Timestamp(1_700_000_000_000)),
            })
        );
    }

    #[test]
    fn adding_or_removing_a_spec_attribute_is_a_change() {
        let mut more = spec("web:1", "Steady", "1");
        more.insert("paused".into(), AttributeValue::Bool(true));
        let r = record(
            OperationType::Modify,
            Some(spec("web:1", "Steady", "1")),
            Some(more.clone()),
        );
        assert!(change_of(&r).is_some());
        let r = record(
            OperationType::Modify,
            Some(more),
            Some(spec("web:1", "Steady", "1")),
        );
        assert!(change_of(&r).is_some());
    }

    #[test]
    fn inserts_removals_and_records_without_images_are_changes() {
        let new = Some(spec("web:1", "Steady", "1"));
        assert!(change_of(&record(OperationType::Insert, None, new.clone())).is_some());
        assert!(change_of(&record(OperationType::Remove, new, None)).is_some());
        assert!(change_of(&record(OperationType::Modify, None, None)).is_some());
    }

    #[test]
    fn records_with_malformed_keys_are_skipped() {
        let r = Record::builder()
            .event_name(OperationType::Insert)
            .dynamodb(
                StreamRecord::builder()
                    .keys(KEY_ATTRIBUTE, s("no-slash"))
                    .build(),
            )
            .build();
        assert_eq!(change_of(&r), None);
    }
}
