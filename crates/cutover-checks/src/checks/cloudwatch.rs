//! The CloudWatch gate. DescribeAlarms has a small account-wide budget (9
//! requests a second, shared with everyone else in the account), so the
//! alarm names that gates of all services ask for within a short window go
//! out together, up to 100 names a request, through one rate limiter, and
//! each answer is kept for the shortest interval of the gates that asked.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::cloud::budget::{Budgeted, Category};
use tokio::sync::watch;

use crate::cloud::{Clock, CloudError};
use crate::rollout::gate::{CloudWatchGate, Verdict};
use crate::time::{Timestamp, format_duration};

/// Names one DescribeAlarms request may carry.
pub const NAMES_PER_CALL: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alarm {
    pub state: AlarmState,
    /// CloudWatch's words for why the alarm is in its state.
    pub reason: String,
}

/// Where alarm states come from (CloudWatch's DescribeAlarms).
#[async_trait]
pub trait Alarms: Send + Sync {
    /// The alarms among `names` (at most [`NAMES_PER_CALL`]) that exist.
    async fn describe(&self, names: &[String]) -> Result<BTreeMap<String, Alarm>, CloudError>;
}

#[async_trait]
impl Alarms for Budgeted<dyn Alarms> {
    async fn describe(&self, names: &[String]) -> Result<BTreeMap<String, Alarm>, CloudError> {
        self.spend(Category::CloudWatch).await.describe(names).await
    }
}

/// How the batcher paces itself.
#[derive(Clone, Copy, Debug)]
pub struct Pacing {
    /// How long the first asker waits for others to join its request.
    pub window: Duration,
    /// DescribeAlarms requests a second.
    pub per_second: NonZeroU32,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            window: Duration::from_millis(50),
            per_second: NonZeroU32::new(9).unwrap_or(NonZeroU32::MIN),
        }
    }
}

struct Cached {
    at: Timestamp,
    /// The shortest interval of the gates that asked for this alarm.
    ttl: Duration,
    /// `None`: CloudWatch has no alarm of that name.
    alarm: Option<Alarm>,
}

/// A request being gathered: its names and how its askers learn it is done.
struct Open {
    names: BTreeMap<String, Duration>,
    done: watch::Sender<Option<Result<(), String>>>,
}

#[derive(Default)]
struct State {
    cache: HashMap<String, Cached>,
    open: Option<Open>,
}

/// Shared by every gate of the process.
pub struct AlarmBatcher {
    source: Arc<dyn Alarms>,
    clock: Arc<dyn Clock>,
    limiter: DefaultDirectRateLimiter,
    window: Duration,
    state: Mutex<State>,
}

