//! `cutover wait` and `cutover set --wait`: follow one revision of a service
//! until it serves production or has failed, printing each transition as the
//! controller records it, so a CI step can block on a release and fail the
//! build when the release fails.
//!
//! It only reads the record (a consistent `GetItem` every few seconds, as
//! `status --watch` does); the release never depends on it, so stopping it
//! or timing out stops the waiting, not the rollout.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::bail;

use super::connect::{Aws, ServiceArg};
use super::format;
use super::setup::ConfigArgs;
use crate::aws::store::DynamoStore;
use crate::cloud::StoredRecord;
use crate::rollout::status::Transition;
use crate::rollout::{Phase, Revision, ServiceKey};
use crate::time::Timestamp;

/// The revision failed, was rolled back, superseded or made invalid.
pub const EXIT_FAILED: u8 = 1;
/// `--timeout` passed before the revision reached an outcome.
pub const EXIT_TIMED_OUT: u8 = 3;
/// Stopped by SIGINT (Ctrl-C) or SIGTERM, as shells report a signal: 128 + its number.
pub const EXIT_INTERRUPTED: u8 = 130;
pub const EXIT_TERMINATED: u8 = 143;

/// Each poll is one strongly consistent read of one item.
const POLL: Duration = Duration::from_secs(2);
/// As long as the AWS CLI's CodeDeploy `deployment-successful` waiter, which
/// a pipeline moving from CodeDeploy already budgets for: 120 checks, 15 s
/// apart (https://docs.aws.amazon.com/cli/latest/reference/deploy/wait/deployment-successful.html).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

#[derive(clap::Args, Debug)]
pub struct WaitArgs {
    #[command(flatten)]
    pub service: ServiceArg,
    /// The revision to wait for, as `cutover set` prints it (or in full);
    /// by default the one the record asks for now.
    #[arg(long, value_name = "REVISION", value_parser = revision_value)]
    pub revision: Option<String>,
    /// How long to wait before giving up with exit code 3, such as 15m or
    /// 1h30m (default 30m). The release goes on either way.
    #[arg(long, value_name = "DURATION", value_parser = timeout_value)]
    pub timeout: Option<Duration>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// `--timeout`: a positive duration in the records' own notation.
pub fn timeout_value(raw: &str) -> Result<Duration, String> {
    match humantime::parse_duration(raw.trim()) {
        Ok(d) if d.is_zero() => Err("must be longer than 0s, such as 15m".into()),
        Ok(d) => Ok(d),
        Err(_) => Err(format!(
            "{raw:?} is not a duration: write a number and a unit, such as 90s, 15m or 1h30m"
        )),
    }
}

fn revision_value(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.len() >= 8 && raw.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(format!(
            "{raw:?} is not a revision: give it as `cutover set` and `cutover status` print it, 8 hex digits such as 3f2a9c01"
        ))
    }
}

/// The revision waited for: its full form, or the short form people see,
/// which the full one starts with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted(String);

impl Wanted {
    pub fn exactly(revision: &Revision) -> Wanted {
        Wanted(revision.as_str().to_string())
    }

    fn is(&self, revision: Option<&Revision>) -> bool {
        revision.is_some_and(|r| r.as_str().starts_with(&self.0))
    }
}

impl std::fmt::Display for Wanted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0[..self.0.len().min(8)])
    }
}

/// Where the revision stands, as far as the record tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Still on its way: not picked up yet, or a rollout in flight.
    Pending,
    /// Steady on the revision: it serves production.
    Released(String),
    /// It will not be released unless someone acts: the line says why.
    Failed(String),
}

