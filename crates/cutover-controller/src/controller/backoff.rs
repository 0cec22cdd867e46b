//! Retry delays after failures: exponential, capped, and jittered from a
//! seeded generator so a simulation replays the same delays for the same seed.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::rollout::ServiceKey;

/// Separate generator streams, so the order in which the change feed, the
/// resync and the services fail does not shift each other's delays.
pub(crate) const STREAM_SERVICES: u64 = 0;
pub(crate) const STREAM_CHANGE_FEED: u64 = 1;
pub(crate) const STREAM_RESYNC: u64 = 2;

#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    rng: ChaCha8Rng,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration, seed: u64, stream: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Backoff { base, max, rng }
    }

    /// The delay before retry number `attempt` (1 for the first retry). The
    /// ceiling doubles with each attempt up to `max`; the delay is drawn from
    /// the ceiling's upper half, so services that failed together (a
    /// throttled API) spread their retries out yet never retry too eagerly.
    pub fn delay(&mut self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let ceiling = self.base.saturating_mul(1u32 << doublings).min(self.max);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let floor_ms = ceiling_ms / 2;
        Duration::from_millis(self.rng.random_range(floor_ms..=ceiling_ms))
    }
}

/// Consecutive failures per service, for the delay before its next retry.
#[derive(Debug)]
pub struct Retries {
    backoff: Backoff,
    failures: BTreeMap<ServiceKey, u32>,
}

impl Retries {
    pub fn new(backoff: Backoff) -> Self {
        Retries {
            backoff,
            failures: BTreeMap::new(),
        }
    }

    /// Counts a failure and returns how long to wait before retrying.
    pub fn failed(&mut self, key: &ServiceKey) -> Duration {
        let n = self.bump(key);
        self.backoff.delay(n)
    }

    /// A status write lost a race: the first retry is immediate (someone
    /// else moved the record on, so read it again), but repeated conflicts back
    /// off so two writers cannot spin against each other.
    pub fn conflicted(&mut self, key: &ServiceKey) -> Duration {
        match self.bump(key) {
            1 => Duration::ZERO,
            n => self.backoff.delay(n - 1),
        }
    }

    pub fn succeeded(&mut self, key: &ServiceKey) {
        self.failures.remove(key);
    }

    pub fn forget(&mut self, key: &ServiceKey) {
        self.failures.remove(key);
    }

    #[cfg(test)]
    pub fn failures(&self, key: &ServiceKey) -> u32 {
        self.failures.get(key).copied().unwrap_or(0)
    }

    fn bump(&mut self, key: &ServiceKey) -> u32 {
        let n = self.failures.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff(seed: u64) -> Backoff {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(60), seed, 0)
    }

    #[test]
    fn delays_double_within_their_jitter_band_until_the_cap() {
        let mut b = backoff(7);
        for attempt in 1..=10u32 {
            let ceiling = Duration::from_secs(1 << (attempt - 1)).min(Duration::from_secs(60));
            let d = b.delay(attempt);
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "attempt {attempt}: {d:?} outside {:?}..={ceiling:?}",
                ceiling / 2
            );
        }
    }

    #[test]
    fn delays_never_exceed_the_cap_even_after_many_attempts() {
        let mut b = backoff(1);
        for attempt in [20, 31, 32, 1_000, u32::MAX] {
            let d = b.delay(attempt);
            assert!(d <= Duration::from_secs(60), "{attempt}: {d:?}");
            assert!(d >= Duration::from_secs(30), "{attempt}: {d:?}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_delays() {
        let run = |seed| {
            let mut b = backoff(seed);
            (1..=8).map(|a| b.delay(a)).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn success_resets_a_services_failures() {
        let key = ServiceKey::new("prod", "web");
        let mut r = Retries::new(backoff(3));
        r.failed(&key);
        r.failed(&key);
        let third = r.failed(&key);
        assert!(third >= Duration::from_secs(2));
        r.succeeded(&key);
        assert_eq!(r.failures(&key), 0);
        assert!(r.failed(&key) <= Duration::from_secs(1));
    }

    #[test]
    fn a_first_conflict_retries_at_once_and_repeated_ones_back_off() {
        let key = ServiceKey::new("prod", "web");
        let mut r = Retries::new(backoff(3));
        assert_eq!(r.conflicted(&key), Duration::ZERO);
        assert!(r.conflicted(&key) >= Duration::from_millis(500));
    }
}
