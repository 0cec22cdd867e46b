//! Building a simulated cloud for a scenario.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::Notify;

use super::config::{HealthCheck, SimConfig};
use super::faults::Faults;
use super::limits::{Limiter, RateLimits};
use super::world::World;
use super::{Inner, SimCloud};
use crate::cloud::{Clock, ScaledClock};
use crate::time::Timestamp;

/// Where the default clock starts: a fixed instant, so logs of a seed match.
pub const DEFAULT_EPOCH: Timestamp = Timestamp(1_700_000_000_000);

pub struct SimBuilder {
    seed: u64,
    clock: Option<Arc<dyn Clock>>,
    config: SimConfig,
    faults: Faults,
    limits: RateLimits,
}

impl SimBuilder {
    pub fn new(seed: u64) -> SimBuilder {
        SimBuilder {
            seed,
            clock: None,
            config: SimConfig::default(),
            faults: Faults::default(),
            limits: RateLimits::default(),
        }
    }

    /// Without one, a `ScaledClock` at factor 1 starting at `DEFAULT_EPOCH`
    /// (deterministic only on a paused tokio runtime).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    pub fn config(mut self, config: SimConfig) -> Self {
        self.config = config;
        self
    }

    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    pub fn task_start(mut self, min: Duration, max: Duration) -> Self {
        self.config.task_start = (min, max);
        self
    }

    pub fn crash_after(mut self, min: Duration, max: Duration) -> Self {
        self.config.crash_after = (min, max);
        self
    }

    pub fn health_check(mut self, check: HealthCheck) -> Self {
        self.config.health_check = check;
        self
    }

    pub fn deregistration_delay(mut self, d: Duration) -> Self {
        self.config.deregistration_delay = d;
        self
    }

    pub fn visibility_delay(mut self, min: Duration, max: Duration) -> Self {
        self.config.visibility_delay = (min, max);
        self
    }

    pub fn report_counts(mut self, report: bool) -> Self {
        self.config.report_counts = report;
        self
    }

    pub fn replace_unhealthy(mut self, replace: bool) -> Self {
        self.config.replace_unhealthy = replace;
        self
    }

    /// Scans return each record as it was up to `max` ago (eventually
    /// consistent reads); `GetItem` stays consistent.
    pub fn scan_staleness(mut self, max: Duration) -> Self {
        self.config.scan_staleness = max;
        self
    }

    pub fn feed_delay(mut self, min: Duration, max: Duration) -> Self {
        self.config.feed_delay = (min, max);
        self
    }

    /// Throttles calls past AWS's request budgets, as AWS does.
    pub fn rate_limits(mut self, limits: RateLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Healthy tasks failing and being replaced, and auto scaling (all off
    /// by default).
    pub fn churn(mut self, churn: super::config::Churn) -> Self {
        self.config.churn = churn;
        self
    }

    /// How long each stage of an ECS service deployment takes.
    pub fn native_stage_time(mut self, min: Duration, max: Duration) -> Self {
        self.config.native_stage_time = (min, max);
        self
    }

    /// DescribeServiceDeployments and ListServiceDeployments show each
    /// deployment as it was `lag` ago.
    pub fn native_read_lag(mut self, lag: Duration) -> Self {
        self.config.native_read_lag = lag;
        self
    }

    pub fn keep_log(mut self, keep: bool) -> Self {
        self.config.keep_log = keep;
        self
    }

    pub fn build(self) -> SimCloud {
        let clock = self
            .clock
            .unwrap_or_else(|| Arc::new(ScaledClock::new(DEFAULT_EPOCH, 1.0)));
        let mut world = World::new(
            clock.now(),
            ChaCha8Rng::seed_from_u64(self.seed),
            self.config,
            self.faults,
        );
        world.limits = Limiter::new(self.limits);
        world.churn_rng = ChaCha8Rng::seed_from_u64(self.seed ^ super::churn::CHURN_SEED);
        world.start_churn();
        world.log(format!("simulation starts with seed {}", self.seed));
        SimCloud {
            inner: Arc::new(Inner {
                seed: self.seed,
                clock,
                world: Mutex::new(world),
                changes: Notify::new(),
            }),
        }
    }
}
