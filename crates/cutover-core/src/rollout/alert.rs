//! The kinds of alert a rollout raises: someone else's hands on what it
//! drives, or a rollback that overran. The status remembers which it raised.

use serde::{Deserialize, Serialize};

/// What an alert (`Event::Alert`) is about; a bounded label for its metric and
/// the event name of its notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Production weights cutover never wrote: the rollout pauses.
    WeightsChangedByHand,
    /// A third target group weighs on production: the rollout holds.
    ForeignTargetGroup,
    /// The task set the rollout started from was deleted.
    PreviousTaskSetDeleted,
    /// A rollback has not finished within the progress deadline.
    RollbackOverdue,
    /// ECS could not roll a service deployment back (ROLLBACK_FAILED).
    RollbackFailed,
}

impl AlertKind {
    pub const ALL: [AlertKind; 5] = [
        AlertKind::WeightsChangedByHand,
        AlertKind::ForeignTargetGroup,
        AlertKind::PreviousTaskSetDeleted,
        AlertKind::RollbackOverdue,
        AlertKind::RollbackFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::WeightsChangedByHand => "weights_changed_by_hand",
            AlertKind::ForeignTargetGroup => "foreign_target_group",
            AlertKind::PreviousTaskSetDeleted => "previous_task_set_deleted",
            AlertKind::RollbackOverdue => "rollback_overdue",
            AlertKind::RollbackFailed => "rollback_failed",
        }
    }
}
