//! Releases: one change rolled out to many services in waves under a
//! failure budget (`fleet`). This loop is their controller. It learns the
//! releases from every resync listing (and at once from a start through
//! the API), and while any is active it looks at them every poll: it reads
//! the table, asks `fleet::decide` what to write, writes each member's
//! record conditionally (a team's write made meanwhile is never
//! overwritten: the decision sees it at the next look) and stores the
//! release's status in its item. Each member's rollout is then an ordinary
//! one, driven by the reconcile loop like any other.
//!
//! Like a rollout, a release keeps all it needs in its status, so it goes
//! on exactly after a restart or a takeover by another replica; with
//! shard leases, the replica that holds the shard of the release's key
//! drives it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::halt::HaltWatch;
use super::queue::WorkQueue;
use super::shards::Ownership;
use crate::cloud::releases::StoredRelease;
use crate::cloud::{Clock, CloudError, DesiredStore, Precondition, StatusWrite, UnkeyedRecord};
use crate::fleet::{self, MemberView, ReleasePhase};
use crate::metrics::Metrics;
use crate::rollout::Spec;
use crate::rollout::items::RELEASE_PREFIX;
use crate::rollout::spec::STATUS_ATTRIBUTE;

pub struct Releases {
    store: Arc<dyn DesiredStore>,
    clock: Arc<dyn Clock>,
    halt: Arc<HaltWatch>,
    queue: Arc<WorkQueue>,
    ownership: Option<Arc<Ownership>>,
    metrics: Option<Arc<Metrics>>,
    active: Arc<ActiveReleases>,
}

/// Releases that may still write: learned, and not completed or aborted
/// when last looked at. Shared with the controller's handle, so a release
/// started through the API is looked at from the next poll.
#[derive(Debug, Default)]
pub struct ActiveReleases(Mutex<BTreeSet<String>>);

impl ActiveReleases {
    /// Looks at the release under `item` (`release:<name>`) from the next poll.
    pub fn learn(&self, item: &str) {
        if item.starts_with(RELEASE_PREFIX) {
            self.lock().insert(item.to_string());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Releases {
    pub fn new(
        store: Arc<dyn DesiredStore>,
        clock: Arc<dyn Clock>,
        halt: Arc<HaltWatch>,
        queue: Arc<WorkQueue>,
        ownership: Option<Arc<Ownership>>,
        metrics: Option<Arc<Metrics>>,
        active: Arc<ActiveReleases>,
    ) -> Arc<Releases> {
        Arc::new(Releases {
            store,
            clock,
            halt,
            queue,
            ownership,
            metrics,
            active,
        })
    }

    /// Learns the releases of a listing: each is looked at from the next poll.
    pub fn learn(&self, items: &[UnkeyedRecord]) {
        for item in items {
            self.active.learn(&item.given);
        }
    }

    /// Looks at every active release every `poll` until `shutdown`.
    pub async fn run(self: Arc<Self>, poll: Duration, shutdown: CancellationToken) {
        loop {
            let names: Vec<String> = self.lock().iter().cloned().collect();
            let names: Vec<String> = names
                .into_iter()
                .filter(|n| self.ownership.as_ref().is_none_or(|o| o.owns_text(n)))
                .collect();
            if !names.is_empty()
                && let Err(e) = self.look(&names).await
            {
                tracing::warn!(error = %e, "looking at the releases failed; trying again at the next poll");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.clock.sleep(poll) => {}
            }
        }
    }

    async fn look(&self, names: &[String]) -> Result<(), CloudError> {
        let listing = self.store.scan().await?;
        // Releases written since the last resync, found by this listing.
        self.learn(&listing.unkeyed);
        let halt = self.halt.current().await?;
        let specs: Vec<Option<Spec>> = listing.records.iter().map(|r| r.spec().ok()).collect();
        let views: Vec<MemberView<'_>> = listing
            .records
            .iter()
            .zip(&specs)
            .map(|(r, spec)| MemberView {
                key: r.key.clone(),
                labels: spec.as_ref().map_or(&NO_LABELS, |s| &s.labels),
                body: &r.body,
                updated_at: r
                    .body
                    .get(crate::cloud::write::UPDATED_AT_ATTRIBUTE)
                    .cloned(),
                status: r.status.as_ref(),
                revision: spec.as_ref().map(|s| s.revision.clone()),
            })
            .collect();
        for name in names {
            let span = tracing::info_span!("release", release = %name);
            let _enter = span.enter();
            match self.store.get_item(name).await? {
                None => {
                    self.lock().remove(name);
                    if let Some(m) = &self.metrics {
                        m.release_gone(name);
                    }
                }
                Some(item) => {
                    let release = StoredRelease::from_item(item);
                    let done = self
                        .decide(&release, &views, halt.as_ref().map(|h| h.reason.as_str()))
                        .await?;
                    if done {
                        self.lock().remove(name);
                    }
                }
            }
        }
        Ok(())
    }

    /// One decision for one release: its writes, then its status. Returns
    /// whether it has ended (completed or aborted).
    async fn decide(
        &self,
        release: &StoredRelease,
        views: &[MemberView<'_>],
        halted: Option<&str>,
    ) -> Result<bool, CloudError> {
        let now = self.clock.now();
        let mut body = release.body.clone();
        if let Some(fields) = body.as_object_mut() {
            fields.remove(STATUS_ATTRIBUTE);
        }
        let decision = fleet::decide(&body, views, release.status.as_ref(), halted, now);
        for write in &decision.writes {
            let mut changes = write.changes.clone();
            // The store stamps `updated_at` itself on every write.
            changes.remove(fleet::UPDATED_AT);
            let precondition = Precondition::Unchanged {
                updated_at: write.unchanged_since.clone(),
            };
            match self
                .store
                .write_spec(&write.key, &changes, precondition)
                .await
            {
                Ok(crate::cloud::SpecWrite::Written { .. }) => {
                    tracing::info!(service = %write.key, changes = ?changes.keys().collect::<Vec<_>>(), "release wrote the record");
                    self.queue.schedule_now(write.key.clone());
                }
                // Someone wrote the record meanwhile: the next look sees it.
                Ok(crate::cloud::SpecWrite::PreconditionFailed) => {
                    tracing::debug!(service = %write.key, "the record changed since it was read; looking again next poll");
                }
                Err(e) => {
                    tracing::warn!(service = %write.key, error = %e, "writing a member's record failed; trying again next poll")
                }
            }
        }
        let status = &decision.status;
        if let Some(m) = &self.metrics {
            m.release(&release.name, status);
        }
        let value = serde_json::to_value(status).map_err(|e| {
            CloudError::new(
                crate::cloud::ErrorKind::Other,
                "dynamodb:UpdateItem",
                format!("encoding the release status: {e}"),
            )
        })?;
        if release.status.as_ref() != Some(status) {
            let phase_changed =
                release.status.as_ref().map(|s| s.phase.kind()) != Some(status.phase.kind());
            match self
                .store
                .write_item_status(&release.name, release.status_version, &value)
                .await?
            {
                StatusWrite::Written { .. } if phase_changed => {
                    tracing::info!(phase = status.phase.kind(), "{}", status.message)
                }
                StatusWrite::Written { .. } => {}
                other => tracing::debug!(
                    ?other,
                    "the release status was not written; looking again next poll"
                ),
            }
        }
        Ok(matches!(
            status.phase,
            ReleasePhase::Completed | ReleasePhase::Aborted
        ) && decision.writes.is_empty())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.active.lock()
    }
}

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();
