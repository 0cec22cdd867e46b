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

#[derive(Default)]
struct State {
    /// Waiting keys by due time, then by arrival, so equal due times are
    /// served first come, first served.
    order: BTreeSet<(Timestamp, u64, ServiceKey)>,
    waiting: BTreeMap<ServiceKey, (Timestamp, u64)>,
    in_flight: BTreeSet<ServiceKey>,
    /// Keys scheduled while a worker holds them; they wait here rather than
    /// in `order` so no second worker can take them.
    again: BTreeMap<ServiceKey, Timestamp>,
    arrivals: u64,
    closed: bool,
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

    /// Returns whether a worker may need to wake earlier than planned.
    fn enqueue(&mut self, key: ServiceKey, due: Timestamp) -> bool {
        if self.closed {
            return false;
        }
        if self.in_flight.contains(&key) {
            let at = self.again.entry(key).or_insert(due);
            *at = (*at).min(due);
            return false;
        }
        if let Some(&(at, arrival)) = self.waiting.get(&key) {
            if at <= due {
                return false;
            }
            self.order.remove(&(at, arrival, key.clone()));
        }
        self.arrivals += 1;
        self.waiting.insert(key.clone(), (due, self.arrivals));
        self.order.insert((due, self.arrivals, key));
        true
    }

    fn take_due(&mut self, now: Timestamp) -> Result<ServiceKey, Option<Timestamp>> {
        match self.order.first() {
            Some((due, _, _)) if *due <= now => {}
            Some((due, _, _)) => return Err(Some(*due)),
            None => return Err(None),
        }
        let Some((_, _, key)) = self.order.pop_first() else {
            return Err(None);
        };
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

    /// Runs `key` at `due` or earlier: a key is queued once, and the earlier
    /// of two due times wins. A key being reconciled runs again afterwards.
    pub fn schedule(&self, key: ServiceKey, due: Timestamp) {
        let woke = {
            let mut state = self.lock();
            // Whatever asked for this pass may know more than a listing.
            state.listed.remove(&key);
            state.changed.insert(key.clone());
            state.touch(&key);
            state.enqueue(key, due)
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
            let woke = state.enqueue(key.clone(), due);
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
        match self.lock().order.first() {
            Some((due, _, _)) => now.since(*due),
            None => Duration::ZERO,
        }
    }

    /// When `key` is due next, if it is scheduled.
    pub fn due(&self, key: &ServiceKey) -> Option<Timestamp> {
        let state = self.lock();
        let waiting = state.waiting.get(key).map(|(due, _)| *due);
        waiting.or_else(|| state.again.get(key).copied())
    }

    fn release(&self, key: &ServiceKey, next: Option<Timestamp>) {
        let wake = {
            let mut state = self.lock();
            state.in_flight.remove(key);
            state.touch(key);
            let again = state.again.remove(key);
            let due = match (again, next) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            due.is_some_and(|due| state.enqueue(key.clone(), due))
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
