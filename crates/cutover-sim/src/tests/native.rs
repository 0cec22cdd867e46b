//! ECS's own service deployments, driven through the ServiceDeployments
//! port as the `ecs_native` driver would, without the controller.

use super::*;
use crate::cloud::{ErrorKind, ServiceDeployments};
use crate::rollout::command::StartServiceDeployment;
use crate::rollout::parse_record;
use crate::rollout::service_deployment::{
    LifecycleStage as Stage, NativeStrategy, PauseAction, PauseStatus, ServiceDeployment,
    ServiceDeploymentStatus as Status,
};
use crate::{BadVersion, FaultProfile, Faults};

fn native_web(sim: &SimCloud) -> ServiceArns {
    sim.add_service(ServiceSetup::native(key()))
        .expect("a new service can be added")
}

/// A canary of 10% baked for a minute, paused before each production step.
fn canary(version: Version) -> StartServiceDeployment {
    StartServiceDeployment {
        version,
        strategy: NativeStrategy::Canary {
            percent: 10,
            bake_minutes: 1,
        },
        bake_minutes: 1,
        pauses: vec![Stage::PreProductionTrafficShift],
        pause_timeout_minutes: 10,
    }
}

async fn start(sim: &SimCloud, request: &StartServiceDeployment) -> String {
    sim.start(&key(), request)
        .await
        .expect("UpdateService succeeds without faults")
        .expect("UpdateService reports the new deployment")
}

async fn describe(sim: &SimCloud, arn: &str) -> ServiceDeployment {
    let mut found = sim
        .describe(&[arn.to_string()])
        .await
        .expect("describe succeeds without faults");
    assert_eq!(found.len(), 1, "{arn} not found");
    found.remove(0)
}

/// Lets time pass a second at a time until the deployment is as wanted.
async fn until(
    sim: &SimCloud,
    arn: &str,
    what: &str,
    wanted: impl Fn(&ServiceDeployment) -> bool,
) -> ServiceDeployment {
    for _ in 0..3_600 {
        let d = describe(sim, arn).await;
        if wanted(&d) {
            return d;
        }
        sim.run_for(secs(1)).await;
    }
    panic!(
        "{what}: not by {}: {:?}",
        sim.now(),
        describe(sim, arn).await
    );
}

async fn paused(sim: &SimCloud, arn: &str) -> (ServiceDeployment, String) {
    let d = until(sim, arn, "paused", |d| d.awaiting().is_some()).await;
    let hook = d.awaiting().map(|p| p.hook_id.clone()).unwrap_or_default();
    (d, hook)
}

fn green_share(sim: &SimCloud, arns: &ServiceArns) -> u32 {
    sim.visible_weights(arns.production.arn())
        .unwrap_or_default()
        .percent(arns.green())
}

