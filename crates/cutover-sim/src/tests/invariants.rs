use super::*;
use crate::BadVersion;
use crate::cloud::DesiredStore;
use crate::rollout::Weights;

#[tokio::test(start_paused = true)]
async fn a_clean_blue_green_cutover_breaks_no_invariant() {
    let sim = sim(40);
    let arns = web(&sim);
    let green = healthy_green(&sim, &arns, "web:2").await;
    for step in [10, 50, 100] {
        sim.set_weights(
            &arns.production,
            &Weights::pair(arns.blue(), 100 - step, arns.green(), step),
        )
        .await
        .unwrap();
        sim.run_for(secs(5)).await;
    }
    sim.set_primary(&arns.key, &green.arn).await.unwrap();
    let blue = arns.initial_task_set.clone().unwrap();
    sim.delete_task_set(&arns.key, &blue).await.unwrap();
    sim.run_for(secs(60)).await;
    assert!(sim.violations().is_empty(), "{:#?}", sim.violations());
    assert_eq!(sim.max_exposure(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn deleting_a_task_set_that_production_still_weighs_is_a_violation() {
    let sim = sim(41);
    let arns = web(&sim);
    let green = healthy_green(&sim, &arns, "web:2").await;
    sim.set_weights(
        &arns.production,
        &Weights::pair(arns.blue(), 50, arns.green(), 50),
    )
    .await
    .unwrap();
    sim.delete_task_set(&arns.key, &green.arn).await.unwrap();
    let v = sim.violations();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].text.contains("deleted while production"), "{}", v[0]);
}

#[tokio::test(start_paused = true)]
async fn deleting_before_a_weight_change_is_visible_is_a_violation() {
    let sim = SimCloud::builder(42)
        .clock(clock())
        .visibility_delay(secs(2), secs(2))
        .build();
    let arns = web(&sim);
    let green = healthy_green(&sim, &arns, "web:2").await;
    sim.set_weights(
        &arns.production,
        &Weights::pair(arns.blue(), 0, arns.green(), 100),
    )
    .await
    .unwrap();
    sim.set_primary(&arns.key, &green.arn).await.unwrap();
    // The load balancer still sends everything to blue.
    let blue = arns.initial_task_set.clone().unwrap();
    sim.delete_task_set(&arns.key, &blue).await.unwrap();
    let v = sim.violations();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].text.contains("visible 100, written 0"), "{}", v[0]);
}

#[tokio::test(start_paused = true)]
async fn production_weights_must_be_percentages_summing_to_100() {
    let sim = sim(43);
    let arns = web(&sim);
    healthy_green(&sim, &arns, "web:2").await;
    sim.set_weights(
        &arns.production,
        &Weights::pair(arns.blue(), 60, arns.green(), 60),
    )
    .await
    .unwrap();
    sim.set_weights(
        &arns.production,
        &Weights::pair(arns.blue(), 1, arns.green(), 0),
    )
    .await
    .unwrap();
    let v = sim.violations();
    assert_eq!(v.len(), 2, "{v:#?}");
    assert!(v.iter().all(|e| e.text.contains("summing to 100")));

    // The test route is not production: anything goes there.
    let test = arns.test.clone().unwrap();
    sim.set_weights(&test, &Weights::pair(arns.blue(), 1, arns.green(), 0))
        .await
        .unwrap();
    assert_eq!(sim.violations().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn production_weight_on_a_target_group_without_healthy_targets_is_a_violation() {
    let sim = sim(44);
    let arns = web(&sim);
    sim.create_task_set(&arns.key, &request(&arns, td("web:2"), "green"))
        .await
        .unwrap();
    sim.set_weights(
        &arns.production,
        &Weights::pair(arns.blue(), 90, arns.green(), 10),
    )
    .await
    .unwrap();
    let v = sim.violations();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].text.contains("no healthy target"), "{}", v[0]);
}

