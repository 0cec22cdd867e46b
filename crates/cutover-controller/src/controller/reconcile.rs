//! One pass over one service: read the record and the world afresh, decide,
//! act, write the status. A pass is not told why it runs; it is only handed
//! the record when a resync has just listed it, and the conditional status
//! write still catches a record that changed in between. A decision that
//! only stored its status to go on at once (a rollout's start) is followed
//! by the next one in the same pass, on the same reads.

use std::sync::Arc;

use tracing::Instrument;
use tracing::field::Empty;

use super::admission::{Admissions, PassSlot};
use super::halt::HaltWatch;
use crate::cloud::StoredRecord;
use crate::cloud::budget::{Priority, with_priority};
use crate::cloud::{
    Checks, Clock, CloudError, DesiredStore, Ecs, ErrorKind, LoadBalancer, StatusWrite,
};
use crate::rollout::admission::Admission;
use crate::rollout::trim;
use crate::rollout::{Decision, Desired, Observed, ServiceKey, Spec, Status, Wake};
use crate::time::{Timestamp, format_duration};

use super::act::{self, CommandFailed};
use super::detect::Detection;
use super::events::{self, EventSender};
use super::health::StoreHealth;
use super::observe::observe;
use super::policy::Policy;
use super::queue::Trigger;
use super::seen::Seen;
use super::shards::{self, Claim, Ownership, Stop};
use crate::metrics::Metrics;
use crate::notice::Notify;

/// How a pass that met no error ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// The decision was carried out and its status stored.
    Applied(Wake),
    /// The status changed since it was read; the decision was dropped.
    Conflict,
    /// The record no longer exists.
    Gone,
    /// This replica does not hold the lease of the service's shard (or lost
    /// it during the pass): another replica drives the service.
    NotOwned,
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

    /// Whether the next pass waits longer after each failure in a row. A
    /// status write that failed (a store refusing the item's size, or its
    /// permissions) fails the same way at once: never retry it on every poll.
    pub fn backs_off(&self) -> bool {
        self.error_kind().is_retryable() || matches!(self, PassError::WriteStatus(_))
    }

    /// Where in the pass it failed, as a bounded label: one of the stages
    /// the metrics start their failure counters at.
    pub fn stage(&self) -> &'static str {
        let [read_record, observe, command, write_status] = crate::metrics::PASS_STAGES;
        match self {
            PassError::Store(_) => read_record,
            PassError::Observe(_) => observe,
            PassError::Command(_) => command,
            PassError::WriteStatus(_) => write_status,
        }
    }
}

/// What a pass reads and commands through: the cloud's ports and the clock.
pub struct Ports {
    pub store: Arc<dyn DesiredStore>,
    pub ecs: Arc<dyn Ecs>,
    pub lb: Arc<dyn LoadBalancer>,
    pub checks: Arc<dyn Checks>,
    pub codedeploy: Arc<dyn crate::cloud::CodeDeploy>,
    pub service_deployments: Arc<dyn crate::cloud::ServiceDeployments>,
    pub clock: Arc<dyn Clock>,
}

impl Ports {
    /// The ports the decision's commands go through.
    fn commands(&self) -> act::Ports<'_> {
        act::Ports {
            ecs: self.ecs.as_ref(),
            lb: self.lb.as_ref(),
            checks: self.checks.as_ref(),
            codedeploy: self.codedeploy.as_ref(),
            service_deployments: self.service_deployments.as_ref(),
        }
    }
}

/// Who hears of a pass: subscribers to its events, the notifications, the
/// metrics, the detection clock and the store's health.
pub struct Observers {
    pub events: EventSender,
    pub notifier: Option<Arc<dyn Notify>>,
    pub metrics: Option<Arc<Metrics>>,
    pub detection: Arc<Detection>,
    pub health: Arc<StoreHealth>,
}

/// What a reconcile needs, grouped as a context: the ports, the observers,
/// the policy, and this replica's share of the services.
pub struct Reconciler {
    pub ports: Ports,
    pub observers: Observers,
    pub policy: Policy,
    pub ownership: Option<Arc<Ownership>>,
    pub seen: Seen,
    /// The fleet-wide halt, as this replica last read it.
    pub halt: Arc<HaltWatch>,
    /// The rollouts this replica counts against its concurrency limits;
    /// `None` when no limit is configured.
    pub admissions: Option<Arc<Admissions>>,
}

