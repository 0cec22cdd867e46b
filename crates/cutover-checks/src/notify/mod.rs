//! Notifications of rollout events to the endpoints a record names. A
//! reconcile pass hands its events over and goes on: delivery runs on its
//! own task behind a bounded queue, so a slow or dead endpoint never holds
//! a rollout, and a full queue drops notices (counted) rather than block.

pub mod message;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};

use crate::checks::fetch::{self, origin};
use crate::notice::{CountNotifications, Notify};
use crate::rollout::spec::{Notification, NotificationFormat};
use crate::rollout::{Event, Phase, ServiceKey, Status};
use crate::time::Timestamp;

pub use message::Notice;

/// How notices are delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifyPolicy {
    /// Notices waiting for delivery; more are dropped.
    pub queue: usize,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Attempts per notice, the first included.
    pub attempts: u32,
    /// The wait before the second attempt; it doubles after each.
    pub backoff: Duration,
    /// One attempt.
    pub timeout: Duration,
}

impl Default for NotifyPolicy {
    fn default() -> Self {
        NotifyPolicy {
            queue: 1024,
            concurrency: 8,
            attempts: 3,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
        }
    }
}

/// A label for the `format` of the notifications metric.
pub fn format_label(format: NotificationFormat) -> &'static str {
    match format {
        NotificationFormat::Json => "json",
        NotificationFormat::Slack => "slack",
    }
}

struct Delivery {
    url: String,
    format: NotificationFormat,
    notice: Notice,
}

type Counter = Option<Arc<dyn CountNotifications>>;

/// The reconcile side: cheap to clone, never waits.
#[derive(Clone)]
pub struct Notifier {
    queue: mpsc::Sender<Delivery>,
    metrics: Counter,
}

/// The delivery side, running until every [`Notifier`] is gone.
pub struct Courier {
    task: JoinHandle<()>,
}

impl Courier {
    /// Waits up to `within` for the notices still queued or in flight.
    pub async fn finish(self, within: Duration) {
        if tokio::time::timeout(within, self.task).await.is_err() {
            tracing::warn!(
                "notifications still undelivered after {within:?} at shutdown were dropped"
            );
        }
    }
}

impl Notifier {
    /// Starts the delivery task; must be called inside a tokio runtime.
    pub fn start<C: CountNotifications>(
        client: reqwest::Client,
        policy: NotifyPolicy,
        metrics: Option<Arc<C>>,
    ) -> (Notifier, Courier) {
        let metrics: Counter = metrics.map(|m| m as Arc<dyn CountNotifications>);
        let (tx, rx) = mpsc::channel(policy.queue.max(1));
        let task = tokio::spawn(deliver_all(rx, client, policy, metrics.clone()));
        (Notifier { queue: tx, metrics }, Courier { task })
    }

    fn count(&self, format: NotificationFormat, result: &'static str) {
        if let Some(m) = &self.metrics {
            m.notification(format_label(format), result);
        }
    }
}

/// The loop's notifications port.
impl Notify for Notifier {
    /// Queues the notices for one applied decision to every endpoint of the
    /// record. `before` is the phase the pass started from.
    fn notify(
        &self,
        key: &ServiceKey,
        to: &[Notification],
        events: &[Event],
        before: Phase,
        status: &Status,
        at: Timestamp,
    ) {
        if to.is_empty() {
            return;
        }
        for notice in message::notices(key, events, before, status, at) {
            for n in to {
                let delivery = Delivery {
                    url: n.url.clone(),
                    format: n.format,
                    notice: notice.clone(),
                };
                if let Err(e) = self.queue.try_send(delivery) {
                    let why = match e {
                        mpsc::error::TrySendError::Full(_) => "the queue is full",
                        mpsc::error::TrySendError::Closed(_) => "delivery has stopped",
                    };
                    tracing::warn!(
                        service = %key,
                        event = notice.event,
                        endpoint = %origin(&n.url),
                        "notification dropped: {why}"
                    );
                    self.count(n.format, "dropped");
                }
            }
        }
    }
}

async fn deliver_all(
    mut rx: mpsc::Receiver<Delivery>,
    client: reqwest::Client,
    policy: NotifyPolicy,
    metrics: Counter,
) {
    let slots = Arc::new(Semaphore::new(policy.concurrency.max(1)));
    let mut running = JoinSet::new();
    while let Some(delivery) = rx.recv().await {
        // Holding a slot before taking the next notice keeps the queue, not
        // an unbounded set of tasks, as the place where notices wait.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let (client, metrics) = (client.clone(), metrics.clone());
        running.spawn(async move {
            let result = deliver(&client, &policy, &delivery).await;
            if let Some(m) = &metrics {
                m.notification(format_label(delivery.format), result);
            }
            drop(slot);
        });
        // Reap finished deliveries so the set does not grow.
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
}

/// `sent` or `failed`, after at most `policy.attempts` attempts.
async fn deliver(client: &reqwest::Client, policy: &NotifyPolicy, d: &Delivery) -> &'static str {
    let body = d.notice.body(d.format);
    let mut wait = policy.backoff;
    let mut last = String::new();
    for attempt in 1..=policy.attempts.max(1) {
        if attempt > 1 {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
        let request = client.post(&d.url).json(&body);
        match fetch::send(request, policy.timeout).await {
            Ok(a) if (200..300).contains(&a.status) => return "sent",
            // The endpoint refused this notice; sending it again will not help.
            Ok(a) if (400..500).contains(&a.status) && a.status != 429 => {
                last = format!("it answered {}", a.status);
                break;
            }
            Ok(a) => last = format!("it answered {}", a.status),
            Err(failure) => last = failure.to_string(),
        }
        tracing::debug!(
            service = %d.notice.service,
            event = d.notice.event,
            endpoint = %origin(&d.url),
            attempt,
            "notification attempt failed: {last}"
        );
    }
    tracing::warn!(
        service = %d.notice.service,
        event = d.notice.event,
        format = format_label(d.format),
        endpoint = %origin(&d.url),
        attempts = policy.attempts,
        "notification not delivered: {last}"
    );
    "failed"
}
