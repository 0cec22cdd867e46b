//! The fleet-wide halt as this replica knows it. It is read from the table
//! at every poll, so a halt written anywhere (the CLI, the API of any
//! replica, `aws dynamodb put-item`) holds every rollout within one poll;
//! a pass that finds it not yet read reads it first, so a replica that has
//! just started never takes a step under a halt it has not seen. When it
//! is put on or lifted, every service is looked at again at once: a
//! rollout held while halted waits for nothing else.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::queue::WorkQueue;
use crate::cloud::{Clock, CloudError, DesiredStore};
use crate::metrics::Metrics;
use crate::rollout::halt::{HALT_ITEM, Halt};

pub struct HaltWatch {
    store: Arc<dyn DesiredStore>,
    /// `None` until read once.
    known: Mutex<Option<Option<Halt>>>,
    metrics: Option<Arc<Metrics>>,
}

impl HaltWatch {
    pub fn new(store: Arc<dyn DesiredStore>, metrics: Option<Arc<Metrics>>) -> Arc<HaltWatch> {
        Arc::new(HaltWatch {
            store,
            known: Mutex::new(None),
            metrics,
        })
    }

    /// The halt as last read; read now when it never was. A pass that
    /// cannot tell whether the fleet is halted fails, and takes no step.
    pub async fn current(&self) -> Result<Option<Halt>, CloudError> {
        if let Some(known) = self.lock().clone() {
            return Ok(known);
        }
        self.read().await.map(|(halt, _)| halt)
    }

    /// Reads the halt item; says whether the halt was put on or lifted
    /// (or its reason changed) since the last read.
    async fn read(&self) -> Result<(Option<Halt>, bool), CloudError> {
        let item = self.store.get_item(HALT_ITEM).await?;
        let halt = item.map(|i| Halt::from_item(&i.body));
        let changed = {
            let mut known = self.lock();
            let before = known.replace(halt.clone());
            before.is_some_and(|b| b != halt)
        };
        if let Some(m) = &self.metrics {
            m.halt(halt.as_ref());
        }
        if changed {
            match &halt {
                Some(h) => {
                    tracing::warn!(reason = %h.reason, by = h.by.as_deref().unwrap_or(""), "{h}: no rollout takes a step until it is lifted")
                }
                None => tracing::warn!("the fleet-wide halt was lifted: rollouts go on"),
            }
        }
        Ok((halt, changed))
    }

    /// Reads the halt every `poll` until `shutdown`; on a change, looks at
    /// every service again at once.
    pub async fn run(
        self: Arc<Self>,
        queue: Arc<WorkQueue>,
        clock: Arc<dyn Clock>,
        poll: Duration,
        shutdown: CancellationToken,
    ) {
        loop {
            match self.read().await {
                Ok((_, true)) => self.look_again(&queue).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "reading the fleet-wide halt failed; trying again at the next poll")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = clock.sleep(poll) => {}
            }
        }
    }

    /// Schedules every record now. A failed listing leaves them to their
    /// own wakes and the next resync.
    async fn look_again(&self, queue: &WorkQueue) {
        match self.store.list().await {
            Ok(records) => {
                for r in records {
                    queue.schedule_now(r.key);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "listing the records after the halt changed failed; the next resync looks at them")
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Option<Halt>>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}
