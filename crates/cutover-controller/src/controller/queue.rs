//! The work queue: each service at most once, taken when due, and never by two
//! workers at once. Time comes from the injected clock and new work from a
//! `Notify`, so a simulated clock drives it exactly like the real one.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::cloud::{Clock, StoredRecord};
use crate::rollout::ServiceKey;
use crate::time::Timestamp;

pub struct WorkQueue {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    notify: Notify,
}

/// Which due keys go first. A resync schedules every service at once; a
/// record written a moment later must not wait behind all of them, and a
/// rollout's next step should not either.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Lane {
    /// Someone changed the record or asked for a pass.
    Change = 0,
    /// A wake-up a pass asked for, a retry, a shard taken over.
    Due = 1,
    /// A resync's drift check.
    Listed = 2,
}

const LANES: usize = 3;

#[derive(Default)]
struct State {
    /// Waiting keys of each lane by due time, then by arrival, so equal due
    /// times are served first come, first served.
    lanes: [BTreeSet<(Timestamp, u64, ServiceKey)>; LANES],
    waiting: BTreeMap<ServiceKey, (Timestamp, u64, Lane)>,
    in_flight: BTreeSet<ServiceKey>,
    /// Keys scheduled while a worker holds them; they wait here rather than
    /// in a lane so no second worker can take them.
    again: BTreeMap<ServiceKey, (Timestamp, Lane)>,
    arrivals: u64,
    closed: bool,
    /// Drift checks being reconciled, and how many may be at once: the
    /// rest of the workers stay free for changes and rollouts, so a record
    /// written mid-resync does not wait for a worker either.
    listed_running: HashSet<ServiceKey>,
    listed_limit: Option<usize>,
    /// Records a resync listed for waiting keys, so their passes need not
    /// read them again.
    listed: HashMap<ServiceKey, StoredRecord>,
    /// Keys scheduled for a change someone made (or asked for), not by a
    /// timer.
    changed: HashSet<ServiceKey>,
    /// When each key was last taken, released or scheduled for a fresh
    /// read, in `moves`. A listing that began before then may be older
    /// than what the controller has since seen or written.
    touched: HashMap<ServiceKey, u64>,
    moves: u64,
}

impl State {
    fn touch(&mut self, key: &ServiceKey) {
        self.moves += 1;
        self.touched.insert(key.clone(), self.moves);
    }

    /// Returns whether a worker may need to wake earlier than planned. A
    /// key already waiting keeps the earlier due time and the more urgent
    /// lane of the two.
    fn enqueue(&mut self, key: ServiceKey, due: Timestamp, lane: Lane) -> bool {
        if self.closed {
            return false;
        }
        if self.in_flight.contains(&key) {
            let (at, l) = self.again.entry(key).or_insert((due, lane));
            *at = (*at).min(due);
            *l = (*l).min(lane);
            return false;
        }
        let (due, lane) = match self.waiting.get(&key) {
            Some(&(at, _, l)) if at <= due && l <= lane => return false,
            Some(&(at, arrival, l)) => {
                self.lanes[l as usize].remove(&(at, arrival, key.clone()));
                (at.min(due), l.min(lane))
            }
            None => (due, lane),
        };
        self.arrivals += 1;
        self.waiting.insert(key.clone(), (due, self.arrivals, lane));
        self.lanes[lane as usize].insert((due, self.arrivals, key));
        true
    }

    /// The most urgent lane with a due key, else when the next one is due.
    fn take_due(&mut self, now: Timestamp) -> Result<ServiceKey, Option<Timestamp>> {
        let mut next: Option<Timestamp> = None;
        let mut ready = None;
        let listed_full = self
            .listed_limit
            .is_some_and(|limit| self.listed_running.len() >= limit);
        for (i, lane) in self.lanes.iter().enumerate() {
            if i == Lane::Listed as usize && listed_full {
                // Waits for a drift check to finish, which wakes workers.
                continue;
            }
            match lane.first() {
                Some((due, _, _)) if *due <= now => {
                    ready = Some(i);
                    break;
                }
                Some((due, _, _)) => next = Some(next.map_or(*due, |n| n.min(*due))),
                None => {}
            }
        }
        let Some((_, _, key)) = ready.and_then(|i| self.lanes[i].pop_first()) else {
            return Err(next);
        };
        if ready == Some(Lane::Listed as usize) {
            self.listed_running.insert(key.clone());
        }
        self.waiting.remove(&key);
        self.in_flight.insert(key.clone());
        self.touch(&key);
        Ok(key)
    }
}

