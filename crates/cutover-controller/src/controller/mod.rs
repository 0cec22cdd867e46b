//! The reconcile loop. It knows nothing of strategies: for each service it
//! observes, asks the decision what to do, carries it out and stores the
//! status, then looks again when the decision asked, on a change, or at the
//! next resync.

mod act;
mod admission;
mod backoff;
mod balance;
mod batch;
mod detect;
mod events;
mod feed;
mod halt;
mod health;
mod keeper;
mod observe;
mod policy;
mod publish;
mod queue;
mod readership;
mod reconcile;
mod relay;
mod releases;
mod seen;
mod shards;
mod sources;
mod unkeyed;
pub mod weights_batch;
mod worker;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cloud::{Checks, Clock, DesiredStore, Ecs, LoadBalancer, NoChecks};
use crate::cloud::{CodeDeploy, NoCodeDeploy, NoServiceDeployments, ServiceDeployments};
use crate::cloud::{Leases, Relay};
use crate::metrics::{LoopReadings, Metrics};
use crate::notice::Notify;
use crate::rollout::ServiceKey;
use crate::time::Timestamp;

// For loops that drive rollouts other than the controller's own (the
// benchmark's polling baseline).
pub use act::{CommandFailed, Ports as CommandPorts, execute as execute_commands};
pub use admission::Limits;
pub use events::{EVENT_BUFFER, EventReceiver, EventSender};
pub use health::{NotReady, ReadyRules, StoreState};
pub use shards::LeaseConfig;

use crate::cloud::budget::{ApiBudgets, Budgeted};
use backoff::{Backoff, Retries, STREAM_CHANGE_FEED, STREAM_RESYNC, STREAM_SERVICES};
use batch::DescribeBatcher;
use detect::Detection;
use health::StoreHealth;
use policy::Policy;
use queue::WorkQueue;
use readership::Readership;
use reconcile::Reconciler;
use shards::Ownership;
use sources::{FeedState, RelayFeed, RelayStats, Sources};
use weights_batch::WeightsBatcher;
use worker::Workers;

#[derive(Clone, Debug, PartialEq)]
pub struct ControllerConfig {
    /// How soon to look again while something is in motion.
    pub poll_interval: Duration,
    /// How often every record is listed and reconciled, whatever the feed says.
    pub resync_interval: Duration,
    /// How many services are reconciled at once.
    pub concurrency: usize,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Seeds the retry jitter, so a simulation replays exactly.
    pub seed: u64,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            poll_interval: Duration::from_secs(10),
            resync_interval: Duration::from_secs(5 * 60),
            concurrency: 8,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(5 * 60),
            seed: 0,
        }
    }
}

pub struct Controller {
    store: Arc<dyn DesiredStore>,
    ecs: Arc<dyn Ecs>,
    lb: Arc<dyn LoadBalancer>,
    checks: Arc<dyn Checks>,
    codedeploy: Arc<dyn CodeDeploy>,
    service_deployments: Arc<dyn ServiceDeployments>,
    notifier: Option<Arc<dyn Notify>>,
    clock: Arc<dyn Clock>,
    config: ControllerConfig,
    policy: Policy,
    queue: Arc<WorkQueue>,
    events: EventSender,
    synced: watch::Sender<bool>,
    metrics: Option<Arc<Metrics>>,
    /// At most so many rollouts in flight; no limit by default.
    limits: Limits,
    health: Arc<StoreHealth>,
    /// Present when replicas share the services through shard leases.
    leases: Option<(Arc<dyn Leases>, LeaseConfig, Arc<Ownership>)>,
    /// Whether this replica holds a feed lease; made with the leases.
    readership: Option<Arc<Readership>>,
    /// Present when replicas share one reading of the change stream.
    relay: Option<Arc<dyn Relay>>,
    relay_stats: Arc<RelayStats>,
    releases: Arc<releases::ActiveReleases>,
}