/// Pure: what the record says about `wanted`. A record that asks for
/// another revision (or for nothing valid) means this one was superseded,
/// whatever the controller has written so far.
pub fn verdict(record: &StoredRecord, wanted: &Wanted) -> Verdict {
    let key = &record.key;
    let spec = match record.spec() {
        Ok(spec) => spec,
        Err(e) => {
            return Verdict::Failed(format!(
                "invalid: {key} revision {wanted} will not be released: the record is now invalid: {e}"
            ));
        }
    };
    if !wanted.is(Some(&spec.revision)) {
        return Verdict::Failed(format!(
            "superseded: {key} revision {wanted} will not be released: the record now asks for revision {}",
            spec.revision
        ));
    }
    let Some(s) = record
        .status
        .as_ref()
        .filter(|s| wanted.is(s.observed_revision.as_ref()))
    else {
        return Verdict::Pending;
    };
    match s.phase() {
        Phase::Steady if wanted.is(s.stable_revision.as_ref()) => Verdict::Released(format!(
            "released: {key} revision {wanted} is Steady and serves production ({})",
            s.message
        )),
        // `cutover retry` then `cutover wait`: the failure is the one a
        // retry was asked for, so the next attempt is on its way.
        Phase::Failed
            if s.failed.as_ref().is_some_and(|f| {
                wanted.is(Some(&f.rollout.revision))
                    && spec.control.retry.as_ref() == Some(&f.rollout)
            }) =>
        {
            Verdict::Pending
        }
        Phase::Failed => {
            let reason = s
                .failed
                .as_ref()
                .filter(|f| wanted.is(Some(&f.rollout.revision)))
                .map_or(s.message.as_str(), |f| f.reason.as_str());
            Verdict::Failed(format!(
                "failed: {key} revision {wanted} failed and was rolled back: {reason}"
            ))
        }
        Phase::Invalid => Verdict::Failed(format!(
            "invalid: {key} revision {wanted} cannot be released: {}",
            s.message
        )),
        _ => Verdict::Pending,
    }
}

/// The transitions already shown: the newest one and how many share its
/// time, so a status written again, or one with several transitions in one
/// pass, shows each transition once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    last: Option<Transition>,
}

impl Seen {
    pub fn of(record: Option<&StoredRecord>) -> Seen {
        Seen {
            last: record
                .and_then(|r| r.status.as_ref())
                .and_then(|s| s.history.last().cloned()),
        }
    }

    /// Transitions recorded since the last call, oldest first. A history
    /// that no longer holds the last one shown (rewritten by a whole-item
    /// put, or more than its bound since) is followed by time.
    pub fn fresh<'a>(&mut self, history: &'a [Transition]) -> &'a [Transition] {
        let start = match &self.last {
            None => 0,
            Some(last) => match history.iter().rposition(|t| t == last) {
                Some(i) => i + 1,
                None => history
                    .iter()
                    .position(|t| t.at > last.at)
                    .unwrap_or(history.len()),
            },
        };
        let fresh = &history[start..];
        if let Some(t) = fresh.last() {
            self.last = Some(t.clone());
        }
        fresh
    }
}

fn now() -> Timestamp {
    Timestamp::from_system(SystemTime::now())
}

fn line(at: Timestamp, key: &ServiceKey, what: &str, text: &str) -> String {
    format!(
        "{}  {key}  {what:<30}  {}",
        format::time(at),
        format::clip(text, 300)
    )
}

fn say(text: &str) {
    println!("{text}");
    // CI logs read a pipe: show each line as it happens, not at exit.
    std::io::stdout().flush().ok();
}

/// What the waiter knows, kept outside the polling so a timeout or a signal
/// can still say where the revision stood.
struct Progress {
    key: ServiceKey,
    wanted: Wanted,
    seen: Seen,
    /// The last status message shown for this revision.
    message: Option<String>,
    /// The phase the revision was last seen in, for the closing line.
    phase: Option<(Phase, String)>,
    last_error: Option<String>,
}

impl Progress {
    /// Prints what is new in the record; the verdict once there is one.
    fn show(&mut self, record: &StoredRecord) -> Verdict {
        let verdict = verdict(record, &self.wanted);
        if let Some(s) = &record.status {
            for t in self.seen.fresh(&s.history) {
                let what = format!("{} → {}", t.from, t.to);
                say(&line(t.at, &self.key, &what, &t.reason));
            }
            if self.wanted.is(s.observed_revision.as_ref()) {
                self.phase = Some((s.phase(), s.message.clone()));
                // Progress within a phase (a step's weights, a failing
                // check); the closing line carries the last message.
                if verdict == Verdict::Pending && self.message.as_ref() != Some(&s.message) {
                    say(&line(now(), &self.key, s.phase().as_str(), &s.message));
                    self.message = Some(s.message.clone());
                }
            }
        }
        verdict
    }

    fn standing(&self) -> String {
        match &self.phase {
            Some((phase, message)) => format!(
                "{} revision {} is {phase} ({message})",
                self.key, self.wanted
            ),
            None => format!(
                "{} revision {} has not been picked up by the controller yet",
                self.key, self.wanted
            ),
        }
    }
}

