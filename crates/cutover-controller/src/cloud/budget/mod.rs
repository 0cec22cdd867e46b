//! Client-side request budgets. AWS meters each API category with its own
//! token bucket per account and region, shared with every other caller
//! (ECS itself included). cutover keeps to a configurable share of each, so
//! it is never the reason someone else gets throttled, and it spends what it
//! has on what people wait for first: a change just written, then services
//! mid-rollout, and last the steady-state drift checks, which may only use
//! a share of it.
//!
//! AWS keeps these buckets per account and per Region: ECS throttles each
//! account's requests Region by Region
//! (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html),
//! and Elastic Load Balancing does the same
//! (https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-api-throttling.html).
//! So cutover keeps one set of buckets per [`Scope`] its records name: a
//! rollout in one account never waits for another account's budget.
//!
//! The buckets wait on the injected [`Clock`], so a simulation on a paused
//! runtime waits in simulated time. They are applied as decorators around
//! the ports ([`Budgeted`]), so the AWS adapters and the simulated cloud
//! behave alike.

mod bucket;
mod ports;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Clock;
use super::scopes::Scopes;
use crate::rollout::Scope;
use bucket::TokenBucket;

pub use ports::Budgeted;

/// The API categories AWS meters separately (see the request budgets in the
/// AWS documentation of ECS, Elastic Load Balancing, CloudWatch, DynamoDB).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// DescribeServices, ListServices, and the task reads.
    EcsRead,
    /// Service and task set mutations, which share the UpdateService bucket.
    EcsMutation,
    /// DescribeListeners, DescribeRules, DescribeTargetHealth.
    ElbRead,
    /// ModifyListener, ModifyRule.
    ElbMutation,
    CloudWatch,
    DynamoDb,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::EcsRead,
        Category::EcsMutation,
        Category::ElbRead,
        Category::ElbMutation,
        Category::CloudWatch,
        Category::DynamoDb,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::EcsRead => "ecs_read",
            Category::EcsMutation => "ecs_mutation",
            Category::ElbRead => "elb_read",
            Category::ElbMutation => "elb_mutation",
            Category::CloudWatch => "cloudwatch",
            Category::DynamoDb => "dynamodb",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which calls go first when a bucket runs dry. Ordered most urgent first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// The first look after someone changed a record or asked for a pass.
    Change,
    /// A service in the middle of a rollout.
    Rollout,
    /// A drift check of a service with nothing to do.
    Steady,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::Change, Priority::Rollout, Priority::Steady];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Change => "change",
            Priority::Rollout => "rollout",
            Priority::Steady => "steady",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

tokio::task_local! {
    static PRIORITY: Priority;
}

/// Runs `f` with its AWS calls at `priority`. A task-local rather than a
/// parameter: the ports speak the domain, and a call's urgency belongs to
/// the pass that makes it, not to any one call's signature.
pub async fn with_priority<F: Future>(priority: Priority, f: F) -> F::Output {
    PRIORITY.scope(priority, f).await
}

/// The priority of the calling task. Calls nobody classified (the API, the
/// CLI) count as urgent, so they never starve behind drift checks.
pub fn current_priority() -> Priority {
    PRIORITY.try_with(|p| *p).unwrap_or(Priority::Rollout)
}

/// One category's account budget as AWS documents it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests that may go at once after a quiet spell.
    pub burst: u32,
}

impl Rate {
    pub const fn new(per_second: f64, burst: u32) -> Rate {
        Rate { per_second, burst }
    }

    /// `fraction` of this budget; never less than one request of burst, so
    /// a small share still makes progress.
    pub fn scaled(self, fraction: f64) -> Rate {
        Rate {
            per_second: self.per_second * fraction,
            burst: ((f64::from(self.burst) * fraction).floor() as u32).max(1),
        }
    }
}