#[tokio::test(start_paused = true)]
async fn exposure_measures_how_long_production_served_a_group_gone_bad() {
    let sim = SimCloud::builder(45)
        .clock(clock())
        .replace_unhealthy(false)
        .build();
    let arns = web(&sim);
    sim.run_for(secs(10)).await;
    assert_eq!(sim.max_exposure(), Duration::ZERO);
    sim.mark_task_definition_bad("web:1", BadVersion::NeverHealthy);
    sim.run_for(secs(50)).await;
    // Re-asserting weights the world made unsafe adds no traffic: not a violation.
    sim.set_weights(
        &arns.production,
        &Weights::pair(arns.blue(), 100, arns.green(), 0),
    )
    .await
    .unwrap();
    sim.run_for(secs(50)).await;
    let exposed = sim.max_exposure();
    // Unhealthy after two failed checks, at most 10 s after the mark.
    assert!(exposed >= secs(90) && exposed <= secs(101), "{exposed:?}");
    assert!(sim.violations().is_empty(), "{:#?}", sim.violations());
}

#[tokio::test(start_paused = true)]
async fn a_service_that_starts_without_tasks_is_not_counted_as_exposed() {
    let sim = sim(46);
    let mut setup = ServiceSetup::new(key());
    setup.initial_task_set = false;
    let arns = sim.add_service(setup).unwrap();
    sim.run_for(secs(60)).await;
    assert_eq!(sim.max_exposure(), Duration::ZERO);
    assert_eq!(sim.target_counts(arns.blue()), Some(Default::default()));
}

#[tokio::test(start_paused = true)]
async fn the_sim_can_be_handed_to_the_controller_as_each_port() {
    let sim = Arc::new(sim(47));
    let ecs: Arc<dyn Ecs> = sim.clone();
    let lb: Arc<dyn LoadBalancer> = sim.clone();
    let store: Arc<dyn DesiredStore> = sim;
    assert!(
        ecs.describe_services("prod", &["web".to_string()])
            .await
            .unwrap()
            == vec![("web".to_string(), ServiceState::ClusterMissing)],
        "no such cluster"
    );
    assert!(lb.target_health("nope").await.is_err());
    assert!(store.list().await.unwrap().is_empty());
}

/// Runs until the green target group has no healthy target, at most `limit`.
async fn until_green_is_empty(sim: &SimCloud, arns: &ServiceArns, limit: Duration) {
    let mut waited = Duration::ZERO;
    while sim.target_counts(arns.green()).unwrap().healthy > 0 {
        assert!(waited < limit, "green still healthy after {waited:?}");
        sim.run_for(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
}

#[tokio::test(start_paused = true)]
async fn weight_added_after_a_fresh_healthy_reading_is_not_blamed_but_a_stale_or_empty_one_is() {
    let sim = SimCloud::builder(46)
        .clock(clock())
        .replace_unhealthy(false)
        .build();
    let arns = web(&sim);
    healthy_green(&sim, &arns, "web:2").await;
    // Checks start failing; the targets still say healthy for a while.
    sim.mark_task_definition_bad("web:2", BadVersion::NeverHealthy);
    sim.run_for(secs(1)).await;
    let read = sim.target_health(arns.green()).await.unwrap();
    assert!(read.healthy > 0);
    until_green_is_empty(&sim, &arns, secs(9)).await;
    // The controller's reading was true when taken: the weight it sends
    // now is exposure (timed), not a decision made on what it could see.
    sim.set_weights(
        &arns.production,
        &Weights::pair(arns.blue(), 90, arns.green(), 10),
    )
    .await
    .unwrap();
    assert!(sim.violations().is_empty(), "{:#?}", sim.violations());

    // The same reading, long after: adding weight on it is a violation.
    sim.run_for(secs(20)).await;
    sim.set_weights(
        &arns.production,
        &Weights::pair(arns.blue(), 80, arns.green(), 20),
    )
    .await
    .unwrap();
    assert_eq!(sim.violations().len(), 1, "{:#?}", sim.violations());

    // A fresh reading that shows no healthy target excuses nothing.
    let read = sim.target_health(arns.green()).await.unwrap();
    assert_eq!(read.healthy, 0);
    sim.set_weights(
        &arns.production,
        &Weights::pair(arns.blue(), 70, arns.green(), 30),
    )
    .await
    .unwrap();
    let v = sim.violations();
    assert_eq!(v.len(), 2, "{v:#?}");
    assert!(v.iter().all(|e| e.text.contains("no healthy target")));
}
