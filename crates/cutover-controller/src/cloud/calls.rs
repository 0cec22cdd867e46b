//! The count of every AWS request attempt by service, operation and
//! outcome, with its latency. The AWS adapters record into it (an SDK
//! interceptor sees each attempt, retries included); the metrics and the
//! benchmark read it. It knows no SDK type, so the simulated cloud counts
//! its calls into the same registry.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds of the latency histogram, Prometheus style.
pub const LATENCY_BUCKETS: [Duration; 11] = [
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_millis(2500),
    Duration::from_secs(5),
    Duration::from_secs(10),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Ok,
    /// Rate limited: the attempt spent budget and achieved nothing.
    Throttled,
    /// Any other failure: a service error, a timeout, a dropped connection.
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::Throttled, Outcome::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Throttled => "throttled",
            Outcome::Error => "error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The labels of one counter. Services are IAM prefixes (`ecs`,
/// `elasticloadbalancing`, `dynamodb`) and operations the API's names
/// (`DescribeServices`): both come from a fixed set compiled into the SDK, so
/// they stay bounded as metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallKey {
    pub service: &'static str,
    pub operation: &'static str,
    pub outcome: Outcome,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallStats {
    pub count: u64,
    pub latency_sum: Duration,
    /// Attempts that took at most `LATENCY_BUCKETS[i]` (cumulative, so the
    /// last bucket's `+Inf` is `count`).
    pub latency_buckets: [u64; LATENCY_BUCKETS.len()],
}

impl CallStats {
    fn add(&mut self, latency: Duration) {
        self.count += 1;
        self.latency_sum += latency;
        for (bound, n) in LATENCY_BUCKETS.iter().zip(&mut self.latency_buckets) {
            if latency <= *bound {
                *n += 1;
            }
        }
    }
}

/// The shared registry: clone it freely, every clone counts into the same map.
#[derive(Clone, Debug, Default)]
pub struct ApiCalls {
    stats: Arc<Mutex<BTreeMap<CallKey, CallStats>>>,
}

impl ApiCalls {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn record(&self, key: CallKey, latency: Duration) {
        // A panic while holding this lock cannot leave a half-updated entry
        // worth refusing to read, so poisoning is ignored.
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        stats.entry(key).or_default().add(latency);
    }

    pub fn snapshot(&self) -> BTreeMap<CallKey, CallStats> {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Attempts of one operation, whatever their outcome.
    pub fn count(&self, service: &str, operation: &str) -> u64 {
        self.sum(|k| k.service == service && k.operation == operation)
    }

    pub fn count_outcome(&self, service: &str, operation: &str, outcome: Outcome) -> u64 {
        self.sum(|k| k.service == service && k.operation == operation && k.outcome == outcome)
    }

    /// Attempts of every operation of every service.
    pub fn total(&self) -> u64 {
        self.sum(|_| true)
    }

    fn sum(&self, matches: impl Fn(&CallKey) -> bool) -> u64 {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(k, _)| matches(k))
            .map(|(_, s)| s.count)
            .sum()
    }
}
