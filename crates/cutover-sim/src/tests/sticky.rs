//! Group-level stickiness: clients stay on the target group they were
//! first sent to, whatever the weights say after, until the duration ends.

use super::*;
use crate::Action;
use crate::rollout::{Stickiness, Weights};

fn sticky_web(sim: &SimCloud, seconds: u32) -> ServiceArns {
    sim.add_service(ServiceSetup {
        production_stickiness: Some(seconds),
        ..ServiceSetup::new(key())
    })
    .expect("a new service can be added")
}

async fn all_to_green(sim: &SimCloud, arns: &ServiceArns) {
    sim.set_weights(
        &arns.production,
        &Weights::pair(arns.blue(), 0, arns.green(), 100),
    )
    .await
    .unwrap();
    sim.run_for(secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn sticky_clients_stay_on_a_target_group_at_weight_zero_until_the_duration_ends() {
    let sim = sim(60);
    let arns = sticky_web(&sim, 600);
    healthy_green(&sim, &arns, "web:2").await;
    all_to_green(&sim, &arns).await;

    let receiving = sim.receiving(arns.production.arn());
    assert!(receiving.contains(arns.blue()), "{receiving:?}");
    assert!(receiving.contains(arns.green()), "{receiving:?}");

    sim.run_for(secs(600)).await;
    let receiving = sim.receiving(arns.production.arn());
    assert!(!receiving.contains(arns.blue()), "{receiving:?}");
}

#[tokio::test(start_paused = true)]
async fn without_stickiness_a_target_group_at_weight_zero_gets_nothing() {
    let sim = sim(61);
    let arns = web(&sim);
    healthy_green(&sim, &arns, "web:2").await;
    all_to_green(&sim, &arns).await;
    let receiving = sim.receiving(arns.production.arn());
    assert_eq!(receiving.into_iter().collect::<Vec<_>>(), [arns.green()]);
}

#[tokio::test(start_paused = true)]
async fn deleting_a_task_set_that_sticky_clients_still_reach_is_a_violation() {
    let sim = sim(62);
    let arns = sticky_web(&sim, 3600);
    let green = healthy_green(&sim, &arns, "web:2").await;
    all_to_green(&sim, &arns).await;
    sim.set_primary(&arns.key, &green.arn).await.unwrap();
    let blue = arns.initial_task_set.clone().unwrap();
    sim.delete_task_set(&arns.key, &blue).await.unwrap();
    let v = sim.violations();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].text.contains("sticky clients"), "{}", v[0]);
    // Its targets drain, and the sticky clients still sent there fail.
    sim.run_for(secs(400)).await;
    assert!(sim.max_exposure() >= secs(60), "{:?}", sim.max_exposure());
}

#[tokio::test(start_paused = true)]
async fn deleting_once_the_sticky_clients_are_gone_is_fine() {
    let sim = sim(63);
    let arns = sticky_web(&sim, 30);
    let green = healthy_green(&sim, &arns, "web:2").await;
    all_to_green(&sim, &arns).await;
    sim.set_primary(&arns.key, &green.arn).await.unwrap();
    sim.run_for(secs(30)).await;
    let blue = arns.initial_task_set.clone().unwrap();
    sim.delete_task_set(&arns.key, &blue).await.unwrap();
    sim.run_for(secs(400)).await;
    assert!(sim.violations().is_empty(), "{:#?}", sim.violations());
    assert_eq!(sim.max_exposure(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn turning_stickiness_off_releases_sticky_clients_once_visible() {
    let sim = sim(64);
    let arns = sticky_web(&sim, 3600);
    healthy_green(&sim, &arns, "web:2").await;
    all_to_green(&sim, &arns).await;
    let route = arns.production.arn();
    let mut config = sim.route_config(route).unwrap();
    for a in &mut config.actions {
        if let Action::Forward(f) = a {
            f.stickiness.as_mut().unwrap().enabled = false;
        }
    }
    assert!(sim.set_route_config(route, config));
    let receiving = sim.receiving(route);
    assert_eq!(receiving.into_iter().collect::<Vec<_>>(), [arns.green()]);
}

#[test]
fn stickiness_outside_what_elb_accepts_is_refused() {
    let sim = sim(65);
    for seconds in [0, 604_801] {
        let err = sim
            .add_service(ServiceSetup {
                production_stickiness: Some(seconds),
                ..ServiceSetup::new(key())
            })
            .unwrap_err();
        assert!(err.message.contains("1 to 604800"), "{err}");
    }
}

#[tokio::test(start_paused = true)]
async fn stickiness_set_through_the_port_shows_after_the_visibility_delay() {
    let sim = SimCloud::builder(66)
        .clock(clock())
        .visibility_delay(secs(2), secs(2))
        .build();
    let arns = sticky_web(&sim, 600);
    let route = &arns.production;
    let on = Stickiness {
        enabled: true,
        duration_seconds: 600,
    };
    assert_eq!(sim.stickiness(route).await.unwrap(), on);
    sim.set_stickiness(route, on.turned(false)).await.unwrap();
    assert_eq!(sim.stickiness(route).await.unwrap(), on, "not visible yet");
    sim.run_for(secs(2)).await;
    assert_eq!(sim.stickiness(route).await.unwrap(), on.turned(false));
    // Weights are untouched by it.
    assert_eq!(
        sim.weights(route).await.unwrap(),
        Weights::pair(arns.blue(), 100, arns.green(), 0)
    );
}

#[tokio::test(start_paused = true)]
async fn enabling_stickiness_needs_a_duration_elb_accepts() {
    let sim = sim(67);
    let arns = web(&sim);
    let err = sim
        .set_stickiness(
            &arns.production,
            Stickiness {
                enabled: true,
                duration_seconds: 0,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, crate::cloud::ErrorKind::Invalid);
    assert!(err.message.contains("1 to 604800"), "{}", err.message);
}
