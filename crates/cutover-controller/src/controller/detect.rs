//! Detection latency: how long a record's write waited before the
//! controller first acted on its revision. It measures the change feed, the
//! resync and the queue together, as the person who wrote the record feels it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::rollout::{Revision, ServiceKey};
use crate::time::Timestamp;

#[derive(Debug)]
pub struct Detection {
    /// Writes from before the controller started are not its latency: a
    /// restart mid-rollout would otherwise report hours.
    started: Timestamp,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The revision each service was last acted on for.
    acted: HashMap<ServiceKey, Revision>,
    /// When the change feed last reported a write, for records that do not
    /// say when they were written.
    changed: HashMap<ServiceKey, Timestamp>,
}

impl Detection {
    pub fn new(started: Timestamp) -> Self {
        Detection {
            started,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn changed(&self, key: &ServiceKey, at: Timestamp) {
        self.state().changed.insert(key.clone(), at);
    }

    /// The latency to report when a decision for `revision` has commands:
    /// `Some` only the first time, and only for a write this controller saw.
    pub fn first_action(
        &self,
        key: &ServiceKey,
        revision: &Revision,
        written_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Option<Duration> {
        let mut state = self.state();
        if state.acted.get(key) == Some(revision) {
            return None;
        }
        state.acted.insert(key.clone(), revision.clone());
        let written = written_at.or_else(|| state.changed.get(key).copied())?;
        (written >= self.started).then(|| now.since(written))
    }

    pub fn forget(&self, key: &ServiceKey) {
        let mut state = self.state();
        state.acted.remove(key);
        state.changed.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_700_000_000_000);

    fn at(s: u64) -> Timestamp {
        T0 + Duration::from_secs(s)
    }

    #[test]
    fn reports_once_per_revision_from_its_write() {
        let d = Detection::new(T0);
        let key = ServiceKey::new("prod", "web");
        let r1 = Revision::from_raw("aaaa");
        assert_eq!(
            d.first_action(&key, &r1, Some(at(10)), at(12)),
            Some(Duration::from_secs(2))
        );
        assert_eq!(d.first_action(&key, &r1, Some(at(10)), at(30)), None);
        let r2 = Revision::from_raw("bbbb");
        assert_eq!(
            d.first_action(&key, &r2, Some(at(40)), at(41)),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn writes_before_startup_are_not_reported() {
        let d = Detection::new(at(100));
        let key = ServiceKey::new("prod", "web");
        let r = Revision::from_raw("aaaa");
        assert_eq!(d.first_action(&key, &r, Some(at(10)), at(101)), None);
    }

    #[test]
    fn the_change_feed_time_stands_in_for_a_missing_write_time() {
        let d = Detection::new(T0);
        let key = ServiceKey::new("prod", "web");
        d.changed(&key, at(5));
        let r = Revision::from_raw("aaaa");
        assert_eq!(
            d.first_action(&key, &r, None, at(8)),
            Some(Duration::from_secs(3))
        );
    }
}
