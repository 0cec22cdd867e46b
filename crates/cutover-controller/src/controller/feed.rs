//! Where work comes from: the store's change feed for prompt reaction (the
//! stream itself, or the relay of another replica's reading of it), and a
//! periodic full resync that catches whatever the feed missed.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::cloud::CloudError;
use crate::cloud::lease::FeedFence;

use super::backoff::Backoff;
use super::publish::{Publisher, Relaying, relay_failed};
use super::relay::{self, Followed};
use super::sources::{FeedState, Sources};

/// Changes the feed may deliver ahead of the queue taking them.
const CHANGE_BUFFER: usize = 256;

impl Sources {
    /// Schedules every record now, then again every `interval`. `synced`
    /// turns true after the first complete listing that started while the
    /// change feed held its position: from then on no write can go unseen
    /// until the next resync.
    pub async fn resync(
        &self,
        interval: Duration,
        mut backoff: Backoff,
        synced: watch::Sender<bool>,
        mut feed: watch::Receiver<FeedState>,
        shutdown: CancellationToken,
    ) {
        let mut failures = 0;
        while !shutdown.is_cancelled() {
            // Until then, wait for the feed to take its position (or to
            // fail: the records are still worth reconciling meanwhile).
            if !*synced.borrow() {
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => return,
                    _ = feed.wait_for(|s| *s != FeedState::Opening) => {}
                }
            }
            // The feed position this listing covers: writes from then on
            // reach the controller through the feed.
            let covers = match *feed.borrow() {
                FeedState::Positioned(opened) => Some(opened),
                _ => None,
            };
            let feed_positioned = covers.is_some();
            // Listing changes nothing, so shutdown need not wait for it.
            let listed = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                listed = self.schedule_all() => listed,
            };
            let next = match listed {
                Ok(count) => {
                    failures = 0;
                    if feed_positioned {
                        if !synced.send_replace(true) {
                            tracing::info!(
                                services = count,
                                "first full sync scheduled every service; the change feed reports every later write"
                            );
                        }
                    } else if !*synced.borrow() {
                        tracing::info!(
                            services = count,
                            "every service is scheduled, but the change feed is not open yet: not ready until it is"
                        );
                    }
                    self.clock.now() + interval
                }
                Err(e) => {
                    failures += 1;
                    let delay = backoff.delay(failures).min(interval);
                    tracing::warn!(
                        operation = e.operation,
                        error_kind = e.kind.as_str(),
                        request_id = e.request_id.as_deref().unwrap_or(""),
                        retry_in = ?delay,
                        "listing the records failed: {e}"
                    );
                    self.clock.now() + delay
                }
            };
            // Listed again at the next resync, or as soon as the feed holds
            // a position this listing did not cover: the first one, or a
            // new one after the feed failed (a stream disabled and enabled
            // again, an outage), whose gap no stream record will report.
            let mut feed_open = true;
            loop {
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => return,
                    _ = self.clock.sleep_until(next) => break,
                    newer = feed.wait_for(|s| matches!(s, FeedState::Positioned(n) if Some(*n) != covers)), if feed_open => {
                        match newer {
                            Ok(_) => {
                                if covers.is_some() {
                                    tracing::info!("the change feed was opened again: listing every record for what it missed");
                                }
                                break;
                            }
                            // The feed's task ended (shutdown): only the
                            // interval is left to wait for.
                            Err(_) => feed_open = false,
                        }
                    }
                }
            }
        }
    }

    async fn schedule_all(&self) -> Result<usize, CloudError> {
        let mark = self.queue.mark();
        let listed = self.store.scan().await;
        let now = self.clock.now();
        let listing = match listed {
            Ok(listing) => {
                self.health.succeeded(now);
                listing
            }
            Err(e) => {
                self.health.failed(now, &e);
                return Err(e);
            }
        };
        let count = listing.records.len();
        // Every rollout in flight is counted before any service is passed.
        // Only rollouts in flight: a listing may be older than the status a
        // pass just stored, and must never free a slot.
        if let Some(a) = &self.admissions {
            for record in &listing.records {
                if self.owns(&record.key)
                    && record.status.as_ref().is_some_and(|s| s.rollout.is_some())
                {
                    a.seen(&record.key, true);
                }
            }
            a.listing_counted();
        }
        for record in listing.records {
            if self.owns(&record.key) {
                self.queue.schedule_listed(record, now, mark);
            }
        }
        // After the services are scheduled, so these never hold them up.
        self.releases.learn(&listing.unkeyed);
        self.unkeyed.answer(listing.unkeyed).await;
        Ok(count)
    }

    /// Follows the change feed, scheduling each changed key at once: the
    /// stream itself, or, when replicas share one reading of it and this
    /// one holds no feed lease, the relay. When the feed ends or fails it
    /// is opened again after a backoff; resync covers the gap.
    pub async fn follow_changes(
        &self,
        mut backoff: Backoff,
        state: watch::Sender<FeedState>,
        shutdown: CancellationToken,
    ) {
        let mut failures = 0;
        let mut opened = 0;
        while !shutdown.is_cancelled() {
            let fence = match &self.relay {
                None => None,
                Some(relay) => {
                    tokio::select! {
                        biased;
                        _ = shutdown.cancelled() => return,
                        _ = relay.readership.decided() => {}
                    }
                    match relay.readership.reading() {
                        Some(fence) => Some(fence),
                        None => {
                            state.send_replace(FeedState::Opening);
                            match relay::follow(self, relay, &state, &mut opened, &shutdown).await {
                                Followed::Shutdown => return,
                                Followed::Reader => continue,
                            }
                        }
                    }
                }
            };
            let (delivered, ended) = match self
                .read_stream(fence.as_ref(), &state, &mut opened, &shutdown)
                .await
            {
                Reading::Shutdown => return,
                Reading::Ended { delivered, ended } => (delivered, ended),
            };
            state.send_replace(FeedState::Down);
            if let (Some(relay), Some(fence)) = (&self.relay, &fence) {
                // Followers learn at once that this reading is over.
                if let Err(e) = relay.leases.mark_feed(fence, false).await {
                    tracing::debug!("saying that this replica stopped reading failed: {e}");
                }
            }
            let ended = match ended {
                Some(ended) => ended,
                // Handed over to a follower's part: no failure to back off from.
                None => {
                    failures = 0;
                    continue;
                }
            };
            // A feed that delivered something was healthy for a while; only
            // back off harder when it keeps failing straight away.
            failures = if delivered { 1 } else { failures + 1 };
            let delay = backoff.delay(failures);
            match ended {
                Ok(()) => tracing::info!(reopen_in = ?delay, "the change feed ended"),
                Err(e) => tracing::warn!(
                    operation = e.operation,
                    error_kind = e.kind.as_str(),
                    request_id = e.request_id.as_deref().unwrap_or(""),
                    reopen_in = ?delay,
                    "the change feed failed: {e}"
                ),
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = self.clock.sleep(delay) => {}
            }
        }
    }

    /// Reads the stream until it ends or fails, or (under `fence`) until
    /// the feed lease may no longer be read under; relays every change
    /// under `fence` to the replicas that follow the relay.
    async fn read_stream(
        &self,
        fence: Option<&FeedFence>,
        state: &watch::Sender<FeedState>,
        opened: &mut u64,
        shutdown: &CancellationToken,
    ) -> Reading {
        let (tx, mut rx) = mpsc::channel(CHANGE_BUFFER);
        let (positioned_tx, mut positioned) = oneshot::channel();
        state.send_replace(FeedState::Opening);
        let mut relaying = match (&self.relay, fence, &self.ownership) {
            (Some(relay), Some(fence), Some(ownership)) => Some(Relaying::start(Publisher {
                relay: Arc::clone(&relay.relay),
                leases: Arc::clone(&relay.leases),
                ownership: Arc::clone(ownership),
                fence: fence.clone(),
            })),
            _ => None,
        };
        let lapsed = async {
            match (&self.relay, fence) {
                (Some(relay), Some(fence)) => relay.readership.lapsed(fence).await,
                _ => std::future::pending().await,
            }
        };
        let mut lapsed = pin!(lapsed);
        let mut feed = pin!(self.store.watch(tx, positioned_tx));
        let mut delivered = false;
        let mut told = false;
        let ended = loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Reading::Shutdown,
                said = &mut positioned, if !told => {
                    told = true;
                    if said.is_ok() {
                        *opened += 1;
                        state.send_replace(FeedState::Positioned(*opened));
                        if let Some(relaying) = &mut relaying {
                            relaying.positioned();
                        }
                    }
                }
                Some(change) = rx.recv() => {
                    delivered = true;
                    if let Some(relaying) = &relaying
                        && let Err(e) = relaying.relay(&change)
                    {
                        break Some(Err(e));
                    }
                    let now = self.clock.now();
                    if let Some(at) = change.at {
                        tracing::debug!(service = %change.key, latency = ?now.since(at), "record changed");
                        self.detection.changed(&change.key, at);
                    }
                    if self.owns(&change.key) {
                        self.queue.schedule(change.key, now);
                    }
                }
                failed = relay_failed(&mut relaying), if relaying.is_some() => {
                    break Some(Err(failed));
                }
                () = &mut lapsed => {
                    tracing::info!("the feed lease is lost or about to run out: this replica stops reading the change stream");
                    break None;
                }
                ended = &mut feed => break Some(ended),
            }
        };
        while let Ok(change) = rx.try_recv() {
            if let Some(at) = change.at {
                self.detection.changed(&change.key, at);
            }
            if self.owns(&change.key) {
                self.queue.schedule_now(change.key);
            }
        }
        Reading::Ended { delivered, ended }
    }
}

/// How reading the stream ended.
enum Reading {
    Shutdown,
    Ended {
        delivered: bool,
        /// `None` when the feed lease ran out: reading stopped, nothing failed.
        ended: Option<Result<(), CloudError>>,
    },
}
