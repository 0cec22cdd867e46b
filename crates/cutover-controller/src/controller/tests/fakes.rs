//! A small in-memory cloud (store, ECS and load balancer in one) with
//! injectable faults, and a record builder.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::cloud::{
    Change, Clock, CloudError, DesiredStore, Ecs, ErrorKind, LoadBalancer, Positioned, StatusWrite,
    StoredRecord,
};
use crate::rollout::command::CreateTaskSet;
use crate::rollout::{
    EcsService, Route, ServiceKey, ServiceState, Status, Stickiness, TargetCounts, TaskSet, Weights,
};

pub fn key(name: &str) -> ServiceKey {
    ServiceKey::new("prod", name)
}

pub fn listener(name: &str) -> Route {
    Route::Listener(format!(
        "arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/{name}/1/2"
    ))
}

pub fn target_group(name: &str, colour: &str) -> String {
    format!("arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/{name}-{colour}/1")
}

/// A valid record for `name`; `labels` steer the test policy.
pub fn record(name: &str, labels: &[(&str, &str)]) -> Value {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    json!({
        "task_definition": format!("{name}:1"),
        "container": name,
        "container_port": 8080,
        "production_listener": listener(name).arn(),
        "target_groups": [target_group(name, "blue"), target_group(name, "green")],
        "labels": labels,
    })
}

/// One call the cloud served, for comparing two runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub at: i64,
    pub operation: &'static str,
    pub target: String,
}

#[derive(Default)]
pub struct State {
    pub records: BTreeMap<ServiceKey, StoredRecord>,
    pub weights: BTreeMap<Route, Weights>,
    pub stickiness: BTreeMap<Route, Stickiness>,
    /// Operation name to the error it fails with, and how many more times
    /// (`None`: until cleared).
    pub faults: BTreeMap<&'static str, (CloudError, Option<u32>)>,
    /// Status writes that lose to another writer, per key.
    pub interference: BTreeMap<ServiceKey, u32>,
    pub watch_failures: u32,
    /// How long the change feed takes to open (to hold its position);
    /// writes made meanwhile are not in it, as with a stream read from its
    /// latest record.
    pub watch_delay: Duration,
    /// Whether the change feed also reports the controller's status writes,
    /// as a raw DynamoDB stream would.
    pub echo_status_writes: bool,
    pub feed: Option<mpsc::Sender<Change>>,
    /// Ends the open change feed with an error, as a stream that was
    /// disabled (and enabled again as a new stream) does.
    pub cut_feed: Option<oneshot::Sender<()>>,
    pub calls: Vec<Call>,
    pub describing: usize,
    pub most_describing: usize,
    pub describe_delay: Duration,
    pub set_weights_delay: Duration,
}

pub struct FakeCloud {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl FakeCloud {
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(FakeCloud {
            clock,
            state: Mutex::new(State::default()),
        })
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Writes a record's body, as the service's owner would.
    pub fn put(&self, key: &ServiceKey, body: Value) {
        let at = self.clock.now();
        let mut s = self.state();
        let entry = s.records.entry(key.clone()).or_insert(StoredRecord {
            key: key.clone(),
            body: Value::Null,
            status: None,
            status_version: 0,
            written_at: None,
            unreadable: Vec::new(),
        });
        entry.body = body;
        entry.written_at = Some(at);
        send_change(&s, key, at);
    }

    /// Ends the change feed with an error; writes from now until it is
    /// open again reach no one through it.
    pub fn cut_feed(&self) {
        let mut s = self.state();
        s.feed = None;
        if let Some(cut) = s.cut_feed.take() {
            let _ = cut.send(());
        }
    }

    pub fn delete(&self, key: &ServiceKey) {
        let at = self.clock.now();
        let mut s = self.state();
        s.records.remove(key);
        send_change(&s, key, at);
    }

    pub fn status(&self, key: &ServiceKey) -> Option<Status> {
        self.state().records.get(key).and_then(|r| r.status.clone())
    }

    pub fn weights(&self, route: &Route) -> Option<Weights> {
        self.state().weights.get(route).cloned()
    }

    pub fn fail(&self, operation: &'static str, error: CloudError, times: Option<u32>) {
        self.state().faults.insert(operation, (error, times));
    }

    pub fn heal(&self, operation: &'static str) {
        self.state().faults.remove(operation);
    }

    pub fn calls(&self, operation: &str) -> usize {
        let s = self.state();
        s.calls.iter().filter(|c| c.operation == operation).count()
    }

    /// Records the call and returns the injected fault, if any.
    fn enter(&self, operation: &'static str, target: String) -> Result<(), CloudError> {
        let at = self.clock.now().millis();
        let mut s = self.state();
        s.calls.push(Call {
            at,
            operation,
            target,
        });
        let Some((error, times)) = s.faults.get_mut(operation) else {
            return Ok(());
        };
        let error = error.clone();
        match times {
            Some(1) => {
                s.faults.remove(operation);
            }
            Some(n) => *n -= 1,
            None => {}
        }
        Err(error)
    }
}

fn send_change(s: &State, key: &ServiceKey, at: crate::time::Timestamp) {
    if let Some(feed) = &s.feed {
        let _ = feed.try_send(Change {
            key: key.clone(),
            at: Some(at),
        });
    }
}

#[async_trait]
impl DesiredStore for FakeCloud {
    async fn list(&self) -> Result<Vec<StoredRecord>, CloudError> {
        self.enter("list", String::new())?;
        Ok(self.state().records.values().cloned().collect())
    }

