//! `decide` for a release: from the release record, its members' records
//! and statuses, the stored release status and `now`, the writes to make to
//! members' records and the status to store. It is level-triggered: it
//! decides from what it sees, and never takes a write as made until a
//! record shows it, so a refused or lost write is made again from the
//! record as it now is, and deciding twice does nothing twice.

use std::collections::BTreeMap;

use serde_json::Value;

use super::member::{self, MemberView, at_target, control_names, control_with, progress, values};
use super::plan::{self, membership, wave_sizes};
use super::release::{OnHalt, Release, parse_release};
use super::status::{
    Budget, Counts, Forgiven, Halt, MemberStatus, Outcome, ReleasePhase, ReleaseStatus, Resumed,
    WaveStatus,
};
use crate::rollout::key::ServiceKey;
use crate::time::{Timestamp, format_duration};

/// The attribute every write stamps with `now`, as any writer of a record
/// does: a writer that read the record before this write and writes on
/// the condition that it is unchanged is refused, rather than undo it.
pub const UPDATED_AT: &str = "updated_at";

/// Changes to one member's record. The controller applies them with one
/// conditional write: only if the record's `updated_at` is still
/// `unchanged_since` (absent when that is `None`). A refused write is not
/// an error: the next decision sees the record as it is and decides again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberWrite {
    pub key: ServiceKey,
    /// Attribute values to write; `None` removes the attribute.
    pub changes: BTreeMap<String, Option<Value>>,
    pub unchanged_since: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseDecision {
    /// At most one per member, in key order.
    pub writes: Vec<MemberWrite>,
    /// To store in the release item's `status`.
    pub status: ReleaseStatus,
    /// When to decide again if nothing changes before: the end of a bake
    /// between waves.
    pub wake: Option<Timestamp>,
}

