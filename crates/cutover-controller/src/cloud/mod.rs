//! Ports: the narrow traits through which the controller touches the world.
//! The AWS adapters and the simulated cloud implement the same traits, and
//! speak only the domain's types.

pub mod budget;
pub mod calls;
pub mod clock;
pub mod codedeploy;
pub mod error;
pub mod gather;
pub mod halt;
pub mod lease;
pub mod observe;
pub mod relay;
pub mod releases;
pub mod scopes;
pub mod service_deployments;
pub mod stopped;
pub mod write;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::rollout::command::CreateTaskSet;
use crate::rollout::gate::{Probe, Reading, Verdict};
use crate::rollout::hook::{HookAnswer, HookPayload};
use crate::rollout::key::KeyError;
use crate::rollout::schema::Unreadable;
use crate::rollout::{
    RecordError, Route, Scope, ServiceKey, ServiceState, Spec, Status, Stickiness, TargetCounts,
    TaskSet, Weights, parse_written,
};
use crate::time::Timestamp;

pub use clock::{Clock, ScaledClock, SystemClock};
pub use codedeploy::{CodeDeploy, DeploymentBatcher, NoCodeDeploy};
pub use error::{CloudError, ErrorKind};
pub use lease::{FeedFence, Fence, Leases};
pub use relay::Relay;
pub use service_deployments::{NoServiceDeployments, ServiceDeployments};
pub use write::{Precondition, SpecChanges, SpecWrite};

/// A record as stored: the writer's attributes and the controller's status.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRecord {
    pub key: ServiceKey,
    /// Every attribute of the item except `status` and `status_version`, as JSON.
    pub body: serde_json::Value,
    /// `None` when the item has no status yet, or when it cannot be decoded
    /// (the controller then rebuilds it from the live service).
    pub status: Option<Status>,
    /// Opaque concurrency token of the status attribute, for conditional writes.
    pub status_version: u64,
    /// When the writer last changed the record, where known.
    pub written_at: Option<Timestamp>,
    /// Values in the body that the store could not give a JSON form (a
    /// DynamoDB binary or set); the body holds null in their place.
    pub unreadable: Vec<Unreadable>,
}

impl StoredRecord {
    /// The record's spec, or everything wrong with it, the store's
    /// unreadable values included.
    pub fn spec(&self) -> Result<Spec, RecordError> {
        parse_written(&self.key, &self.body, &self.unreadable)
    }
}

/// Told once a change feed holds a position in every open part of the
/// stream: every change made from then on will be delivered. Dropped unsent
/// when the feed fails before that.
pub type Positioned = tokio::sync::oneshot::Sender<()>;

/// A record changed; the controller reconciles its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub key: ServiceKey,
    pub at: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusWrite {
    Written {
        version: u64,
    },
    /// Someone else wrote the status since it was read: re-read and decide again.
    Conflict,
    /// The record was deleted.
    Gone,
    /// The writer no longer holds the lease of the record's shard: another
    /// replica drives this service now.
    Fenced,
    /// The item would outgrow DynamoDB's 400 KB limit with this status (the
    /// record and the status share one item); nothing was written.
    TooLarge,
    /// Another write on the record or on the lease item was in flight, and
    /// DynamoDB cancelled this one for the conflict; nothing was written.
    /// Trying the same write again shortly is safe.
    Contended,
}

/// An item whose `service` attribute is not a `<cluster>/<service>` key.
/// It names no service, but its writer still gets a status saying why.
#[derive(Clone, Debug, PartialEq)]
pub struct UnkeyedRecord {
    /// The `service` attribute as written.
    pub given: String,
    pub error: KeyError,
    /// The writer's attributes, as JSON (without `status`).
    pub body: serde_json::Value,
    pub status: Option<Status>,
    pub status_version: u64,
}

/// An item of the table that holds no service's record but the fleet's
/// own controls: the halt (`rollout::halt::HALT_ITEM`) and releases. Any
/// tool may write one, so its attributes are read as JSON and judged by
/// whoever reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetItem {
    /// The key attribute as written.
    pub name: String,
    /// Every attribute except `status` and `status_version`, as JSON.
    pub body: serde_json::Value,
    /// The status the controller wrote, as JSON.
    pub status: Option<serde_json::Value>,
    pub status_version: u64,
}

/// Every item of the table: the records, and the items whose key is not
/// a service's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Listing {
    pub records: Vec<StoredRecord>,
    pub unkeyed: Vec<UnkeyedRecord>,
}

