//! What this replica knows it has seen and written of each service, beyond
//! the stored status: under which lease it last read the production
//! weights, the status version it last stored, and whether a rollout was in
//! flight when it last read or stored the status. Lost on restart, which
//! only means looking once more.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use crate::rollout::ServiceKey;

/// Which lease a pass runs under: a fencing token, or none when one
/// replica drives every service.
pub type Tenure = Option<u64>;

#[derive(Debug, Default)]
pub struct Seen {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    weights_read: HashMap<ServiceKey, Tenure>,
    status_written: HashMap<ServiceKey, u64>,
    in_flight: HashSet<ServiceKey>,
}

impl Seen {
    /// Whether a pass under `tenure` must read `key`'s production weights
    /// although its decision does not ask: the first pass of this process,
    /// and the first under each newly taken lease. Whoever drove the
    /// service before may have had a weight change on its way.
    pub fn weights_unread(&self, key: &ServiceKey, tenure: Tenure) -> bool {
        self.lock().weights_read.get(key) != Some(&tenure)
    }

    /// A pass that read the weights under `tenure` went through.
    pub fn weights_read(&self, key: &ServiceKey, tenure: Tenure) {
        self.lock().weights_read.insert(key.clone(), tenure);
    }

    /// The status of `key` was stored at `version`, by this replica or (as
    /// a consistent read showed) by whoever wrote it last.
    pub fn status_written(&self, key: &ServiceKey, version: u64) {
        self.lock().status_written.insert(key.clone(), version);
    }

    /// Whether a record read at `version` (by a `Scan`, which may return an
    /// older version of an item than a consistent read) is older than the
    /// status this replica last stored or read consistently for it.
    /// Versions only grow while the item lives; a whole-item put starts
    /// them again, and the consistent read that follows a refusal here
    /// finds that out.
    pub fn older_than_written(&self, key: &ServiceKey, version: u64) -> bool {
        self.lock()
            .status_written
            .get(key)
            .is_some_and(|&written| version < written)
    }

    /// The status of `key`, as last read or stored, has a rollout in
    /// flight (`true`) or none.
    pub fn rollout(&self, key: &ServiceKey, in_flight: bool) {
        let mut inner = self.lock();
        if in_flight {
            inner.in_flight.insert(key.clone());
        } else {
            inner.in_flight.remove(key);
        }
    }

    /// Whether `key` had a rollout in flight when its status was last read
    /// or stored: its traffic may be split, so a failed pass must not leave
    /// it unwatched for longer than a poll.
    pub fn rollout_in_flight(&self, key: &ServiceKey) -> bool {
        self.lock().in_flight.contains(key)
    }

    pub fn forget(&self, key: &ServiceKey) {
        let mut inner = self.lock();
        inner.weights_read.remove(key);
        inner.status_written.remove(key);
        inner.in_flight.remove(key);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A few map operations per critical section: a panic in one leaves
        // the maps consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_read_once_per_lease() {
        let seen = Seen::default();
        let key = ServiceKey::new("c", "s");
        assert!(seen.weights_unread(&key, Some(3)));
        seen.weights_read(&key, Some(3));
        assert!(!seen.weights_unread(&key, Some(3)));
        assert!(
            seen.weights_unread(&key, Some(4)),
            "a new lease looks again"
        );
        seen.forget(&key);
        assert!(seen.weights_unread(&key, Some(4)));
    }

    #[test]
    fn a_rollout_in_flight_is_remembered_until_it_ends_or_is_forgotten() {
        let seen = Seen::default();
        let key = ServiceKey::new("c", "s");
        assert!(!seen.rollout_in_flight(&key));
        seen.rollout(&key, true);
        assert!(seen.rollout_in_flight(&key));
        seen.rollout(&key, false);
        assert!(!seen.rollout_in_flight(&key));
        seen.rollout(&key, true);
        seen.forget(&key);
        assert!(!seen.rollout_in_flight(&key));
    }

    #[test]
    fn a_scan_older_than_the_last_status_written_is_refused() {
        let seen = Seen::default();
        let key = ServiceKey::new("c", "s");
        assert!(!seen.older_than_written(&key, 0), "nothing written yet");
        seen.status_written(&key, 7);
        assert!(seen.older_than_written(&key, 6));
        assert!(!seen.older_than_written(&key, 7));
        assert!(!seen.older_than_written(&key, 9));
    }
}
