//! The notifications' port. After each stored status the loop hands the
//! decision's events to a notifier, which delivers them off the reconcile
//! path and counts what it sent; the HTTP side lives in `cutover-checks`,
//! so the controller (and the demo) compile no HTTP client.

use crate::rollout::spec::Notification;
use crate::rollout::{Event, Phase, ServiceKey, Status};
use crate::time::Timestamp;

/// Delivers the notices of one applied decision to the record's endpoints.
/// Must not wait: a notice that cannot be queued is dropped and counted.
pub trait Notify: Send + Sync + 'static {
    /// `before` is the phase the pass started from.
    fn notify(
        &self,
        key: &ServiceKey,
        to: &[Notification],
        events: &[Event],
        before: Phase,
        status: &Status,
        at: Timestamp,
    );
}

/// Where notices sent, failed and dropped are counted, by format (`json`,
/// `slack`) and result: the metrics, which the notifier does not know.
pub trait CountNotifications: Send + Sync + 'static {
    fn notification(&self, format: &'static str, result: &'static str);
}
