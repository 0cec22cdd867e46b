use serde_json::json;

use super::*;
use crate::cloud::{ErrorKind, LoadBalancer};
use crate::rollout::{Stability, TaskSetStatus, parse_record};
use crate::{BadVersion, TASK_SET_LIMIT};

#[tokio::test(start_paused = true)]
async fn a_new_task_set_starts_its_tasks_and_becomes_healthy_over_time() {
    let sim = sim(1);
    let arns = web(&sim);
    let created = sim
        .create_task_set(&arns.key, &request(&arns, td("web:2"), "t1"))
        .await
        .unwrap();
    assert_eq!(created.status, TaskSetStatus::Active);
    assert_eq!(created.computed_desired, Some(2));
    assert_eq!(created.pending, Some(2));
    assert_eq!(created.stability, Stability::Stabilizing);
    assert!(created.task_definition.ends_with(":task-definition/web:2"));
    assert_eq!(sim.target_health(arns.green()).await.unwrap().healthy, 0);

    sim.run_for(secs(31)).await;
    let ts = task_set(&sim, &arns.key, &created.arn).await;
    assert_eq!((ts.running, ts.pending), (Some(2), Some(0)));
    assert_eq!(ts.stability, Stability::SteadyState);

    sim.run_for(secs(15)).await;
    let health = sim.target_health(arns.green()).await.unwrap();
    assert_eq!((health.healthy, health.initial), (2, 0));
    // The initial task set was healthy from the start and still is.
    assert_eq!(sim.target_health(arns.blue()).await.unwrap().healthy, 2);
}

#[tokio::test(start_paused = true)]
async fn a_version_marked_never_healthy_never_gets_a_healthy_target() {
    let sim = sim(2);
    let arns = web(&sim);
    sim.mark_task_definition_bad("web:2", BadVersion::NeverHealthy);
    sim.create_task_set(&arns.key, &request(&arns, td("web:2"), "t1"))
        .await
        .unwrap();
    let mut saw_unhealthy = false;
    for _ in 0..60 {
        sim.run_for(secs(5)).await;
        let health = sim.target_health(arns.green()).await.unwrap();
        assert_eq!(health.healthy, 0, "at {}", sim.now());
        saw_unhealthy |= health.unhealthy > 0;
    }
    assert!(saw_unhealthy);
}

#[tokio::test(start_paused = true)]
async fn a_version_that_fails_later_is_healthy_first_then_not() {
    // Without replacements, so a fresh task cannot be healthy again by the end.
    let sim = SimCloud::builder(3)
        .clock(clock())
        .replace_unhealthy(false)
        .build();
    let arns = web(&sim);
    sim.mark_image_bad("registry.example/web:9", BadVersion::FailsAfter(secs(120)));
    let image = Version::Image {
        image: "registry.example/web:9".into(),
        container: "app".into(),
    };
    sim.create_task_set(&arns.key, &request(&arns, image, "t1"))
        .await
        .unwrap();
    sim.run_for(secs(60)).await;
    assert_eq!(sim.target_health(arns.green()).await.unwrap().healthy, 2);
    sim.run_for(secs(120)).await;
    assert_eq!(sim.target_health(arns.green()).await.unwrap().healthy, 0);
}

#[tokio::test(start_paused = true)]
async fn crash_looping_tasks_are_replaced() {
    let sim = sim(4);
    let arns = web(&sim);
    sim.mark_task_definition_bad("web:2", BadVersion::CrashLoop);
    sim.create_task_set(&arns.key, &request(&arns, td("web:2"), "t1"))
        .await
        .unwrap();
    let mut saw_draining = false;
    for _ in 0..40 {
        sim.run_for(secs(5)).await;
        saw_draining |= sim.target_health(arns.green()).await.unwrap().draining > 0;
    }
    assert!(saw_draining, "crashed tasks deregister their targets");
    let ts = service(&sim, &arns.key).await.task_sets[1].clone();
    assert_eq!(ts.computed_desired, Some(2));
    assert_eq!(ts.running.unwrap_or(0) + ts.pending.unwrap_or(0), 2);
}

