//! DescribeServices for many passes at once. ECS describes up to ten
//! services of one cluster per call, and a steady service's pass needs
//! nothing else, so passes that describe at about the same time share a
//! call: a sweep of N services costs about N/10 calls per cluster. A call
//! reaches one account and region, so a batch holds services of one
//! cluster in one scope.
//!
//! A batch goes out when it holds ten services, when every pass in flight
//! is waiting in a batch (nobody else could join), or when its window ends:
//! none for a change just written, short while a rollout waits in it,
//! longer for drift checks alone, so a sweep held up by the request budget
//! still fills its batches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, oneshot};

use crate::cloud::budget::{Priority, current_priority, with_priority};
use crate::cloud::{Clock, CloudError, Ecs, ErrorKind};
use crate::rollout::command::CreateTaskSet;
use crate::rollout::{Scope, ServiceKey, ServiceState, TaskSet};
use crate::time::Timestamp;

/// Services per DescribeServices call, as ECS allows.
pub const DESCRIBE_LIMIT: usize = 10;
/// How long a batch with a rollout in it waits for company. A batch with
/// a change someone just wrote goes at once: that wait is what they feel.
pub const ROLLOUT_WINDOW: Duration = Duration::from_millis(50);
/// How long a batch of drift checks waits for company.
pub const STEADY_WINDOW: Duration = Duration::from_secs(1);

const OP: &str = "ecs:DescribeServices";

type Answer = Result<ServiceState, CloudError>;

/// Passes in flight, the most that could ever join a batch.
pub type InFlight = Box<dyn Fn() -> usize + Send + Sync>;

/// An `Ecs` port that gathers single-service descriptions into batches and
/// passes every other call straight through.
pub struct DescribeBatcher {
    shared: Arc<Shared>,
}

struct Shared {
    inner: Arc<dyn Ecs>,
    clock: Arc<dyn Clock>,
    in_flight: InFlight,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    batches: HashMap<u64, Batch>,
    /// The batch of each cluster (in its scope) still taking services.
    open: HashMap<(Scope, String), u64>,
    /// Requests in batches not yet sent.
    waiting: usize,
    next_id: u64,
}

struct Batch {
    scope: Scope,
    cluster: String,
    opened: Timestamp,
    priority: Priority,
    services: Vec<String>,
    waiters: Vec<(String, oneshot::Sender<Answer>)>,
    sealed: bool,
    wake: Arc<Notify>,
}

enum Ready {
    Gone,
    Send(Batch),
    Wait(Timestamp),
}

impl Batch {
    fn deadline(&self) -> Timestamp {
        self.opened
            + match self.priority {
                Priority::Change => Duration::ZERO,
                Priority::Rollout => ROLLOUT_WINDOW,
                Priority::Steady => STEADY_WINDOW,
            }
    }
}

