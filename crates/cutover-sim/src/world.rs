//! The world: every piece of simulated state, and the scheduled events that
//! move it forward. It evolves lazily: callers advance it to the clock's time
//! before each look or change, and events run in time order.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::alb::{Action, LoadBalancers};
use super::config::SimConfig;
use super::ecs::Services;
use super::faults::Faults;
use super::in_flight::InFlight;
use super::invariants::Invariants;
use super::leases::LeaseTable;
use super::limits::Limiter;
use super::registry::Registry;
use super::store::Records;
use super::targets::TargetState;
use crate::rollout::ServiceKey;
use crate::time::Timestamp;

/// One line of the event log or of the violations, at sim time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub at: Timestamp,
    pub text: String,
}

impl fmt::Display for LogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.at, self.text)
    }
}

/// A task, wherever it lives.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TaskRef {
    pub key: ServiceKey,
    pub task_set: String,
    pub task: u64,
}

#[derive(Clone, Debug)]
pub(crate) enum Event {
    TaskRunning(TaskRef),
    /// ECS stops the task and starts a replacement.
    TaskReplaced {
        task: TaskRef,
        reason: &'static str,
    },
    TargetHealth {
        target_group: String,
        target: String,
        generation: u64,
        state: TargetState,
    },
    TargetGone {
        target_group: String,
        target: String,
        generation: u64,
    },
    TaskSetGone {
        key: ServiceKey,
        task_set: String,
    },
    RouteVisible {
        route: String,
        version: u64,
        actions: Vec<Action>,
    },
    /// The next occurrence of a churn knob (see `SimConfig::churn`).
    Churn(super::churn::ChurnKind),
    /// An outage the world caused on a target group is over: exposure on it
    /// counts again from here.
    ExcuseEnds {
        target_group: String,
    },
    /// Sticky clients of a route may have stopped coming: re-check it.
    StickyExpired {
        route: String,
    },
    /// What an ECS service deployment was doing is done (a stage, a bake,
    /// a rollback step); events of an older `generation` are stale.
    NativeStep {
        key: ServiceKey,
        arn: String,
        generation: u64,
    },
    /// A pause hook's timeout.
    NativeHookTimeout {
        key: ServiceKey,
        arn: String,
        hook_id: String,
    },
}

pub(crate) struct World {
    pub now: Timestamp,
    pub rng: ChaCha8Rng,
    /// Churn draws from a generator of its own, so turning it on does not
    /// shift any other draw of a seed.
    pub churn_rng: ChaCha8Rng,
    /// The faults of calls on the fleet's own items (the halt, releases)
    /// draw from a generator of their own too: the controller reads the
    /// halt at every poll, and a seed's other draws stay as they were.
    pub fleet_rng: ChaCha8Rng,
    /// Since when the fleet-wide halt item has been in the table.
    pub halted_since: Option<Timestamp>,
    pub config: SimConfig,
    pub faults: Faults,
    pub services: Services,
    pub registry: Registry,
    pub lb: LoadBalancers,
    pub records: Records,
    pub leases: LeaseTable,
    pub in_flight: InFlight,
    pub checks: Invariants,
    pub calls: BTreeMap<&'static str, u64>,
    pub limits: Limiter,
    log: Vec<LogEntry>,
    /// Ties between events at the same instant run in scheduling order.
    queue: BTreeMap<(Timestamp, u64), Event>,
    sequence: u64,
}

impl World {
    pub fn new(now: Timestamp, rng: ChaCha8Rng, config: SimConfig, faults: Faults) -> World {
        World {
            now,
            rng,
            churn_rng: ChaCha8Rng::seed_from_u64(0),
            fleet_rng: ChaCha8Rng::seed_from_u64(0x000f_1ee7),
            halted_since: None,
            config,
            faults,
            services: Services::default(),
            registry: Registry::default(),
            lb: LoadBalancers::default(),
            records: Records::default(),
            leases: LeaseTable::default(),
            in_flight: InFlight::default(),
            checks: Invariants::default(),
            calls: BTreeMap::new(),
            limits: Limiter::default(),
            log: Vec::new(),
            queue: BTreeMap::new(),
            sequence: 0,
        }
    }

    pub fn schedule(&mut self, at: Timestamp, event: Event) {
        self.sequence += 1;
        self.queue.insert((at.max(self.now), self.sequence), event);
    }

    /// Runs every event due by `t`, each at its own time, then stands at `t`.
    pub fn advance_to(&mut self, t: Timestamp) {
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > t {
                break;
            }
            let ((at, _), event) = entry.remove_entry();
            self.now = self.now.max(at);
            self.handle(event);
        }
        self.now = self.now.max(t);
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::TaskRunning(task) => self.task_running(&task),
            Event::TaskReplaced { task, reason } => self.replace_task(&task, reason),
            Event::TargetHealth {
                target_group,
                target,
                generation,
                state,
            } => self.target_health_changed(&target_group, &target, generation, state),
            Event::TargetGone {
                target_group,
                target,
                generation,
            } => self.target_gone(&target_group, &target, generation),
            Event::TaskSetGone { key, task_set } => self.task_set_gone(&key, &task_set),
            Event::RouteVisible {
                route,
                version,
                actions,
            } => self.route_visible(&route, version, actions),
            Event::Churn(kind) => self.churn(kind),
            Event::ExcuseEnds { target_group } => self.target_group_changed(&target_group),
            Event::StickyExpired { route } => self.route_changed(&route),
            Event::NativeStep {
                key,
                arn,
                generation,
            } => self.native_step(&key, &arn, generation),
            Event::NativeHookTimeout { key, arn, hook_id } => {
                self.native_hook_timeout(&key, &arn, &hook_id)
            }
        }
    }

    pub fn log(&mut self, text: impl Into<String>) {
        if self.config.keep_log {
            self.log.push(LogEntry {
                at: self.now,
                text: text.into(),
            });
        }
    }

    pub fn log_entries(&self) -> &[LogEntry] {
        &self.log
    }

    pub fn draw(&mut self, range: (Duration, Duration)) -> Duration {
        super::faults::between(&mut self.rng, range)
    }

    /// Lowercase hex, as in load balancer and target group ids.
    pub fn hex_id(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from_digit(self.rng.random_range(0..16u32), 16).unwrap_or('0'))
            .collect()
    }

    /// Decimal digits, as in task set ids (`ecs-svc/1234567890123456789`).
    pub fn digits(&mut self, len: usize) -> String {
        (0..len)
            .map(|i| {
                let lo = if i == 0 { 1 } else { 0 };
                char::from_digit(self.rng.random_range(lo..10u32), 10).unwrap_or('0')
            })
            .collect()
    }
}
