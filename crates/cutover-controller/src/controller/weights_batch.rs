//! Weight reads for many passes at once. A rollout's every pass reads its
//! production (and test) weights, and ELB's describe budget (10 a second
//! for the whole account) is shared with target health reads: during a
//! fleet-wide release, reads pace the release. `DescribeListeners` and
//! `DescribeRules` take many ARNs, so passes that read at about the same
//! time share a call.
//!
//! A batch goes out when it is full, when every pass in flight waits in it
//! (nobody else could join, so a lone rollout never waits), or when its
//! window ends: at once for a change someone just wrote. The window is long
//! enough to gather passes that the describe budget itself spaces out.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, oneshot};

use super::batch::InFlight;
use crate::cloud::budget::{Priority, current_priority, with_priority};
use crate::cloud::{Clock, CloudError, ErrorKind, LoadBalancer, ROUTES_PER_DESCRIBE};
use crate::rollout::{Route, Stickiness, TargetCounts, Weights};
use crate::time::Timestamp;

/// How long a batch waits for company, unless someone waits on a change.
pub const WINDOW: Duration = Duration::from_secs(1);

type Answer = Result<Weights, CloudError>;

/// A `LoadBalancer` port that gathers single weight reads into batches and
/// passes every other call straight through.
pub struct WeightsBatcher {
    shared: Arc<Shared>,
}

struct Shared {
    inner: Arc<dyn LoadBalancer>,
    clock: Arc<dyn Clock>,
    in_flight: InFlight,
    open: Mutex<Option<Batch>>,
}

struct Batch {
    opened: Timestamp,
    priority: Priority,
    routes: Vec<Route>,
    waiters: Vec<(usize, oneshot::Sender<Answer>)>,
    wake: Arc<Notify>,
}

impl Batch {
    fn deadline(&self) -> Timestamp {
        self.opened
            + match self.priority {
                Priority::Change => Duration::ZERO,
                Priority::Rollout | Priority::Steady => WINDOW,
            }
    }

    fn full(&self) -> bool {
        self.routes.len() >= ROUTES_PER_DESCRIBE
    }

    /// Whether to send now rather than wait for more readers.
    fn ready(&self, now: Timestamp, in_flight: usize) -> bool {
        self.full() || self.waiters.len() >= in_flight || now >= self.deadline()
    }
}

impl WeightsBatcher {
    pub fn new(inner: Arc<dyn LoadBalancer>, clock: Arc<dyn Clock>, in_flight: InFlight) -> Self {
        WeightsBatcher {
            shared: Arc::new(Shared {
                inner,
                clock,
                in_flight,
                open: Mutex::new(None),
            }),
        }
    }

    /// Sends the open batch if every pass still in flight waits in it; call
    /// it when a pass ends.
    pub fn recheck(&self) {
        let open = self.shared.lock();
        if let Some(batch) = open.as_ref()
            && batch.waiters.len() >= (self.shared.in_flight)()
        {
            batch.wake.notify_one();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Option<Batch>> {
        // Each critical section leaves the batch whole.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn read(self: &Arc<Self>, route: &Route) -> Answer {
        let (tx, rx) = oneshot::channel();
        let priority = current_priority();
        let start = {
            let mut open = self.lock();
            let new = open.is_none();
            let batch = open.get_or_insert_with(|| Batch {
                opened: self.clock.now(),
                priority,
                routes: Vec::new(),
                waiters: Vec::new(),
                wake: Arc::new(Notify::new()),
            });
            let index = match batch.routes.iter().position(|r| r == route) {
                Some(i) => i,
                None => {
                    batch.routes.push(route.clone());
                    batch.routes.len() - 1
                }
            };
            batch.waiters.push((index, tx));
            let hurried = priority < batch.priority;
            batch.priority = batch.priority.min(priority);
            if hurried || batch.ready(self.clock.now(), (self.in_flight)()) {
                batch.wake.notify_one();
            }
            new.then(|| Arc::clone(&batch.wake))
        };
        if let Some(wake) = start {
            let shared = Arc::clone(self);
            tokio::spawn(async move { shared.flush_when_ready(wake).await });
        }
        rx.await.unwrap_or_else(|_| {
            Err(CloudError::new(
                ErrorKind::Transient,
                "elasticloadbalancing:DescribeListeners",
                "the batched weight read was abandoned (the controller is stopping)",
            ))
        })
    }

    async fn flush_when_ready(self: Arc<Self>, wake: Arc<Notify>) {
        loop {
            let ready = {
                let mut open = self.lock();
                match open.as_ref() {
                    None => return,
                    Some(b) if b.ready(self.clock.now(), (self.in_flight)()) => Ok(open.take()),
                    Some(b) => Err(b.deadline()),
                }
            };
            match ready {
                Ok(Some(batch)) => return self.send(batch).await,
                Ok(None) => return,
                Err(deadline) => {
                    tokio::select! {
                        _ = self.clock.sleep_until(deadline) => {}
                        _ = wake.notified() => {}
                    }
                }
            }
        }
    }

    async fn send(&self, batch: Batch) {
        let answers = with_priority(batch.priority, self.inner.weights_of(&batch.routes)).await;
        for (index, tx) in batch.waiters {
            let answer = answers.get(index).cloned().unwrap_or_else(|| {
                Err(CloudError::new(
                    ErrorKind::Other,
                    "elasticloadbalancing:DescribeListeners",
                    "the load balancer answered fewer routes than were asked",
                ))
            });
            // A pass that went away no longer needs its answer.
            let _ = tx.send(answer);
        }
    }
}

#[async_trait]
impl LoadBalancer for WeightsBatcher {
    async fn weights(&self, route: &Route) -> Result<Weights, CloudError> {
        self.shared.read(route).await
    }

    async fn weights_of(&self, routes: &[Route]) -> Vec<Result<Weights, CloudError>> {
        self.shared.inner.weights_of(routes).await
    }

    async fn set_weights(&self, route: &Route, weights: &Weights) -> Result<(), CloudError> {
        self.shared.inner.set_weights(route, weights).await
    }

    async fn stickiness(&self, route: &Route) -> Result<Stickiness, CloudError> {
        self.shared.inner.stickiness(route).await
    }

    async fn set_stickiness(
        &self,
        route: &Route,
        stickiness: Stickiness,
    ) -> Result<(), CloudError> {
        self.shared.inner.set_stickiness(route, stickiness).await
    }

    async fn target_health(&self, target_group: &str) -> Result<TargetCounts, CloudError> {
        self.shared.inner.target_health(target_group).await
    }
}
