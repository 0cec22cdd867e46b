use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;

use super::*;
use crate::cloud::ScaledClock;
use crate::time::Timestamp;

const EPOCH: Timestamp = Timestamp(1_700_000_000_000);

fn clock() -> Arc<dyn Clock> {
    Arc::new(ScaledClock::new(EPOCH, 1.0))
}

/// Only ELB mutations are limited here, to 3/s with a burst of 20.
fn elb_mutations_only() -> BudgetConfig {
    BudgetConfig {
        share: 1.0,
        steady_share: 0.5,
        ..BudgetConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_bucket_never_exceeds_its_rate_over_a_simulated_minute() {
    let clock = clock();
    let budgets = ApiBudgets::new(&elb_mutations_only(), Arc::clone(&clock));
    let taken: Arc<Mutex<Vec<Timestamp>>> = Arc::default();
    let mut callers = JoinSet::new();
    for _ in 0..50 {
        let (budgets, taken, clock) = (budgets.clone(), taken.clone(), clock.clone());
        callers.spawn(async move {
            loop {
                budgets.acquire(Category::ElbMutation).await;
                taken.lock().unwrap().push(clock.now());
            }
        });
    }
    clock.sleep(Duration::from_secs(60)).await;
    callers.shutdown().await;
    let taken = taken.lock().unwrap().clone();
    // Within any window: at most the burst plus what refilled during it.
    for (i, start) in taken.iter().enumerate() {
        for window in [1u64, 5, 10, 60] {
            let end = *start + Duration::from_secs(window);
            let n = taken[i..].iter().take_while(|t| **t < end).count() as f64;
            assert!(
                n <= 20.0 + 3.0 * window as f64,
                "{n} in {window}s from {start}"
            );
        }
    }
    // And it is not starved either: the whole minute's rate was handed out
    // (all but the two tokens kept back for changes).
    assert!(
        taken.len() >= 18 + 3 * 59,
        "only {} tokens in a minute",
        taken.len()
    );
    assert_eq!(
        budgets.stats(Category::ElbMutation).tokens[1],
        taken.len() as u64
    );
}

#[tokio::test(start_paused = true)]
async fn with_a_saturated_bucket_a_rolling_services_call_goes_before_drift_checks() {
    let clock = clock();
    let budgets = ApiBudgets::new(
        &BudgetConfig {
            share: 1.0,
            steady_share: 1.0,
            ..BudgetConfig::default()
        },
        Arc::clone(&clock),
    );
    // Drain the burst, then queue many drift checks.
    for _ in 0..20 {
        budgets
            .acquire_at(Category::ElbMutation, Priority::Change)
            .await;
    }
    let order: Arc<Mutex<Vec<Priority>>> = Arc::default();
    let mut callers = JoinSet::new();
    for _ in 0..10 {
        let (budgets, order) = (budgets.clone(), order.clone());
        callers.spawn(with_priority(Priority::Steady, async move {
            budgets.acquire(Category::ElbMutation).await;
            order.lock().unwrap().push(current_priority());
        }));
    }
    // The drift checks are all in line before the rollout's call arrives.
    tokio::task::yield_now().await;
    clock.sleep(Duration::from_millis(10)).await;
    for priority in [Priority::Rollout, Priority::Change] {
        let (b, o) = (budgets.clone(), order.clone());
        callers.spawn(with_priority(priority, async move {
            b.acquire(Category::ElbMutation).await;
            o.lock().unwrap().push(current_priority());
        }));
        tokio::task::yield_now().await;
    }
    while callers.join_next().await.is_some() {}
    let order = order.lock().unwrap().clone();
    assert_eq!(order.len(), 12);
    // A change just written first, then the rollout, then the drift checks.
    assert_eq!(
        order[..2],
        [Priority::Change, Priority::Rollout],
        "{order:?}"
    );
    let stats = budgets.stats(Category::ElbMutation);
    assert_eq!(stats.tokens, [21, 1, 10]);
    assert_eq!(stats.waited, 12);
}

#[tokio::test(start_paused = true)]
async fn drift_checks_keep_to_their_share_while_rollouts_get_the_rest() {
    let clock = clock();
    let budgets = ApiBudgets::new(&elb_mutations_only(), Arc::clone(&clock));
    let counts: Arc<Mutex<[u64; 3]>> = Arc::default();
    let mut callers = JoinSet::new();
    for (priority, n) in [(Priority::Steady, 20), (Priority::Rollout, 20)] {
        for _ in 0..n {
            let (budgets, counts) = (budgets.clone(), counts.clone());
            callers.spawn(with_priority(priority, async move {
                loop {
                    budgets.acquire(Category::ElbMutation).await;
                    counts.lock().unwrap()[priority as usize] += 1;
                }
            }));
        }
    }
    clock.sleep(Duration::from_secs(100)).await;
    callers.shutdown().await;
    let [_, rollout, steady] = *counts.lock().unwrap();
    // 3/s for everything; drift checks at most 1.5/s plus their burst of 10.
    assert!(rollout + steady <= 20 + 300, "{rollout} + {steady}");
    assert!(steady <= 10 + 150, "drift checks took {steady}");
    assert!(rollout >= 150, "rollouts got only {rollout}");
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_gives_up_does_not_hold_up_the_line() {
    let clock = clock();
    let budgets = ApiBudgets::new(&elb_mutations_only(), Arc::clone(&clock));
    for _ in 0..20 {
        budgets
            .acquire_at(Category::ElbMutation, Priority::Change)
            .await;
    }
    let head = {
        let b = budgets.clone();
        tokio::spawn(async move { b.acquire_at(Category::ElbMutation, Priority::Rollout).await })
    };
    tokio::task::yield_now().await;
    head.abort();
    let started = clock.now();
    budgets
        .acquire_at(Category::ElbMutation, Priority::Change)
        .await;
    assert!(clock.now().since(started) <= Duration::from_millis(400));
}

#[tokio::test(start_paused = true)]
async fn a_change_finds_a_token_while_rollouts_keep_the_bucket_busy() {
    let clock = clock();
    let budgets = ApiBudgets::new(&elb_mutations_only(), Arc::clone(&clock));
    let mut rollouts = JoinSet::new();
    for _ in 0..30 {
        let budgets = budgets.clone();
        rollouts.spawn(async move {
            loop {
                budgets
                    .acquire_at(Category::ElbMutation, Priority::Rollout)
                    .await;
            }
        });
    }
    clock.sleep(Duration::from_secs(30)).await;
    let before = budgets.stats(Category::ElbMutation);
    let started = clock.now();
    budgets
        .acquire_at(Category::ElbMutation, Priority::Change)
        .await;
    assert_eq!(clock.now(), started, "the change waited");
    let after = budgets.stats(Category::ElbMutation);
    assert_eq!(after.waited, before.waited);
    assert_eq!(after.tokens[0], before.tokens[0] + 1);
    rollouts.shutdown().await;
}

#[test]
fn the_defaults_are_awss_documented_budgets_at_half() {
    let c = BudgetConfig::default();
    assert_eq!(c.validate(), Ok(()));
    assert_eq!(c.cutover(Category::EcsRead), Rate::new(10.0, 50));
    assert_eq!(c.cutover(Category::ElbMutation), Rate::new(1.5, 10));
    // Drift checks of 10,000 services (1,000 DescribeServices calls) fit
    // in a 300 s resync at a fifth of the account's read budget.
    assert_eq!(c.steady(Category::EcsRead), Rate::new(4.0, 20));
}

#[test]
fn bad_budgets_are_explained() {
    for (config, needle) in [
        (
            BudgetConfig {
                share: 0.0,
                ..BudgetConfig::default()
            },
            "budgets.share",
        ),
        (
            BudgetConfig {
                steady_share: 1.5,
                ..BudgetConfig::default()
            },
            "budgets.steady_share",
        ),
        (
            BudgetConfig {
                elb_read: Rate::new(-1.0, 10),
                ..BudgetConfig::default()
            },
            "budgets.elb_read.per_second",
        ),
        (
            BudgetConfig {
                dynamodb: Rate::new(1.0, 0),
                ..BudgetConfig::default()
            },
            "budgets.dynamodb.burst",
        ),
    ] {
        let e = config.validate().unwrap_err();
        assert!(e.contains(needle), "{e}");
    }
}

#[tokio::test(start_paused = true)]
async fn each_account_and_region_has_its_own_budget() {
    let clock = clock();
    let budgets = ApiBudgets::new(&elb_mutations_only(), Arc::clone(&clock));
    let other = crate::rollout::Scope::Account {
        region: "eu-west-1".into(),
        account: "210987654321".into(),
    };
    let west = crate::rollout::Scope::Region("us-west-2".into());
    let start = clock.now();
    // A whole burst at home, then as much in two other scopes: none waits
    // for another's tokens.
    for scope in [crate::rollout::Scope::Home, other.clone(), west.clone()] {
        for _ in 0..10 {
            budgets.acquire_in(&scope, Category::ElbMutation).await;
        }
    }
    assert_eq!(clock.now(), start, "no scope waited for another's tokens");
    assert_eq!(
        budgets.stats_in(&other, Category::ElbMutation).tokens[1],
        10
    );
    assert_eq!(budgets.stats(Category::ElbMutation).tokens[1], 30);
    assert_eq!(budgets.scopes().len(), 2);
}
