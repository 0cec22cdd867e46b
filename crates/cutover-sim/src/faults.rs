//! Seeded API faults per API group: throttling, 5xx, lost replies and
//! latency, the ways AWS misbehaves under load.

use std::time::Duration;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::cloud::ErrorKind;

/// The request budgets AWS enforces separately, so faults follow them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiGroup {
    EcsRead,
    EcsMutation,
    ElbRead,
    ElbMutation,
    Store,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FaultProfile {
    /// Probability of `ErrorKind::Throttled`.
    pub throttled: f64,
    /// Probability of `ErrorKind::Transient` before anything happens.
    pub transient: f64,
    /// Mutations only: probability that the change is applied but the caller
    /// gets `ErrorKind::Transient`, as when a response is lost. This is what
    /// idempotency tokens and read-back verification exist for.
    pub lost_reply: f64,
    /// Simulated latency, drawn uniformly from this inclusive range.
    pub latency: (Duration, Duration),
}

impl FaultProfile {
    /// No errors and no latency.
    pub const NONE: FaultProfile = FaultProfile {
        throttled: 0.0,
        transient: 0.0,
        lost_reply: 0.0,
        latency: (Duration::ZERO, Duration::ZERO),
    };

    /// Errors with the given probabilities and a typical AWS latency.
    pub fn flaky(throttled: f64, transient: f64) -> FaultProfile {
        FaultProfile {
            throttled,
            transient,
            ..FaultProfile::default()
        }
    }
}

impl Default for FaultProfile {
    fn default() -> Self {
        FaultProfile {
            latency: (Duration::from_millis(10), Duration::from_millis(100)),
            ..FaultProfile::NONE
        }
    }
}

/// One fault profile per API group. The default has no errors and 10-100 ms
/// of latency everywhere.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    pub ecs_read: FaultProfile,
    pub ecs_mutation: FaultProfile,
    pub elb_read: FaultProfile,
    pub elb_mutation: FaultProfile,
    pub store: FaultProfile,
}

impl Faults {
    pub fn none() -> Faults {
        Faults::uniform(FaultProfile::NONE)
    }

    pub fn uniform(profile: FaultProfile) -> Faults {
        Faults {
            ecs_read: profile.clone(),
            ecs_mutation: profile.clone(),
            elb_read: profile.clone(),
            elb_mutation: profile.clone(),
            store: profile,
        }
    }

    pub fn get(&self, group: ApiGroup) -> &FaultProfile {
        match group {
            ApiGroup::EcsRead => &self.ecs_read,
            ApiGroup::EcsMutation => &self.ecs_mutation,
            ApiGroup::ElbRead => &self.elb_read,
            ApiGroup::ElbMutation => &self.elb_mutation,
            ApiGroup::Store => &self.store,
        }
    }
}

/// What happens to one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Proceed,
    Fail(ErrorKind),
    LoseReply,
}

/// Draws the verdict and the latency of one call. Always draws the same
/// number of values, so changing one probability does not reshuffle every
/// later draw of the seed.
pub(crate) fn roll(rng: &mut ChaCha8Rng, profile: &FaultProfile) -> (Verdict, Duration) {
    let (throttled, transient, lost) = (
        rng.random_bool(probability(profile.throttled)),
        rng.random_bool(probability(profile.transient)),
        rng.random_bool(probability(profile.lost_reply)),
    );
    let latency = between(rng, profile.latency);
    let verdict = if throttled {
        Verdict::Fail(ErrorKind::Throttled)
    } else if transient {
        Verdict::Fail(ErrorKind::Transient)
    } else if lost {
        Verdict::LoseReply
    } else {
        Verdict::Proceed
    };
    (verdict, latency)
}

fn probability(p: f64) -> f64 {
    if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) }
}

/// A duration drawn uniformly from an inclusive range, whichever way round
/// it was given.
pub(crate) fn between(rng: &mut ChaCha8Rng, (a, b): (Duration, Duration)) -> Duration {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let (lo, hi) = (lo.as_millis() as u64, hi.as_millis() as u64);
    Duration::from_millis(rng.random_range(lo..=hi))
}