impl WorkQueue {
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(WorkQueue {
            clock,
            state: Mutex::new(State::default()),
            notify: Notify::new(),
        })
    }

    /// Lets at most `limit` drift checks (keys a resync listed) run at once.
    pub fn limit_listed(&self, limit: usize) {
        self.lock().listed_limit = Some(limit.max(1));
    }

    /// Runs `key` at `due` or earlier: a key is queued once, and the earlier
    /// of two due times wins. A key being reconciled runs again afterwards.
    pub fn schedule(&self, key: ServiceKey, due: Timestamp) {
        let woke = {
            let mut state = self.lock();
            // Whatever asked for this pass may know more than a listing.
            state.listed.remove(&key);
            state.changed.insert(key.clone());
            state.touch(&key);
            state.enqueue(key, due, Lane::Change)
        };
        if woke {
            self.notify.notify_waiters();
        }
    }

    /// Runs `key` at `due` or earlier, ahead of drift checks but behind
    /// changes, reading its record afresh (a shard taken over).
    pub fn schedule_due(&self, key: ServiceKey, due: Timestamp) {
        let woke = {
            let mut state = self.lock();
            state.listed.remove(&key);
            state.touch(&key);
            state.enqueue(key, due, Lane::Due)
        };
        if woke {
            self.notify.notify_waiters();
        }
    }

    /// Where the queue stands, for [`WorkQueue::schedule_listed`]: take it
    /// before the listing starts.
    pub fn mark(&self) -> u64 {
        self.lock().moves
    }

    /// Schedules a listed record's key, and hands the record to its pass
    /// unless the key moved since `mark`: a pass that ran or a change that
    /// arrived meanwhile may have seen a newer record than the listing.
    pub fn schedule_listed(&self, record: StoredRecord, due: Timestamp, mark: u64) {
        let woke = {
            let mut state = self.lock();
            let key = record.key.clone();
            let moved = state.touched.get(&key).is_some_and(|t| *t > mark);
            let woke = state.enqueue(key.clone(), due, Lane::Listed);
            if !moved && state.waiting.contains_key(&key) {
                state.listed.insert(key, record);
            }
            woke
        };
        if woke {
            self.notify.notify_waiters();
        }
    }

    pub fn schedule_now(&self, key: ServiceKey) {
        self.schedule(key, self.clock.now());
    }

    /// Waits for the next due key and leases it to the caller. Returns `None`
    /// once the queue is closed, even if keys are due: shutdown takes no new work.
    pub async fn next(self: &Arc<Self>) -> Option<Lease> {
        loop {
            // Registered before looking at the state, so work scheduled
            // between the look and the wait still wakes this worker.
            let mut notified = pin!(self.notify.notified());
            notified.as_mut().enable();
            let wake_at = {
                let mut state = self.lock();
                if state.closed {
                    return None;
                }
                match state.take_due(self.clock.now()) {
                    Ok(key) => {
                        let changed = state.changed.remove(&key);
                        let trigger = match state.listed.remove(&key) {
                            Some(record) => Trigger::Listed(Box::new(record)),
                            None if changed => Trigger::Changed,
                            None => Trigger::Due,
                        };
                        return Some(Lease {
                            queue: Arc::clone(self),
                            key,
                            next: None,
                            trigger: Some(trigger),
                        });
                    }
                    Err(wake_at) => wake_at,
                }
            };
            match wake_at {
                Some(t) => {
                    tokio::select! {
                        biased;
                        _ = notified => {}
                        _ = self.clock.sleep_until(t) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Stops handing out keys; leases already out still complete.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
    }

    /// Keys waiting to run, due or not (keys being reconciled are not counted
    /// unless they are scheduled to run again).
    pub fn depth(&self) -> usize {
        let state = self.lock();
        state.waiting.len() + state.again.len()
    }

    pub fn in_flight(&self) -> usize {
        self.lock().in_flight.len()
    }

    /// How long the longest-waiting due key has been due: zero when the
    /// workers keep up.
    pub fn oldest_due_age(&self) -> Duration {
        let now = self.clock.now();
        let state = self.lock();
        let oldest = state
            .lanes
            .iter()
            .filter_map(|l| l.first())
            .map(|(due, _, _)| *due)
            .min();
        oldest.map_or(Duration::ZERO, |due| now.since(due))
    }

    /// When `key` is due next, if it is scheduled.
    pub fn due(&self, key: &ServiceKey) -> Option<Timestamp> {
        let state = self.lock();
        let waiting = state.waiting.get(key).map(|(due, _, _)| *due);
        waiting.or_else(|| state.again.get(key).map(|(due, _)| *due))
    }

    fn release(&self, key: &ServiceKey, next: Option<Timestamp>) {
        let wake = {
            let mut state = self.lock();
            state.in_flight.remove(key);
            state.touch(key);
            let freed = state.listed_running.remove(key) && state.listed_limit.is_some();
            let again = state.again.remove(key);
            let next = next.map(|due| (due, Lane::Due));
            let due = match (again, next) {
                (Some((a, la)), Some((b, lb))) => Some((a.min(b), la.min(lb))),
                (a, b) => a.or(b),
            };
            let queued = due.is_some_and(|(due, lane)| state.enqueue(key.clone(), due, lane));
            queued || freed
        };
        if wake {
            self.notify.notify_waiters();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every
        // critical section is a handful of collection operations.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A key taken from the queue. Dropping it hands the key back; `finish` also
/// says when to run it again.
pub struct Lease {
    queue: Arc<WorkQueue>,
    key: ServiceKey,
    next: Option<Timestamp>,
    trigger: Option<Trigger>,
}

/// What scheduled a pass. The pass still reads the world afresh; this only
/// says whether it may use the record a resync just listed, and how urgent
/// its AWS calls are.
#[derive(Debug)]
pub enum Trigger {
    /// A resync listed the record, and nothing about the key moved since.
    Listed(Box<StoredRecord>),
    /// The record changed, or someone asked for a pass.
    Changed,
    /// A wake-up the last pass asked for, or a retry.
    Due,
}

impl Lease {
    pub fn key(&self) -> &ServiceKey {
        &self.key
    }

    pub fn take_trigger(&mut self) -> Trigger {
        self.trigger.take().unwrap_or(Trigger::Due)
    }

    /// Releases the key, to run again at `next` (or earlier, if it was
    /// scheduled meanwhile). `None` leaves it to the next change or resync.
    pub fn finish(mut self, next: Option<Timestamp>) {
        self.next = next;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.queue.release(&self.key, self.next);
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