/// The desired-state table.
#[async_trait]
pub trait DesiredStore: Send + Sync {
    /// Every record (a full, paginated read).
    async fn list(&self) -> Result<Vec<StoredRecord>, CloudError>;
    /// Like `list`, with the items whose key is not `<cluster>/<service>`
    /// besides, so the controller can answer them. Stores that cannot hold
    /// such an item (test doubles keyed by service) have none.
    async fn scan(&self) -> Result<Listing, CloudError> {
        Ok(Listing {
            records: self.list().await?,
            unkeyed: Vec::new(),
        })
    }
    /// Writes only the status attribute of the item whose `service` is
    /// `given`, only if it still exists and its status is at `expected`:
    /// never a new item.
    async fn write_unkeyed_status(
        &self,
        given: &str,
        expected: u64,
        status: &Status,
    ) -> Result<StatusWrite, CloudError> {
        let _ = (expected, status);
        Err(CloudError::new(
            ErrorKind::Invalid,
            "dynamodb:UpdateItem",
            format!(
                "this store holds no item under {}",
                crate::rollout::unkeyed::quote_key(given)
            ),
        ))
    }
    async fn get(&self, key: &ServiceKey) -> Result<Option<StoredRecord>, CloudError>;
    /// The fleet item under `name`, read consistently. Stores that hold
    /// only records (test doubles keyed by service) hold none.
    async fn get_item(&self, name: &str) -> Result<Option<FleetItem>, CloudError> {
        let _ = name;
        Ok(None)
    }
    /// `write_spec` for a fleet item: sets and removes its attributes in
    /// one conditional write, and always sets `updated_at`.
    async fn write_item(
        &self,
        name: &str,
        changes: &SpecChanges,
        precondition: Precondition,
    ) -> Result<SpecWrite, CloudError> {
        let _ = (changes, precondition);
        Err(no_item_writes("dynamodb:UpdateItem", name))
    }
    /// Removes the fleet item under `name` if `precondition` holds (never
    /// `Absent`); removing one that is not there is no error.
    async fn delete_item(
        &self,
        name: &str,
        precondition: Precondition,
    ) -> Result<SpecWrite, CloudError> {
        let _ = precondition;
        Err(no_item_writes("dynamodb:DeleteItem", name))
    }
    /// Writes only the status attribute of the fleet item under `name`,
    /// only if it still exists and its status is at `expected`.
    async fn write_item_status(
        &self,
        name: &str,
        expected: u64,
        status: &serde_json::Value,
    ) -> Result<StatusWrite, CloudError> {
        let _ = (expected, status);
        Err(CloudError::new(
            ErrorKind::Other,
            "dynamodb:UpdateItem",
            format!(
                "this store holds no item under {}",
                crate::rollout::unkeyed::quote_key(name)
            ),
        ))
    }
    /// Writes only the status attribute, only if its version is still `expected`.
    async fn write_status(
        &self,
        key: &ServiceKey,
        expected: u64,
        status: &Status,
    ) -> Result<StatusWrite, CloudError>;
    /// Like `write_status`, and only while `fence` still holds the lease of
    /// the record's shard (checked in the same atomic write). Stores that
    /// cannot check a lease refuse, rather than write unfenced.
    async fn write_status_fenced(
        &self,
        key: &ServiceKey,
        expected: u64,
        status: &Status,
        fence: &Fence,
    ) -> Result<StatusWrite, CloudError> {
        let _ = (expected, status);
        Err(CloudError::new(
            ErrorKind::Invalid,
            "dynamodb:TransactWriteItems",
            format!(
                "this store cannot fence the status of {key} with the lease of shard {}",
                fence.shard
            ),
        ))
    }
    /// Sends changed keys until the feed ends or fails, and tells
    /// `positioned` as soon as no later change can be missed. The controller
    /// falls back to periodic resync when it returns.
    async fn watch(
        &self,
        changes: mpsc::Sender<Change>,
        positioned: Positioned,
    ) -> Result<(), CloudError>;
    /// The writers' side (the CLI, the API): sets and removes attributes of
    /// the record in one conditional write, creating it under
    /// `Precondition::Absent`, and always sets `updated_at`. It never touches
    /// `status` or `status_version`; naming them (or the key, or
    /// `updated_at`) is an `ErrorKind::Invalid` error. The record is not
    /// validated here: writers check it with `rollout::parse_record` first.
    ///
    /// Stores that only ever serve the controller (test doubles) need not
    /// take writes, hence the default.
    async fn write_spec(
        &self,
        key: &ServiceKey,
        changes: &SpecChanges,
        precondition: Precondition,
    ) -> Result<SpecWrite, CloudError> {
        let _ = (changes, precondition);
        Err(CloudError::new(
            ErrorKind::Other,
            "dynamodb:UpdateItem",
            format!("this store takes no writes to the record of {key}"),
        ))
    }
}

/// What a store that holds only records (a test double) answers a write
/// to the fleet item `name`.
fn no_item_writes(operation: &'static str, name: &str) -> CloudError {
    CloudError::new(
        ErrorKind::Other,
        operation,
        format!(
            "this store takes no writes to {}",
            crate::rollout::unkeyed::quote_key(name)
        ),
    )
}

