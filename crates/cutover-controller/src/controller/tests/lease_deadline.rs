//! Commands leave only under a lease that is safe to act under, however
//! long they wait for their request budget on the way out.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::cloud::budget::{ApiBudgets, BudgetConfig, Budgeted, Rate};
use crate::cloud::{
    Clock, Fence, LoadBalancer, NoChecks, NoCodeDeploy, NoServiceDeployments, ScaledClock,
};
use crate::controller::act::Ports;
use crate::controller::shards::{LeaseConfig, Ownership, Stop, execute};
use crate::rollout::{Command, Weights};

use super::EPOCH;
use super::fakes::{FakeCloud, key, listener, target_group};

fn lease() -> LeaseConfig {
    LeaseConfig {
        replica: "a".into(),
        shards: 1,
        ttl: Duration::from_secs(20),
        relay_poll: Duration::from_secs(1),
    }
}

fn fence() -> Fence {
    Fence {
        shard: 0,
        holder: "a".into(),
        token: 1,
    }
}

/// Two weight changes under a load balancer budget of one request a
/// minute: the second waits about a minute for its token, far longer than
/// a 20 s lease lasts unless it is renewed.
async fn two_weight_changes(renew: bool) -> (Result<(), String>, Vec<Option<Weights>>) {
    let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(EPOCH, 1.0));
    let cloud = FakeCloud::new(Arc::clone(&clock));
    let budgets = ApiBudgets::new(
        &BudgetConfig {
            share: 1.0,
            elb_mutation: Rate::new(1.0 / 60.0, 1),
            ..BudgetConfig::default()
        },
        Arc::clone(&clock),
    );
    let lb = Budgeted::new(Arc::clone(&cloud) as Arc<dyn LoadBalancer>, budgets);
    let own = Ownership::new(&lease(), Arc::clone(&clock));
    own.gained(fence(), (Instant::now(), clock.now()), lease().ttl);
    let renewals = renew.then(|| {
        let (own, clock) = (Arc::clone(&own), Arc::clone(&clock));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease().heartbeat()).await;
                own.renewed(&fence(), (Instant::now(), clock.now()), lease().ttl);
            }
        })
    });
    let service = key("svc");
    let claim = own.enter(&service).expect("the lease is held");
    let routes = [listener("first"), listener("second")];
    let (blue, green) = (target_group("svc", "blue"), target_group("svc", "green"));
    let commands: Vec<Command> = routes
        .iter()
        .map(|route| Command::SetWeights {
            route: route.clone(),
            weights: Weights::pair(&blue, 90, &green, 10),
        })
        .collect();
    let ports = Ports {
        ecs: cloud.as_ref(),
        lb: &lb,
        checks: &NoChecks,
        codedeploy: &NoCodeDeploy,
        service_deployments: &NoServiceDeployments,
    };
    let result = execute(&ports, &service, &commands, Some(&claim))
        .await
        .map(drop)
        .map_err(|stop| match stop {
            Stop::LeaseEnding => "the lease ran out".to_string(),
            Stop::Failed(f) => format!("{} failed: {}", f.kind, f.error),
        });
    drop(claim);
    if let Some(r) = renewals {
        r.abort();
    }
    // Whatever was abandoned must never arrive later either.
    tokio::time::sleep(Duration::from_secs(300)).await;
    let landed = routes.iter().map(|r| cloud.weights(r)).collect();
    (result, landed)
}

#[tokio::test(start_paused = true)]
async fn a_command_waiting_for_its_budget_past_the_lease_margin_is_never_sent() {
    let (result, landed) = two_weight_changes(false).await;
    assert_eq!(result, Err("the lease ran out".to_string()));
    assert!(landed[0].is_some(), "the first change went out at once");
    assert_eq!(landed[1], None, "the second left after the lease's margin");
}

#[tokio::test(start_paused = true)]
async fn a_budget_wait_under_a_renewed_lease_sends_the_command() {
    let (result, landed) = two_weight_changes(true).await;
    assert_eq!(result, Ok(()));
    assert!(landed.iter().all(Option::is_some), "{landed:?}");
}