impl Reconciler {
    pub async fn reconcile(&self, key: &ServiceKey, trigger: Trigger) -> Result<Pass, PassError> {
        let span =
            tracing::info_span!("reconcile", service = %key, revision = Empty, phase = Empty);
        let priority = priority(&trigger);
        let listed = match trigger {
            Trigger::Listed(record) => Some(*record),
            Trigger::Changed | Trigger::Due => None,
        };
        with_priority(priority, self.pass(key, listed))
            .instrument(span)
            .await
    }

    async fn pass(
        &self,
        key: &ServiceKey,
        listed: Option<StoredRecord>,
    ) -> Result<Pass, PassError> {
        let span = tracing::Span::current();
        // Held for the whole pass, so the lease is not handed back under it.
        let claim = match &self.ownership {
            None => None,
            Some(o) => match o.enter(key) {
                Some(claim) => Some(claim),
                None => {
                    if let Some(a) = &self.admissions {
                        a.forget(key);
                    }
                    return Ok(Pass::NotOwned);
                }
            },
        };
        // A slot given to this pass that it does not take is free again
        // when it ends, however it ends.
        let _slot = PassSlot::new(self.admissions.as_deref(), key);
        let tenure = claim.as_ref().map(|c| c.fence().token);
        // A `Scan` may return an older version of an item than a
        // consistent read does
        // (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html):
        // a listed record older than the status this replica last stored
        // or read is read again, consistently, and never acted on as
        // listed. So is every listed record of a first pass (of this
        // process, or under a newly taken lease): with nothing remembered,
        // a stale listing of a restarted replica would replay a decision
        // its predecessor had already moved past.
        let first_look = self.seen.weights_unread(key, tenure);
        let listed = listed.filter(|record| {
            let stale = self.seen.older_than_written(key, record.status_version);
            if stale {
                tracing::debug!(
                    version = record.status_version,
                    "the listed record is older than the status last stored; reading it again"
                );
            }
            !stale && !first_look
        });
        let read = match listed {
            Some(record) => Ok(Some(record)),
            None => {
                let read = self.ports.store.get(key).await;
                self.store_answered(read.as_ref().map(drop));
                if let Ok(Some(record)) = &read {
                    self.seen.status_written(key, record.status_version);
                }
                read
            }
        };
        let Some(record) = read.map_err(PassError::Store)? else {
            tracing::debug!("the record is gone");
            self.forget(key);
            return Ok(Pass::Gone);
        };
        // A missing or unreadable status is rebuilt by the decision from the
        // live service, starting from the default.
        let previous = record.status.clone().unwrap_or_default();
        self.seen.rollout(key, previous.rollout.is_some());
        if let Some(a) = &self.admissions {
            a.seen(key, previous.rollout.is_some());
        }
        span.record("phase", previous.phase().as_str());
        let spec = record.spec();
        if let Ok(spec) = &spec {
            span.record("revision", spec.revision.to_string());
        }
        let desired = Desired::of(&spec);

        let look_at_weights = first_look;
        let halt = self.halt.current().await.map_err(PassError::Store)?;
        let mut observed = observe(
            self.ports.ecs.as_ref(),
            self.ports.lb.as_ref(),
            self.ports.checks.as_ref(),
            self.ports.codedeploy.as_ref(),
            self.ports.service_deployments.as_ref(),
            &self.policy,
            key,
            &desired,
            &previous,
            self.ports.clock.now(),
            look_at_weights,
        )
        .await
        .map_err(PassError::Observe)?;
        observed.halt = halt;
        let claim = claim.as_ref();
        let (mut record, mut previous) = (record, previous);
        let mut follow_ons = 0;
        loop {
            let applied = self
                .apply(key, &desired, &observed, &record, previous, claim)
                .await?;
            let Applied {
                status,
                version,
                wake,
                went_on,
            } = match applied {
                Ok(applied) => applied,
                Err(ended) => return Ok(ended),
            };
            if look_at_weights {
                self.seen.weights_read(key, tenure);
            }
            // A decision that sent nothing and only stored its status to go
            // on at once (a new rollout is stored before its candidate is
            // created, so that every try of the create names the same
            // client token) is followed by the next decision here, on this
            // pass's observation: nothing was sent since it was read, and
            // the conditional write proved the status is still this pass's.
            // A pass of its own would read everything again, at a rollout's
            // priority and behind every rollout's load balancer reads, while
            // someone waits for the first command of the change they wrote.
            match version {
                Some(version) if went_on && follow_ons < FOLLOW_ON_DECISIONS => {
                    follow_ons += 1;
                    record.status = Some(status.clone());
                    record.status_version = version;
                    previous = status;
                }
                _ => return Ok(Pass::Applied(wake)),
            }
        }
    }