/// How the waiting ended.
enum Stop {
    Released(String),
    Failed(String),
    Signal(u8),
    Deleted,
}

/// Follows the record until the revision has an outcome, the timeout
/// passes, or a signal arrives. `seen` holds the transitions not to print
/// again.
pub async fn follow(
    aws: &Aws,
    store: &DynamoStore,
    key: &ServiceKey,
    wanted: Wanted,
    seen: Seen,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let mut progress = Progress {
        key: key.clone(),
        wanted,
        seen,
        message: None,
        phase: None,
        last_error: None,
    };
    say(&format!(
        "waiting up to {} for {key} revision {} (stopping this command does not stop the release)",
        format::age(timeout),
        progress.wanted
    ));
    let stop = tokio::time::timeout(timeout, poll(aws, store, &mut progress)).await;
    let (code, text) = match stop {
        Err(_elapsed) => (
            EXIT_TIMED_OUT,
            format!(
                "timed out after {}: {}; the release goes on: `cutover status {key}` shows it",
                format::age(timeout),
                progress.standing()
            ),
        ),
        Ok(Stop::Released(text)) => (0, text),
        Ok(Stop::Failed(text)) => (EXIT_FAILED, text),
        Ok(Stop::Signal(code)) => (
            code,
            format!(
                "stopped waiting: {}; the release goes on without this command",
                progress.standing()
            ),
        ),
        Ok(Stop::Deleted) => (
            EXIT_FAILED,
            format!(
                "deleted: {key} has no record in table {} any more, so revision {} will not be released",
                aws.config.table, progress.wanted
            ),
        ),
    };
    say(&text);
    Ok(ExitCode::from(code))
}

async fn poll(aws: &Aws, store: &DynamoStore, progress: &mut Progress) -> Stop {
    // One listener for the whole wait: once polled, a signal that arrives
    // mid-read is kept for the next select instead of being lost.
    let signal = stopped();
    tokio::pin!(signal);
    loop {
        let read = tokio::select! {
            read = aws.read(store, &progress.key) => read,
            code = &mut signal => return Stop::Signal(code),
        };
        match read {
            Ok(Some(record)) => {
                progress.last_error = None;
                match progress.show(&record) {
                    Verdict::Pending => {}
                    Verdict::Released(text) => return Stop::Released(text),
                    Verdict::Failed(text) => return Stop::Failed(text),
                }
            }
            Ok(None) => return Stop::Deleted,
            // A passing error (throttling, a network blip) is said once and
            // waited through; the timeout bounds it.
            Err(e) => {
                let text = format!("{e:#}");
                if progress.last_error.as_ref() != Some(&text) {
                    eprintln!("{}: {text}", format::time(now()));
                    progress.last_error = Some(text);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            code = &mut signal => return Stop::Signal(code),
        }
    }
}

/// The exit code for Ctrl-C, or for the SIGTERM a CI runner sends when it
/// cancels a job.
async fn stopped() -> u8 {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => EXIT_TERMINATED,
                    _ = tokio::signal::ctrl_c() => EXIT_INTERRUPTED,
                }
            }
            Err(e) => {
                eprintln!(
                    "warning: cannot listen for SIGTERM ({e}); only Ctrl-C stops the waiting cleanly"
                );
                let _ = tokio::signal::ctrl_c().await;
                EXIT_INTERRUPTED
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        EXIT_INTERRUPTED
    }
}

/// `cutover wait`.
pub async fn wait(args: WaitArgs) -> anyhow::Result<ExitCode> {
    let key = args.service.key.clone();
    let aws = Aws::connect(&args.config).await?;
    let store = aws.store();
    let record = aws.record(&store, &key).await?;
    let wanted = match &args.revision {
        Some(r) => Wanted(r.clone()),
        None => match record.spec() {
            Ok(spec) => Wanted::exactly(&spec.revision),
            Err(e) => bail!(
                "invalid: {key}'s record is invalid, so there is no revision to wait for: {e}"
            ),
        },
    };
    let seen = Seen::of(Some(&record));
    follow(
        &aws,
        &store,
        &key,
        wanted,
        seen,
        args.timeout.unwrap_or(DEFAULT_TIMEOUT),
    )
    .await
}

#[cfg(test)]
#[path = "wait_tests.rs"]
mod tests;
