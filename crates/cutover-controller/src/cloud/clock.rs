//! Time for the IO side. The decision never reads a clock: the controller
//! passes `now` in. Simulations and the demo run on a scaled clock built on
//! tokio's timer, so a paused tokio runtime makes them deterministic.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::time::Timestamp;

#[async_trait]
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
    async fn sleep_until(&self, t: Timestamp);
    async fn sleep(&self, d: Duration) {
        let t = self.now() + d;
        self.sleep_until(t).await
    }
}

/// The real wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_system(SystemTime::now())
    }

    async fn sleep_until(&self, t: Timestamp) {
        let d = t.since(self.now());
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
}

/// A clock that starts at `epoch` and runs `factor` times faster than tokio's
/// timer. With a paused tokio runtime and factor 1 it is a fully simulated
/// clock that jumps straight to the next timer.
#[derive(Clone, Debug)]
pub struct ScaledClock {
    origin: tokio::time::Instant,
    epoch: Timestamp,
    factor: f64,
}

impl ScaledClock {
    /// Must be called inside a tokio runtime.
    pub fn new(epoch: Timestamp, factor: f64) -> Self {
        ScaledClock {
            origin: tokio::time::Instant::now(),
            epoch,
            factor: if factor > 0.0 { factor } else { 1.0 },
        }
    }
}

#[async_trait]
impl Clock for ScaledClock {
    fn now(&self) -> Timestamp {
        let real = self.origin.elapsed().as_secs_f64() * self.factor;
        self.epoch + Duration::from_secs_f64(real)
    }

    async fn sleep_until(&self, t: Timestamp) {
        let sim = t.since(self.now());
        if sim.is_zero() {
            return;
        }
        // Round up so a wake-up never lands just before the target time.
        let real =
            Duration::from_secs_f64(sim.as_secs_f64() / self.factor) + Duration::from_micros(1);
        tokio::time::sleep(real).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn scaled_clock_runs_faster_than_tokio_time() {
        let c = ScaledClock::new(Timestamp(1_000_000), 60.0);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(c.now(), Timestamp(1_060_000));
        let before = tokio::time::Instant::now();
        c.sleep(Duration::from_secs(120)).await;
        assert!(before.elapsed() >= Duration::from_secs(2));
        assert!(c.now() >= Timestamp(1_180_000));
    }
}
