//! What the controller stores in a release item's `status` attribute: the
//! plan fixed when the release started (its waves and their members), what
//! each member has got to, and what a person did (resume, abort). It is read
//! back on every decision, so it holds everything the release must remember
//! and nothing it can read again; every field written later has a default,
//! and empty ones are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::rollout::control::RolloutId;
use crate::rollout::key::ServiceKey;
use crate::time::Timestamp;

/// Where a release is, as people read it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "name")]
pub enum ReleasePhase {
    /// Not started: no service is a member yet.
    #[default]
    Pending,
    /// Wave `wave` (from 1) of `of` is being deployed.
    Rolling { wave: usize, of: usize },
    /// The waves so far settled; wave `next` (from 1) starts at `until`.
    Baking { next: usize, until: Timestamp },
    /// `paused = true` in the release: no service is started.
    Paused,
    /// The failure budget is spent; a person resumes it.
    Halted { reason: String },
    /// The fleet-wide halt holds every release.
    HeldByFleetHalt { reason: String },
    /// A person aborted it; it starts nothing again.
    Aborted,
    /// Every wave settled.
    Completed,
    /// The release record cannot be read, or changed what it deploys.
    Invalid { error: String },
}

impl ReleasePhase {
    /// Every phase's name, as `kind` gives it.
    pub const KINDS: [&'static str; 9] = [
        "pending",
        "rolling",
        "baking",
        "paused",
        "halted",
        "held_by_fleet_halt",
        "aborted",
        "completed",
        "invalid",
    ];

    /// The phase's name, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ReleasePhase::Pending => "pending",
            ReleasePhase::Rolling { .. } => "rolling",
            ReleasePhase::Baking { .. } => "baking",
            ReleasePhase::Paused => "paused",
            ReleasePhase::Halted { .. } => "halted",
            ReleasePhase::HeldByFleetHalt { .. } => "held_by_fleet_halt",
            ReleasePhase::Aborted => "aborted",
            ReleasePhase::Completed => "completed",
            ReleasePhase::Invalid { .. } => "invalid",
        }
    }
}

impl fmt::Display for ReleasePhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleasePhase::Rolling { wave, of } => write!(f, "rolling wave {wave} of {of}"),
            ReleasePhase::Baking { next, until } => {
                write!(f, "baking until {until}, then wave {next}")
            }
            ReleasePhase::Halted { reason } => write!(f, "halted: {reason}"),
            ReleasePhase::HeldByFleetHalt { reason } => {
                write!(f, "held by the fleet-wide halt: {reason}")
            }
            ReleasePhase::Invalid { error } => write!(f, "invalid: {error}"),
            other => f.write_str(other.kind()),
        }
    }
}

/// What the release's change has come to on one member.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Its wave has not started.
    #[default]
    Pending,
    /// Its wave started and its record does not say the release's change
    /// yet: the release writes it (unless something holds the release).
    Writing,
    /// Its record says the change, and cutover has not started (or has
    /// been asked to retry) its rollout.
    Waiting,
    /// Its rollout of the change is in flight.
    InFlight,
    Succeeded,
    /// Its rollout failed, or its record cannot be deployed.
    Failed,
    /// Someone wrote another version over the release's: it is theirs now,
    /// neither a success nor a failure of the release, and never written
    /// again.
    Superseded,
    /// It has no record.
    Missing,
}

impl Outcome {
    /// Whether the member is done with, as far as its wave goes.
    pub fn settled(self) -> bool {
        matches!(
            self,
            Outcome::Succeeded | Outcome::Failed | Outcome::Superseded | Outcome::Missing
        )
    }
}

/// A failure a person forgave by resuming the release: it no longer counts
/// against the budget, and the rollout is retried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forgiven {
    /// The rollout that failed; none when the record could not be deployed
    /// at all (that failure is forgiven while it lasts, and nothing is
    /// retried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutId>,
    pub at: Timestamp,
}

/// One member of a wave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub service: ServiceKey,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The rollout in flight, or the one that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutId>,
    /// Its record was seen saying the change since its wave started: if it
    /// says something else later, someone else wrote it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reached: bool,
    /// What the record said of the set attributes when the release first
    /// wrote it (null where absent): a record that says neither this nor
    /// the change was written by someone else meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forgiven: Option<Forgiven>,
}

impl MemberStatus {
    pub fn new(service: ServiceKey) -> MemberStatus {
        MemberStatus {
            service,
            outcome: Outcome::Pending,
            detail: None,
            rollout: None,
            reached: false,
            before: None,
            forgiven: None,
        }
    }
}

/// One wave: the members new in it, in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveStatus {
    pub members: Vec<MemberStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When every member last became settled; the next wave waits
    /// `bake_between` from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_at: Option<Timestamp>,
}

impl WaveStatus {
    pub fn settled(&self) -> bool {
        self.members.iter().all(|m| m.outcome.settled())
    }
}

/// How many members are where.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    pub succeeded: usize,
    pub failed: usize,
    /// Started and not settled: being written, waiting for cutover, or
    /// rolling out.
    pub in_flight: usize,
    /// In a wave that has not started.
    pub pending: usize,
    pub superseded: usize,
    pub missing: usize,
}

/// The failure budget as it stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Budget {
    /// Failed members that count: not forgiven by a resume.
    pub failed: usize,
    /// The most failed members the release goes on with.
    pub allowed: usize,
}

/// The failure budget ran out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Halt {
    pub at: Timestamp,
    pub reason: String,
    /// Failed members that counted when it came.
    pub failed: usize,
    /// Members started and not settled when it came: the most that can
    /// still fail, as the release starts no others.
    pub in_flight: usize,
}

/// The last `resume` the release acted on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resumed {
    pub token: String,
    pub at: Timestamp,
}

/// A release's status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReleaseStatus {
    pub phase: ReleasePhase,
    /// A sentence for people.
    pub message: String,
    /// When the release entered its phase.
    pub since: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// What the release writes into each member's record, as it started;
    /// null removes the attribute.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub target: BTreeMap<String, Option<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<WaveStatus>,
    /// Services the release lists that had no record when it started.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<ServiceKey>,
    pub counts: Counts,
    pub budget: Budget,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halt: Option<Halt>,
    /// Members the release paused at a halt: a resume unpauses exactly
    /// these, never a service someone else paused.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub paused_members: BTreeSet<ServiceKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed: Option<Resumed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted_at: Option<Timestamp>,
}

impl ReleaseStatus {
    /// Whether the plan is made.
    pub fn started(&self) -> bool {
        self.started_at.is_some()
    }

    /// Every member of every wave, in wave order.
    pub fn members(&self) -> impl Iterator<Item = &MemberStatus> {
        self.waves.iter().flat_map(|w| w.members.iter())
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}