/// The `[budgets]` table of the configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// Fraction of each account budget cutover may spend.
    pub share: f64,
    /// Fraction of cutover's share that steady-state drift checks may spend.
    pub steady_share: f64,
    pub ecs_read: Rate,
    pub ecs_mutation: Rate,
    pub elb_read: Rate,
    pub elb_mutation: Rate,
    pub cloudwatch: Rate,
    pub dynamodb: Rate,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            share: 0.5,
            steady_share: 0.4,
            ecs_read: Rate::new(20.0, 100),
            ecs_mutation: Rate::new(5.0, 50),
            elb_read: Rate::new(10.0, 40),
            elb_mutation: Rate::new(3.0, 20),
            cloudwatch: Rate::new(9.0, 9),
            // DynamoDB meters capacity, not requests; this only keeps a
            // runaway loop from flooding the table.
            dynamodb: Rate::new(1000.0, 1000),
        }
    }
}

impl BudgetConfig {
    /// The account budget of `category`, before the share is applied.
    pub fn account(&self, category: Category) -> Rate {
        match category {
            Category::EcsRead => self.ecs_read,
            Category::EcsMutation => self.ecs_mutation,
            Category::ElbRead => self.elb_read,
            Category::ElbMutation => self.elb_mutation,
            Category::CloudWatch => self.cloudwatch,
            Category::DynamoDb => self.dynamodb,
        }
    }

    /// What cutover may spend of `category`.
    pub fn cutover(&self, category: Category) -> Rate {
        self.account(category).scaled(self.share)
    }

    /// What steady-state drift checks may spend of `category`.
    pub fn steady(&self, category: Category) -> Rate {
        self.account(category)
            .scaled(self.share * self.steady_share)
    }

    pub fn validate(&self) -> Result<(), String> {
        let fraction = |name: &str, v: f64| {
            if v > 0.0 && v <= 1.0 {
                Ok(())
            } else {
                Err(format!(
                    "`budgets.{name}` is {v}: use a fraction above 0 and at most 1"
                ))
            }
        };
        fraction("share", self.share)?;
        fraction("steady_share", self.steady_share)?;
        for c in Category::ALL {
            let rate = self.account(c);
            if !(rate.per_second.is_finite() && rate.per_second > 0.0) {
                return Err(format!(
                    "`budgets.{c}.per_second` is {}: use a positive number of requests per second",
                    rate.per_second
                ));
            }
            if rate.burst == 0 {
                return Err(format!("`budgets.{c}.burst` is 0: use at least 1"));
            }
        }
        Ok(())
    }
}

/// What one category's bucket has handed out so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BudgetStats {
    /// Tokens taken, by priority (`Priority::ALL` order).
    pub tokens: [u64; 3],
    /// Calls that had to wait for their token.
    pub waited: u64,
    /// Time those calls waited, in total.
    pub wait_time: Duration,
}

#[derive(Default)]
struct Counters {
    tokens: [AtomicU64; 3],
    waited: AtomicU64,
    wait_micros: AtomicU64,
}

struct Buckets {
    all: TokenBucket,
    /// Steady-state calls take a token here first, then queue behind
    /// rollouts in `all`: drift checks can never use more than this, and
    /// never delay a rollout's call by more than the one token in hand.
    steady: TokenBucket,
    counters: Counters,
}

/// Every category's buckets, shared by all workers of a process: one set
/// for the controller's own account and region, and one for each other
/// scope a call went to, made on its first call.
pub struct ApiBudgets {
    clock: Arc<dyn Clock>,
    config: BudgetConfig,
    buckets: Vec<Buckets>,
    elsewhere: Mutex<BTreeMap<Scope, Arc<Vec<Buckets>>>>,
    /// Which scope an ARN is in, for the calls that name no key.
    scopes: OnceLock<Arc<Scopes>>,
}

