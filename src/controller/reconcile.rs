//! One pass over one service: read the record and the world afresh, decide,
//! act, write the status. A pass is not told why it runs.

use std::sync::Arc;

use tracing::Instrument;
use tracing::field::Empty;

use crate::cloud::StoredRecord;
use crate::cloud::{Clock, CloudError, DesiredStore, Ecs, ErrorKind, LoadBalancer, StatusWrite};
use crate::rollout::{
    Decision, Desired, Observed, Reads, ServiceKey, ServiceState, Status, Wake, parse_record,
};
use crate::time::Timestamp;

use super::act::{self, CommandFailed};
use super::events::{self, EventSender};
use super::observe::observe;

pub type ReadsFn = fn(&Desired<'_>, Option<&ServiceState>, &Status) -> Reads;
pub type DecideFn = fn(&Desired<'_>, &Observed, &Status, Timestamp) -> Decision;

/// The pure rollout logic the loop consults. Only the loop's own tests swap
/// it, to exercise the loop without depending on any strategy.
#[derive(Clone, Copy)]
pub struct Policy {
    pub reads: ReadsFn,
    pub decide: DecideFn,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            reads: crate::rollout::reads,
            decide: crate::rollout::decide,
        }
    }
}

/// How a pass that met no error ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// The decision was carried out and its status stored.
    Applied(Wake),
    /// The status changed since it was read; the decision was dropped.
    Conflict,
    /// The record no longer exists.
    Gone,
}

#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("reading the record failed: {0}")]
    Store(CloudError),
    #[error("observing the service failed: {0}")]
    Observe(CloudError),
    /// Worded without the request id so that retries failing the same way
    /// write the same status, not a new one each time.
    #[error("{} failed: {}: {}", .0.kind, .0.error.operation, .0.error.message)]
    Command(CommandFailed),
    #[error("writing the status failed: {0}")]
    WriteStatus(CloudError),
}

impl PassError {
    pub fn cloud(&self) -> &CloudError {
        match self {
            PassError::Store(e) | PassError::Observe(e) | PassError::WriteStatus(e) => e,
            PassError::Command(c) => &c.error,
        }
    }

    pub fn error_kind(&self) -> ErrorKind {
        self.cloud().kind
    }

    /// Where in the pass it failed, as a bounded label.
    pub fn stage(&self) -> &'static str {
        match self {
            PassError::Store(_) => "read_record",
            PassError::Observe(_) => "observe",
            PassError::Command(_) => "command",
            PassError::WriteStatus(_) => "write_status",
        }
    }
}

pub struct Reconciler {
    pub store: Arc<dyn DesiredStore>,
    pub ecs: Arc<dyn Ecs>,
    pub lb: Arc<dyn LoadBalancer>,
    pub clock: Arc<dyn Clock>,
    pub events: EventSender,
    pub policy: Policy,
}

impl Reconciler {
    pub async fn reconcile(&self, key: &ServiceKey) -> Result<Pass, PassError> {
        let span =
            tracing::info_span!("reconcile", service = %key, revision = Empty, phase = Empty);
        self.pass(key).instrument(span).await
    }

    async fn pass(&self, key: &ServiceKey) -> Result<Pass, PassError> {
        let span = tracing::Span::current();
        let Some(record) = self.store.get(key).await.map_err(PassError::Store)? else {
            tracing::debug!("the record is gone");
            return Ok(Pass::Gone);
        };
        // A missing or unreadable status is rebuilt by the decision from the
        // live service, starting from the default.
        let previous = record.status.clone().unwrap_or_default();
        span.record("phase", previous.phase.as_str());
        let spec = parse_record(key, &record.body);
        let desired = match &spec {
            Ok(spec) => {
                span.record("revision", spec.revision.to_string());
                Desired::Valid(spec)
            }
            Err(problems) => Desired::Invalid(problems),
        };

        let observed = observe(
            self.ecs.as_ref(),
            self.lb.as_ref(),
            &self.policy,
            key,
            &desired,
            &previous,
        )
        .await
        .map_err(PassError::Observe)?;
        let decision = (self.policy.decide)(&desired, &observed, &previous, self.clock.now());

        let commands = &decision.commands;
        if let Err(failed) = act::execute(self.ecs.as_ref(), self.lb.as_ref(), key, commands).await
        {
            let error = PassError::Command(failed);
            self.report_failure(&record, previous, &error).await;
            return Err(error);
        }

        let mut status = decision.status;
        // `last_error` belongs to the loop, not the decision: it describes
        // the last failed pass, and this pass did not fail.
        status.last_error = None;
        if record.status.as_ref() != Some(&status) {
            let written = self
                .store
                .write_status(key, record.status_version, &status)
                .await
                .map_err(PassError::WriteStatus)?;
            match written {
                StatusWrite::Written { .. } => {}
                StatusWrite::Conflict => return Ok(Pass::Conflict),
                StatusWrite::Gone => return Ok(Pass::Gone),
            }
        }
        for event in decision.events {
            events::publish(&self.events, key, event);
        }
        Ok(Pass::Applied(decision.wake))
    }

    /// Keeps the status the failed decision started from, so the phase does
    /// not move on half-done work, and tells the service's owner what failed.
    async fn report_failure(&self, record: &StoredRecord, previous: Status, error: &PassError) {
        let text = error.to_string();
        let mut status = previous;
        if status.last_error.as_deref() == Some(&text) && status.message == text {
            return;
        }
        status.last_error = Some(text.clone());
        status.message = text;
        match self
            .store
            .write_status(&record.key, record.status_version, &status)
            .await
        {
            Ok(StatusWrite::Written { .. }) => {}
            Ok(StatusWrite::Conflict | StatusWrite::Gone) => tracing::debug!(
                "the record changed before the failure could be stored; the retry reads it afresh"
            ),
            Err(e) => tracing::warn!(error = %e, "storing the failure in the status failed"),
        }
    }
}