impl AlarmBatcher {
    pub fn new(source: Arc<dyn Alarms>, clock: Arc<dyn Clock>, pacing: Pacing) -> Arc<Self> {
        Arc::new(AlarmBatcher {
            source,
            clock,
            limiter: RateLimiter::direct(Quota::per_second(pacing.per_second)),
            window: pacing.window,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a cache: whatever a panicking holder left is still
        // worth reading, at worst one more request is made.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One reading of a gate.
    pub async fn read(self: &Arc<Self>, gate: &CloudWatchGate) -> (Verdict, String) {
        let answer = tokio::time::timeout(gate.timeout, self.alarms(&gate.alarms, gate.interval));
        match answer.await {
            Ok(Ok(alarms)) => judge(&alarms),
            Ok(Err(why)) => (Verdict::Fail, format!("cloudwatch:DescribeAlarms: {why}")),
            Err(_) => (
                Verdict::Fail,
                format!(
                    "cloudwatch:DescribeAlarms timed out after {}",
                    format_duration(gate.timeout)
                ),
            ),
        }
    }

    /// The alarms by name, from the cache where fresh enough, otherwise
    /// from the next request.
    async fn alarms(
        self: &Arc<Self>,
        names: &[String],
        interval: Duration,
    ) -> Result<BTreeMap<String, Option<Alarm>>, String> {
        let mut waiting = {
            let mut state = self.state();
            let now = self.clock.now();
            let mut missing = Vec::new();
            for name in names {
                match state.cache.get_mut(name) {
                    Some(c) if now.since(c.at) < c.ttl.min(interval) => {
                        c.ttl = c.ttl.min(interval);
                    }
                    _ => missing.push(name.clone()),
                }
            }
            if missing.is_empty() {
                return Ok(self.cached(&state, names));
            }
            self.join(&mut state, missing, interval)
        };
        let outcome = waiting
            .wait_for(Option::is_some)
            .await
            .map_err(|_| "the request was dropped".to_string())?
            .clone();
        match outcome {
            Some(Err(why)) => Err(why),
            _ => Ok(self.cached(&self.state(), names)),
        }
    }

    fn cached(&self, state: &State, names: &[String]) -> BTreeMap<String, Option<Alarm>> {
        names
            .iter()
            .map(|n| (n.clone(), state.cache.get(n).and_then(|c| c.alarm.clone())))
            .collect()
    }

    /// Adds names to the request being gathered, opening one if none is.
    fn join(
        self: &Arc<Self>,
        state: &mut State,
        names: Vec<String>,
        interval: Duration,
    ) -> watch::Receiver<Option<Result<(), String>>> {
        let open = state.open.get_or_insert_with(|| {
            let batcher = Arc::clone(self);
            // Its own task, so the request goes out even if the gate that
            // opened it stops waiting (a timeout, a shutdown).
            tokio::spawn(async move { batcher.flush().await });
            Open {
                names: BTreeMap::new(),
                done: watch::Sender::new(None),
            }
        });
        for name in names {
            let ttl = open.names.entry(name).or_insert(interval);
            *ttl = (*ttl).min(interval);
        }
        open.done.subscribe()
    }

    async fn flush(self: Arc<Self>) {
        tokio::time::sleep(self.window).await;
        let Some(open) = self.state().open.take() else {
            return;
        };
        let names: Vec<String> = open.names.keys().cloned().collect();
        let mut found = BTreeMap::new();
        let mut failure = None;
        for chunk in names.chunks(NAMES_PER_CALL) {
            self.limiter.until_ready().await;
            match self.source.describe(chunk).await {
                Ok(alarms) => found.extend(alarms),
                Err(e) => {
                    tracing::warn!(
                        operation = e.operation,
                        error_kind = e.kind.as_str(),
                        alarms = chunk.len(),
                        "reading CloudWatch alarms failed: {e}"
                    );
                    failure = Some(e.message);
                    break;
                }
            }
        }
        if failure.is_none() {
            let now = self.clock.now();
            let mut state = self.state();
            for (name, ttl) in open.names {
                let alarm = found.remove(&name);
                state.cache.insert(
                    name,
                    Cached {
                        at: now,
                        ttl,
                        alarm,
                    },
                );
            }
        }
        let _ = open.done.send(Some(failure.map_or(Ok(()), Err)));
    }
}

/// Any alarm in ALARM, or one that does not exist, fails the gate.
fn judge(alarms: &BTreeMap<String, Option<Alarm>>) -> (Verdict, String) {
    let mut failing = Vec::new();
    let mut no_data = BTreeSet::new();
    for (name, alarm) in alarms {
        match alarm {
            None => failing.push(format!("alarm {name} does not exist")),
            Some(a) if a.state == AlarmState::Alarm => {
                failing.push(format!("alarm {name} is in ALARM: {}", a.reason));
            }
            Some(a) if a.state == AlarmState::InsufficientData => {
                no_data.insert(name.as_str());
            }
            Some(_) => {}
        }
    }
    if !failing.is_empty() {
        return (Verdict::Fail, failing.join("; "));
    }
    let mut detail = format!("{} alarms not in ALARM", alarms.len());
    if !no_data.is_empty() {
        let names: Vec<&str> = no_data.into_iter().collect();
        detail.push_str(&format!(" (insufficient data: {})", names.join(", ")));
    }
    (Verdict::Pass, detail)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::cloud::ScaledClock;

    struct Counted {
        calls: AtomicUsize,
        names: Mutex<Vec<usize>>,
    }

    #[async_trait]
    impl Alarms for Counted {
        async fn describe(&self, names: &[String]) -> Result<BTreeMap<String, Alarm>, CloudError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.names.lock().unwrap().push(names.len());
            Ok(names
                .iter()
                .filter(|n| !n.starts_with("missing"))
                .map(|n| {
                    let state = if n.starts_with("bad") {
                        AlarmState::Alarm
                    } else {
                        AlarmState::Ok
                    };
                    let reason = "Threshold Crossed".to_string();
                    (n.clone(), Alarm { state, reason })
                })
                .collect())
        }
    }

    fn gate(alarms: &[&str]) -> CloudWatchGate {
        CloudWatchGate {
            alarms: alarms.iter().map(|a| a.to_string()).collect(),
            interval: Duration::from_secs(10),
            failure_threshold: 1,
            timeout: Duration::from_secs(5),
        }
    }

    fn batcher() -> (Arc<Counted>, Arc<AlarmBatcher>) {
        let source = Arc::new(Counted {
            calls: AtomicUsize::new(0),
            names: Mutex::new(Vec::new()),
        });
        let clock = Arc::new(ScaledClock::new(Timestamp(0), 1.0));
        let b = AlarmBatcher::new(source.clone(), clock, Pacing::default());
        (source, b)
    }

    #[tokio::test(start_paused = true)]
    async fn alarm_reads_spend_the_cloudwatch_budget() {
        use crate::cloud::budget::{ApiBudgets, BudgetConfig, Rate};
        let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(Timestamp(0), 1.0));
        let config = BudgetConfig {
            share: 1.0,
            cloudwatch: Rate::new(1.0, 1),
            ..BudgetConfig::default()
        };
        let budgets = ApiBudgets::new(&config, Arc::clone(&clock));
        let source: Arc<dyn Alarms> = Arc::new(Counted {
            calls: AtomicUsize::new(0),
            names: Mutex::new(Vec::new()),
        });
        let alarms = Budgeted::new(source, Arc::clone(&budgets));
        let start = clock.now();
        for _ in 0..2 {
            alarms.describe(&["a".to_string()]).await.unwrap();
        }
        // One request a second after a burst of one.
        assert!(clock.now().since(start) >= Duration::from_secs(1));
        assert_eq!(
            budgets
                .stats(Category::CloudWatch)
                .tokens
                .iter()
                .sum::<u64>(),
            2
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gates_asking_at_once_share_one_request_of_at_most_100_names() {
        let (source, b) = batcher();
        let many: Vec<String> = (0..150).map(|i| format!("a{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let (g1, g2, g3) = (
            gate(&["a1", "bad-latency"]),
            gate(&["a1", "missing-x"]),
            gate(&many),
        );
        let (one, two, three) = tokio::join!(b.read(&g1), b.read(&g2), b.read(&g3));
        assert_eq!(one.0, Verdict::Fail);
        assert_eq!(one.1, "alarm bad-latency is in ALARM: Threshold Crossed");
        assert_eq!(two.1, "alarm missing-x does not exist");
        assert_eq!(three, (Verdict::Pass, "150 alarms not in ALARM".into()));
        assert_eq!(*source.names.lock().unwrap(), [100, 52]);
    }

    #[tokio::test(start_paused = true)]
    async fn answers_are_kept_for_the_interval_of_the_gate() {
        let (source, b) = batcher();
        b.read(&gate(&["a"])).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        b.read(&gate(&["a"])).await;
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_secs(6)).await;
        b.read(&gate(&["a"])).await;
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    // Real time: the rate limiter keeps its own clock.
    #[tokio::test]
    async fn requests_keep_to_the_rate_budget() {
        let (source, b) = batcher();
        let start = std::time::Instant::now();
        for i in 0..20 {
            // Each read asks for a new alarm, so none is served from cache.
            b.read(&gate(&[&format!("n{i}")])).await;
        }
        assert_eq!(source.calls.load(Ordering::SeqCst), 20);
        // 9 in the first burst, then 9 a second.
        assert!(
            start.elapsed() >= Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }
}
