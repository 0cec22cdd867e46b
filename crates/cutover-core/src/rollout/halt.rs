//! The fleet-wide halt: the on-call engineer's big red button. While it is
//! on, no rollout anywhere takes a step forward or starts, exactly as if
//! every record said `paused = true`, but with the halt's reason in every
//! status. What makes a service safer still happens: a failing gate rolls
//! back, a rollback goes on to its end, and a rollout whose production
//! traffic has all moved removes the old task set (as under `paused`).
//! Progress deadlines do not run while halted: a rollout's clock restarts
//! when the halt is lifted, as it does after a pause.
//!
//! The controller reads the halt from the table and hands it to the
//! decision with the observed service, like any other fact of the world.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::spec::Spec;
use crate::time::Timestamp;

/// The table item that holds the halt; its presence halts the fleet.
pub const HALT_ITEM: &str = "halt";

/// The longest reason kept, in characters: it is repeated in every
/// status, and a status shares its item's 400 KB with the record.
pub const MAX_REASON: usize = 500;

/// A halt as written by the CLI, the API or any tool that puts the item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Halt {
    /// Why, in the words of whoever halted; shown in every status.
    pub reason: String,
    /// Who halted, where the writer said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// When, where the writer said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
}

impl Halt {
    /// The halt an item of the table says. Any item under [`HALT_ITEM`]
    /// halts: one written by hand without a reason, or with attributes of
    /// the wrong type, halts all the same and says so, because whoever
    /// wrote it meant to stop the fleet.
    pub fn from_item(body: &serde_json::Value) -> Halt {
        let text = |name: &str| body.get(name).and_then(|v| v.as_str()).map(str::trim);
        let reason = match text("reason") {
            Some(r) if !r.is_empty() => r.chars().take(MAX_REASON).collect(),
            _ => "no reason given (the halt item has no `reason` text)".to_string(),
        };
        let since = body
            .get("since")
            .and_then(|v| v.as_str())
            .and_then(|s| humantime::parse_rfc3339_weak(s.trim()).ok())
            .map(Timestamp::from_system);
        Halt {
            reason,
            by: text("by").filter(|b| !b.is_empty()).map(str::to_string),
            since,
        }
    }
}

/// How every status and transition held by a halt begins.
const HALT_OPENING: &str = "halted fleet-wide: ";

/// Whether a transition's reason is the fleet-wide halt's.
pub fn is_halt_reason(reason: &str) -> bool {
    reason.starts_with(HALT_OPENING)
}

impl fmt::Display for Halt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{HALT_OPENING}{}", self.reason)?;
        match (&self.by, self.since) {
            (Some(by), Some(at)) => write!(f, " (by {by} at {at})"),
            (Some(by), None) => write!(f, " (by {by})"),
            (None, Some(at)) => write!(f, " (since {at})"),
            (None, None) => Ok(()),
        }
    }
}

/// What keeps a rollout from its next step: the record's own `paused`, or
/// the fleet-wide halt. The halt is named first: it is what someone has to
/// lift before anything moves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    Paused,
    Halted(Halt),
}

impl Stop {
    pub fn of(spec: &Spec, halt: Option<&Halt>) -> Option<Stop> {
        match halt {
            Some(h) => Some(Stop::Halted(h.clone())),
            None if spec.paused => Some(Stop::Paused),
            None => None,
        }
    }

    /// The reason of the transition into the hold.
    pub fn why(&self) -> String {
        match self {
            Stop::Paused => "paused = true in the record".to_string(),
            Stop::Halted(h) => h.to_string(),
        }
    }

    /// How the one who reads the status lets it go on.
    pub fn lift(&self) -> &'static str {
        match self {
            Stop::Paused => "set paused = false to continue",
            Stop::Halted(_) => "`cutover unhalt` lifts it",
        }
    }

    /// The status message's opening: "paused", or the halt and its reason.
    pub fn opening(&self) -> String {
        match self {
            Stop::Paused => "paused".to_string(),
            Stop::Halted(h) => h.to_string(),
        }
    }

    /// A revision not started while stopped.
    pub fn not_started(&self, revision: &impl fmt::Display) -> String {
        match self {
            Stop::Paused => {
                format!("paused: revision {revision} is not deployed until paused = false")
            }
            Stop::Halted(h) => {
                format!(
                    "{h}: revision {revision} is not deployed until the halt is lifted (`cutover unhalt`)"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn any_item_under_the_halt_key_halts_even_without_a_reason() {
        let h = Halt::from_item(&json!({"service": "halt", "reason": 7}));
        assert!(h.reason.starts_with("no reason given"));
        let h = Halt::from_item(&json!({"service": "halt", "reason": "  "}));
        assert!(h.reason.starts_with("no reason given"));
    }

    #[test]
    fn a_halt_shows_its_reason_who_and_when() {
        let h = Halt::from_item(&json!({
            "service": "halt",
            "reason": "INC-4411: checkout errors",
            "by": "oncall@example.com",
            "since": "2026-12-07T08:00:00Z",
        }));
        assert_eq!(
            h.to_string(),
            "halted fleet-wide: INC-4411: checkout errors (by oncall@example.com at 2026-12-07T08:00:00.000Z)"
        );
    }

    #[test]
    fn a_long_reason_is_cut_to_a_bound() {
        let h = Halt::from_item(&json!({"reason": "x".repeat(5000)}));
        assert_eq!(h.reason.chars().count(), MAX_REASON);
    }
}
