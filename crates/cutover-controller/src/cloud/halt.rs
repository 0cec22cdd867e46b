//! Putting on and lifting the fleet-wide halt: what the CLI, the API and
//! the demo share. The halt is one item of the records table, so any tool
//! that can put an item can halt the fleet; these are the careful writers,
//! which never replace a halt someone else put on, and lift only the halt
//! they read.

use serde_json::{Value, json};

use super::{CloudError, DesiredStore, ErrorKind, Precondition, SpecChanges, SpecWrite};
use crate::rollout::halt::{HALT_ITEM, Halt, MAX_REASON};
use crate::time::Timestamp;

/// What a request to halt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Halting {
    /// The fleet is halted now, with this halt.
    Halted(Halt),
    /// It was halted already; that halt stands, reason and all.
    AlreadyHalted(Halt),
}

/// What a request to lift came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lifting {
    Lifted(Halt),
    NotHalted,
}

/// The halt as stored, if the fleet is halted.
pub async fn read(store: &dyn DesiredStore) -> Result<Option<Halt>, CloudError> {
    Ok(store
        .get_item(HALT_ITEM)
        .await?
        .map(|i| Halt::from_item(&i.body)))
}

/// Halts the fleet, unless it is halted already. `reason` is required:
/// every status repeats it, and it is what the on-call engineer after you
/// reads first.
pub async fn halt(
    store: &dyn DesiredStore,
    reason: &str,
    by: Option<&str>,
    now: Timestamp,
) -> Result<Halting, CloudError> {
    const OP: &str = "dynamodb:UpdateItem";
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(CloudError::new(
            ErrorKind::Invalid,
            OP,
            "`reason` is empty: say why the fleet is halted (an incident id, what is wrong); every service's status shows it",
        ));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(CloudError::new(
            ErrorKind::Invalid,
            OP,
            format!(
                "`reason` is longer than {MAX_REASON} characters: every service's status repeats it, so keep it short and link to the incident"
            ),
        ));
    }
    let mut changes = SpecChanges::from([
        ("reason".to_string(), Some(json!(reason))),
        ("since".to_string(), Some(json!(now.to_string()))),
    ]);
    if let Some(by) = by.map(str::trim).filter(|b| !b.is_empty()) {
        changes.insert("by".to_string(), Some(Value::String(by.to_string())));
    }
    match store
        .write_item(HALT_ITEM, &changes, Precondition::Absent)
        .await?
    {
        SpecWrite::Written { .. } => Ok(Halting::Halted(Halt {
            reason: reason.to_string(),
            by: by
                .map(str::trim)
                .filter(|b| !b.is_empty())
                .map(str::to_string),
            since: Some(now),
        })),
        SpecWrite::PreconditionFailed => match read(store).await? {
            Some(existing) => Ok(Halting::AlreadyHalted(existing)),
            // Lifted between the write and the read: say so; the caller
            // may try again.
            None => Err(CloudError::new(
                ErrorKind::Transient,
                OP,
                "the halt was lifted while this one was being put on: try again",
            )),
        },
    }
}

/// Lifts the halt that is on, only if it is still the one read (a halt
/// put on again meanwhile, for another reason, stays).
pub async fn lift(store: &dyn DesiredStore) -> Result<Lifting, CloudError> {
    let Some(item) = store.get_item(HALT_ITEM).await? else {
        return Ok(Lifting::NotHalted);
    };
    let halt = Halt::from_item(&item.body);
    let precondition = Precondition::Unchanged {
        updated_at: item.body.get(super::write::UPDATED_AT_ATTRIBUTE).cloned(),
    };
    match store.delete_item(HALT_ITEM, precondition).await? {
        SpecWrite::Written { .. } => Ok(Lifting::Lifted(halt)),
        // Gone (a retried delete of our own) or replaced by a new halt.
        SpecWrite::PreconditionFailed => match read(store).await? {
            None => Ok(Lifting::Lifted(halt)),
            Some(newer) => Err(CloudError::new(
                ErrorKind::Other,
                "dynamodb:DeleteItem",
                format!(
                    "the fleet was halted again meanwhile ({newer}); it stays halted: lift it again if that is meant"
                ),
            )),
        },
    }
}
