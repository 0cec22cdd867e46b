//! Which stopped tasks count against a candidate.
//!
//! ECS says why it stopped a task in `stopCode` and `stoppedReason`
//! (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html,
//! and the stopped task error codes,
//! https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html).
//! A task that could not start, or whose essential container exited, is the
//! version failing; so is one the scheduler stopped because it failed its
//! load balancer or container health checks (`ServiceSchedulerInitiated`,
//! with a reason that says so). A task stopped by someone
//! (`UserInitiated`), by a Spot interruption or a termination notice (host
//! retirement, Fargate maintenance), or by the scheduler for any other
//! reason (scale-in, a deleted task set) says nothing about the version.
//! A stopped task without a code is counted: AWS gives every stopped task
//! one, so a missing code is a gap in what was read, and the gate errs on
//! the side of rolling back.

/// Whether a stopped task is a failure of the version it ran.
pub fn counts_as_failure(stop_code: Option<&str>, stopped_reason: Option<&str>) -> bool {
    match stop_code {
        Some("TaskFailedToStart" | "EssentialContainerExited") => true,
        Some("ServiceSchedulerInitiated") => stopped_reason.is_some_and(|r| {
            let r = r.to_ascii_lowercase();
            r.contains("failed elb health checks") || r.contains("failed container health checks")
        }),
        Some(_) => false,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::counts_as_failure;

    #[test]
    fn failures_of_the_version_count() {
        assert!(counts_as_failure(Some("EssentialContainerExited"), None));
        assert!(counts_as_failure(
            Some("TaskFailedToStart"),
            Some("CannotPullContainerError: image not found")
        ));
        assert!(counts_as_failure(
            Some("ServiceSchedulerInitiated"),
            Some("Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:…)")
        ));
        assert!(counts_as_failure(
            Some("ServiceSchedulerInitiated"),
            Some("Task failed container health checks")
        ));
        assert!(counts_as_failure(None, None));
    }

    #[test]
    fn routine_stops_do_not() {
        assert!(!counts_as_failure(
            Some("ServiceSchedulerInitiated"),
            Some("Scaling activity initiated by (deployment ecs-svc/123)")
        ));
        assert!(!counts_as_failure(Some("TerminationNotice"), None));
        assert!(!counts_as_failure(Some("SpotInterruption"), None));
        assert!(!counts_as_failure(
            Some("UserInitiated"),
            Some("Task stopped by user")
        ));
    }
}