#[tokio::test(start_paused = true)]
async fn the_same_client_token_returns_the_same_task_set() {
    let sim = sim(5);
    let arns = web(&sim);
    let req = request(&arns, td("web:2"), "token-a");
    let a = sim.create_task_set(&arns.key, &req).await.unwrap();
    let b = sim.create_task_set(&arns.key, &req).await.unwrap();
    assert_eq!(a.arn, b.arn);
    assert_eq!(service(&sim, &arns.key).await.task_sets.len(), 2);
    let c = sim
        .create_task_set(&arns.key, &request(&arns, td("web:2"), "token-b"))
        .await
        .unwrap();
    assert_ne!(a.arn, c.arn);
    assert!(
        c.arn
            .starts_with("arn:aws:ecs:us-east-1:123456789012:task-set/prod/web/ecs-svc/")
    );
}

#[tokio::test(start_paused = true)]
async fn a_sixth_task_set_is_refused() {
    let sim = sim(6);
    let arns = web(&sim);
    for i in 1..TASK_SET_LIMIT {
        sim.create_task_set(&arns.key, &request(&arns, td("web:2"), &format!("t{i}")))
            .await
            .unwrap();
    }
    let err = sim
        .create_task_set(&arns.key, &request(&arns, td("web:2"), "one-too-many"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert_eq!(
        service(&sim, &arns.key).await.task_sets.len(),
        TASK_SET_LIMIT
    );
}

#[tokio::test(start_paused = true)]
async fn a_first_release_creates_a_task_set_and_makes_it_primary() {
    let sim = sim(7);
    let mut setup = ServiceSetup::new(key());
    setup.initial_task_set = false;
    let arns = sim.add_service(setup).unwrap();
    assert!(service(&sim, &arns.key).await.task_sets.is_empty());
    let mut req = request(&arns, td("web:1"), "first");
    req.template = None;
    let ts = sim.create_task_set(&arns.key, &req).await.unwrap();
    sim.set_primary(&arns.key, &ts.arn).await.unwrap();
    assert_eq!(
        service(&sim, &arns.key).await.primary().map(|t| &t.arn),
        Some(&ts.arn)
    );

    req.placement.network = None;
    req.client_token = "no-network".into();
    let err = sim.create_task_set(&arns.key, &req).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
}

#[tokio::test(start_paused = true)]
async fn set_primary_demotes_the_previous_primary() {
    let sim = sim(8);
    let arns = web(&sim);
    let green = healthy_green(&sim, &arns, "web:2").await;
    sim.set_primary(&arns.key, &green.arn).await.unwrap();
    let svc = service(&sim, &arns.key).await;
    assert_eq!(svc.primary().map(|t| t.arn.clone()), Some(green.arn));
    let old = arns.initial_task_set.as_deref().unwrap();
    assert_eq!(
        svc.by_arn(old).map(|t| t.status),
        Some(TaskSetStatus::Active)
    );
}

#[tokio::test(start_paused = true)]
async fn a_deleted_task_set_drains_then_disappears_with_its_targets() {
    let sim = sim(9);
    let arns = web(&sim);
    let green = healthy_green(&sim, &arns, "web:2").await;
    let primary = arns.initial_task_set.clone().unwrap();
    let err = sim.delete_task_set(&arns.key, &primary).await.unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::Invalid,
        "the primary cannot be deleted"
    );

    sim.delete_task_set(&arns.key, &green.arn).await.unwrap();
    let ts = task_set(&sim, &arns.key, &green.arn).await;
    assert_eq!(ts.status, TaskSetStatus::Draining);
    assert_eq!(sim.target_health(arns.green()).await.unwrap().draining, 2);
    sim.run_for(secs(31)).await;
    assert!(service(&sim, &arns.key).await.by_arn(&green.arn).is_none());
    assert_eq!(
        sim.target_health(arns.green()).await.unwrap(),
        Default::default()
    );
}

#[tokio::test(start_paused = true)]
async fn an_image_version_registers_one_task_definition_per_image() {
    let sim = sim(10);
    let arns = web(&sim);
    let image = |i: &str| Version::Image {
        image: i.into(),
        container: "app".into(),
    };
    let a = sim
        .create_task_set(&arns.key, &request(&arns, image("repo/web:2"), "a"))
        .await
        .unwrap();
    let b = sim
        .create_task_set(&arns.key, &request(&arns, image("repo/web:2"), "b"))
        .await
        .unwrap();
    let c = sim
        .create_task_set(&arns.key, &request(&arns, image("repo/web:3"), "c"))
        .await
        .unwrap();
    assert!(a.task_definition.ends_with("/web:2"));
    assert_eq!(a.task_definition, b.task_definition);
    assert!(c.task_definition.ends_with("/web:3"));
    let wrong = Version::Image {
        image: "repo/web:4".into(),
        container: "sidecar".into(),
    };
    let err = sim
        .create_task_set(&arns.key, &request(&arns, wrong, "d"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
}

#[tokio::test(start_paused = true)]
async fn counts_can_be_left_unreported_like_the_emulator() {
    let sim = SimCloud::builder(11)
        .clock(clock())
        .report_counts(false)
        .build();
    let arns = web(&sim);
    let ts = sim
        .create_task_set(&arns.key, &request(&arns, td("web:2"), "t"))
        .await
        .unwrap();
    assert_eq!(
        (ts.computed_desired, ts.running, ts.pending),
        (None, None, None)
    );
    assert_eq!(ts.stability, Stability::SteadyState);
}

#[tokio::test(start_paused = true)]
async fn unknown_services_are_missing_and_in_unknown_clusters_cluster_missing() {
    let sim = sim(12);
    web(&sim);
    let found = sim
        .describe_services("prod", &["nope".to_string()])
        .await
        .unwrap();
    assert_eq!(found, vec![("nope".to_string(), ServiceState::Missing)]);
    let found = sim
        .describe_services("staging", &["web".to_string()])
        .await
        .unwrap();
    assert_eq!(
        found,
        vec![("web".to_string(), ServiceState::ClusterMissing)]
    );
}

#[tokio::test(start_paused = true)]
async fn the_record_helper_writes_a_valid_record() {
    let sim = sim(13);
    let arns = web(&sim);
    let mut setup = ServiceSetup::new(ServiceKey::new("prod", "api"));
    setup.production_rule = true;
    let rule = sim.add_service(setup).unwrap();
    for a in [&arns, &rule] {
        let body = a.record(
            "web:2",
            json!({"type": "canary", "percent": 10, "interval": "5m"}),
        );
        let spec = parse_record(&a.key, &body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.traffic.production, a.production);
    }
}

#[tokio::test(start_paused = true)]
async fn task_sets_follow_the_service_desired_count() {
    let sim = sim(14);
    let arns = web(&sim);
    sim.set_desired_count(&arns.key, 5).unwrap();
    sim.run_for(secs(45)).await;
    assert_eq!(sim.target_health(arns.blue()).await.unwrap().healthy, 5);
    sim.set_desired_count(&arns.key, 1).unwrap();
    let blue = service(&sim, &arns.key).await.task_sets[0].clone();
    assert_eq!((blue.computed_desired, blue.running), (Some(1), Some(1)));
    let health = sim.target_health(arns.blue()).await.unwrap();
    assert_eq!((health.healthy, health.draining), (1, 4));
}

#[tokio::test(start_paused = true)]
async fn a_service_under_another_deployment_controller_takes_no_task_sets() {
    let sim = sim(15);
    let mut setup = ServiceSetup::new(key());
    setup.deployment_controller = "ECS".into();
    let arns = sim.add_service(setup).unwrap();
    let svc = service(&sim, &arns.key).await;
    assert!(!svc.is_external());
    assert!(svc.task_sets.is_empty());
    let err = sim
        .create_task_set(&arns.key, &request(&arns, td("web:2"), "t"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
}