impl Controller {
    pub fn new(
        store: Arc<dyn DesiredStore>,
        ecs: Arc<dyn Ecs>,
        lb: Arc<dyn LoadBalancer>,
        clock: Arc<dyn Clock>,
        config: ControllerConfig,
    ) -> Self {
        Controller {
            store,
            ecs,
            lb,
            queue: WorkQueue::new(Arc::clone(&clock)),
            clock,
            config,
            policy: Policy::default(),
            checks: Arc::new(NoChecks),
            codedeploy: Arc::new(NoCodeDeploy),
            service_deployments: Arc::new(NoServiceDeployments),
            notifier: None,
            events: events::channel(),
            synced: watch::Sender::new(false),
            metrics: None,
            limits: Limits::default(),
            health: Arc::new(StoreHealth::default()),
            leases: None,
            readership: None,
            relay: None,
            relay_stats: Arc::new(RelayStats::default()),
            releases: Arc::new(releases::ActiveReleases::default()),
        }
    }

    /// Shares the services with other replicas: this controller reconciles
    /// only the services of shards whose lease it holds in `leases`, and
    /// writes every status under that lease. Without it, it drives every
    /// service and writes unfenced.
    pub fn with_leases(mut self, leases: Arc<dyn Leases>, config: LeaseConfig) -> Self {
        let ownership = Ownership::new(&config, Arc::clone(&self.clock));
        self.readership = Some(Readership::new(&config, Arc::clone(&self.clock)));
        self.leases = Some((leases, config, ownership));
        self
    }

    /// With leases: only the replicas holding one of the two feed leases
    /// read the records' change stream, and relay its changes through
    /// `relay` to the others, which poll it for their shards (DynamoDB
    /// Streams throttles a third reader). Without it, every replica reads
    /// the stream. Call it before [`Controller::handle`].
    pub fn with_relay(mut self, relay: Arc<dyn Relay>) -> Self {
        self.relay = Some(relay);
        self
    }

    /// The feed lease state, when the relay is on.
    fn shared_reading(&self) -> Option<&Arc<Readership>> {
        self.relay.as_ref().and(self.readership.as_ref())
    }

    /// Reaches analysis gates and lifecycle hooks through `checks`. Without
    /// it, gates never pass and hooks cannot be called.
    pub fn with_checks(mut self, checks: Arc<dyn Checks>) -> Self {
        self.checks = checks;
        self
    }

    /// Drives records with `driver = "codedeploy"` through `codedeploy`.
    /// Without it, such records report that they cannot be driven.
    pub fn with_codedeploy(mut self, codedeploy: Arc<dyn CodeDeploy>) -> Self {
        self.codedeploy = codedeploy;
        self
    }

    /// Drives records with `driver = "ecs_native"` through ECS's own
    /// service deployments. Without it, such records report that they
    /// cannot be driven.
    pub fn with_service_deployments(mut self, port: Arc<dyn ServiceDeployments>) -> Self {
        self.service_deployments = port;
        self
    }

    /// Tells the endpoints in each record's `notifications` about its
    /// rollouts' starts, steps, ends and rollbacks.
    pub fn with_notifier(mut self, notifier: impl Notify) -> Self {
        self.notifier = Some(Arc::new(notifier));
        self
    }

    /// Keeps every call to the store, ECS and the load balancer within
    /// `budgets`, shared with whatever else holds them.
    pub fn with_budgets(mut self, budgets: &Arc<ApiBudgets>) -> Self {
        self.store = Arc::new(Budgeted::new(self.store, Arc::clone(budgets)));
        self.ecs = Arc::new(Budgeted::new(self.ecs, Arc::clone(budgets)));
        self.lb = Arc::new(Budgeted::new(self.lb, Arc::clone(budgets)));
        self
    }