/// ECS services that use the EXTERNAL deployment controller.
#[async_trait]
pub trait Ecs: Send + Sync {
    /// Up to 10 services of one cluster in one call; task sets come inline.
    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<(String, ServiceState)>, CloudError>;
    /// Like `describe_services`, for a cluster in `scope` (another region
    /// or account). Ports that reach only the controller's own account and
    /// region (the simulated cloud, test doubles) refuse any other.
    async fn describe_in(
        &self,
        scope: &Scope,
        cluster: &str,
        services: &[String],
    ) -> Result<Vec<(String, ServiceState)>, CloudError> {
        if scope.is_home() {
            return self.describe_services(cluster, services).await;
        }
        Err(CloudError::new(
            ErrorKind::Invalid,
            "ecs:DescribeServices",
            format!(
                "this controller reaches no ECS cluster outside its own account and region, \
                 and cluster {cluster} is in {}",
                scope.to_string().trim_end_matches(':')
            ),
        ))
    }
    async fn create_task_set(
        &self,
        key: &ServiceKey,
        request: &CreateTaskSet,
    ) -> Result<TaskSet, CloudError>;
    async fn set_primary(&self, key: &ServiceKey, task_set_arn: &str) -> Result<(), CloudError>;
    async fn delete_task_set(&self, key: &ServiceKey, task_set_arn: &str)
    -> Result<(), CloudError>;
    /// Tasks of this task set that stopped since it was created (for the
    /// task failure gate).
    async fn stopped_tasks(&self, key: &ServiceKey, task_set_arn: &str) -> Result<u32, CloudError>;
}

/// Analysis gates and lifecycle hooks: calls to the service owners' own
/// endpoints (HTTP checks, Prometheus, CloudWatch alarms, webhooks).
#[async_trait]
pub trait Checks: Send + Sync {
    /// One reading of one gate. Never an error: a check that cannot be made
    /// (timeout, refused connection, bad answer) is a failing reading that says why.
    async fn read(&self, key: &ServiceKey, probe: &Probe) -> Reading;
    /// Calls a hook. `Some` when it answered with its verdict at once, `None`
    /// when it accepted the call and will report later through the API.
    async fn call_hook(
        &self,
        url: &str,
        payload: &HookPayload,
    ) -> Result<Option<(HookAnswer, String)>, CloudError>;
}

/// For a controller that has no way to reach gates or hooks: every reading
/// says so, and no gate ever passes.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoChecks;

#[async_trait]
impl Checks for NoChecks {
    async fn read(&self, _key: &ServiceKey, probe: &Probe) -> Reading {
        Reading {
            at: Timestamp::EPOCH,
            verdict: Verdict::Inconclusive,
            detail: format!(
                "gate {} cannot be checked: this controller has no checker",
                probe.name()
            ),
        }
    }

    async fn call_hook(
        &self,
        _url: &str,
        payload: &HookPayload,
    ) -> Result<Option<(HookAnswer, String)>, CloudError> {
        Err(CloudError::new(
            ErrorKind::Invalid,
            "hook:Call",
            format!(
                "hook {} cannot be called: this controller has no checker",
                payload.hook
            ),
        ))
    }
}

/// The Application Load Balancer's weighted forward actions and target health.
#[async_trait]
pub trait LoadBalancer: Send + Sync {
    async fn weights(&self, route: &Route) -> Result<Weights, CloudError>;
    /// The weights of several routes, one answer per route in order, in as
    /// few calls as the API allows (`DescribeListeners` and `DescribeRules`
    /// take many ARNs): ELB's describe budget paces a fleet-wide release.
    async fn weights_of(&self, routes: &[Route]) -> Vec<Result<Weights, CloudError>> {
        let mut answers = Vec::with_capacity(routes.len());
        for route in routes {
            answers.push(self.weights(route).await);
        }
        answers
    }
    /// Sets the weights of the named target groups, keeping everything else
    /// in the action and the rule as it was.
    async fn set_weights(&self, route: &Route, weights: &Weights) -> Result<(), CloudError>;
    /// The group-level stickiness of the route's forward action (disabled,
    /// with duration 0, when it has none).
    async fn stickiness(&self, route: &Route) -> Result<Stickiness, CloudError>;
    /// Sets the group-level stickiness of the route's forward action,
    /// keeping everything else in the action and the rule as it was.
    async fn set_stickiness(&self, route: &Route, stickiness: Stickiness)
    -> Result<(), CloudError>;
    async fn target_health(&self, target_group: &str) -> Result<TargetCounts, CloudError>;
}

/// ARNs per `DescribeListeners` or `DescribeRules` call. ELB documents no
/// limit; this keeps each request and its answer small.
pub const ROUTES_PER_DESCRIBE: usize = 20;

/// The describe calls [`LoadBalancer::weights_of`] makes for `routes`, as
/// indices into `routes`: listeners and rules apart, routes of each account
/// and region apart (one call reaches one), [`ROUTES_PER_DESCRIBE`] to a
/// call.
pub fn describe_calls(routes: &[Route]) -> Vec<Vec<usize>> {
    // By kind (rules after listeners), then by the ARN's region and account.
    type Call<'a> = (bool, Option<(&'a str, &'a str)>);
    let mut groups: std::collections::BTreeMap<Call<'_>, Vec<usize>> =
        std::collections::BTreeMap::new();
    for (i, route) in routes.iter().enumerate() {
        let rule = matches!(route, Route::Rule(_));
        let place = crate::rollout::account::arn_region_account(route.arn());
        groups.entry((rule, place)).or_default().push(i);
    }
    groups
        .into_values()
        .flat_map(|group| {
            group
                .chunks(ROUTES_PER_DESCRIBE)
                .map(<[usize]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect()
}
