//! The decision a pass consults: what to read, and what to do. The daemon
//! uses cutover's own; only the loop's tests swap in a stand-in.

use crate::rollout::{Decision, Desired, Observed, Reads, ServiceState, Status};
use crate::time::Timestamp;

pub type ReadsFn = fn(&Desired<'_>, Option<&ServiceState>, &Status, Timestamp) -> Reads;
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