    /// Counts reconciles, rollouts, gates and detection latency into
    /// `metrics`, and keeps its per-service gauges.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Starts at most so many rollouts at once, overall, per cluster and
    /// per account, among the services this replica drives; the rest
    /// wait in the order their records were written.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    #[cfg(test)]
    fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Events of every applied decision, from now on.
    pub fn subscribe(&self) -> EventReceiver {
        self.events.subscribe()
    }

    pub fn handle(&self) -> ControllerHandle {
        ControllerHandle {
            queue: Arc::clone(&self.queue),
            synced: self.synced.subscribe(),
            events: self.events.clone(),
            health: Arc::clone(&self.health),
            ready_rules: ReadyRules::for_resync(self.config.resync_interval),
            ownership: self.leases.as_ref().map(|(_, _, o)| Arc::clone(o)),
            readership: self.shared_reading().cloned(),
            relay_stats: Arc::clone(&self.relay_stats),
            releases: Arc::clone(&self.releases),
        }
    }

    /// Runs until `shutdown` is cancelled. Then it takes no new work, lets
    /// passes in flight finish (commands and status write), and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let config = &self.config;
        let ownership = self.leases.as_ref().map(|(_, _, o)| Arc::clone(o));
        if let (Some(metrics), Some(ownership)) = (&self.metrics, &ownership) {
            let ownership = Arc::clone(ownership);
            metrics.show_services(Box::new(move |key| ownership.holds(key)));
        }
        let detection = Arc::new(Detection::new(self.clock.now()));
        let backoff =
            |stream| Backoff::new(config.backoff_base, config.backoff_max, config.seed, stream);
        let batcher = {
            let queue = Arc::clone(&self.queue);
            let in_flight = Box::new(move || queue.in_flight());
            Arc::new(DescribeBatcher::new(
                Arc::clone(&self.ecs),
                Arc::clone(&self.clock),
                in_flight,
            ))
        };
        let weights = {
            let queue = Arc::clone(&self.queue);
            Arc::new(WeightsBatcher::new(
                Arc::clone(&self.lb),
                Arc::clone(&self.clock),
                Box::new(move || queue.in_flight()),
            ))
        };
        let halt = halt::HaltWatch::new(Arc::clone(&self.store), self.metrics.clone());
        let admissions = self.limits.any().then(|| {
            Arc::new(admission::Admissions::new(
                self.limits,
                config.poll_interval,
                self.metrics.clone(),
            ))
        });
        let workers = Arc::new(Workers {
            queue: Arc::clone(&self.queue),
            batcher: Arc::clone(&batcher),
            weights: Arc::clone(&weights),
            reconciler: Arc::new(Reconciler {
                ports: reconcile::Ports {
                    store: Arc::clone(&self.store),
                    ecs: batcher,
                    lb: Arc::clone(&weights) as Arc<dyn LoadBalancer>,
                    checks: Arc::clone(&self.checks),
                    codedeploy: Arc::clone(&self.codedeploy),
                    service_deployments: Arc::clone(&self.service_deployments),
                    clock: Arc::clone(&self.clock),
                },
                observers: reconcile::Observers {
                    events: self.events.clone(),
                    notifier: self.notifier.clone(),
                    metrics: self.metrics.clone(),
                    detection: Arc::clone(&detection),
                    health: Arc::clone(&self.health),
                },
                policy: self.policy,
                ownership: ownership.clone(),
                seen: seen::Seen::default(),
                halt: Arc::clone(&halt),
                admissions: admissions.clone(),
            }),
            clock: Arc::clone(&self.clock),
            retries: Mutex::new(Retries::new(backoff(STREAM_SERVICES))),
            poll_interval: config.poll_interval,
            resync_interval: config.resync_interval,
            metrics: self.metrics.clone(),
        });
        let relay = match (&self.relay, &self.leases, self.shared_reading()) {
            (Some(relay), Some((leases, lease_config, _)), Some(readership)) => Some(RelayFeed {
                relay: Arc::clone(relay),
                leases: Arc::clone(leases),
                readership: Arc::clone(readership),
                poll: lease_config.relay_poll,
                stats: Arc::clone(&self.relay_stats),
            }),
            _ => None,
        };
        let releases = releases::Releases::new(
            Arc::clone(&self.store),
            Arc::clone(&self.clock),
            Arc::clone(&halt),
            Arc::clone(&self.queue),
            ownership.clone(),
            self.metrics.clone(),
            Arc::clone(&self.releases),
        );
        let sources = Arc::new(Sources {
            admissions,
            releases: Arc::clone(&releases),
            relay,
            store: Arc::clone(&self.store),
            queue: Arc::clone(&self.queue),
            clock: Arc::clone(&self.clock),
            health: Arc::clone(&self.health),
            detection,
            unkeyed: unkeyed::Unkeyed::new(
                Arc::clone(&self.store),
                Arc::clone(&self.clock),
                ownership.clone(),
            ),
            ownership,
        });
        let mut leasing = JoinSet::new();
        let stop_leasing = CancellationToken::new();
        if let Some((leases, lease_config, ownership)) = &self.leases {
            let keeper = keeper::Keeper {
                leases: Arc::clone(leases),
                ownership: Arc::clone(ownership),
                config: lease_config.clone(),
                clock: Arc::clone(&self.clock),
                readership: self.shared_reading().cloned(),
            };
            leasing.spawn(keeper.run(stop_leasing.clone()));
            leasing.spawn(keeper::schedule_gained(
                Arc::clone(&self.store),
                Arc::clone(&self.queue),
                Arc::clone(ownership),
                Arc::clone(&self.clock),
                shutdown.clone(),
            ));
        }