impl fmt::Debug for ApiBudgets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiBudgets")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ApiBudgets {
    /// Buckets start full, as AWS's do after a quiet spell.
    pub fn new(config: &BudgetConfig, clock: Arc<dyn Clock>) -> Arc<ApiBudgets> {
        let buckets = Self::full(config, clock.as_ref());
        Arc::new(ApiBudgets {
            clock,
            config: config.clone(),
            buckets,
            elsewhere: Mutex::default(),
            scopes: OnceLock::new(),
        })
    }

    fn full(config: &BudgetConfig, clock: &dyn Clock) -> Vec<Buckets> {
        let now = clock.now();
        Category::ALL
            .iter()
            .map(|&c| Buckets {
                all: TokenBucket::new(config.cutover(c), now, true),
                steady: TokenBucket::new(config.steady(c), now, false),
                counters: Counters::default(),
            })
            .collect()
    }

    /// Where the scope of an ARN is looked up (the records' accounts); set
    /// once, before the first call. Without it every ARN is home.
    pub fn with_scopes(&self, scopes: Arc<Scopes>) {
        let _ = self.scopes.set(scopes);
    }

    /// The scope of the resource `arn` names, as [`Scopes::of_arn`] says.
    pub fn scope_of_arn(&self, arn: &str) -> Scope {
        self.scopes
            .get()
            .map_or(Scope::Home, |scopes| scopes.of_arn(arn))
    }

    /// Waits until a call of `category` in `scope` fits that scope's budget.
    pub async fn acquire_in(&self, scope: &Scope, category: Category) {
        if scope.is_home() {
            return self.acquire(category).await;
        }
        let buckets = self.elsewhere(scope);
        Self::take(&buckets, self.clock.as_ref(), category, current_priority()).await;
    }

    fn elsewhere(&self, scope: &Scope) -> Arc<Vec<Buckets>> {
        let mut elsewhere = self
            .elsewhere
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            elsewhere
                .entry(scope.clone())
                .or_insert_with(|| Arc::new(Self::full(&self.config, self.clock.as_ref()))),
        )
    }

    /// The scopes besides home that calls went to so far.
    pub fn scopes(&self) -> Vec<Scope> {
        self.elsewhere
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    pub fn config(&self) -> &BudgetConfig {
        &self.config
    }

    /// Waits until a call of `category` fits the budget, at the calling
    /// task's priority ([`with_priority`]).
    pub async fn acquire(&self, category: Category) {
        self.acquire_at(category, current_priority()).await;
    }

    pub async fn acquire_at(&self, category: Category, priority: Priority) {
        Self::take(&self.buckets, self.clock.as_ref(), category, priority).await;
    }

    async fn take(buckets: &[Buckets], clock: &dyn Clock, category: Category, priority: Priority) {
        let b = &buckets[category.index()];
        let mut waited = Duration::ZERO;
        if priority == Priority::Steady {
            waited += b.steady.acquire(clock, priority).await;
        }
        waited += b.all.acquire(clock, priority).await;
        let c = &b.counters;
        c.tokens[priority.index()].fetch_add(1, Ordering::Relaxed);
        if !waited.is_zero() {
            c.waited.fetch_add(1, Ordering::Relaxed);
            let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
            c.wait_micros.fetch_add(micros, Ordering::Relaxed);
        }
    }

    /// What `category` handed out in every scope together.
    pub fn stats(&self, category: Category) -> BudgetStats {
        let mut total = Self::stats_of(&self.buckets, category);
        for scope in self.scopes() {
            let s = self.stats_in(&scope, category);
            for (t, n) in total.tokens.iter_mut().zip(s.tokens) {
                *t += n;
            }
            total.waited += s.waited;
            total.wait_time += s.wait_time;
        }
        total
    }

    /// What `category` handed out in `scope` alone.
    pub fn stats_in(&self, scope: &Scope, category: Category) -> BudgetStats {
        if scope.is_home() {
            return Self::stats_of(&self.buckets, category);
        }
        let elsewhere = self
            .elsewhere
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        elsewhere
            .get(scope)
            .map(|b| Self::stats_of(b, category))
            .unwrap_or_default()
    }

    fn stats_of(buckets: &[Buckets], category: Category) -> BudgetStats {
        let c = &buckets[category.index()].counters;
        BudgetStats {
            tokens: [0, 1, 2].map(|i| c.tokens[i].load(Ordering::Relaxed)),
            waited: c.waited.load(Ordering::Relaxed),
            wait_time: Duration::from_micros(c.wait_micros.load(Ordering::Relaxed)),
        }
    }
}
