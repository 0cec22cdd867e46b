//! The loop over a small in-memory cloud, on a paused tokio clock.

mod fakes;
mod lease_deadline;
mod lifecycle;
mod passes;
mod policy;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cloud::{Clock, ScaledClock};
use crate::rollout::{Event, Phase, ServiceKey};
use crate::time::Timestamp;

use super::{Controller, ControllerConfig, ControllerHandle, EventReceiver};
use fakes::FakeCloud;

pub const EPOCH: Timestamp = Timestamp(1_700_000_000_000);

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn config() -> ControllerConfig {
    ControllerConfig {
        poll_interval: secs(10),
        resync_interval: secs(3600),
        concurrency: 4,
        backoff_base: secs(1),
        backoff_max: secs(60),
        seed: 7,
    }
}

pub struct Harness {
    pub clock: Arc<dyn Clock>,
    pub cloud: Arc<FakeCloud>,
}

impl Harness {
    /// Must be called inside the test's (paused) runtime.
    pub fn new() -> Self {
        let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(EPOCH, 1.0));
        let cloud = FakeCloud::new(Arc::clone(&clock));
        Harness { clock, cloud }
    }

    pub fn start(&self, config: ControllerConfig) -> Running {
        let controller = Controller::new(
            self.cloud.clone(),
            self.cloud.clone(),
            self.cloud.clone(),
            Arc::clone(&self.clock),
            config,
        )
        .with_policy(policy::POLICY);
        let events = controller.subscribe();
        let handle = controller.handle();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(controller.run(shutdown.clone()));
        Running {
            shutdown,
            task,
            handle,
            events,
        }
    }

    pub async fn sleep(&self, d: Duration) {
        self.clock.sleep(d).await;
    }

    pub fn phase(&self, key: &ServiceKey) -> Option<Phase> {
        self.cloud.status(key).map(|s| s.phase())
    }
}

pub struct Running {
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    pub handle: ControllerHandle,
    pub events: EventReceiver,
}

impl Running {
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }

    /// Transitions published so far, as (service, from, to).
    pub fn transitions(&mut self) -> Vec<(String, Phase, Phase)> {
        let mut seen = Vec::new();
        while let Ok((key, event)) = self.events.try_recv() {
            if let Event::Transition(t) = event {
                seen.push((key.service, t.from, t.to));
            }
        }
        seen
    }
}