        let mut feeding = JoinSet::new();
        // The first listing waits for the feed to hold its position, so that
        // a change made while it runs, or after, cannot wait for the next
        // resync.
        let (feed_state, feed_watch) = watch::channel(FeedState::Opening);
        feeding.spawn({
            let (sources, shutdown) = (Arc::clone(&sources), shutdown.clone());
            let backoff = backoff(STREAM_CHANGE_FEED);
            async move { sources.follow_changes(backoff, feed_state, shutdown).await }
        });
        feeding.spawn({
            let (sources, shutdown) = (Arc::clone(&sources), shutdown.clone());
            let (interval, synced) = (config.resync_interval, self.synced.clone());
            let backoff = backoff(STREAM_RESYNC);
            async move {
                sources
                    .resync(interval, backoff, synced, feed_watch, shutdown)
                    .await
            }
        });
        feeding.spawn(releases.run(config.poll_interval, shutdown.clone()));
        feeding.spawn(halt.run(
            Arc::clone(&self.queue),
            Arc::clone(&self.clock),
            config.poll_interval,
            shutdown.clone(),
        ));
        let mut working = JoinSet::new();
        // Zero workers would accept work and never do it.
        let concurrency = config.concurrency.max(1);
        // A quarter of the workers (at least one) never run drift checks.
        if concurrency > 1 {
            self.queue
                .limit_listed(concurrency - (concurrency / 4).max(1));
        }
        for _ in 0..concurrency {
            working.spawn(Arc::clone(&workers).work());
        }

        shutdown.cancelled().await;
        tracing::info!(
            in_flight = self.queue.in_flight(),
            "shutting down: finishing reconciles in flight"
        );
        self.queue.close();
        while let Some(done) = working.join_next().await {
            if let Err(e) = done {
                tracing::error!("a worker stopped abnormally: {e}");
            }
        }
        while let Some(done) = feeding.join_next().await {
            if let Err(e) = done {
                tracing::error!("a work source stopped abnormally: {e}");
            }
        }
        // Only now: the passes that ran under the leases have finished.
        stop_leasing.cancel();
        while let Some(done) = leasing.join_next().await {
            if let Err(e) = done {
                tracing::error!("the lease keeper stopped abnormally: {e}");
            }
        }
        tracing::info!("controller stopped");
    }
}

