//! The stream's readers: at most two at once, as DynamoDB Streams allows
//! per stream shard; and the relay items through which the others learn of
//! changes.

use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::*;
use crate::cloud::lease::FeedLease;
use crate::cloud::relay::{Relay, Since};
use crate::cloud::{Change, CloudError, DesiredStore, ErrorKind, Leases};

/// A change feed reading the stream until its receiver goes away.
fn reader(sim: &SimCloud) -> (mpsc::Receiver<Change>, JoinHandle<Result<(), CloudError>>) {
    let (tx, rx) = mpsc::channel(16);
    let sim = sim.clone();
    let feed = tokio::spawn(async move { sim.watch(tx, oneshot::channel().0).await });
    (rx, feed)
}

#[tokio::test(start_paused = true)]
async fn a_third_reader_of_the_stream_is_throttled_and_two_keep_reading() {
    let sim = sim(40);
    let (mut first, _a) = reader(&sim);
    let (mut second, _b) = reader(&sim);
    sim.run_for(Duration::from_secs(1)).await;
    assert_eq!(sim.stream_readers(), 2);

    let (_third, c) = reader(&sim);
    let refused = c.await.expect("the feed task").expect_err("a third reader");
    assert_eq!(refused.kind, ErrorKind::Throttled);
    assert_eq!(refused.operation, "dynamodb:GetRecords");
    assert_eq!(sim.stream_readers_throttled(), 1);
    assert_eq!(sim.most_stream_readers(), 2, "it never got to read");

    sim.put_spec(&key(), json!({}));
    assert_eq!(first.recv().await.map(|c| c.key), Some(key()));
    assert_eq!(second.recv().await.map(|c| c.key), Some(key()));

    // One reader leaves: another may take its place.
    drop(first);
    sim.put_spec(&key(), json!({"image": "web:2"}));
    sim.run_for(Duration::from_secs(1)).await;
    assert_eq!(sim.stream_readers(), 1);
    let (_again, d) = reader(&sim);
    sim.run_for(Duration::from_secs(1)).await;
    assert!(!d.is_finished(), "a second reader reads again");
    assert_eq!(sim.stream_readers(), 2);
    assert_eq!(sim.stream_readers_throttled(), 1);
}

#[tokio::test(start_paused = true)]
async fn feed_leases_are_conditional_and_say_whether_their_holder_reads() {
    let sim = sim(41);
    let a = sim.acquire_feed(0, "a", None).await.unwrap().expect("free");
    assert_eq!(sim.acquire_feed(0, "b", None).await.unwrap(), None);
    assert!(sim.mark_feed(&a, true).await.unwrap());
    let seen: FeedLease = sim.read().await.unwrap().feeds[0].clone();
    assert_eq!(
        (seen.holder.as_deref(), seen.opened, seen.reading),
        (Some("a"), 1, true)
    );

    // Taken over as seen: the old holder can neither renew nor mark.
    let b = sim.acquire_feed(0, "b", Some(&seen)).await.unwrap();
    let b = b.expect("taken over");
    assert_eq!(b.token, 2);
    assert!(!sim.renew_feed(&a).await.unwrap());
    assert!(!sim.mark_feed(&a, true).await.unwrap());
    let now = sim.feed_leases()[0].clone();
    assert!(
        !now.reading,
        "not reading until the new holder's feed is positioned"
    );
    assert!(sim.release_feed(&b).await.unwrap());
    assert_eq!(sim.feed_leases()[0].holder, None);
}

#[tokio::test(start_paused = true)]
async fn relay_items_keep_each_readers_log_of_a_shard() {
    let sim = sim(42);
    let change = |s: &str| Change {
        key: ServiceKey::new("prod", s),
        at: None,
    };
    sim.publish(0, 3, &[change("a"), change("b")])
        .await
        .unwrap();
    sim.publish(1, 3, &[change("a")]).await.unwrap();
    let read = sim.poll(&[3, 4]).await.unwrap();
    assert_eq!(read.items.len(), 1, "shard 4 has no item yet");
    let item = &read.items[0];
    assert_eq!(item.shard, 3);
    assert_eq!((item.logs[&0].seq, item.logs[&1].seq), (2, 1));
    match item.logs[&0].since(1) {
        Since::Changes(new) => assert_eq!(new[0].key, ServiceKey::new("prod", "b")),
        Since::Behind => panic!("nothing was dropped"),
    }
    assert_eq!(sim.call_count("dynamodb:BatchGetItem"), 1);
}
