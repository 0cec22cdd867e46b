//! A token bucket on the injected clock that serves waiters in priority
//! order, first come first served within a priority.
//!
//! Only the waiter at the head of the line watches the clock; the others
//! sleep until the head hands over. So thousands of queued calls cost one
//! timer, not a thundering herd at every refill.
//!
//! A few tokens are kept back for changes someone just wrote: rollouts and
//! drift checks may not take the bucket below them. Under a steady load
//! the bucket then hovers at that reserve, and a new change's calls find
//! their tokens at once instead of waiting out a refill.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use super::{Priority, Rate};
use crate::cloud::Clock;
use crate::time::Timestamp;

pub(super) struct TokenBucket {
    per_second: f64,
    burst: f64,
    reserve: f64,
    state: Mutex<State>,
}

/// Tokens held back for `Priority::Change`, in buckets big enough to spare
/// them: the reads and the first mutation of one new change.
const CHANGE_RESERVE: u32 = 2;

struct State {
    tokens: f64,
    at: Timestamp,
    line: BTreeMap<(Priority, u64), Arc<Notify>>,
    arrivals: u64,
}

impl State {
    fn refill(&mut self, now: Timestamp, per_second: f64, burst: f64) {
        if now > self.at {
            let elapsed = now.since(self.at).as_secs_f64();
            self.tokens = (self.tokens + elapsed * per_second).min(burst);
            self.at = now;
        }
    }

    fn wake_head(&self) {
        if let Some((_, head)) = self.line.first_key_value() {
            head.notify_one();
        }
    }
}

/// A place in line; leaving it (even by being dropped mid-wait) lets the
/// next waiter move up.
struct Ticket<'a> {
    bucket: &'a TokenBucket,
    id: (Priority, u64),
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut s = self.bucket.lock();
        let was_head = s.line.first_key_value().is_some_and(|(k, _)| *k == self.id);
        if s.line.remove(&self.id).is_some() && was_head {
            s.wake_head();
        }
    }
}

impl TokenBucket {
    /// `for_changes`: keep the reserve (the buckets all calls share do;
    /// the drift checks' own does not, changes never draw on it).
    pub fn new(rate: Rate, now: Timestamp, for_changes: bool) -> TokenBucket {
        let burst = f64::from(rate.burst.max(1));
        let reserve = if for_changes && rate.burst >= 4 * CHANGE_RESERVE {
            f64::from(CHANGE_RESERVE)
        } else {
            0.0
        };
        TokenBucket {
            per_second: rate.per_second,
            burst,
            reserve,
            state: Mutex::new(State {
                tokens: burst,
                at: now,
                line: BTreeMap::new(),
                arrivals: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section is a few arithmetic and map operations
        // that leave the state consistent even if one panicked.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one token, waiting behind every more urgent or earlier caller;
    /// returns how long it waited.
    pub async fn acquire(&self, clock: &dyn Clock, priority: Priority) -> Duration {
        let start = clock.now();
        let need = match priority {
            Priority::Change => 1.0,
            Priority::Rollout | Priority::Steady => 1.0 + self.reserve,
        };
        let (ticket, notify) = {
            let mut s = self.lock();
            s.arrivals += 1;
            let id = (priority, s.arrivals);
            let notify = Arc::new(Notify::new());
            s.line.insert(id, Arc::clone(&notify));
            (Ticket { bucket: self, id }, notify)
        };
        loop {
            let wait = {
                let now = clock.now();
                let mut s = self.lock();
                s.refill(now, self.per_second, self.burst);
                let head = s.line.first_key_value().map(|(k, _)| *k);
                if head != Some(ticket.id) {
                    None
                } else if s.tokens >= need {
                    s.tokens -= 1.0;
                    s.line.remove(&ticket.id);
                    s.wake_head();
                    drop(s);
                    drop(ticket);
                    return clock.now().since(start);
                } else {
                    Some(self.time_to(need, s.tokens))
                }
            };
            match wait {
                // A more urgent caller may take the head meanwhile; then
                // this one wakes, finds itself behind, and waits its turn.
                Some(d) => {
                    tokio::select! {
                        _ = clock.sleep(d) => {}
                        _ = notify.notified() => {}
                    }
                }
                None => notify.notified().await,
            }
        }
    }

    /// Rounded up to the clock's millisecond, so the head never wakes a
    /// hair too early and spins.
    fn time_to(&self, need: f64, tokens: f64) -> Duration {
        let secs = (need - tokens).max(0.0) / self.per_second;
        // Capped so a misconfigured rate waits long, not forever.
        let millis = (secs * 1000.0).ceil().clamp(1.0, 3_600_000.0);
        Duration::from_millis(millis as u64)
    }
}
