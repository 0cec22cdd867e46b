//! Services in other accounts and regions: their ARNs are there, the
//! records built for them are valid there, `describe_in` finds exactly
//! them, and each account and region is throttled by its own buckets.

use serde_json::json;

use super::{clock, request, secs, sim, td};
use crate::cloud::budget::Rate;
use crate::cloud::{Ecs, ErrorKind, LoadBalancer};
use crate::rollout::account::arn_region_account;
use crate::rollout::{Scope, ServiceKey, ServiceState, parse_record};
use crate::{ACCOUNT, REGION, RateLimits, ServiceSetup, SimCloud};

fn other_region() -> Scope {
    Scope::Region("us-west-2".into())
}

fn other_account() -> Scope {
    Scope::Account {
        region: "eu-west-1".into(),
        account: "210987654321".into(),
    }
}

/// The same names in three places.
fn web_in(scope: Scope) -> ServiceKey {
    ServiceKey::new("prod", "web").in_scope(scope)
}

fn place(scope: &Scope) -> (&str, &str) {
    match scope {
        Scope::Home => (REGION, ACCOUNT),
        Scope::Region(r) => (r, ACCOUNT),
        Scope::Account { region, account } => (region, account),
    }
}

#[tokio::test(start_paused = true)]
async fn a_service_elsewhere_has_its_arns_there_and_a_valid_record() {
    let sim = sim(31);
    for scope in [Scope::Home, other_region(), other_account()] {
        for rule in [false, true] {
            let key =
                ServiceKey::new("prod", if rule { "api" } else { "web" }).in_scope(scope.clone());
            let arns = sim
                .add_service(ServiceSetup {
                    production_rule: rule,
                    ..ServiceSetup::new(key.clone())
                })
                .unwrap();
            let mut named = vec![arns.load_balancer.clone(), arns.production.arn().into()];
            named.extend(arns.test.iter().map(|t| t.arn().to_string()));
            named.extend(arns.target_groups.iter().cloned());
            named.extend(arns.initial_task_set.iter().cloned());
            for arn in &named {
                assert_eq!(arn_region_account(arn), Some(place(&scope)), "{arn}");
            }
            let body = arns.record(
                "web:2",
                json!({"type": "canary", "percent": 10, "interval": "5m"}),
            );
            let spec = parse_record(&key, &body).unwrap_or_else(|e| panic!("{key}: {e}"));
            assert_eq!(spec.traffic.production, arns.production);
            // And validation is real: the record of the same names
            // elsewhere is refused for naming load balancers here.
            if !scope.is_home() {
                let elsewhere = ServiceKey::new("prod", "x").in_scope(Scope::Account {
                    region: "ap-south-1".into(),
                    account: "999988887777".into(),
                });
                assert!(parse_record(&elsewhere, &body).is_err());
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn describe_in_finds_exactly_the_service_of_its_scope() {
    let sim = sim(32);
    let home = sim
        .add_service(ServiceSetup::new(web_in(Scope::Home)))
        .unwrap();
    let away = sim
        .add_service(ServiceSetup::new(web_in(other_account())))
        .unwrap();
    let names = ["web".to_string()];
    let found = |s: Vec<(String, ServiceState)>| match s.into_iter().next() {
        Some((_, ServiceState::Found(f))) => f,
        other => panic!("{other:?}"),
    };
    let at_home = found(sim.describe_services("prod", &names).await.unwrap());
    let there = found(
        sim.describe_in(&other_account(), "prod", &names)
            .await
            .unwrap(),
    );
    assert_eq!(
        at_home.task_sets[0].arn,
        home.initial_task_set.clone().unwrap()
    );
    assert_eq!(
        there.task_sets[0].arn,
        away.initial_task_set.clone().unwrap()
    );
    assert_eq!(
        arn_region_account(&there.task_sets[0].task_definition),
        Some(place(&other_account()))
    );
    // A task set made there is there alone.
    let green = sim
        .create_task_set(&away.key, &request(&away, td("web:1"), "g"))
        .await
        .unwrap();
    assert_eq!(
        arn_region_account(&green.arn),
        Some(place(&other_account()))
    );
    let there = found(
        sim.describe_in(&other_account(), "prod", &names)
            .await
            .unwrap(),
    );
    let at_home = found(sim.describe_services("prod", &names).await.unwrap());
    assert_eq!((there.task_sets.len(), at_home.task_sets.len()), (2, 1));
    // The same cluster name in a third place is not there.
    let nowhere = sim
        .describe_in(&other_region(), "prod", &names)
        .await
        .unwrap();
    assert_eq!(nowhere, vec![("web".into(), ServiceState::ClusterMissing)]);
    // And the home port is unchanged: describe_in at home is describe.
    let same = found(sim.describe_in(&Scope::Home, "prod", &names).await.unwrap());
    assert_eq!(same.task_sets.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn each_account_and_region_is_throttled_by_its_own_buckets() {
    let limits = RateLimits {
        ecs_read: Some(Rate::new(0.1, 3)),
        elb_read: Some(Rate::new(0.1, 2)),
        ..RateLimits::default()
    };
    let sim = SimCloud::builder(33)
        .clock(clock())
        .rate_limits(limits)
        .build();
    let scopes = [Scope::Home, other_region(), other_account()];
    let mut arns = vec![];
    for scope in &scopes {
        arns.push(
            sim.add_service(ServiceSetup::new(web_in(scope.clone())))
                .unwrap(),
        );
    }
    let names = ["web".to_string()];
    // Home's ECS read bucket: three calls, then throttled.
    for _ in 0..3 {
        sim.describe_in(&Scope::Home, "prod", &names).await.unwrap();
    }
    let err = sim
        .describe_in(&Scope::Home, "prod", &names)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled);
    // Another region of the same account, and another account, still
    // have theirs: three each, then throttled there too.
    for scope in &scopes[1..] {
        for _ in 0..3 {
            sim.describe_in(scope, "prod", &names).await.unwrap();
        }
        let err = sim.describe_in(scope, "prod", &names).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Throttled, "{scope:?}");
    }
    // ELB calls draw from the bucket of the ARN's account and region.
    for a in &arns[..2] {
        sim.target_health(a.blue()).await.unwrap();
    }
    sim.weights(&arns[0].production).await.unwrap();
    assert_eq!(
        sim.target_health(arns[0].green()).await.unwrap_err().kind,
        ErrorKind::Throttled
    );
    sim.target_health(arns[1].green()).await.unwrap();
    sim.weights(&arns[2].production).await.unwrap();
    sim.target_health(arns[2].blue()).await.unwrap();
    // The refusals are counted where they were metered.
    for scope in &scopes {
        let t = sim.throttled_in(scope);
        assert_eq!(t.get("ecs:DescribeServices"), Some(&1), "{scope:?}: {t:?}");
    }
    assert_eq!(
        sim.throttled_in(&Scope::Home)
            .get("elbv2:DescribeTargetHealth"),
        Some(&1)
    );
    assert_eq!(
        sim.throttled_in(&other_account())
            .get("elbv2:DescribeTargetHealth"),
        None
    );
    // Buckets refill by themselves, per place.
    sim.run_for(secs(10)).await;
    sim.describe_in(&Scope::Home, "prod", &names).await.unwrap();
}