    async fn get(&self, key: &ServiceKey) -> Result<Option<StoredRecord>, CloudError> {
        self.enter("get", key.to_string())?;
        Ok(self.state().records.get(key).cloned())
    }

    async fn write_status(
        &self,
        key: &ServiceKey,
        expected: u64,
        status: &Status,
    ) -> Result<StatusWrite, CloudError> {
        self.enter("write_status", key.to_string())?;
        let at = self.clock.now();
        let mut s = self.state();
        if let Some(n) = s.interference.get_mut(key).filter(|n| **n > 0) {
            *n -= 1;
            if let Some(r) = s.records.get_mut(key) {
                r.status_version += 1;
            }
            return Ok(StatusWrite::Conflict);
        }
        let Some(r) = s.records.get_mut(key) else {
            return Ok(StatusWrite::Gone);
        };
        if r.status_version != expected {
            return Ok(StatusWrite::Conflict);
        }
        r.status_version += 1;
        r.status = Some(status.clone());
        let version = r.status_version;
        if s.echo_status_writes {
            send_change(&s, key, at);
        }
        Ok(StatusWrite::Written { version })
    }

    async fn watch(
        &self,
        changes: mpsc::Sender<Change>,
        positioned: Positioned,
    ) -> Result<(), CloudError> {
        self.enter("watch", String::new())?;
        let delay = self.state().watch_delay;
        self.clock.sleep(delay).await;
        let cut_off = {
            let mut s = self.state();
            if s.watch_failures > 0 {
                s.watch_failures -= 1;
                return Err(CloudError::new(
                    ErrorKind::Transient,
                    "dynamodb:GetRecords",
                    "stream unavailable",
                ));
            }
            s.feed = Some(changes);
            let (cut, cut_off) = oneshot::channel();
            s.cut_feed = Some(cut);
            let _ = positioned.send(());
            cut_off
        };
        match cut_off.await {
            Ok(()) => Err(CloudError::new(
                ErrorKind::Other,
                "dynamodb:DescribeTable",
                "the stream was replaced",
            )),
            // Nobody can cut it any more: it stays open.
            Err(_) => std::future::pending().await,
        }
    }
}

#[async_trait]
impl Ecs for FakeCloud {
    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<(String, ServiceState)>, CloudError> {
        self.enter(
            "describe_services",
            format!("{cluster}/{}", services.join(",")),
        )?;
        let delay = {
            let mut s = self.state();
            // Services, not calls: passes share calls.
            s.describing += services.len();
            s.most_describing = s.most_describing.max(s.describing);
            s.describe_delay
        };
        self.clock.sleep(delay).await;
        self.state().describing -= services.len();
        let service = EcsService {
            desired_count: 2,
            deployment_controller: "EXTERNAL".into(),
            native: None,
            task_sets: Vec::new(),
        };
        Ok(services
            .iter()
            .map(|name| (name.clone(), ServiceState::Found(service.clone())))
            .collect())
    }

    async fn create_task_set(
        &self,
        key: &ServiceKey,
        _request: &CreateTaskSet,
    ) -> Result<TaskSet, CloudError> {
        self.enter("create_task_set", key.to_string())?;
        Err(CloudError::new(
            ErrorKind::Invalid,
            "ecs:CreateTaskSet",
            "not modelled by the fake",
        ))
    }

    async fn set_primary(&self, key: &ServiceKey, task_set_arn: &str) -> Result<(), CloudError> {
        self.enter("set_primary", format!("{key} {task_set_arn}"))
    }

    async fn delete_task_set(
        &self,
        key: &ServiceKey,
        task_set_arn: &str,
    ) -> Result<(), CloudError> {
        self.enter("delete_task_set", format!("{key} {task_set_arn}"))
    }

    async fn stopped_tasks(
        &self,
        _key: &ServiceKey,
        _task_set_arn: &str,
    ) -> Result<u32, CloudError> {
        Ok(0)
    }
}

#[async_trait]
impl LoadBalancer for FakeCloud {
    async fn weights(&self, route: &Route) -> Result<Weights, CloudError> {
        self.enter("weights", route.arn().to_string())?;
        Ok(self.weights(route).unwrap_or_default())
    }

    async fn set_weights(&self, route: &Route, weights: &Weights) -> Result<(), CloudError> {
        self.enter("set_weights", route.arn().to_string())?;
        let delay = self.state().set_weights_delay;
        self.clock.sleep(delay).await;
        self.state().weights.insert(route.clone(), weights.clone());
        Ok(())
    }

    async fn stickiness(&self, route: &Route) -> Result<Stickiness, CloudError> {
        self.enter("stickiness", route.arn().to_string())?;
        Ok(self
            .state()
            .stickiness
            .get(route)
            .copied()
            .unwrap_or_default())
    }

    async fn set_stickiness(
        &self,
        route: &Route,
        stickiness: Stickiness,
    ) -> Result<(), CloudError> {
        self.enter("set_stickiness", route.arn().to_string())?;
        self.state().stickiness.insert(route.clone(), stickiness);
        Ok(())
    }

    async fn target_health(&self, target_group: &str) -> Result<TargetCounts, CloudError> {
        self.enter("target_health", target_group.to_string())?;
        Ok(TargetCounts {
            healthy: 2,
            ..TargetCounts::default()
        })
    }
}
