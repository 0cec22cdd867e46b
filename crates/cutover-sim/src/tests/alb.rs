use serde_json::json;

use super::*;
use crate::cloud::ErrorKind;
use crate::rollout::{Route, Weights};
use crate::{Action, Condition, Forward, RouteConfig, Stickiness};

#[tokio::test(start_paused = true)]
async fn weights_round_trip_once_visible() {
    let sim = SimCloud::builder(20)
        .clock(clock())
        .visibility_delay(secs(2), secs(2))
        .build();
    let arns = web(&sim);
    healthy_green(&sim, &arns, "web:2").await;
    let before = sim.weights(&arns.production).await.unwrap();
    assert_eq!(before, Weights::pair(arns.blue(), 100, arns.green(), 0));

    let wanted = Weights::pair(arns.blue(), 90, arns.green(), 10);
    sim.set_weights(&arns.production, &wanted).await.unwrap();
    assert_eq!(
        sim.weights(&arns.production).await.unwrap(),
        before,
        "not visible yet"
    );
    sim.run_for(secs(2)).await;
    assert_eq!(sim.weights(&arns.production).await.unwrap(), wanted);
}

#[tokio::test(start_paused = true)]
async fn set_weights_keeps_stickiness_conditions_and_other_actions() {
    let sim = sim(21);
    let mut setup = ServiceSetup::new(key());
    setup.production_rule = true;
    let arns = sim.add_service(setup).unwrap();
    healthy_green(&sim, &arns, "web:2").await;
    let rule = arns.production.arn().to_string();
    let mut config = sim.route_config(&rule).unwrap();
    config.actions.insert(
        0,
        Action::Other {
            kind: "authenticate-oidc".into(),
            config: json!({"issuer": "https://idp.example"}),
        },
    );
    if let Some(Action::Forward(f)) = config.actions.get_mut(1) {
        f.stickiness = Some(Stickiness {
            enabled: true,
            duration_seconds: 600,
        });
    }
    assert!(sim.set_route_config(&rule, config.clone()));

    sim.set_weights(
        &arns.production,
        &Weights::pair(arns.blue(), 0, arns.green(), 100),
    )
    .await
    .unwrap();
    sim.run_for(secs(3)).await;
    let after = sim.route_config(&rule).unwrap();
    assert_eq!(after.conditions, config.conditions);
    assert_eq!(
        after.conditions,
        vec![Condition {
            field: "host-header".into(),
            values: vec!["web.example.com".into()],
        }]
    );
    assert_eq!(after.priority, Some(10));
    assert_eq!(after.actions[0], config.actions[0]);
    let Action::Forward(Forward {
        stickiness,
        target_groups,
    }) = &after.actions[1]
    else {
        panic!("forward action moved: {after:?}");
    };
    assert_eq!(stickiness.as_ref().map(|s| s.duration_seconds), Some(600));
    assert_eq!(target_groups.len(), 2);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test(start_paused = true)]
async fn only_the_named_target_groups_change() {
    let sim = SimCloud::builder(22)
        .clock(clock())
        .visibility_delay(secs(0), secs(0))
        .build();
    let arns = web(&sim);
    let test = arns.test.clone().unwrap();
    let mut only_green = Weights::default();
    only_green.0.insert(arns.green().to_string(), 100);
    sim.set_weights(&test, &only_green).await.unwrap();
    let w = sim.weights(&test).await.unwrap();
    assert_eq!(w, Weights::pair(arns.blue(), 100, arns.green(), 100));
}

#[tokio::test(start_paused = true)]
async fn a_later_change_is_never_overwritten_by_an_earlier_slower_one() {
    let sim = SimCloud::builder(23)
        .clock(clock())
        .visibility_delay(secs(0), secs(2))
        .build();
    let arns = web(&sim);
    let test = arns.test.clone().unwrap();
    for step in [10, 20, 30, 40, 50] {
        sim.set_weights(
            &test,
            &Weights::pair(arns.blue(), 100 - step, arns.green(), step),
        )
        .await
        .unwrap();
    }
    sim.run_for(secs(3)).await;
    assert_eq!(
        sim.weights(&test).await.unwrap(),
        Weights::pair(arns.blue(), 50, arns.green(), 50)
    );
}

#[tokio::test(start_paused = true)]
async fn unknown_routes_and_target_groups_are_not_found_by_arn() {
    let sim = sim(24);
    let arns = web(&sim);
    let missing = arns.production.arn().replace("/app/", "/app/x");
    let err = sim
        .weights(&Route::Listener(missing.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(err.message.contains(&missing), "{err}");

    // A listener ARN asked for as a rule is not a rule.
    let err = sim
        .weights(&Route::Rule(arns.production.arn().to_string()))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);

    let tg = format!("{}x", arns.green());
    let err = sim.target_health(&tg).await.unwrap_err();
    assert!(err.message.contains(&tg), "{err}");
    let err = sim
        .set_weights(&arns.production, &Weights::pair(arns.blue(), 100, &tg, 0))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(err.message.contains(&tg), "{err}");
}

#[tokio::test(start_paused = true)]
async fn weights_above_the_elb_limit_are_refused() {
    let sim = sim(25);
    let arns = web(&sim);
    let err = sim
        .set_weights(
            &arns.production,
            &Weights::pair(arns.blue(), 1000, arns.green(), 0),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    let unchanged: Option<RouteConfig> = sim.route_config(arns.production.arn());
    assert_eq!(
        unchanged.and_then(|c| c.weights()),
        Some(Weights::pair(arns.blue(), 100, arns.green(), 0))
    );
}
