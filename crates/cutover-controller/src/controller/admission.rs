//! Concurrency limits: at most so many rollouts in flight overall, per
//! cluster and per account, the rest waiting in a fair queue. The passes of
//! a replica share one [`Admissions`]; each decision whose rollout would
//! start is handed its admission (`rollout::admission`), and a limit only
//! ever delays a start, never a rollout in flight or a rollback.
//!
//! Counts are per replica: with shard leases each replica counts the
//! services it drives. A count shared by every replica would need a counter
//! item written in the same transaction as every status that starts or ends
//! a rollout, and a lost lease would leave its slots taken.
//!
//! A pass learns whether its service has a rollout in flight from every
//! status it reads or stores. It asks for a slot only when its decision
//! would start a rollout (the decision is taken as if admitted first; see
//! `reconcile`): services that are steady never hold a slot nor queue.
//! A slot given is counted at once, so two passes at the same moment cannot
//! both take the last one; the pass that took it gives it back when it ends
//! without storing a rollout.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::metrics::Metrics;
use crate::rollout::ServiceKey;
use crate::rollout::admission::Admission;
use crate::time::Timestamp;

/// How many rollouts may be in flight at once, each bound optional.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Over every service this replica drives.
    pub rollouts: Option<u32>,
    /// In one cluster (a cluster of another region or account is another).
    pub per_cluster: Option<u32>,
    /// In one AWS account.
    pub per_account: Option<u32>,
}

impl Limits {
    /// Whether any bound is set.
    pub fn any(&self) -> bool {
        self.rollouts.is_some() || self.per_cluster.is_some() || self.per_account.is_some()
    }
}

/// How a service holds its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    /// Its stored status has a rollout in flight.
    Running,
    /// Given to a pass that has not stored its rollout yet.
    Given,
}

#[derive(Clone, Copy, Debug)]
struct Waiting {
    /// Its place: when its record was written, where known, else when it
    /// first asked.
    since: Timestamp,
    /// When it last asked: one that stopped asking leaves the queue.
    asked_at: Timestamp,
}

#[derive(Default)]
struct State {
    holds: BTreeMap<ServiceKey, Hold>,
    waiting: BTreeMap<ServiceKey, Waiting>,
    /// Whether the rollouts in flight of a whole listing were counted: until
    /// then no start is admitted, so a replica that just started cannot
    /// admit one beside a rollout it has not seen yet.
    counted: bool,
}

/// The bounds a service falls under, as counted.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Slots {
    cluster: String,
    account: String,
}

impl Slots {
    fn of(key: &ServiceKey) -> Slots {
        let cluster = match (key.scope.region(), key.scope.account()) {
            (None, _) => key.cluster.clone(),
            (Some(region), None) => format!("{region}:{}", key.cluster),
            (Some(region), Some(account)) => format!("{region}:{account}:{}", key.cluster),
        };
        let account = key
            .scope
            .account()
            .map_or_else(|| "(this account)".to_string(), str::to_string);
        Slots { cluster, account }
    }
}

#[derive(Default)]
struct Counts {
    all: u32,
    clusters: BTreeMap<String, u32>,
    accounts: BTreeMap<String, u32>,
}

impl Counts {
    fn add(&mut self, s: &Slots) {
        self.all += 1;
        *self.clusters.entry(s.cluster.clone()).or_default() += 1;
        *self.accounts.entry(s.account.clone()).or_default() += 1;
    }

    /// The first bound that has no slot left for `s`, in words.
    fn full(&self, limits: &Limits, s: &Slots) -> Option<String> {
        let at = |n: Option<&u32>, limit: u32| n.copied().unwrap_or(0) >= limit;
        if let Some(l) = limits.per_cluster
            && at(self.clusters.get(&s.cluster), l)
        {
            return Some(format!("{l} per cluster {}", s.cluster));
        }
        if let Some(l) = limits.per_account
            && at(self.accounts.get(&s.account), l)
        {
            return Some(format!("{l} per account {}", s.account));
        }
        if let Some(l) = limits.rollouts
            && self.all >= l
        {
            return Some(format!("{l} in all"));
        }
        None
    }
}

