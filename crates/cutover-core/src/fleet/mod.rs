//! Fleet releases: one change (a new image, a new task definition) rolled
//! out to many services in ordered waves, under a failure budget. Each
//! member's own rollout is cutover's ordinary one, started by writing the
//! change into its record; this module only decides *which* records to
//! write and when, so it is as pure as the rollout decision: no IO, no
//! clock, no tokio.
//!
//! # The release record
//!
//! A release is an item of the same table, keyed `release:<name>`:
//!
//! ```json
//! {
//!   "service": "release:base-image-2026-12",
//!   "services": ["prod/api", "prod/web"],
//!   "selector": {"tier": "web"},
//!   "set": {"image": "registry/app:1.4.2"},
//!   "waves": [{"services": 1}, {"percent": 25}, {"percent": 100}],
//!   "bake_between": "10m",
//!   "failure_budget": {"services": 2, "percent": 5},
//!   "on_halt": "pause",
//!   "paused": false,
//!   "abort": false,
//!   "resume": "2026-12-03T10:00:00Z"
//! }
//! ```
//!
//! - **Members** are the services listed by key that have a record, and
//!   every record whose `labels` hold all of `selector`'s pairs, in key
//!   order. They are fixed when the release starts (its first decision
//!   that finds any member) and kept in its status, wave by wave: a
//!   service that matches the selector later is not added, and changing
//!   `services`, `selector` or `waves` later changes nothing (write a new
//!   release). A listed key without a record is shown as missing, never
//!   written, and counts as neither a success nor a failure. Until some
//!   member is found, the release waits in `pending`.
//! - **`set`** names `image` or `task_definition` (not both), and may name
//!   `container`. Setting one kind of version removes the other from a
//!   record that had it. Changing `set` after the release started holds it
//!   as invalid: a release deploys one change.
//! - **Waves** are cumulative sizes, 1 to 20 of them: `{services = n}` or
//!   `{percent = p}` of the members, rounded up. Each wave holds at least
//!   one more service than the one before; waves with nobody left to add
//!   are dropped; when the last wave leaves services out (`[{services =
//!   1}]`), the rest are one more, final wave, shown in the status like
//!   the others. Wave k's records are written only once every member of
//!   the waves before settled (succeeded, failed, superseded or missing)
//!   and `bake_between` (default `0s`) has passed since. The first wave
//!   starts at once.
//! - **`failure_budget`** `{services, percent}`: the release halts once
//!   more members failed than `services`, or than `percent`% of the
//!   members (rounded down); either may be left out. Without it, the first
//!   failure halts it. A halted release writes no new member; on
//!   `on_halt = "pause"` (the default) it pauses its members' rollouts in
//!   flight (`paused = true`) and remembers which, on `"rollback"` it
//!   aborts them (`control.abort`, naming each rollout).
//! - **`paused`**: no member is started while true; rollouts in flight
//!   go on.
//! - **`resume`**: a halt lasts until a person writes a `resume` value the
//!   release has not acted on yet (the time is a good one). That forgives
//!   every failure so far (the budget counts failures after it), retries
//!   each failed rollout (`control.retry`), unpauses exactly the members
//!   the release paused, and lets the waves go on once the retried members
//!   settle (retries and unpauses wait while the fleet-wide halt holds).
//!   It is a value rather than a flip of `paused` because a
//!   level-triggered reader may never see a flip that is undone before it
//!   looks; a value it has not acted on stays visible until it has.
//! - **`abort`**: rollouts in flight are aborted, no member is written
//!   again, and the release ends `aborted`, even if `abort` is cleared.
//! - **The fleet-wide halt** (`decide`'s `halted`): while it holds, no
//!   member is written the change, no retry is asked for and nothing is
//!   unpaused; a spent budget still pauses or aborts. The release says
//!   `held by the fleet-wide halt: <reason>`.
//!
//! A member's outcome comes from its record and its status: at the change
//! and steady on the record's revision, it succeeded; failed on that
//! revision, or invalid, it failed; with that revision's rollout in
//! flight, it is in flight; otherwise it waits for cutover. A record that
//! already says the change when its wave comes is not written, and counts
//! once steady.
//!
//! A member's record is never written over by the release once someone
//! else wrote another version into it (superseded), and every write is
//! conditional on the record's `updated_at`, so nobody's change is lost.

mod decide;
mod member;
mod plan;
mod release;
mod status;

#[cfg(test)]
mod tests;

pub use decide::{MemberWrite, ReleaseDecision, UPDATED_AT, decide};
pub use member::MemberView;
pub use plan::{Membership, membership, wave_sizes};
pub use release::{
    FailureBudget, MAX_WAVES, OnHalt, Release, ReleaseError, SETTABLE, WaveSize, parse_release,
};
pub use status::{
    Budget, Counts, Forgiven, Halt, MemberStatus, Outcome, ReleasePhase, ReleaseStatus, Resumed,
    WaveStatus,
};