/// What the rest of the process may see of a running controller.
#[derive(Clone)]
pub struct ControllerHandle {
    queue: Arc<WorkQueue>,
    synced: watch::Receiver<bool>,
    events: EventSender,
    health: Arc<StoreHealth>,
    ready_rules: ReadyRules,
    ownership: Option<Arc<Ownership>>,
    readership: Option<Arc<Readership>>,
    relay_stats: Arc<RelayStats>,
    releases: Arc<releases::ActiveReleases>,
}

impl ControllerHandle {
    /// Looks at the release under `item` (`release:<name>`) from the next
    /// poll, rather than from the next resync (a start through the API).
    pub fn release_written(&self, item: &str) {
        self.releases.learn(item);
    }

    /// Whether the controller can do its job at `now`: it has listed every
    /// record once, and the desired-state table answers.
    pub fn readiness(&self, now: Timestamp) -> Result<(), NotReady> {
        health::readiness(
            self.is_synced(),
            &self.health.state(),
            now,
            self.ready_rules,
        )
    }

    /// How the last requests to the desired-state table went.
    pub fn store_state(&self) -> StoreState {
        self.health.state()
    }

    /// Services waiting to be reconciled, due or not.
    pub fn queue_depth(&self) -> usize {
        self.queue.depth()
    }

    pub fn in_flight(&self) -> usize {
        self.queue.in_flight()
    }

    /// How long the longest-waiting due service has waited for a worker.
    pub fn oldest_due_age(&self) -> Duration {
        self.queue.oldest_due_age()
    }

    /// Whether every record has been listed and scheduled at least once.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits for the first full sync; false if the controller went away first.
    pub async fn synced(&self) -> bool {
        self.synced.clone().wait_for(|s| *s).await.is_ok()
    }

    pub fn subscribe(&self) -> EventReceiver {
        self.events.subscribe()
    }

    /// The shards whose leases this replica holds; `None` when it does not
    /// share the services with other replicas.
    pub fn shards(&self) -> Option<Vec<u32>> {
        self.ownership.as_ref().map(|o| o.shards())
    }

    /// Whether this replica reads the records' change stream itself: always
    /// without the relay; with it, only while it holds a feed lease (the
    /// others follow the relay).
    pub fn reads_stream(&self) -> bool {
        self.readership.as_ref().is_none_or(|r| r.reads())
    }

    /// Polls of the relay so far (none while this replica reads the stream).
    pub fn relay_polls(&self) -> u64 {
        self.relay_stats
            .polls
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Shards whose records were listed because the relay could not say
    /// what changed in them: first seen, or more changed than it keeps.
    pub fn relay_listings(&self) -> u64 {
        self.relay_stats
            .listed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// When `key` is next due to be reconciled, if it is scheduled.
    pub fn next_due(&self, key: &ServiceKey) -> Option<Timestamp> {
        self.queue.due(key)
    }

    /// Reconciles `key` as soon as a worker is free (e.g. on request from the API).
    pub fn reconcile_now(&self, key: ServiceKey) {
        self.queue.schedule_now(key);
    }
}

/// The metrics read the loop through its handle.
impl LoopReadings for ControllerHandle {
    fn queue_depth(&self) -> usize {
        ControllerHandle::queue_depth(self)
    }

    fn oldest_due_age(&self) -> Duration {
        ControllerHandle::oldest_due_age(self)
    }

    fn in_flight(&self) -> usize {
        ControllerHandle::in_flight(self)
    }

    fn reads_stream(&self) -> bool {
        ControllerHandle::reads_stream(self)
    }

    fn relay_polls(&self) -> u64 {
        ControllerHandle::relay_polls(self)
    }

    fn relay_listings(&self) -> u64 {
        ControllerHandle::relay_listings(self)
    }
}
