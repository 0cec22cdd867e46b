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
    /// How far behind the table a `Scan` may be: each item a scan returns
    /// is as it was up to this long ago, drawn per item. Zero: scans are
    /// up to date.
    pub scan_staleness: Duration,
    /// Tasks of healthy versions failing and being replaced, and service
    /// auto scaling: all off unless a scenario turns them on.
    pub churn: Churn,
    /// How long each stage of an ECS service deployment takes (services on
    /// the ECS deployment controller), drawn per stage.
    pub native_stage_time: (Duration, Duration),
    /// How far behind DescribeServiceDeployments and
    /// ListServiceDeployments are: they show each deployment as it was this
    /// long ago (ECS's API is eventually consistent; how far behind these
    /// two reads may be is not documented). Zero: up to date.
    pub native_read_lag: Duration,
}

/// Seeded misbehaviour of a healthy fleet. Each knob is the range the time
/// until its next occurrence is drawn from, across the whole world; `None`
/// (the default) turns it off, so tests that do not ask for churn keep
/// meaning what they meant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Churn {
    /// A running task of a healthy version stops (host retirement, a crash)
    /// and ECS starts a replacement, whose target is `initial` before it is
    /// `healthy`.
    pub task_replacement: Option<(Duration, Duration)>,
    /// Every task of a service's oldest live task set (the side that served
    /// before a rollout) fails its health checks at once; ECS replaces them,
    /// so its target group has no healthy target for a while.
    pub old_side_outage: Option<(Duration, Duration)>,
    /// Service auto scaling sets a service's `desiredCount` to a count drawn
    /// from `autoscaling_counts`.
    pub autoscaling: Option<(Duration, Duration)>,
    pub autoscaling_counts: (u32, u32),
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
            scan_staleness: Duration::ZERO,
            churn: Churn::default(),
            native_stage_time: (Duration::from_secs(5), Duration::from_secs(15)),
            native_read_lag: Duration::ZERO,
        }
    }
}