    /// Decides on `observed`, sends the commands under `claim` and stores the
    /// status in `record`'s item: the status stored, with the version it was
    /// stored at when it was written (`None` when the item held it already),
    /// or how the pass ended when it cannot go on.
    async fn apply(
        &self,
        key: &ServiceKey,
        desired: &Desired<'_>,
        observed: &Observed,
        record: &StoredRecord,
        previous: Status,
        claim: Option<&Claim>,
    ) -> Result<Result<Applied, Pass>, PassError> {
        let now = self.ports.clock.now();
        let decision = self.decide(key, desired, observed, &previous, record, now);
        if let (Desired::Valid(spec), false) = (desired, decision.commands.is_empty()) {
            self.first_action(key, spec, record, now);
        }

        let commands = &decision.commands;
        let ports = self.ports.commands();
        let answers = match shards::execute(&ports, key, commands, claim).await {
            Ok(answers) => answers,
            Err(Stop::LeaseEnding) => return Ok(Err(Pass::NotOwned)),
            Err(Stop::Failed(failed)) => {
                let error = PassError::Command(failed);
                self.report_failure(record, previous, &error, claim).await;
                return Err(error);
            }
        };

        let mut status = decision.status;
        // A hook that answered at once: its verdict belongs to this rollout.
        if let Some(r) = status.rollout.as_mut() {
            for (point, verdict) in answers {
                r.hook_verdicts.insert(point, verdict);
            }
        }
        // `last_error` belongs to the loop, not the decision: it describes
        // the last failed pass, and this pass did not fail.
        status.last_error = None;
        // Free text from endpoints, gates and AWS is cut to a bound, so a
        // status never nears the item's 400 KB.
        let mut status = trim::bounded(status);
        let mut version = None;
        if record.status.as_ref() != Some(&status) {
            let written = self.store_status(record, status, claim).await;
            self.store_answered(written.as_ref().map(drop));
            let (written, stored) = written.map_err(PassError::WriteStatus)?;
            status = stored;
            match written {
                StatusWrite::Written { version: v } => {
                    self.seen.status_written(key, v);
                    self.seen.rollout(key, status.rollout.is_some());
                    version = Some(v);
                }
                StatusWrite::TooLarge => {
                    return Err(PassError::WriteStatus(too_large(&record.key)));
                }
                StatusWrite::Conflict | StatusWrite::Contended => return Ok(Err(Pass::Conflict)),
                StatusWrite::Fenced => {
                    tracing::info!(
                        "the lease of this service's shard was lost; its new holder takes over"
                    );
                    if let Some(a) = &self.admissions {
                        a.forget(key);
                    }
                    return Ok(Err(Pass::NotOwned));
                }
                StatusWrite::Gone => {
                    self.forget(key);
                    return Ok(Err(Pass::Gone));
                }
            }
        }
        if let Some(m) = &self.observers.metrics {
            m.service(key, &status);
        }
        if let Some(a) = &self.admissions {
            a.seen(key, status.rollout.is_some());
        }
        // Only for a stored status: a pass that lost its write is decided
        // again, and its events come with that decision.
        if let (Some(n), Desired::Valid(spec)) = (&self.observers.notifier, desired) {
            let before = previous.phase();
            n.notify(
                key,
                &spec.notifications,
                &decision.events,
                before,
                &status,
                now,
            );
        }
        for event in decision.events {
            events::publish(
                &self.observers.events,
                self.observers.metrics.as_deref(),
                key,
                event,
            );
        }
        let went_on =
            decision.commands.is_empty() && matches!(decision.wake, Wake::At(at) if at <= now);
        Ok(Ok(Applied {
            status,
            version,
            wake: decision.wake,
            went_on,
        }))
    }