/// The rollouts a replica counts, and the services waiting to start one.
pub struct Admissions {
    limits: Limits,
    /// A service that asked no more for this long leaves the queue (its
    /// record changed, its shard moved): it would hold its place for good.
    forget_after: Duration,
    state: Mutex<State>,
    metrics: Option<Arc<Metrics>>,
}

impl Admissions {
    /// `poll` is how soon a queued service asks again.
    pub fn new(limits: Limits, poll: Duration, metrics: Option<Arc<Metrics>>) -> Admissions {
        let admissions = Admissions {
            limits,
            forget_after: (poll * 6).max(Duration::from_secs(60)),
            state: Mutex::new(State::default()),
            metrics,
        };
        admissions.show(&admissions.lock());
        admissions
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn show(&self, state: &State) {
        if let Some(m) = &self.metrics {
            m.admissions(state.holds.len(), state.waiting.len());
        }
    }

    /// The service's status as read or stored: whether it has a rollout in
    /// flight. A slot given to a pass is kept until the pass ends.
    pub fn seen(&self, key: &ServiceKey, in_flight: bool) {
        let mut state = self.lock();
        if in_flight {
            state.holds.insert(key.clone(), Hold::Running);
            state.waiting.remove(key);
        } else if state.holds.get(key) == Some(&Hold::Running) {
            state.holds.remove(key);
        }
        self.show(&state);
    }

    /// Every rollout in flight of a complete listing has been `seen`.
    pub fn listing_counted(&self) {
        self.lock().counted = true;
    }

    /// The service's decision would start a rollout: whether it may, now.
    /// `since` is when its record was written, its place in the queue.
    pub fn admit(&self, key: &ServiceKey, since: Option<Timestamp>, now: Timestamp) -> Admission {
        let mut state = self.lock();
        if state.holds.contains_key(key) {
            return Admission::Admitted;
        }
        if !state.counted {
            return Admission::Queued {
                ahead: 0,
                limit: "not yet known: this replica counts the rollouts in flight at its first listing of the table".into(),
            };
        }
        let forget_after = self.forget_after;
        state
            .waiting
            .retain(|k, w| k == key || now.since(w.asked_at) <= forget_after);
        let entry = state.waiting.entry(key.clone()).or_insert(Waiting {
            since: since.unwrap_or(now),
            asked_at: now,
        });
        entry.asked_at = now;
        let mut counts = Counts::default();
        for k in state.holds.keys() {
            counts.add(&Slots::of(k));
        }
        let mut order: Vec<(Timestamp, &ServiceKey)> = state
            .waiting
            .iter()
            .filter(|(k, _)| !state.holds.contains_key(*k))
            .map(|(k, w)| (w.since, k))
            .collect();
        order.sort();
        let mine = Slots::of(key);
        let mut ahead = 0;
        let mut verdict = None;
        for (_, k) in order {
            let slots = Slots::of(k);
            if k == key {
                verdict = Some(counts.full(&self.limits, &mine));
                break;
            }
            // One asked before: it takes its slot first, where it fits.
            if self.compete(&slots, &mine) {
                ahead += 1;
            }
            if counts.full(&self.limits, &slots).is_none() {
                counts.add(&slots);
            }
        }
        let admission = match verdict.flatten() {
            None => {
                state.holds.insert(key.clone(), Hold::Given);
                Admission::Admitted
            }
            Some(limit) => Admission::Queued { ahead, limit },
        };
        self.show(&state);
        admission
    }

    /// Whether two services wait for a slot of the same bound.
    fn compete(&self, a: &Slots, b: &Slots) -> bool {
        self.limits.rollouts.is_some()
            || (self.limits.per_cluster.is_some() && a.cluster == b.cluster)
            || (self.limits.per_account.is_some() && a.account == b.account)
    }

    /// The service's decision would start no rollout: it waits for nothing.
    pub fn withdraw(&self, key: &ServiceKey) {
        let mut state = self.lock();
        if state.waiting.remove(key).is_some() {
            self.show(&state);
        }
    }

    /// The service's pass ended: a slot given to it that it did not take
    /// (no rollout stored: the write lost, a command failed) is free again.
    /// It keeps its place in the queue.
    pub fn pass_ended(&self, key: &ServiceKey) {
        let mut state = self.lock();
        if state.holds.get(key) == Some(&Hold::Given) {
            state.holds.remove(key);
            self.show(&state);
        }
    }

    /// The record is gone, or another replica drives the service now.
    pub fn forget(&self, key: &ServiceKey) {
        let mut state = self.lock();
        let held = state.holds.remove(key).is_some();
        if state.waiting.remove(key).is_some() || held {
            self.show(&state);
        }
    }

    /// Services counted in flight, and waiting.
    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize) {
        let state = self.lock();
        (state.holds.len(), state.waiting.len())
    }
}