impl DescribeBatcher {
    pub fn new(inner: Arc<dyn Ecs>, clock: Arc<dyn Clock>, in_flight: InFlight) -> Self {
        DescribeBatcher {
            shared: Arc::new(Shared {
                inner,
                clock,
                in_flight,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Sends every open batch at once if all passes in flight wait in one;
    /// call it when a pass ends.
    pub fn recheck(&self) {
        let state = self.shared.lock();
        if state.waiting > 0 && state.waiting >= (self.shared.in_flight)() {
            state.wake_all();
        }
    }
}

impl State {
    fn wake_all(&self) {
        for batch in self.batches.values() {
            batch.wake.notify_one();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Each critical section leaves the maps consistent; a panic in one
        // cannot leave a half-made batch behind.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn describe(self: &Arc<Self>, scope: &Scope, cluster: &str, service: &str) -> Answer {
        let open = (scope.clone(), cluster.to_string());
        let (tx, rx) = oneshot::channel();
        let priority = current_priority();
        let start = {
            let mut state = self.lock();
            let state = &mut *state;
            let (id, new) = match state.open.get(&open) {
                Some(id) => (*id, false),
                None => {
                    state.next_id += 1;
                    let id = state.next_id;
                    state.open.insert(open.clone(), id);
                    state.batches.insert(
                        id,
                        Batch {
                            scope: scope.clone(),
                            cluster: cluster.to_string(),
                            opened: self.clock.now(),
                            priority,
                            services: Vec::new(),
                            waiters: Vec::new(),
                            sealed: false,
                            wake: Arc::new(Notify::new()),
                        },
                    );
                    (id, true)
                }
            };
            state.waiting += 1;
            let everyone = state.waiting >= (self.in_flight)();
            let Some(batch) = state.batches.get_mut(&id) else {
                return Err(abandoned());
            };
            if !batch.services.iter().any(|s| s == service) {
                batch.services.push(service.to_string());
            }
            batch.waiters.push((service.to_string(), tx));
            let hurried = priority < batch.priority;
            batch.priority = batch.priority.min(priority);
            if batch.services.len() >= DESCRIBE_LIMIT {
                batch.sealed = true;
                state.open.remove(&open);
            }
            if batch.sealed || hurried {
                batch.wake.notify_one();
            }
            let start = new.then(|| (id, Arc::clone(&batch.wake)));
            if everyone {
                state.wake_all();
            }
            start
        };
        if let Some((id, wake)) = start {
            let shared = Arc::clone(self);
            tokio::spawn(async move { shared.flush_when_ready(id, wake).await });
        }
        rx.await.unwrap_or_else(|_| Err(abandoned()))
    }

    async fn flush_when_ready(self: Arc<Self>, id: u64, wake: Arc<Notify>) {
        loop {
            match self.ready(id) {
                Ready::Gone => return,
                Ready::Send(batch) => return self.send(batch).await,
                Ready::Wait(deadline) => {
                    tokio::select! {
                        _ = self.clock.sleep_until(deadline) => {}
                        _ = wake.notified() => {}
                    }
                }
            }
        }
    }

    /// Takes the batch out if it should go now.
    fn ready(&self, id: u64) -> Ready {
        let mut state = self.lock();
        let now = self.clock.now();
        let everyone = state.waiting >= (self.in_flight)();
        let Some(batch) = state.batches.get(&id) else {
            return Ready::Gone;
        };
        if !(batch.sealed || everyone || now >= batch.deadline()) {
            return Ready::Wait(batch.deadline());
        }
        let Some(batch) = state.batches.remove(&id) else {
            return Ready::Gone;
        };
        let open = (batch.scope.clone(), batch.cluster.clone());
        if state.open.get(&open) == Some(&id) {
            state.open.remove(&open);
        }
        state.waiting = state.waiting.saturating_sub(batch.waiters.len());
        Ready::Send(batch)
    }

    async fn send(&self, batch: Batch) {
        let call = self
            .inner
            .describe_in(&batch.scope, &batch.cluster, &batch.services);
        let answer = with_priority(batch.priority, call).await;
        for (service, tx) in batch.waiters {
            let mine = match &answer {
                Ok(found) => Ok(pick(found, &service)),
                Err(e) => Err(e.clone()),
            };
            // A pass that went away no longer needs its answer.
            let _ = tx.send(mine);
        }
    }
}

/// Adapters may answer with a service's ARN rather than its name; a
/// service ECS did not return does not exist.
fn pick(found: &[(String, ServiceState)], service: &str) -> ServiceState {
    let suffix = format!("/{service}");
    found
        .iter()
        .find(|(name, _)| name == service || name.ends_with(&suffix))
        .map_or(ServiceState::Missing, |(_, state)| state.clone())
}

fn abandoned() -> CloudError {
    CloudError::new(
        ErrorKind::Transient,
        OP,
        "the batched DescribeServices call was abandoned (the controller is stopping)",
    )
}

#[async_trait]
impl Ecs for DescribeBatcher {
    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<(String, ServiceState)>, CloudError> {
        self.describe_in(&Scope::Home, cluster, services).await
    }

    async fn describe_in(
        &self,
        scope: &Scope,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<(String, ServiceState)>, CloudError> {
        let [service] = services else {
            return self
                .shared
                .inner
                .describe_in(scope, cluster, services)
                .await;
        };
        let state = self.shared.describe(scope, cluster, service).await?;
        Ok(vec![(service.clone(), state)])
    }

    async fn create_task_set(
        &self,
        key: &ServiceKey,
        request: &CreateTaskSet,
    ) -> Result<TaskSet, CloudError> {
        self.shared.inner.create_task_set(key, request).await
    }

    async fn set_primary(&self, key: &ServiceKey, task_set_arn: &str) -> Result<(), CloudError> {
        self.shared.inner.set_primary(key, task_set_arn).await
    }

    async fn delete_task_set(
        &self,
        key: &ServiceKey,
        task_set_arn: &str,
    ) -> Result<(), CloudError> {
        self.shared.inner.delete_task_set(key, task_set_arn).await
    }

    async fn stopped_tasks(&self, key: &ServiceKey, task_set_arn: &str) -> Result<u32, CloudError> {
        self.shared.inner.stopped_tasks(key, task_set_arn).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ScaledClock;

    /// Records each DescribeServices call: where it went, and for whom.
    #[derive(Default)]
    struct Calls(Mutex<Vec<(Scope, String, Vec<String>)>>);

    #[async_trait]
    impl Ecs for Calls {
        async fn describe_services(
            &self,
            cluster: &str,
            services: &[String],
        ) -> Result<Vec<(String, ServiceState)>, CloudError> {
            self.describe_in(&Scope::Home, cluster, services).await
        }
        async fn describe_in(
            &self,
            scope: &Scope,
            cluster: &str,
            services: &[String],
        ) -> Result<Vec<(String, ServiceState)>, CloudError> {
            let mut calls = self.0.lock().unwrap();
            calls.push((scope.clone(), cluster.to_string(), services.to_vec()));
            Ok(vec![])
        }
        async fn create_task_set(
            &self,
            _: &ServiceKey,
            _: &CreateTaskSet,
        ) -> Result<TaskSet, CloudError> {
            unreachable!()
        }
        async fn set_primary(&self, _: &ServiceKey, _: &str) -> Result<(), CloudError> {
            unreachable!()
        }
        async fn delete_task_set(&self, _: &ServiceKey, _: &str) -> Result<(), CloudError> {
            unreachable!()
        }
        async fn stopped_tasks(&self, _: &ServiceKey, _: &str) -> Result<u32, CloudError> {
            unreachable!()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_holds_one_cluster_of_one_account_and_region() {
        let calls = Arc::new(Calls::default());
        let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(Timestamp(1_000_000), 1.0));
        let batcher = Arc::new(DescribeBatcher::new(
            Arc::clone(&calls) as Arc<dyn Ecs>,
            clock,
            Box::new(|| 6),
        ));
        let scopes = [
            Scope::Home,
            Scope::Region("us-west-2".into()),
            Scope::Account {
                region: "eu-west-1".into(),
                account: "210987654321".into(),
            },
        ];
        let mut passes = tokio::task::JoinSet::new();
        for scope in &scopes {
            for service in ["web", "api"] {
                let (batcher, scope) = (Arc::clone(&batcher), scope.clone());
                passes.spawn(with_priority(Priority::Rollout, async move {
                    batcher
                        .describe_in(&scope, "prod", &[service.to_string()])
                        .await
                }));
            }
        }
        while let Some(answer) = passes.join_next().await {
            answer.unwrap().unwrap();
        }
        let mut calls = calls.0.lock().unwrap().clone();
        calls.sort();
        assert_eq!(calls.len(), 3, "one call per scope: {calls:?}");
        for ((scope, cluster, services), expected) in calls.iter().zip(&scopes) {
            assert_eq!(scope, expected);
            assert_eq!(cluster, "prod");
            assert_eq!(services.len(), 2, "{services:?}");
        }
    }
}
