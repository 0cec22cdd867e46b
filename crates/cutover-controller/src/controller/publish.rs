//! Relaying what this replica reads from the change stream to the replicas
//! that do not read it: each change goes to the log of this replica's feed
//! slot in its shard's relay item (see [`crate::cloud::relay`]), in
//! batches, once the feed lease says that this reading holds its position.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::shards::Ownership;
use crate::cloud::lease::{FeedFence, Shard};
use crate::cloud::{Change, CloudError, ErrorKind, Leases, Relay};

/// Changes relayed in one round: at most one write per shard each.
const BATCH: usize = 512;
/// Attempts at one write before the reading gives up; the first retry
/// comes after this, then twice as long each time.
const ATTEMPTS: u32 = 4;
const FIRST_RETRY: Duration = Duration::from_millis(200);

pub struct Publisher {
    pub relay: Arc<dyn Relay>,
    pub leases: Arc<dyn Leases>,
    pub ownership: Arc<Ownership>,
    pub fence: FeedFence,
}

impl Publisher {
    /// Waits for the stream feed to take its position, says so in the feed
    /// lease, then relays `changes` until they end. An error ends the
    /// reading: opened again, its new position tells the followers that it
    /// may have missed something.
    pub async fn run(
        self,
        positioned: oneshot::Receiver<()>,
        mut changes: mpsc::Receiver<Change>,
    ) -> Result<(), CloudError> {
        if positioned.await.is_err() {
            return Ok(());
        }
        // Before anything is relayed under it: a follower that saw an
        // earlier reading of this slot must learn that this is a new one.
        let marked = self
            .again("dynamodb:UpdateItem", || {
                self.leases.mark_feed(&self.fence, true)
            })
            .await?;
        if !marked {
            return Err(CloudError::new(
                ErrorKind::Other,
                "dynamodb:UpdateItem",
                format!(
                    "feed slot {} is no longer held by {} with token {}",
                    self.fence.slot, self.fence.holder, self.fence.token
                ),
            ));
        }
        while let Some(first) = changes.recv().await {
            let mut by_shard: BTreeMap<Shard, Vec<Change>> = BTreeMap::new();
            by_shard
                .entry(self.ownership.shard(&first.key))
                .or_default()
                .push(first);
            let mut taken = 1;
            while taken < BATCH
                && let Ok(more) = changes.try_recv()
            {
                by_shard
                    .entry(self.ownership.shard(&more.key))
                    .or_default()
                    .push(more);
                taken += 1;
            }
            for (shard, batch) in by_shard {
                let slot = self.fence.slot;
                self.again("dynamodb:UpdateItem", || {
                    self.relay.publish(slot, shard, &batch)
                })
                .await?;
            }
        }
        Ok(())
    }

    /// `call`, tried again after a pause while it fails, up to [`ATTEMPTS`].
    async fn again<T, F, Fut>(&self, operation: &'static str, call: F) -> Result<T, CloudError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, CloudError>>,
    {
        let mut pause = FIRST_RETRY;
        let mut last = None;
        for _ in 0..ATTEMPTS {
            match call().await {
                Ok(answer) => return Ok(answer),
                Err(e) => {
                    tracing::debug!(
                        operation = e.operation,
                        error_kind = e.kind.as_str(),
                        "relaying a change failed, trying again: {e}"
                    );
                    last = Some(e);
                }
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
        Err(last.unwrap_or_else(|| {
            CloudError::new(ErrorKind::Other, operation, "relaying a change failed")
        }))
    }
}

/// Changes read from the stream on their way to the relay.
pub struct Relaying {
    changes: mpsc::Sender<Change>,
    positioned: Option<oneshot::Sender<()>>,
    publisher: AbortOnDrop<Result<(), CloudError>>,
}

/// Changes read but not yet relayed before the reading gives up on the
/// relay (and opens the stream again, which the followers notice).
const RELAY_BUFFER: usize = 4096;

impl Relaying {
    pub fn start(publisher: Publisher) -> Self {
        let (changes, rx) = mpsc::channel(RELAY_BUFFER);
        let (positioned, positioned_rx) = oneshot::channel();
        Relaying {
            changes,
            positioned: Some(positioned),
            publisher: AbortOnDrop(tokio::spawn(publisher.run(positioned_rx, rx))),
        }
    }

    /// The stream feed holds its position: relaying may begin.
    pub fn positioned(&mut self) {
        if let Some(tx) = self.positioned.take() {
            let _ = tx.send(());
        }
    }

    /// Hands `change` to the publisher; an error when it fell too far behind.
    pub fn relay(&self, change: &Change) -> Result<(), CloudError> {
        self.changes.try_send(change.clone()).map_err(|_| {
            CloudError::new(
                ErrorKind::Throttled,
                "dynamodb:UpdateItem",
                format!("the relay fell {RELAY_BUFFER} changes behind the stream"),
            )
        })
    }

    /// Returns once relaying has failed (never while it works).
    async fn failed(&mut self) -> CloudError {
        let ended = (&mut self.publisher.0).await;
        match ended {
            Ok(Err(e)) => e,
            Ok(Ok(())) => CloudError::new(
                ErrorKind::Other,
                "dynamodb:UpdateItem",
                "relaying stopped while the stream was read",
            ),
            Err(e) => CloudError::new(
                ErrorKind::Other,
                "dynamodb:UpdateItem",
                format!("relaying stopped abnormally: {e}"),
            ),
        }
    }
}

/// Returns once relaying has failed, if there is any.
pub async fn relay_failed(relaying: &mut Option<Relaying>) -> CloudError {
    match relaying {
        Some(r) => r.failed().await,
        None => std::future::pending().await,
    }
}

/// A task aborted when its handle is dropped, so a reading that ends takes
/// its relaying with it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