    /// The decision on `observed`, under the concurrency limits. It is
    /// taken as if admitted first: only a decision that would start a
    /// rollout asks for a slot, so services with nothing to start never
    /// hold one nor queue, and the slot is counted the moment it is given.
    /// Refused, the decision is taken again, queued (it then starts
    /// nothing, and says where it waits). A rollout in flight asks nothing.
    fn decide(
        &self,
        key: &ServiceKey,
        desired: &Desired<'_>,
        observed: &Observed,
        previous: &Status,
        record: &StoredRecord,
        now: Timestamp,
    ) -> Decision {
        let decide = self.policy.decide;
        let decision = decide(desired, observed, previous, now);
        let Some(admissions) = &self.admissions else {
            return decision;
        };
        if previous.rollout.is_some() {
            return decision;
        }
        if decision.status.rollout.is_none() {
            admissions.withdraw(key);
            return decision;
        }
        match admissions.admit(key, record.written_at, now) {
            Admission::Admitted => decision,
            queued => {
                let mut observed = observed.clone();
                observed.admission = Some(queued);
                decide(desired, &observed, previous, now)
            }
        }
    }

    /// Stores `status` in `record`'s item. When the store refuses it for
    /// the item's size (the record and its status share one 400 KB item),
    /// stores it trimmed instead, once; returns what was stored. A trimmed
    /// status the item holds already is not written again.
    async fn store_status(
        &self,
        record: &StoredRecord,
        status: Status,
        claim: Option<&Claim>,
    ) -> Result<(StatusWrite, Status), CloudError> {
        let (key, expected) = (&record.key, record.status_version);
        let written = self.write_status(key, expected, &status, claim).await?;
        if written != StatusWrite::TooLarge {
            return Ok((written, status));
        }
        let trimmed = trim::trimmed(&status);
        if record.status.as_ref() == Some(&trimmed) {
            return Ok((StatusWrite::Written { version: expected }, trimmed));
        }
        tracing::warn!(
            service = %key,
            "the status does not fit in the record's DynamoDB item next to the record; storing it trimmed"
        );
        let written = self.write_status(key, expected, &trimmed, claim).await?;
        Ok((written, trimmed))
    }

    /// Under the shard's lease, when replicas share the services. A write
    /// DynamoDB cancelled for a conflicting write in flight (another pass's
    /// status write checking the same lease item, a lease renewal, a
    /// writer's update) wrote nothing and is sent again after a jittered
    /// pause, so a verdict or a step is not lost to a collision.
    async fn write_status(
        &self,
        key: &ServiceKey,
        expected: u64,
        status: &Status,
        claim: Option<&Claim>,
    ) -> Result<StatusWrite, CloudError> {
        let mut attempt = 0;
        loop {
            let written = self.write_status_once(key, expected, status, claim).await?;
            if written != StatusWrite::Contended || attempt >= CONTENDED_RETRIES {
                return Ok(written);
            }
            attempt += 1;
            self.ports
                .clock
                .sleep(contended_pause(key, expected, attempt))
                .await;
        }
    }

    async fn write_status_once(
        &self,
        key: &ServiceKey,
        expected: u64,
        status: &Status,
        claim: Option<&Claim>,
    ) -> Result<StatusWrite, CloudError> {
        match claim {
            Some(c) => {
                let _turn = c.lease_item_turn().await;
                let fence = c.fence();
                self.ports
                    .store
                    .write_status_fenced(key, expected, status, fence)
                    .await
            }
            None => self.ports.store.write_status(key, expected, status).await,
        }
    }

    fn store_answered(&self, result: Result<(), &CloudError>) {
        let now = self.ports.clock.now();
        match result {
            Ok(()) => self.observers.health.succeeded(now),
            Err(e) => self.observers.health.failed(now, e),
        }
    }

    fn forget(&self, key: &ServiceKey) {
        self.observers.detection.forget(key);
        self.seen.forget(key);
        if let Some(a) = &self.admissions {
            a.forget(key);
        }
        if let Some(m) = &self.observers.metrics {
            m.service_gone(key);
        }
    }

    /// Reports how long the record's write waited for this, the first
    /// decision with commands for its revision.
    fn first_action(&self, key: &ServiceKey, spec: &Spec, record: &StoredRecord, now: Timestamp) {
        let Some(latency) =
            self.observers
                .detection
                .first_action(key, &spec.revision, record.written_at, now)
        else {
            return;
        };
        tracing::info!(
            service = %key,
            revision = %spec.revision,
            detection_latency_seconds = latency.as_secs_f64(),
            "acting on revision {} {} after the record was written",
            spec.revision,
            format_duration(latency)
        );
        if let Some(m) = &self.observers.metrics {
            m.detected(latency);
        }
    }

