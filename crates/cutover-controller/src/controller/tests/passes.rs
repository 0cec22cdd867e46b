//! How one service's passes end up in the store and on the load balancer.

use crate::cloud::{CloudError, ErrorKind};
use crate::rollout::{Phase, Weights};

use super::fakes::{key, listener, record, target_group};
use super::*;

fn green(name: &str) -> Weights {
    Weights::pair(
        &target_group(name, "blue"),
        0,
        &target_group(name, "green"),
        100,
    )
}

fn not_found() -> CloudError {
    CloudError::not_found(
        "elasticloadbalancing:ModifyListener",
        format!("target group {}", target_group("web", "green")),
    )
}

#[tokio::test(start_paused = true)]
async fn a_valid_record_is_driven_to_its_goal_and_its_status_stored() {
    let h = Harness::new();
    h.cloud.put(&key("web"), record("web", &[]));
    let mut run = h.start(config());
    h.sleep(secs(30)).await;

    assert_eq!(h.cloud.weights(&listener("web")), Some(green("web")));
    let status = h.cloud.status(&key("web")).unwrap();
    assert_eq!(status.phase(), Phase::Steady);
    assert_eq!(status.last_error, None);
    assert_eq!(status.history.len(), 2);
    assert_eq!(
        run.transitions(),
        [
            ("web".into(), Phase::Steady, Phase::Shifting),
            ("web".into(), Phase::Shifting, Phase::Steady),
        ]
    );
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_command_keeps_the_previous_phase_and_says_what_failed() {
    let h = Harness::new();
    h.cloud.put(&key("web"), record("web", &[]));
    h.cloud.fail("set_weights", not_found(), None);
    let mut run = h.start(config());
    h.sleep(secs(5)).await;

    let status = h.cloud.status(&key("web")).unwrap();
    let expected = format!(
        "set_weights failed: elasticloadbalancing:ModifyListener: target group {} not found",
        target_group("web", "green")
    );
    assert_eq!(status.phase(), Phase::Steady);
    assert_eq!(status.last_error.as_deref(), Some(expected.as_str()));
    assert_eq!(status.message, expected);
    assert!(status.history.is_empty());
    assert_eq!(h.cloud.weights(&listener("web")), None);
    assert!(
        run.transitions().is_empty(),
        "a failed decision reports nothing"
    );
    // Not retryable: the owner must fix it, so the next look is a poll away.
    let due = run.handle.next_due(&key("web")).unwrap();
    assert!(due >= EPOCH + secs(10) && due <= EPOCH + secs(11), "{due}");

    h.cloud.heal("set_weights");
    h.sleep(secs(30)).await;
    let status = h.cloud.status(&key("web")).unwrap();
    assert_eq!(status.phase(), Phase::Steady);
    assert_eq!(status.last_error, None);
    assert_eq!(h.cloud.weights(&listener("web")), Some(green("web")));
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_back_off_until_they_clear() {
    let h = Harness::new();
    h.cloud.put(&key("web"), record("web", &[]));
    let throttled = CloudError::new(
        ErrorKind::Throttled,
        "elasticloadbalancing:ModifyListener",
        "Rate exceeded",
    );
    h.cloud.fail("set_weights", throttled, None);
    let run = h.start(ControllerConfig {
        poll_interval: secs(1),
        ..config()
    });
    h.sleep(secs(60)).await;

    // Polling every second would have tried 60 times.
    let tries = h.cloud.calls("set_weights");
    assert!((4..=8).contains(&tries), "{tries} tries");
    let status = h.cloud.status(&key("web")).unwrap();
    assert!(status.last_error.unwrap().contains("Rate exceeded"));

    h.cloud.heal("set_weights");
    h.sleep(secs(120)).await;
    assert_eq!(h.phase(&key("web")), Some(Phase::Steady));
    assert_eq!(h.cloud.weights(&listener("web")), Some(green("web")));
    assert_eq!(h.cloud.status(&key("web")).unwrap().last_error, None);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_status_conflict_is_followed_by_a_fresh_read() {
    let h = Harness::new();
    h.cloud.put(&key("web"), record("web", &[]));
    h.cloud.state().interference.insert(key("web"), 1);
    let poll_never = ControllerConfig {
        poll_interval: secs(3600),
        ..config()
    };
    let mut run = h.start(poll_never);
    h.sleep(secs(1)).await;

    // Only an immediate re-read can have stored a status this early. The
    // first pass of a process reads the listed record again, consistently;
    // the retry after the conflict read it once more.
    let status = h.cloud.status(&key("web")).unwrap();
    assert_eq!(status.phase(), Phase::Steady);
    assert_eq!(status.message, "on goal");
    assert_eq!(h.cloud.calls("get"), 2);
    assert!(
        run.transitions().is_empty(),
        "the dropped decision reports nothing"
    );
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_invalid_record_does_not_stop_other_services() {
    let h = Harness::new();
    let mut bad = record("bad", &[]);
    bad.as_object_mut().unwrap().remove("container");
    h.cloud.put(&key("bad"), bad);
    h.cloud.put(&key("good"), record("good", &[]));
    let run = h.start(ControllerConfig {
        concurrency: 1,
        ..config()
    });
    h.sleep(secs(30)).await;

    let status = h.cloud.status(&key("bad")).unwrap();
    assert_eq!(status.phase(), Phase::Invalid);
    assert!(status.message.contains("container"), "{}", status.message);
    assert_eq!(h.phase(&key("good")), Some(Phase::Steady));
    assert_eq!(h.cloud.weights(&listener("good")), Some(green("good")));
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_read_backs_off_and_leaves_the_status_alone() {
    let h = Harness::new();
    h.cloud.put(&key("web"), record("web", &[]));
    let unavailable = CloudError::new(
        ErrorKind::Transient,
        "ecs:DescribeServices",
        "Service unavailable",
    );
    h.cloud.fail("describe_services", unavailable, None);
    let run = h.start(config());
    h.sleep(secs(30)).await;

    assert!(h.cloud.calls("describe_services") >= 3);
    assert_eq!(h.cloud.calls("write_status"), 0);
    assert_eq!(h.cloud.calls("set_weights"), 0);
    assert_eq!(h.cloud.status(&key("web")), None);

    h.cloud.heal("describe_services");
    h.sleep(secs(120)).await;
    assert_eq!(h.phase(&key("web")), Some(Phase::Steady));
    run.stop().await;
}

/// Seconds between the `describe_services` calls that name `service`.
fn describe_gaps(h: &Harness, service: &str) -> Vec<i64> {
    let s = h.cloud.state();
    let at: Vec<i64> = s
        .calls
        .iter()
        .filter(|c| c.operation == "describe_services" && c.target.contains(service))
        .map(|c| c.at)
        .collect();
    at.windows(2).map(|w| (w[1] - w[0]) / 1000).collect()
}

/// Soak seed 1093 of the simulation: a person deleted the task set
/// production was shifting from, and ten failed passes in a row backed the
/// service off to 30 s between tries, so production stayed on a target
/// group without targets for 111 s. A rollout in flight is retried at least
/// every poll however often it fails; a steady service backs off as before.
#[tokio::test(start_paused = true)]
async fn a_rollout_in_flight_is_retried_every_poll_while_its_passes_fail() {
    let h = Harness::new();
    h.cloud.put(&key("web"), record("web", &[]));
    let run = h.start(config());
    h.sleep(secs(1)).await;
    assert_eq!(h.phase(&key("web")), Some(Phase::Shifting));
    let unavailable = CloudError::new(
        ErrorKind::Transient,
        "ecs:DescribeServices",
        "Service unavailable",
    );
    h.cloud.fail("describe_services", unavailable, None);
    h.sleep(secs(300)).await;

    let gaps = describe_gaps(&h, "web");
    assert!(
        gaps.len() >= 25,
        "{} retries in 300 s: {gaps:?}",
        gaps.len()
    );
    let poll = config().poll_interval.as_secs() as i64;
    assert!(
        gaps.iter().all(|&g| g <= poll),
        "a retry later than a poll: {gaps:?}"
    );
    assert_eq!(h.phase(&key("web")), Some(Phase::Shifting));
    run.stop().await;

    // The same failures without a rollout in flight back off past a poll.
    let h = Harness::new();
    h.cloud.put(&key("api"), record("api", &[]));
    let run = h.start(config());
    h.sleep(secs(30)).await;
    assert_eq!(h.phase(&key("api")), Some(Phase::Steady));
    let unavailable = CloudError::new(
        ErrorKind::Transient,
        "ecs:DescribeServices",
        "Service unavailable",
    );
    h.cloud.fail("describe_services", unavailable, None);
    // The owner writes the record again: a pass, which fails.
    h.cloud.put(&key("api"), record("api", &[]));
    h.sleep(secs(300)).await;
    let gaps = describe_gaps(&h, "api");
    assert!(
        gaps.iter().any(|&g| g > poll),
        "a steady service backs off: {gaps:?}"
    );
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_deleted_record_is_forgotten() {
    let h = Harness::new();
    h.cloud.put(&key("web"), record("web", &[]));
    let run = h.start(config());
    h.sleep(secs(30)).await;
    assert_eq!(h.phase(&key("web")), Some(Phase::Steady));

    h.cloud.delete(&key("web"));
    h.sleep(secs(1)).await;
    assert_eq!(run.handle.next_due(&key("web")), None);
    assert_eq!(run.handle.queue_depth(), 0);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_panicking_decision_costs_one_service_a_retry_not_the_controller() {
    let h = Harness::new();
    h.cloud
        .put(&key("boom"), record("boom", &[("panic", "yes")]));
    h.cloud.put(&key("web"), record("web", &[]));
    let run = h.start(ControllerConfig {
        concurrency: 1,
        ..config()
    });
    h.sleep(secs(30)).await;

    assert_eq!(h.phase(&key("web")), Some(Phase::Steady));
    assert_eq!(h.cloud.status(&key("boom")), None);
    assert!(
        run.handle.next_due(&key("boom")).is_some(),
        "boom is retried"
    );
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_wake_time_is_honoured_but_never_later_than_a_resync() {
    let h = Harness::new();
    let soon = (EPOCH + secs(30)).millis().to_string();
    let far = (EPOCH + secs(10 * 86_400)).millis().to_string();
    h.cloud
        .put(&key("soon"), record("soon", &[("wake_at", &soon)]));
    h.cloud
        .put(&key("far"), record("far", &[("wake_at", &far)]));
    let run = h.start(config());
    h.sleep(secs(1)).await;

    assert_eq!(run.handle.next_due(&key("soon")), Some(EPOCH + secs(30)));
    let due = run.handle.next_due(&key("far")).unwrap();
    assert!(
        due > EPOCH + secs(3599) && due <= EPOCH + secs(3601),
        "{due}"
    );
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn storing_a_failure_does_not_make_the_change_feed_spin() {
    let h = Harness::new();
    h.cloud.state().echo_status_writes = true;
    h.cloud.put(&key("web"), record("web", &[]));
    h.cloud.fail("set_weights", not_found(), None);
    let run = h.start(config());
    h.sleep(secs(60)).await;

    // One try per poll, and one more for the echo of the single status write.
    let tries = h.cloud.calls("set_weights");
    assert!((6..=8).contains(&tries), "{tries} tries");
    assert_eq!(h.cloud.calls("write_status"), 1);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_error_text_of_any_length_is_stored_cut_to_the_documented_bound() {
    let h = Harness::new();
    h.cloud.put(&key("web"), record("web", &[]));
    let huge = CloudError::new(
        ErrorKind::Invalid,
        "elasticloadbalancing:ModifyListener",
        "x".repeat(300_000),
    );
    h.cloud.fail("set_weights", huge, None);
    let run = h.start(config());
    h.sleep(secs(5)).await;

    let status = h.cloud.status(&key("web")).unwrap();
    let limit = crate::rollout::trim::BOUNDED_MESSAGE_LIMIT;
    let error = status.last_error.unwrap_or_default();
    assert!(error.starts_with("set_weights failed"), "{error:.80}");
    assert!(error.len() <= limit, "last error of {} bytes", error.len());
    assert!(
        status.message.len() <= limit,
        "message of {} bytes",
        status.message.len()
    );
    run.stop().await;
}

/// Seed 2166: a restarted replica's first listing may hold an older version
/// of a record than the one its predecessor last wrote (a `Scan` is
/// eventually consistent), and nothing in a new process remembers better:
/// its first pass of each service reads the record consistently, and acts
/// on what that read shows.
#[tokio::test(start_paused = true)]
async fn a_first_pass_reads_the_listed_record_again_consistently() {
    let h = Harness::new();
    for name in ["web", "api", "jobs"] {
        h.cloud.put(&key(name), record(name, &[]));
    }
    let poll_never = ControllerConfig {
        poll_interval: secs(3600),
        ..config()
    };
    let run = h.start(poll_never);
    h.sleep(secs(1)).await;
    assert_eq!(h.cloud.calls("get"), 3, "one consistent read per service");
    for name in ["web", "api", "jobs"] {
        assert!(h.phase(&key(name)).is_some(), "{name} was decided");
    }
    run.stop().await;
}
