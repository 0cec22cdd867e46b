//! Reads by id that the passes of many services make within a short window,
//! gathered into as few batch calls as the API allows: a fleet of services
//! in flight costs one call per batch and poll, not one per service.
//! CodeDeploy's deployments and ECS's service deployments are read so.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::oneshot;

use super::{CloudError, ErrorKind};

/// A read of many items by id in one call.
#[async_trait]
pub trait BatchRead: Send + Sync + 'static {
    type Item: Clone + Send + 'static;
    /// The most ids one call takes.
    const LIMIT: usize;
    /// The API operation, for errors.
    const OPERATION: &'static str;
    fn id(item: &Self::Item) -> &str;
    /// The items with these ids that exist, at most [`BatchRead::LIMIT`].
    async fn read(&self, ids: &[String]) -> Result<Vec<Self::Item>, CloudError>;
}

type Answer<T> = Result<Vec<T>, CloudError>;

struct Waiting<T> {
    ids: Vec<String>,
    answer: oneshot::Sender<Answer<T>>,
}

/// Gathers every read asked for within `window` into calls of up to
/// `R::LIMIT` ids.
pub struct Gather<R: BatchRead> {
    shared: Arc<Shared<R>>,
}

impl<R: BatchRead> Clone for Gather<R> {
    fn clone(&self) -> Self {
        Gather {
            shared: Arc::clone(&self.shared),
        }
    }
}

struct Shared<R: BatchRead> {
    inner: R,
    window: Duration,
    waiting: Mutex<Vec<Waiting<R::Item>>>,
}

impl<R: BatchRead> Gather<R> {
    pub fn new(inner: R, window: Duration) -> Gather<R> {
        Gather {
            shared: Arc::new(Shared {
                inner,
                window,
                waiting: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The items with these ids that exist, read together with everyone
    /// else's ids asked for in the same window.
    pub async fn get(&self, ids: &[String]) -> Answer<R::Item> {
        let (tx, rx) = oneshot::channel();
        let first = {
            let mut waiting = self.shared.waiting();
            waiting.push(Waiting {
                ids: ids.to_vec(),
                answer: tx,
            });
            waiting.len() == 1
        };
        if first {
            tokio::spawn(Arc::clone(&self.shared).flush());
        }
        rx.await.unwrap_or_else(|_| {
            Err(CloudError::new(
                ErrorKind::Transient,
                R::OPERATION,
                "the batched read ended without an answer",
            ))
        })
    }
}

impl<R: BatchRead> Shared<R> {
    fn waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waiting<R::Item>>> {
        // Holders only push or take the list whole: nothing half-done to fear.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers everyone who asked in the window. Runs on its own task, so a
    /// pass that gives up waiting cannot strand the others.
    async fn flush(self: Arc<Self>) {
        tokio::time::sleep(self.window).await;
        let batch = std::mem::take(&mut *self.waiting());
        let ids: BTreeSet<&String> = batch.iter().flat_map(|w| &w.ids).collect();
        let ids: Vec<String> = ids.into_iter().cloned().collect();
        let mut found: BTreeMap<String, R::Item> = BTreeMap::new();
        let mut failure = None;
        for chunk in ids.chunks(R::LIMIT) {
            match self.inner.read(chunk).await {
                Ok(items) => found.extend(
                    items
                        .into_iter()
                        .map(|item| (R::id(&item).to_string(), item)),
                ),
                Err(e) => failure = Some(e),
            }
        }
        for w in batch {
            let answer = match (&failure, w.ids.iter().all(|id| found.contains_key(id))) {
                (Some(e), false) => Err(e.clone()),
                _ => Ok(w
                    .ids
                    .iter()
                    .filter_map(|id| found.get(id).cloned())
                    .collect()),
            };
            // A pass that stopped waiting no longer wants its answer.
            let _ = w.answer.send(answer);
        }
    }
}