    /// Keeps the status the failed decision started from, so the phase does
    /// not move on half-done work, and tells the service's owner what failed.
    async fn report_failure(
        &self,
        record: &StoredRecord,
        previous: Status,
        error: &PassError,
        claim: Option<&Claim>,
    ) {
        let text = trim::cut(&error.to_string(), trim::BOUNDED_MESSAGE_LIMIT);
        let mut status = previous;
        if status.last_error.as_deref() == Some(&text) && status.message == text {
            return;
        }
        status.last_error = Some(text.clone());
        status.message = text;
        let status = trim::bounded(status);
        let written = self.store_status(record, status, claim).await;
        self.store_answered(written.as_ref().map(drop));
        match written {
            Ok((StatusWrite::Written { version }, stored)) => {
                self.seen.status_written(&record.key, version);
                if let Some(m) = &self.observers.metrics {
                    m.service(&record.key, &stored);
                }
            }
            Ok((StatusWrite::TooLarge, _)) => tracing::warn!(
                "the failure does not fit in the record's DynamoDB item, even trimmed: {}",
                too_large(&record.key)
            ),
            Ok((
                StatusWrite::Conflict
                | StatusWrite::Contended
                | StatusWrite::Gone
                | StatusWrite::Fenced,
                _,
            )) => {
                tracing::debug!(
                    "the record changed before the failure could be stored; the retry reads it afresh"
                )
            }
            Err(e) => tracing::warn!(
                operation = e.operation,
                error_kind = e.kind.as_str(),
                request_id = e.request_id.as_deref().unwrap_or(""),
                "storing the failure in the status failed: {e}"
            ),
        }
    }
}

/// A decision that stored its status: what it stored and what it asked for.
struct Applied {
    status: Status,
    /// The version the status was written at; `None` when the item held it
    /// already.
    version: Option<u64>,
    wake: Wake,
    /// It sent nothing and asked to go on at once.
    went_on: bool,
}

/// How many decisions may follow the first in one pass, each on the pass's
/// observation, while the one before sent nothing and asked to go on at
/// once. A rollout's start needs one (the rollout is stored, then its
/// candidate is created); the bound keeps a decision that would always ask
/// to go on from holding a worker.
const FOLLOW_ON_DECISIONS: usize = 1;

/// How many times a status write cancelled for a conflict is sent again.
const CONTENDED_RETRIES: u32 = 8;

/// The pause before sending a cancelled status write again: the ceiling
/// doubles from 25 ms (up to 3.2 s), and the pause is drawn from its upper
/// half by a hash of the service, the version and the attempt, so writes
/// that collided spread apart yet a seeded simulation replays the same.
fn contended_pause(key: &ServiceKey, expected: u64, attempt: u32) -> std::time::Duration {
    let ceiling_ms = 25u64 << attempt.saturating_sub(1).min(7);
    let draw = crate::cloud::lease::stable_hash(&format!("{key}#{expected}#{attempt}"));
    std::time::Duration::from_millis(ceiling_ms / 2 + draw % (ceiling_ms / 2 + 1))
}

/// A status that does not fit even trimmed: only the record's owner can
/// make room.
fn too_large(key: &ServiceKey) -> CloudError {
    CloudError::new(
        ErrorKind::Invalid,
        "dynamodb:UpdateItem",
        format!(
            "the status of {key} does not fit in its 400 KB DynamoDB item even trimmed: the record \
             leaves no room for it; make the record smaller"
        ),
    )
}

/// Whose AWS calls go first when the budget runs short: a change someone
/// just made (that wait is the latency they feel), then rollouts in flight,
/// then a resync's drift checks of services with no rollout.
fn priority(trigger: &Trigger) -> Priority {
    match trigger {
        Trigger::Changed => Priority::Change,
        Trigger::Listed(r) if r.status.as_ref().is_none_or(|s| s.rollout.is_none()) => {
            Priority::Steady
        }
        Trigger::Listed(_) | Trigger::Due => Priority::Rollout,
    }
}
