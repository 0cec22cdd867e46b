//! Whether the controller can do its job: its change feed holds a position
//! (so every later write reaches it), it has listed every record once since,
//! and the desired-state table answers. A controller that cannot read its
//! records drives nothing, however alive it is.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::cloud::CloudError;
use crate::time::{Timestamp, format_duration};

/// How the last reads and writes of the table went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreState {
    pub last_ok: Option<Timestamp>,
    /// Set by a failure, cleared by the next success.
    pub failing_since: Option<Timestamp>,
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
pub struct StoreHealth {
    state: Mutex<StoreState>,
}

impl StoreHealth {
    pub fn succeeded(&self, now: Timestamp) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.last_ok = Some(now);
        s.failing_since = None;
        s.last_error = None;
    }

    pub fn failed(&self, now: Timestamp, error: &CloudError) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.failing_since.get_or_insert(now);
        s.last_error = Some(error.to_string());
    }

    pub fn state(&self) -> StoreState {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// When readiness gives up on the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyRules {
    /// One throttled read is no reason to page anyone; a table that keeps
    /// failing for this long is.
    pub failing_grace: Duration,
    /// The periodic resync reads the table at least this often when all is
    /// well, so a success older than this means the reads have stalled.
    pub stale_after: Duration,
}

impl ReadyRules {
    pub fn for_resync(resync_interval: Duration) -> ReadyRules {
        ReadyRules {
            failing_grace: Duration::from_secs(30),
            stale_after: resync_interval * 2 + Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error(
        "the change feed is not open yet, or the first listing of the desired-state table since it opened has not completed"
    )]
    NotSynced,
    #[error("the desired-state table has failed every request for {}: {error}", format_duration(*.for_))]
    StoreFailing { for_: Duration, error: String },
    #[error("no request to the desired-state table has succeeded for {}", format_duration(*.0))]
    StoreStale(Duration),
}

impl NotReady {
    /// A bounded name for the reason, for clients to branch on.
    pub fn kind(&self) -> &'static str {
        match self {
            NotReady::NotSynced => "not_synced",
            NotReady::StoreFailing { .. } => "store_failing",
            NotReady::StoreStale(_) => "store_stale",
        }
    }
}

pub fn readiness(
    synced: bool,
    store: &StoreState,
    now: Timestamp,
    rules: ReadyRules,
) -> Result<(), NotReady> {
    // Before `synced`: a table that never answers (a wrong name, a missing
    // permission) must say so, not look like a controller still starting.
    if let Some(since) = store.failing_since {
        let for_ = now.since(since);
        if for_ >= rules.failing_grace {
            return Err(NotReady::StoreFailing {
                for_,
                error: store.last_error.clone().unwrap_or_default(),
            });
        }
    }
    if !synced {
        return Err(NotReady::NotSynced);
    }
    match store.last_ok {
        Some(ok) if now.since(ok) > rules.stale_after => Err(NotReady::StoreStale(now.since(ok))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ErrorKind;

    const T0: Timestamp = Timestamp(1_700_000_000_000);

    fn rules() -> ReadyRules {
        ReadyRules::for_resync(Duration::from_secs(300))
    }

    fn throttled() -> CloudError {
        CloudError::new(ErrorKind::Throttled, "dynamodb:GetItem", "Rate exceeded")
    }

    fn missing() -> CloudError {
        CloudError::new(
            ErrorKind::NotFound,
            "dynamodb:Scan",
            "table cutover-records not found",
        )
    }

    #[test]
    fn not_ready_until_the_first_sync() {
        let h = StoreHealth::default();
        h.succeeded(T0);
        assert_eq!(
            readiness(false, &h.state(), T0, rules()),
            Err(NotReady::NotSynced)
        );
        assert_eq!(readiness(true, &h.state(), T0, rules()), Ok(()));
    }

    #[test]
    fn a_brief_failure_keeps_readiness_and_a_long_one_loses_it_until_a_success() {
        let h = StoreHealth::default();
        h.succeeded(T0);
        h.failed(T0 + Duration::from_secs(1), &throttled());
        h.failed(T0 + Duration::from_secs(10), &throttled());
        let at = |s| T0 + Duration::from_secs(s);
        assert_eq!(readiness(true, &h.state(), at(20), rules()), Ok(()));
        let e = readiness(true, &h.state(), at(31), rules()).unwrap_err();
        assert_eq!(e.kind(), "store_failing");
        assert!(e.to_string().contains("dynamodb:GetItem"), "{e}");
        h.succeeded(at(32));
        assert_eq!(readiness(true, &h.state(), at(33), rules()), Ok(()));
    }

    #[test]
    fn a_table_that_never_answered_is_failing_not_still_syncing() {
        let h = StoreHealth::default();
        h.failed(T0, &missing());
        let at = |s| T0 + Duration::from_secs(s);
        assert_eq!(
            readiness(false, &h.state(), at(10), rules()),
            Err(NotReady::NotSynced)
        );
        let e = readiness(false, &h.state(), at(30), rules()).unwrap_err();
        assert_eq!(e.kind(), "store_failing");
        assert!(e.to_string().contains("cutover-records"), "{e}");
    }

    #[test]
    fn reads_that_stop_succeeding_make_it_unready() {
        let h = StoreHealth::default();
        h.succeeded(T0);
        let late = T0 + Duration::from_secs(631);
        assert_eq!(
            readiness(true, &h.state(), late, rules()).map_err(|e| e.kind()),
            Err("store_stale")
        );
    }
}
