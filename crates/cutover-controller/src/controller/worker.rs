//! Workers take due services from the queue, run a pass, and schedule the next
//! one from how the pass ended.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinError;

use crate::cloud::Clock;
use crate::metrics::Metrics;
use crate::rollout::{ServiceKey, Wake};
use crate::time::Timestamp;

use super::backoff::Retries;

use super::batch::DescribeBatcher;
use super::queue::WorkQueue;
use super::reconcile::{Pass, PassError, Reconciler};
use super::weights_batch::WeightsBatcher;
use crate::metrics::PANIC;

pub struct Workers {
    pub queue: Arc<WorkQueue>,
    pub reconciler: Arc<Reconciler>,
    pub clock: Arc<dyn Clock>,
    pub retries: Mutex<Retries>,
    pub poll_interval: Duration,
    pub resync_interval: Duration,
    pub metrics: Option<Arc<Metrics>>,
    pub batcher: Arc<DescribeBatcher>,
    pub weights: Arc<WeightsBatcher>,
}

impl Workers {
    /// Runs passes until the queue closes. Returns only between passes, so a
    /// pass that has begun always completes its commands and status write.
    pub async fn work(self: Arc<Self>) {
        while let Some(mut lease) = self.queue.next().await {
            let reconciler = Arc::clone(&self.reconciler);
            let key = lease.key().clone();
            let trigger = lease.take_trigger();
            // Its own task, so that a panicking decision costs one service a
            // retry instead of costing the controller a worker.
            let started = tokio::time::Instant::now();
            let pass = tokio::spawn(async move { reconciler.reconcile(&key, trigger).await }).await;
            if let Some(m) = &self.metrics {
                m.reconciled(started.elapsed());
            }
            let next = self.next_pass(lease.key(), pass);
            lease.finish(next);
            // With this pass out of the way, a describe batch may hold
            // every pass still in flight and need wait no longer.
            self.batcher.recheck();
            self.weights.recheck();
        }
    }

    /// When to look at the service again, given how this pass ended.
    fn next_pass(
        &self,
        key: &ServiceKey,
        pass: Result<Result<Pass, PassError>, JoinError>,
    ) -> Option<Timestamp> {
        let now = self.clock.now();
        let mut retries = self.retries.lock().unwrap_or_else(|e| e.into_inner());
        match pass {
            Ok(Ok(Pass::Applied(wake))) => {
                retries.succeeded(key);
                match wake {
                    Wake::Poll => Some(now + self.poll_interval),
                    // Bounded so a far-off or mistaken wake-up time cannot
                    // leave a service unwatched longer than a resync.
                    Wake::At(t) => Some(t.min(now + self.resync_interval)),
                    Wake::Idle => None,
                }
            }
            Ok(Ok(Pass::Conflict)) => {
                let delay = retries.conflicted(key);
                tracing::debug!(service = %key, ?delay, "status changed meanwhile; reading it again");
                Some(now + delay)
            }
            Ok(Ok(Pass::Gone | Pass::NotOwned)) => {
                retries.forget(key);
                None
            }
            Ok(Err(error)) => {
                let kind = error.error_kind();
                let delay = if error.backs_off() {
                    let delay = retries.failed(key);
                    if self.reconciler.seen.rollout_in_flight(key) {
                        // A rollout in flight may have production split
                        // between two task sets, and the next pass that gets
                        // through is the one that notices a side lost its
                        // targets: it is never left unwatched longer than a
                        // poll. That costs no more than its passes did
                        // before they failed; the request budgets still pace
                        // every call.
                        delay.min(self.poll_interval)
                    } else {
                        delay
                    }
                } else {
                    // The owner must fix the record or the account; retrying
                    // sooner would not help, and backing off further would
                    // delay noticing the fix.
                    self.poll_interval
                };
                tracing::warn!(
                    service = %key,
                    stage = error.stage(),
                    error_kind = kind.as_str(),
                    operation = error.cloud().operation,
                    request_id = error.cloud().request_id.as_deref().unwrap_or(""),
                    retry_in = ?delay,
                    "{error}"
                );
                self.count_failure(error.stage(), kind.as_str());
                Some(now + delay)
            }
            Err(join) => {
                let delay = retries.failed(key);
                tracing::error!(service = %key, retry_in = ?delay, "reconcile aborted: {join}");
                self.count_failure(PANIC, PANIC);
                Some(now + delay)
            }
        }
    }

    /// Next to the log line of the same failure, so the two agree.
    fn count_failure(&self, stage: &'static str, kind: &'static str) {
        if let Some(m) = &self.metrics {
            m.reconcile_failed(stage, kind);
        }
    }
}