#[tokio::test(start_paused = true)]
async fn a_canary_answered_continue_at_both_pauses_succeeds_through_0_10_100() {
    let sim = sim(70);
    let arns = native_web(&sim);
    let arn = start(&sim, &canary(td("web:2"))).await;
    assert!(arn.starts_with("arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/web/"));
    assert_eq!(describe(&sim, &arn).await.status, Status::Pending);
    assert_eq!(
        service(&sim, &key())
            .await
            .native
            .unwrap()
            .current_deployment,
        Some(arn.clone())
    );

    let (mut stages, mut shares) = (vec![], vec![]);
    let mut answered = vec![];
    loop {
        let d = describe(&sim, &arn).await;
        if let Some(stage) = d.stage
            && stages.last() != Some(&stage)
        {
            stages.push(stage);
        }
        let share = green_share(&sim, &arns);
        if shares.last() != Some(&share) {
            shares.push(share);
        }
        if let Some(p) = d.awaiting() {
            assert_eq!(d.stage, Some(Stage::PreProductionTrafficShift));
            assert_eq!(d.status, Status::InProgress);
            let healthy = sim.target_health(arns.green()).await.unwrap().healthy;
            assert_eq!(healthy, 2, "green is healthy at the pause");
            sim.answer(&arn, &p.hook_id, PauseAction::Continue)
                .await
                .unwrap();
            answered.push(p.hook_id.clone());
        }
        if d.status.completed() {
            assert_eq!(d.status, Status::Successful);
            assert_eq!(d.target_weight, Some(100));
            break;
        }
        assert!(sim.now().since(EPOCH) < secs(1_800), "no end: {d:?}");
        sim.run_for(secs(1)).await;
    }
    assert_eq!(
        stages,
        [
            Stage::ReconcileService,
            Stage::PreScaleUp,
            Stage::ScaleUp,
            Stage::PostScaleUp,
            Stage::TestTrafficShift,
            Stage::PostTestTrafficShift,
            Stage::PreProductionTrafficShift,
            Stage::ProductionTrafficShift,
            Stage::PreProductionTrafficShift,
            Stage::ProductionTrafficShift,
            Stage::PostProductionTrafficShift,
            Stage::BakeTime,
            Stage::CleanUp,
        ]
    );
    assert_eq!(shares, [0, 10, 100]);
    assert_eq!(answered.len(), 2);
    assert_ne!(
        answered[0], answered[1],
        "each pause has a hook id of its own"
    );
    let d = describe(&sim, &arn).await;
    assert!(d.pauses.iter().all(|p| p.status == PauseStatus::Succeeded));

    let native = service(&sim, &key()).await.native.unwrap();
    assert!(native.task_definition.ends_with("task-definition/web:2"));
    // Blue drains, and the test listener follows green.
    sim.run_for(secs(60)).await;
    let blue = sim.target_health(arns.blue()).await.unwrap();
    assert_eq!((blue.healthy, blue.draining), (0, 0));
    let test = arns.test.as_ref().unwrap();
    assert_eq!(
        sim.visible_weights(test.arn())
            .unwrap()
            .percent(arns.green()),
        100
    );
    assert!(sim.violations().is_empty(), "{:#?}", sim.violations());
    assert_eq!(sim.max_exposure(), Duration::ZERO);
    // Green is the primary now; blue was removed at CLEAN_UP.
    assert_eq!(
        sim.primary_failures_before_promotion(&key(), secs(5)),
        Some(0)
    );
    let continues = sim.native_continues();
    assert_eq!(continues.len(), 2);
    assert!(
        continues
            .iter()
            .all(|c| c.shifts_production() && c.bad.is_none() && c.green_healthy == Some(2))
    );
    assert_eq!(
        (continues[0].steps_passed, continues[1].steps_passed),
        (0, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_later_deployment_uses_the_other_target_group() {
    let sim = sim(71);
    let arns = native_web(&sim);
    let mut request = canary(td("web:2"));
    request.strategy = NativeStrategy::BlueGreen;
    request.pauses.clear();
    let first = start(&sim, &request).await;
    until(&sim, &first, "first succeeds", |d| {
        d.status == Status::Successful
    })
    .await;
    assert_eq!(green_share(&sim, &arns), 100);
    request.version = td("web:3");
    let second = start(&sim, &request).await;
    until(&sim, &second, "second succeeds", |d| {
        d.status == Status::Successful
    })
    .await;
    let weights = sim.visible_weights(arns.production.arn()).unwrap();
    assert_eq!(weights.percent(arns.blue()), 100, "{weights}");
    assert!(sim.violations().is_empty(), "{:#?}", sim.violations());
    assert_eq!(sim.max_exposure(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn rollback_at_a_pause_returns_production_to_blue() {
    let sim = sim(72);
    let arns = native_web(&sim);
    let arn = start(&sim, &canary(td("web:2"))).await;
    let (_, first) = paused(&sim, &arn).await;
    sim.answer(&arn, &first, PauseAction::Continue)
        .await
        .unwrap();
    let (d, second) = paused(&sim, &arn).await;
    assert_ne!(first, second);
    assert_eq!(d.target_weight, Some(10));
    assert_eq!(green_share(&sim, &arns), 10);

    sim.answer(&arn, &second, PauseAction::Rollback)
        .await
        .unwrap();
    let d = describe(&sim, &arn).await;
    assert_eq!(d.status, Status::RollbackRequested);
    assert!(d.rollback_reason.unwrap().contains("ROLLBACK"));
    until(&sim, &arn, "rolling back", |d| {
        d.status == Status::RollbackInProgress
    })
    .await;
    until(&sim, &arn, "rolled back", |d| {
        d.status == Status::RollbackSuccessful
    })
    .await;
    assert_eq!(green_share(&sim, &arns), 0);
    let native = service(&sim, &key()).await.native.unwrap();
    assert!(native.task_definition.ends_with("task-definition/web:1"));
    sim.run_for(secs(60)).await;
    let green = sim.target_health(arns.green()).await.unwrap();
    assert_eq!((green.healthy, green.initial, green.draining), (0, 0, 0));
    assert_eq!(sim.target_health(arns.blue()).await.unwrap().healthy, 2);
    assert!(sim.violations().is_empty(), "{:#?}", sim.violations());
}

#[tokio::test(start_paused = true)]
async fn a_pause_nobody_answers_times_out_and_rolls_back() {
    let sim = sim(73);
    let arns = native_web(&sim);
    let mut request = canary(td("web:2"));
    request.pause_timeout_minutes = 1;
    let arn = start(&sim, &request).await;
    let (d, hook) = paused(&sim, &arn).await;
    let expires = d.awaiting().unwrap().expires_at.unwrap();
    // Paused within the second before (reads take their latency).
    let left = expires.since(sim.now());
    assert!(left <= secs(60) && left > secs(58), "{left:?}");
    let d = until(&sim, &arn, "rolled back", |d| {
        d.status == Status::RollbackSuccessful
    })
    .await;
    let timed_out = d.pauses.iter().find(|p| p.hook_id == hook).unwrap();
    assert_eq!(timed_out.status, PauseStatus::TimedOut);
    assert!(d.rollback_reason.unwrap().contains("timed out"));
    assert_eq!(green_share(&sim, &arns), 0);
    let err = sim
        .answer(&arn, &hook, PauseAction::Continue)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
}

#[tokio::test(start_paused = true)]
async fn stop_rolls_back_an_ongoing_deployment_and_refuses_a_completed_one() {
    let sim = sim(74);
    let arns = native_web(&sim);
    let arn = start(&sim, &canary(td("web:2"))).await;
    let (_, hook) = paused(&sim, &arn).await;
    sim.answer(&arn, &hook, PauseAction::Continue)
        .await
        .unwrap();
    // Mid-way: production partly on green, baking the first step.
    until(&sim, &arn, "shifted", |d| d.target_weight == Some(10)).await;
    sim.run_for(secs(20)).await;
    assert_eq!(green_share(&sim, &arns), 10);
    sim.stop(&arn).await.unwrap();
    assert_eq!(describe(&sim, &arn).await.status, Status::RollbackRequested);
    // Stopping one that already rolls back carries on.
    sim.stop(&arn).await.unwrap();
    until(&sim, &arn, "rolled back", |d| {
        d.status == Status::RollbackSuccessful
    })
    .await;
    assert_eq!(green_share(&sim, &arns), 0);
    let err = sim.stop(&arn).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Other, "a ConflictException: {err}");
    assert!(err.message.contains("ConflictException"));
    assert!(sim.violations().is_empty(), "{:#?}", sim.violations());
}

#[tokio::test(start_paused = true)]
async fn answers_to_a_stale_or_unknown_hook_are_refused() {
    let sim = sim(75);
    native_web(&sim);
    let arn = start(&sim, &canary(td("web:2"))).await;
    let (_, first) = paused(&sim, &arn).await;
    sim.answer(&arn, &first, PauseAction::Continue)
        .await
        .unwrap();
    let again = sim
        .answer(&arn, &first, PauseAction::Continue)
        .await
        .unwrap_err();
    assert_eq!(again.kind, ErrorKind::Invalid);
    let (_, second) = paused(&sim, &arn).await;
    for (hook, action) in [
        (first.as_str(), PauseAction::Continue),
        (first.as_str(), PauseAction::Rollback),
        ("ecs-pause-no-such-hook", PauseAction::Continue),
    ] {
        let err = sim.answer(&arn, hook, action).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid, "{hook}");
    }
    // The pause that waits is untouched by the refusals.
    let d = describe(&sim, &arn).await;
    assert_eq!(
        d.awaiting().map(|p| p.hook_id.as_str()),
        Some(second.as_str())
    );
    let missing = arn.replace(
        crate::rollout::service_deployment::deployment_id(&arn),
        "nope",
    );
    let err = sim
        .answer(&missing, &second, PauseAction::Continue)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
}

#[tokio::test(start_paused = true)]
async fn update_service_while_a_deployment_is_ongoing_is_a_violation_and_rolls_it_back() {
    let sim = sim(76);
    let arns = native_web(&sim);
    let first = start(&sim, &canary(td("web:2"))).await;
    let (_, hook) = paused(&sim, &first).await;
    sim.answer(&first, &hook, PauseAction::Continue)
        .await
        .unwrap();
    until(&sim, &first, "shifted", |d| d.target_weight == Some(10)).await;
    assert!(sim.violations().is_empty());

    let second = start(&sim, &canary(td("web:3"))).await;
    let v = sim.violations();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(
        v[0].text
            .contains("UpdateService while a deployment was ongoing"),
        "{v:#?}"
    );
    assert_eq!(
        describe(&sim, &first).await.status,
        Status::RollbackRequested
    );
    // The service is set to run the newest version at once.
    let native = service(&sim, &key()).await.native.unwrap();
    assert!(native.task_definition.ends_with("task-definition/web:3"));
    assert_eq!(native.current_deployment, Some(second.clone()));
    // The first rolls back before the second starts.
    let d = until(&sim, &second, "second starts", |d| {
        d.status == Status::InProgress
    })
    .await;
    assert_eq!(d.stage, Some(Stage::ReconcileService));
    assert_eq!(
        describe(&sim, &first).await.status,
        Status::RollbackSuccessful
    );
    assert_eq!(green_share(&sim, &arns), 0);
    assert!(
        service(&sim, &key())
            .await
            .native
            .unwrap()
            .task_definition
            .ends_with("task-definition/web:3"),
        "a superseded rollback does not undo the newer UpdateService"
    );
    let starts = sim.native_starts();
    assert_eq!(starts.len(), 2);
    assert!(starts[0].over_ongoing.is_empty());
    assert_eq!(starts[1].over_ongoing, std::slice::from_ref(&first));
    assert_eq!(
        starts[1].previous,
        Some(("web:2".to_string(), Status::InProgress))
    );
    assert_eq!(
        sim.ongoing(&key(), None).await.unwrap(),
        std::slice::from_ref(&second),
        "only the second is ongoing"
    );
}

#[tokio::test(start_paused = true)]
async fn an_image_version_registers_a_task_definition_the_service_shows() {
    let sim = sim(77);
    native_web(&sim);
    let before = service(&sim, &key()).await;
    assert!(
        before.task_sets.is_empty(),
        "native services have no task sets"
    );
    let native = before.native.unwrap();
    assert!(native.task_definition.ends_with("task-definition/web:1"));
    assert_eq!(native.images["app"], "registry.example/web:1");
    assert_eq!(native.current_deployment, None);

    let image = Version::Image {
        image: "registry.example/web:9".into(),
        container: "app".into(),
    };
    let arn = start(&sim, &canary(image.clone())).await;
    let native = service(&sim, &key()).await.native.unwrap();
    assert!(native.task_definition.ends_with("task-definition/web:2"));
    assert_eq!(native.images["app"], "registry.example/web:9");
    let described = sim.describe(std::slice::from_ref(&arn)).await.unwrap();
    let target = described[0]
        .target
        .as_ref()
        .expect("the revision it deploys");
    assert_eq!(target.images["app"], "registry.example/web:9");
    assert_eq!(target.task_definition, native.task_definition);
    assert_eq!(native.current_deployment, Some(arn));
    assert_eq!(sim.native_starts()[0].task_definition, "web:2");
}

#[tokio::test(start_paused = true)]
async fn a_continue_onto_a_green_without_healthy_targets_is_a_violation() {
    let sim = sim(78);
    let arns = native_web(&sim);
    sim.mark_task_definition_bad("web:2", BadVersion::NeverHealthy);
    let arn = start(&sim, &canary(td("web:2"))).await;
    let (_, hook) = paused(&sim, &arn).await;
    assert_eq!(sim.target_counts(arns.green()).unwrap().healthy, 0);
    sim.answer(&arn, &hook, PauseAction::Continue)
        .await
        .unwrap();
    let v = sim.violations();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].text.contains("has no healthy target"), "{v:#?}");
    let c = &sim.native_continues()[0];
    assert_eq!(c.bad, Some(BadVersion::NeverHealthy));
    assert_eq!(c.green_healthy, Some(0));
    assert_eq!(c.health_read, None);
    // ECS shifts anyway, and production is exposed until it goes back.
    until(&sim, &arn, "shifted", |d| d.target_weight == Some(10)).await;
    sim.run_for(secs(30)).await;
    assert!(sim.max_exposure() >= secs(20), "{:?}", sim.max_exposure());
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_took_effect_and_its_retry_is_refused() {
    let sim = sim(79);
    native_web(&sim);
    let arn = start(&sim, &canary(td("web:2"))).await;
    let (_, hook) = paused(&sim, &arn).await;
    sim.set_faults(Faults {
        ecs_mutation: FaultProfile {
            lost_reply: 1.0,
            ..FaultProfile::NONE
        },
        ..Faults::none()
    });
    let lost = sim
        .answer(&arn, &hook, PauseAction::Continue)
        .await
        .unwrap_err();
    assert_eq!(lost.kind, ErrorKind::Transient);
    sim.set_faults(Faults::none());
    let d = describe(&sim, &arn).await;
    assert_eq!(d.pauses[0].status, PauseStatus::Succeeded);
    assert_eq!(d.awaiting(), None);
    let retry = sim
        .answer(&arn, &hook, PauseAction::Continue)
        .await
        .unwrap_err();
    assert_eq!(retry.kind, ErrorKind::Invalid);
    assert_eq!(sim.call_count("ecs:ContinueServiceDeployment"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_lost_update_service_reply_still_started_the_deployment() {
    let sim = sim(80);
    native_web(&sim);
    sim.set_faults(Faults {
        ecs_mutation: FaultProfile {
            lost_reply: 1.0,
            ..FaultProfile::NONE
        },
        ..Faults::none()
    });
    let err = sim.start(&key(), &canary(td("web:2"))).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient);
    sim.set_faults(Faults::none());
    let ongoing = sim.ongoing(&key(), None).await.unwrap();
    assert_eq!(ongoing.len(), 1);
    let native = service(&sim, &key()).await.native.unwrap();
    assert_eq!(native.current_deployment.as_ref(), ongoing.first());
}

#[tokio::test(start_paused = true)]
async fn reads_lag_behind_by_the_configured_lag() {
    let sim = SimCloud::builder(81)
        .clock(clock())
        .native_read_lag(secs(5))
        .build();
    native_web(&sim);
    let arn = start(&sim, &canary(td("web:2"))).await;
    assert!(
        sim.describe(std::slice::from_ref(&arn))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(sim.ongoing(&key(), None).await.unwrap().is_empty());
    sim.run_for(secs(5)).await;
    assert_eq!(describe(&sim, &arn).await.status, Status::Pending);
    assert_eq!(
        sim.ongoing(&key(), None).await.unwrap(),
        std::slice::from_ref(&arn)
    );
    // The port's own answer (and the service's) is up to date.
    let truth = &sim.service_deployments(&key())[0];
    let seen = describe(&sim, &arn).await;
    assert!(seen.created_at <= truth.created_at);
}

#[tokio::test(start_paused = true)]
async fn describe_and_list_answer_as_the_api_does() {
    let sim = sim(82);
    native_web(&sim);
    let arn = start(&sim, &canary(td("web:2"))).await;
    let many: Vec<String> = (0..21).map(|_| arn.clone()).collect();
    let err = sim.describe(&many).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    let unknown = arn.replace(
        crate::rollout::service_deployment::deployment_id(&arn),
        "gone",
    );
    let found = sim.describe(&[unknown, arn.clone()]).await.unwrap();
    assert_eq!(found.len(), 1);
    let created = found[0].created_at.unwrap();
    assert_eq!(
        sim.ongoing(&key(), Some(created)).await.unwrap(),
        std::slice::from_ref(&arn)
    );
    let later = crate::time::Timestamp(created.0 + 1);
    assert!(sim.ongoing(&key(), Some(later)).await.unwrap().is_empty());
    let missing = ServiceKey::new("prod", "nope");
    assert_eq!(
        sim.ongoing(&missing, None).await.unwrap_err().kind,
        ErrorKind::NotFound
    );
    for op in [
        "ecs:UpdateService",
        "ecs:DescribeServiceDeployments",
        "ecs:ListServiceDeployments",
    ] {
        assert!(sim.call_count(op) >= 1, "{op} counted");
    }
}

#[tokio::test(start_paused = true)]
async fn update_service_refuses_what_ecs_refuses() {
    let sim = sim(83);
    web(&sim);
    let err = sim.start(&key(), &canary(td("web:2"))).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid, "an EXTERNAL service: {err}");
    let native = ServiceKey::new("prod", "api");
    sim.add_service(ServiceSetup::native(native.clone()))
        .unwrap();
    let mut bad = canary(td("api:2"));
    bad.pauses = vec![Stage::ProductionTrafficShift];
    assert_eq!(
        sim.start(&native, &bad).await.unwrap_err().kind,
        ErrorKind::Invalid
    );
    let mut bad = canary(td("api:2"));
    bad.pause_timeout_minutes = 0;
    assert_eq!(
        sim.start(&native, &bad).await.unwrap_err().kind,
        ErrorKind::Invalid
    );
    assert!(sim.service_deployments(&native).is_empty());
}

#[test]
fn a_native_record_for_the_service_parses() {
    let sim = SimCloud::builder(84).clock(clock()).build();
    let arns = native_web(&sim);
    let body = arns.native_record(
        "web:2",
        serde_json::json!({"type": "canary", "percent": 10, "interval": "1m"}),
    );
    let spec = parse_record(&arns.key, &body).expect("a valid ecs_native record");
    assert!(spec.driver.native().is_some(), "{spec:?}");
}