/// Decides a release. `record` is the release item without its `status`;
/// `members` holds the service records the release may concern: before it
/// starts, every service record (those it neither lists nor selects are
/// ignored); after, at least its members (a member not given is taken as
/// having no record). `previous` is the stored status, if any; `halted`
/// the fleet-wide halt's reason while one holds every release.
pub fn decide(
    record: &Value,
    members: &[MemberView<'_>],
    previous: Option<&ReleaseStatus>,
    halted: Option<&str>,
    now: Timestamp,
) -> ReleaseDecision {
    let prev = previous.cloned().unwrap_or_default();
    let release = match parse_release(record) {
        Ok(release) => release,
        Err(e) => {
            return hold(prev, format!("the release record is invalid: {e}"), now);
        }
    };
    let mut st = prev.clone();
    if release.abort && st.aborted_at.is_none() {
        st.aborted_at = Some(now);
    }
    if !st.started() {
        if let Some(early) = start(&mut st, &release, members, now) {
            return early;
        }
    } else if st.target != release.target() && st.aborted_at.is_none() {
        return hold(
            prev,
            "`set` changed after the release started: a release deploys one change, which its \
             status keeps as `target`; put `set` back, or write a new release for the new change"
                .into(),
            now,
        );
    }
    let views: BTreeMap<&ServiceKey, &MemberView<'_>> =
        members.iter().map(|v| (&v.key, v)).collect();
    let size = st.members().count();
    let allowed = release.failure_budget.allowed(size);

    for wave in &mut st.waves {
        let started = wave.started_at.is_some();
        for m in &mut wave.members {
            observe(m, views.get(&m.service).copied(), &st.target, started);
        }
    }
    resume(&mut st, &release, now);
    for wave in &mut st.waves {
        settle(wave, now);
    }
    check_budget(&mut st, allowed, size, now);

    // Start waves while the ones before have settled and baked; a wave
    // that settles at once (its services already run the change) lets
    // the next one follow in the same decision.
    let mut baking = None;
    while may_write(&st, &release, halted) {
        let Some(next) = st.waves.iter().position(|w| w.started_at.is_none()) else {
            break;
        };
        if !st.waves[..next].iter().all(|w| w.settled_at.is_some()) {
            break;
        }
        let last = st.waves[..next].iter().filter_map(|w| w.settled_at).max();
        if let Some(last) = last
            && now < last + release.bake_between
        {
            baking = Some((next, last + release.bake_between));
            break;
        }
        let wave = &mut st.waves[next];
        wave.started_at = Some(now);
        for m in &mut wave.members {
            observe(m, views.get(&m.service).copied(), &st.target, true);
        }
        settle(wave, now);
        check_budget(&mut st, allowed, size, now);
    }

    let writes = writes(&mut st, &release, &views, halted, now);
    st.counts = counts(&st);
    st.budget = Budget {
        failed: counted_failures(&st),
        allowed,
    };
    let phase = phase(&st, &release, halted, baking);
    st.message = message(&st, &release, &phase);
    st.since = if phase == prev.phase { prev.since } else { now };
    st.phase = phase;
    ReleaseDecision {
        writes,
        wake: baking.map(|(_, until)| until),
        status: st,
    }
}

/// A decision that writes nothing and keeps what the status knows, for a
/// release record that cannot be acted on: fixing it goes on from there.
fn hold(mut st: ReleaseStatus, error: String, now: Timestamp) -> ReleaseDecision {
    let phase = ReleasePhase::Invalid {
        error: error.clone(),
    };
    if st.phase != phase {
        st.since = now;
    }
    st.message = format!("{error}; nothing is written until it is fixed");
    st.phase = phase;
    ReleaseDecision {
        writes: Vec::new(),
        status: st,
        wake: None,
    }
}

/// Fixes the plan when a release is first seen; a decision to return at
/// once when there is nothing to plan yet.
fn start(
    st: &mut ReleaseStatus,
    release: &Release,
    records: &[MemberView<'_>],
    now: Timestamp,
) -> Option<ReleaseDecision> {
    let found = membership(release, records);
    let early = |st: &mut ReleaseStatus, phase: ReleasePhase, message: String| {
        if st.phase != phase {
            st.since = now;
        }
        st.phase = phase;
        st.message = message;
        st.missing = found.missing.clone();
        st.counts = Counts {
            missing: found.missing.len(),
            ..Counts::default()
        };
        Some(ReleaseDecision {
            writes: Vec::new(),
            status: st.clone(),
            wake: None,
        })
    };
    if st.aborted_at.is_some() {
        return early(
            st,
            ReleasePhase::Aborted,
            "aborted before it started".into(),
        );
    }
    if found.members.is_empty() {
        let mut message = "no service is a member yet: ".to_string();
        message.push_str(match (&release.selector, found.missing.is_empty()) {
            (Some(_), _) => "no record matches the selector",
            (None, _) => "no service it lists has a record",
        });
        if !found.missing.is_empty() {
            message.push_str(&format!(
                ", and {} listed have no record ({})",
                found.missing.len(),
                keys(&found.missing)
            ));
        }
        return early(st, ReleasePhase::Pending, message);
    }
    let sizes = wave_sizes(&release.waves, found.members.len());
    st.started_at = Some(now);
    st.target = release.target();
    st.waves = plan::waves(&found.members, &sizes)
        .into_iter()
        .map(|keys| WaveStatus {
            members: keys.into_iter().map(MemberStatus::new).collect(),
            ..WaveStatus::default()
        })
        .collect();
    st.missing = found.missing;
    // A `resume` written before the release started has nothing to answer.
    st.resumed = release
        .resume
        .clone()
        .map(|token| Resumed { token, at: now });
    None
}

/// What a member's record and status say of the release's change.
fn observe(
    m: &mut MemberStatus,
    view: Option<&MemberView<'_>>,
    target: &BTreeMap<String, Option<String>>,
    started: bool,
) {
    m.detail = None;
    m.rollout = None;
    let Some(view) = view else {
        m.outcome = Outcome::Missing;
        m.detail = Some("the service has no record".into());
        return;
    };
    if !started {
        m.outcome = Outcome::Pending;
        return;
    }
    if at_target(view.body, target) {
        // Once seen at the change, any other version is someone else's:
        // what the record said before no longer matters.
        m.reached = true;
        m.before = None;
        let p = progress(view);
        m.outcome = p.outcome;
        m.detail = p.detail;
        m.rollout = p.rollout;
        if m.outcome == Outcome::Failed && retrying(m) {
            retry(m);
        }
        return;
    }
    let now = values(view.body, target);
    let overwritten = m.reached || m.before.as_ref().is_some_and(|before| *before != now);
    if overwritten {
        m.outcome = Outcome::Superseded;
        m.detail = Some(member::short(&format!(
            "another version was written over the release's: {}",
            shown(&now)
        )));
    } else {
        m.outcome = Outcome::Writing;
    }
}

/// A failed rollout that a resume forgave is retried: the member is
/// back in flight, and its wave is not settled until the retry is.
fn retrying(m: &MemberStatus) -> bool {
    m.rollout.is_some() && m.forgiven.as_ref().is_some_and(|f| f.rollout == m.rollout)
}

fn retry(m: &mut MemberStatus) {
    m.outcome = Outcome::Waiting;
    if let Some(r) = &m.rollout {
        m.detail = Some(format!(
            "failure forgiven by a resume: rollout {r} is retried"
        ));
    }
}

/// Keeps when a started wave last became settled, or forgets it when a
/// member goes back in flight (a retry after a resume).
fn settle(wave: &mut WaveStatus, now: Timestamp) {
    if wave.started_at.is_some() && wave.settled() {
        wave.settled_at.get_or_insert(now);
    } else {
        wave.settled_at = None;
    }
}

/// A `resume` the release has not acted on yet forgives the failures so
/// far (they are retried once the release may write), and ends a halt.
fn resume(st: &mut ReleaseStatus, release: &Release, now: Timestamp) {
    let Some(token) = &release.resume else {
        return;
    };
    if st.resumed.as_ref().is_some_and(|r| &r.token == token) || st.aborted_at.is_some() {
        return;
    }
    for m in st.waves.iter_mut().flat_map(|w| w.members.iter_mut()) {
        if counts_against(m) {
            m.forgiven = Some(Forgiven {
                rollout: m.rollout.clone(),
                at: now,
            });
            if retrying(m) {
                retry(m);
            }
        }
    }
    st.halt = None;
    st.resumed = Some(Resumed {
        token: token.clone(),
        at: now,
    });
}

/// A failure not forgiven by a resume.
fn counts_against(m: &MemberStatus) -> bool {
    m.outcome == Outcome::Failed && !forgiven(m)
}

/// A failed member whose failure a resume forgave.
fn forgiven(m: &MemberStatus) -> bool {
    m.outcome == Outcome::Failed && m.forgiven.as_ref().is_some_and(|f| f.rollout == m.rollout)
}

fn counted_failures(st: &ReleaseStatus) -> usize {
    st.members().filter(|m| counts_against(m)).count()
}

fn in_flight(st: &ReleaseStatus) -> usize {
    st.waves
        .iter()
        .filter(|w| w.started_at.is_some())
        .flat_map(|w| &w.members)
        .filter(|m| !m.outcome.settled())
        .count()
}

/// Halts the release once more members failed than its budget allows.
/// The halt stays until a person resumes: a failed service someone
/// fixes by hand does not start the waves again behind their back.
fn check_budget(st: &mut ReleaseStatus, allowed: usize, size: usize, now: Timestamp) {
    let failed = counted_failures(st);
    if failed > allowed && st.halt.is_none() && st.aborted_at.is_none() {
        st.halt = Some(Halt {
            at: now,
            reason: format!("{failed} of {size} services failed, budget {allowed}"),
            failed,
            in_flight: in_flight(st),
        });
    }
}

/// Whether the release may write the change (and retries) into members'
/// records: nothing holds it.
fn may_write(st: &ReleaseStatus, release: &Release, halted: Option<&str>) -> bool {
    st.aborted_at.is_none() && st.halt.is_none() && !release.paused && halted.is_none()
}

/// The writes this decision makes, one per member, merged.
fn writes(
    st: &mut ReleaseStatus,
    release: &Release,
    views: &BTreeMap<&ServiceKey, &MemberView<'_>>,
    halted: Option<&str>,
    now: Timestamp,
) -> Vec<MemberWrite> {
    let mut changes: BTreeMap<ServiceKey, BTreeMap<String, Option<Value>>> = BTreeMap::new();
    let writing = may_write(st, release, halted);
    let aborted = st.aborted_at.is_some();
    let halt = st.halt.is_some() && !aborted;
    let target = st.target.clone();
    let mut paused_now = Vec::new();
    for wave in st.waves.iter_mut().filter(|w| w.started_at.is_some()) {
        for m in &mut wave.members {
            let Some(view) = views.get(&m.service) else {
                continue;
            };
            let key = m.service.clone();
            let mut change = |name: &str, value: Option<Value>| {
                changes
                    .entry(key.clone())
                    .or_default()
                    .insert(name.to_string(), value);
            };
            match (m.outcome, &m.rollout) {
                (Outcome::Writing, _) if writing => {
                    m.before.get_or_insert_with(|| values(view.body, &target));
                    for (name, value) in &target {
                        change(name, value.clone().map(Value::String));
                    }
                }
                (Outcome::Waiting, Some(failed))
                    if writing && retrying(m) && !control_names(view.body, "retry", failed) =>
                {
                    change("control", Some(control_with(view.body, "retry", failed)));
                }
                (Outcome::InFlight, Some(rollout))
                    if (aborted || (halt && release.on_halt == OnHalt::Rollback))
                        && !control_names(view.body, "abort", rollout) =>
                {
                    change("control", Some(control_with(view.body, "abort", rollout)));
                }
                (Outcome::InFlight, Some(_))
                    if halt && release.on_halt == OnHalt::Pause && !member::paused(view.body) =>
                {
                    change("paused", Some(Value::Bool(true)));
                    paused_now.push(key.clone());
                }
                _ => {}
            }
        }
    }
    st.paused_members.extend(paused_now);
    // The members the release paused go on once the halt is over, or
    // roll back with an abort; once seen unpaused they are forgotten.
    if (!halt && halted.is_none()) || aborted {
        let mut unpaused = Vec::new();
        for key in &st.paused_members {
            match views.get(key) {
                Some(view) if member::paused(view.body) => {
                    changes
                        .entry(key.clone())
                        .or_default()
                        .insert("paused".into(), Some(Value::Bool(false)));
                }
                _ => unpaused.push(key.clone()),
            }
        }
        for key in unpaused {
            st.paused_members.remove(&key);
        }
    }
    changes
        .into_iter()
        .map(|(key, mut changes)| {
            changes.insert(UPDATED_AT.into(), Some(Value::String(now.to_string())));
            let unchanged_since = views.get(&key).and_then(|v| v.updated_at.clone());
            MemberWrite {
                key,
                changes,
                unchanged_since,
            }
        })
        .collect()
}

fn counts(st: &ReleaseStatus) -> Counts {
    let mut c = Counts {
        missing: st.missing.len(),
        ..Counts::default()
    };
    for m in st.members() {
        match m.outcome {
            Outcome::Pending => c.pending += 1,
            Outcome::Writing | Outcome::Waiting | Outcome::InFlight => c.in_flight += 1,
            Outcome::Succeeded => c.succeeded += 1,
            Outcome::Failed => c.failed += 1,
            Outcome::Superseded => c.superseded += 1,
            Outcome::Missing => c.missing += 1,
        }
    }
    c
}

/// The phase people read, from what holds the release and how far its
/// waves have got.
fn phase(
    st: &ReleaseStatus,
    release: &Release,
    halted: Option<&str>,
    baking: Option<(usize, Timestamp)>,
) -> ReleasePhase {
    let of = st.waves.len();
    if st.aborted_at.is_some() {
        return ReleasePhase::Aborted;
    }
    if let Some(h) = &st.halt {
        return ReleasePhase::Halted {
            reason: h.reason.clone(),
        };
    }
    if st
        .waves
        .iter()
        .all(|w| w.started_at.is_some() && w.settled_at.is_some())
    {
        return ReleasePhase::Completed;
    }
    if release.paused {
        return ReleasePhase::Paused;
    }
    if let Some(reason) = halted {
        return ReleasePhase::HeldByFleetHalt {
            reason: reason.to_string(),
        };
    }
    if let Some((next, until)) = baking {
        return ReleasePhase::Baking {
            next: next + 1,
            until,
        };
    }
    let wave = st
        .waves
        .iter()
        .rposition(|w| w.started_at.is_some())
        .map_or(1, |i| i + 1);
    ReleasePhase::Rolling { wave, of }
}

fn message(st: &ReleaseStatus, release: &Release, phase: &ReleasePhase) -> String {
    let c = &st.counts;
    let mut tally = vec![format!("{} succeeded", c.succeeded)];
    for (n, what) in [
        (c.failed, "failed"),
        (c.in_flight, "in flight"),
        (c.pending, "not started"),
        (c.superseded, "superseded by another version"),
        (c.missing, "without a record"),
    ] {
        if n > 0 {
            tally.push(format!("{n} {what}"));
        }
    }
    let tally = tally.join(", ");
    let withheld = st
        .members()
        .filter(|m| m.outcome == Outcome::Writing)
        .count();
    let withheld = if withheld > 0 {
        format!("; {withheld} not written yet are held back")
    } else {
        String::new()
    };
    match phase {
        ReleasePhase::Rolling { wave, of } => format!("rolling wave {wave} of {of}: {tally}"),
        ReleasePhase::Baking { next, until } => format!(
            "waves so far settled ({tally}); wave {next} starts at {until}, after bake_between {}",
            format_duration(release.bake_between)
        ),
        ReleasePhase::Paused => format!(
            "paused by the release's `paused`: no service is started, rollouts in flight go on; {tally}{withheld}"
        ),
        ReleasePhase::HeldByFleetHalt { reason } => format!(
            "held by the fleet-wide halt: {reason}; no service is started; {tally}{withheld}"
        ),
        ReleasePhase::Halted { reason } => {
            let action = match release.on_halt {
                OnHalt::Pause => "rollouts in flight are paused",
                OnHalt::Rollback => "rollouts in flight are aborted and roll back",
            };
            format!(
                "halted: {reason}; {action}, and no service is started. Once fixed, write a new \
                 `resume` value to forgive these failures, retry them and go on; {tally}"
            )
        }
        ReleasePhase::Aborted => format!(
            "aborted: rollouts in flight are aborted and no service is started again; {tally}"
        ),
        ReleasePhase::Completed => format!("completed: {tally}"),
        ReleasePhase::Pending => format!("not started: {tally}"),
        ReleasePhase::Invalid { error } => error.clone(),
    }
}

/// Attribute values as a message shows them: `image = "…"`.
fn shown(values: &BTreeMap<String, Value>) -> String {
    values
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k} = {}", crate::rollout::quote::quote(s)),
            other => format!("{k} = {other}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn keys(keys: &[ServiceKey]) -> String {
    const SHOWN: usize = 5;
    let mut text = keys
        .iter()
        .take(SHOWN)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > SHOWN {
        text.push_str(&format!(" and {} more", keys.len() - SHOWN));
    }
    text
}
