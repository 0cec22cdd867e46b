//! How the simulated world behaves: timings and realism switches.

use std::time::Duration;

/// Target group health check settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub interval: Duration,
    /// Consecutive passing checks before a target is healthy.
    pub healthy_threshold: u32,
    /// Consecutive failing checks before a target is unhealthy.
    pub unhealthy_threshold: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            interval: Duration::from_secs(5),
            healthy_threshold: 2,
            unhealthy_threshold: 2,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// How long a task stays PENDING, drawn per task.
    pub task_start: (Duration, Duration),
    /// How long a `CrashLoop` task runs before it stops, drawn per task.
    pub crash_after: (Duration, Duration),
    pub health_check: HealthCheck,
    /// How long a deregistered target drains before it disappears.
    pub deregistration_delay: Duration,
    /// How long a listener or rule change takes to become visible, drawn per change.
    pub visibility_delay: (Duration, Duration),
    /// `false` reports task set counts as `None`, like the AWS emulator.
    pub report_counts: bool,
    /// ECS stops tasks whose target turns unhealthy and starts replacements.
    pub replace_unhealthy: bool,
    /// Keep the event log (turn off for large benchmarks).
    pub keep_log: bool,
    /// How long a record change takes to reach change feed readers, drawn
    /// per change (DynamoDB Streams propagation plus the reader's polling).
    pub feed_delay: (Duration, Duration),
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            task_start: (Duration::from_secs(10), Duration::from_secs(30)),
            crash_after: (Duration::from_secs(20), Duration::from_secs(60)),
            health_check: HealthCheck::default(),
            deregistration_delay: Duration::from_secs(30),
            visibility_delay: (Duration::ZERO, Duration::from_secs(2)),
            report_counts: true,
            replace_unhealthy: true,
            keep_log: true,
            feed_delay: (Duration::ZERO, Duration::ZERO),
        }
    }
}