/// Ends a pass's hold on a slot it was given but did not take, however the
/// pass ends.
pub struct PassSlot<'a> {
    admissions: Option<&'a Admissions>,
    key: &'a ServiceKey,
}

impl<'a> PassSlot<'a> {
    pub fn new(admissions: Option<&'a Admissions>, key: &'a ServiceKey) -> PassSlot<'a> {
        PassSlot { admissions, key }
    }
}

impl Drop for PassSlot<'_> {
    fn drop(&mut self) {
        if let Some(a) = self.admissions {
            a.pass_ended(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(cluster: &str, service: &str) -> ServiceKey {
        ServiceKey::new(cluster, service)
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000 + s * 1000)
    }

    fn per_cluster(n: u32) -> Admissions {
        let limits = Limits {
            per_cluster: Some(n),
            ..Limits::default()
        };
        let a = Admissions::new(limits, Duration::from_secs(10), None);
        a.listing_counted();
        a
    }

    #[test]
    fn the_first_to_ask_take_the_slots_at_once_and_the_next_is_queued_behind_them() {
        let a = per_cluster(2);
        let now = at(100);
        assert_eq!(
            a.admit(&key("prod", "a"), Some(at(1)), now),
            Admission::Admitted
        );
        assert_eq!(
            a.admit(&key("prod", "b"), Some(at(2)), now),
            Admission::Admitted
        );
        assert_eq!(
            a.admit(&key("prod", "c"), Some(at(3)), now),
            Admission::Queued {
                ahead: 0,
                limit: "2 per cluster prod".into()
            }
        );
        assert_eq!(
            a.admit(&key("prod", "d"), Some(at(4)), now),
            Admission::Queued {
                ahead: 1,
                limit: "2 per cluster prod".into()
            }
        );
        // Another cluster has slots of its own.
        assert_eq!(
            a.admit(&key("stage", "e"), Some(at(5)), now),
            Admission::Admitted
        );
    }

    #[test]
    fn a_freed_slot_goes_to_the_one_written_first_whoever_asks_first() {
        let a = per_cluster(1);
        let now = at(100);
        a.admit(&key("prod", "a"), Some(at(1)), now);
        a.seen(&key("prod", "a"), true);
        a.admit(&key("prod", "b"), Some(at(2)), now);
        a.admit(&key("prod", "c"), Some(at(3)), now);
        a.seen(&key("prod", "a"), false);
        assert!(matches!(
            a.admit(&key("prod", "c"), Some(at(3)), now),
            Admission::Queued { ahead: 1, .. }
        ));
        assert_eq!(
            a.admit(&key("prod", "b"), Some(at(2)), now),
            Admission::Admitted
        );
    }

    #[test]
    fn a_slot_given_to_a_pass_that_stored_no_rollout_is_free_again_and_the_place_kept() {
        let a = per_cluster(1);
        let now = at(100);
        let b = key("prod", "b");
        assert_eq!(a.admit(&b, Some(at(2)), now), Admission::Admitted);
        drop(PassSlot::new(Some(&a), &b));
        assert_eq!(a.counts(), (0, 1));
        assert!(matches!(
            a.admit(&key("prod", "c"), Some(at(3)), now),
            Admission::Queued { .. }
        ));
        assert_eq!(a.admit(&b, Some(at(2)), now), Admission::Admitted);
        a.seen(&b, true);
        drop(PassSlot::new(Some(&a), &b));
        assert_eq!(a.counts(), (1, 1), "b runs; c waits");
    }

    #[test]
    fn an_earlier_waiter_that_does_not_fit_holds_up_no_one_else() {
        let limits = Limits {
            rollouts: Some(3),
            per_cluster: Some(1),
            ..Limits::default()
        };
        let a = Admissions::new(limits, Duration::from_secs(10), None);
        a.listing_counted();
        let now = at(100);
        a.admit(&key("prod", "a"), Some(at(1)), now);
        a.admit(&key("prod", "b"), Some(at(2)), now);
        assert_eq!(
            a.admit(&key("stage", "c"), Some(at(3)), now),
            Admission::Admitted
        );
        assert_eq!(
            a.admit(&key("dev", "d"), Some(at(4)), now),
            Admission::Admitted
        );
        assert_eq!(
            a.admit(&key("qa", "e"), Some(at(5)), now),
            Admission::Queued {
                ahead: 1,
                limit: "3 in all".into()
            }
        );
    }

    #[test]
    fn one_that_stopped_asking_or_is_gone_leaves_the_queue() {
        let a = per_cluster(1);
        a.admit(&key("prod", "a"), Some(at(1)), at(0));
        a.seen(&key("prod", "a"), true);
        a.admit(&key("prod", "b"), Some(at(2)), at(0));
        a.admit(&key("prod", "c"), Some(at(3)), at(0));
        a.forget(&key("prod", "a"));
        a.withdraw(&key("prod", "b"));
        assert_eq!(
            a.admit(&key("prod", "c"), Some(at(3)), at(1)),
            Admission::Admitted
        );
        let d = key("prod", "d");
        a.admit(&d, Some(at(4)), at(1));
        a.seen(&key("prod", "c"), false);
        a.pass_ended(&key("prod", "c"));
        // d asked last at 1 s; e asks ten minutes later and d is forgotten.
        assert_eq!(
            a.admit(&key("prod", "e"), Some(at(5)), at(600)),
            Admission::Admitted
        );
    }

    #[test]
    fn accounts_count_apart_and_home_is_one_account() {
        let limits = Limits {
            per_account: Some(1),
            ..Limits::default()
        };
        let a = Admissions::new(limits, Duration::from_secs(10), None);
        a.listing_counted();
        let now = at(100);
        let other: ServiceKey = "eu-west-1:210987654321:prod/web".parse().unwrap();
        assert_eq!(a.admit(&key("prod", "a"), None, now), Admission::Admitted);
        assert_eq!(a.admit(&other, None, now), Admission::Admitted);
        assert_eq!(
            a.admit(&key("stage", "b"), None, now),
            Admission::Queued {
                ahead: 0,
                limit: "1 per account (this account)".into()
            }
        );
    }

    #[test]
    fn no_start_is_admitted_before_a_listing_counted_the_rollouts_in_flight() {
        let a = Admissions::new(
            Limits {
                per_cluster: Some(1),
                ..Limits::default()
            },
            Duration::from_secs(10),
            None,
        );
        let now = Timestamp(1_000);
        let started = ServiceKey::new("prod", "a");
        let waiting = ServiceKey::new("prod", "b");
        assert!(matches!(
            a.admit(&waiting, Some(now), now),
            Admission::Queued { .. }
        ));
        // The listing shows a rollout in flight in the same cluster.
        a.seen(&started, true);
        a.listing_counted();
        assert!(matches!(
            a.admit(&waiting, Some(now), now),
            Admission::Queued { .. }
        ));
        a.seen(&started, false);
        assert_eq!(a.admit(&waiting, Some(now), now), Admission::Admitted);
    }
}
