//! Task sets as ECS documents them: client tokens, the five-per-service
//! limit, and what a task set's tasks say about themselves.

use super::*;
use crate::cloud::ErrorKind;
use crate::rollout::TaskSetStatus;
use crate::{BadVersion, DesiredStatus, TASK_SET_LIMIT, TaskFilter};

/// Deletes the task set and waits until it is gone (the deregistration
/// delay is 30 s by default).
async fn delete_until_gone(sim: &SimCloud, arns: &ServiceArns, arn: &str) {
    sim.delete_task_set(&arns.key, arn).await.unwrap();
    sim.run_for(secs(31)).await;
    assert!(service(sim, &arns.key).await.by_arn(arn).is_none());
}

#[tokio::test(start_paused = true)]
async fn a_client_token_is_remembered_after_its_task_set_is_gone() {
    let sim = sim(21);
    let arns = web(&sim);
    let req = request(&arns, td("web:2"), "token-a");
    let first = sim.create_task_set(&arns.key, &req).await.unwrap();
    delete_until_gone(&sim, &arns, &first.arn).await;

    // The same request again: ECS answers with the task set the token
    // made, and makes none.
    let again = sim.create_task_set(&arns.key, &req).await.unwrap();
    assert_eq!(again.arn, first.arn);
    assert_eq!(service(&sim, &arns.key).await.task_sets.len(), 1);

    // Another request under the same token is refused.
    let other = request(&arns, td("web:3"), "token-a");
    let err = sim.create_task_set(&arns.key, &other).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(err.message.contains("token-a"), "{}", err.message);
    assert_eq!(service(&sim, &arns.key).await.task_sets.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_client_token_reused_by_another_request_of_a_live_task_set_is_refused() {
    let sim = sim(22);
    let arns = web(&sim);
    sim.create_task_set(&arns.key, &request(&arns, td("web:2"), "token-b"))
        .await
        .unwrap();
    let mut other = request(&arns, td("web:2"), "token-b");
    other.template = None;
    let err = sim.create_task_set(&arns.key, &other).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
}

#[tokio::test(start_paused = true)]
async fn a_client_token_must_be_1_to_36_printable_ascii_characters() {
    let sim = sim(23);
    let arns = web(&sim);
    for bad in ["", &"x".repeat(37), "has space", "ünïcode"] {
        let err = sim
            .create_task_set(&arns.key, &request(&arns, td("web:2"), bad))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid, "{bad:?}");
    }
    sim.create_task_set(&arns.key, &request(&arns, td("web:2"), &"x".repeat(36)))
        .await
        .unwrap();
    assert_eq!(service(&sim, &arns.key).await.task_sets.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn draining_task_sets_count_toward_the_limit_until_they_are_gone() {
    let sim = sim(24);
    let arns = web(&sim);
    let mut created = vec![];
    for i in 1..TASK_SET_LIMIT {
        let ts = sim
            .create_task_set(&arns.key, &request(&arns, td("web:2"), &format!("t{i}")))
            .await
            .unwrap();
        created.push(ts);
    }
    sim.delete_task_set(&arns.key, &created[0].arn)
        .await
        .unwrap();
    assert_eq!(
        task_set(&sim, &arns.key, &created[0].arn).await.status,
        TaskSetStatus::Draining
    );
    let err = sim
        .create_task_set(&arns.key, &request(&arns, td("web:2"), "sixth"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(err.message.contains("DRAINING"), "{}", err.message);

    sim.run_for(secs(31)).await;
    sim.create_task_set(&arns.key, &request(&arns, td("web:2"), "sixth"))
        .await
        .expect("room once the draining task set is gone");
}

#[tokio::test(start_paused = true)]
async fn a_task_set_s_tasks_are_started_by_its_id_and_listed_by_it_alone() {
    let sim = sim(25);
    let arns = web(&sim);
    sim.mark_task_definition_bad("web:2", BadVersion::CrashLoop);
    let green = sim
        .create_task_set(&arns.key, &request(&arns, td("web:2"), "crashing"))
        .await
        .unwrap();
    assert!(green.id.starts_with("ecs-svc/"), "{}", green.id);
    sim.run_for(secs(120)).await;

    let cluster = &arns.key.cluster;
    let by_green = TaskFilter {
        started_by: Some(green.id.clone()),
        ..TaskFilter::default()
    };
    // startedBy alone lists the task set's running tasks.
    let running = sim.list_tasks(cluster, &by_green).unwrap();
    assert_eq!(running.len(), 2, "{running:?}");

    // ... and is refused beside any other filter.
    for other in [
        TaskFilter {
            desired_status: Some(DesiredStatus::Stopped),
            ..by_green.clone()
        },
        TaskFilter {
            service_name: Some(arns.key.service.clone()),
            ..by_green.clone()
        },
    ] {
        let err = sim.list_tasks(cluster, &other).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
    }

    // The service's stopped tasks say which task set started them.
    let stopped = sim
        .list_tasks(
            cluster,
            &TaskFilter {
                service_name: Some(arns.key.service.clone()),
                desired_status: Some(DesiredStatus::Stopped),
                ..TaskFilter::default()
            },
        )
        .unwrap();
    assert!(!stopped.is_empty());
    let described = sim.describe_tasks(cluster, &stopped).unwrap();
    assert_eq!(described.len(), stopped.len());
    assert!(described.iter().all(|t| t.started_by == green.id));
    assert!(
        described
            .iter()
            .all(|t| t.stop_code.as_deref() == Some("EssentialContainerExited")),
        "{described:?}"
    );

    // The gate's port counts them for the candidate, and none for blue.
    let count = sim.stopped_tasks(&arns.key, &green.arn).await.unwrap();
    assert_eq!(count as usize, stopped.len());
    let blue = arns.initial_task_set.clone().unwrap();
    assert_eq!(sim.stopped_tasks(&arns.key, &blue).await.unwrap(), 0);
}

/// Tasks the scheduler stops for scale-in say so (`ServiceSchedulerInitiated`
/// with a scaling reason), and the task failures gate does not count them.
#[tokio::test(start_paused = true)]
async fn tasks_stopped_by_scale_in_are_not_failures_of_the_version() {
    let sim = sim(26);
    let arns = web(&sim);
    let green = sim
        .create_task_set(&arns.key, &request(&arns, td("web:2"), "healthy"))
        .await
        .unwrap();
    sim.run_for(secs(60)).await;
    sim.set_desired_count(&arns.key, 1).unwrap();
    sim.run_for(secs(60)).await;

    let cluster = &arns.key.cluster;
    let stopped = sim
        .list_tasks(
            cluster,
            &TaskFilter {
                service_name: Some(arns.key.service.clone()),
                desired_status: Some(DesiredStatus::Stopped),
                ..TaskFilter::default()
            },
        )
        .unwrap();
    let described = sim.describe_tasks(cluster, &stopped).unwrap();
    assert!(
        described.iter().any(|t| t.started_by == green.id
            && t.stop_code.as_deref() == Some("ServiceSchedulerInitiated")),
        "{described:?}"
    );
    assert_eq!(sim.stopped_tasks(&arns.key, &green.arn).await.unwrap(), 0);
}
