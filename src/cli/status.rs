//! `cutover status` and `cutover history`: what the controller last wrote,
//! read from the table, for people.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;

use super::connect::{Aws, ServiceArg};
use super::format::{self, Table};
use super::setup::ConfigArgs;
use crate::aws::store::DynamoStore;
use crate::cloud::{DesiredStore, StoredRecord};
use crate::rollout::observed::{short_arn, short_task_definition, task_set_id};
use crate::rollout::status::TaskSetRef;
use crate::rollout::{ServiceKey, Spec};
use crate::time::Timestamp;

/// How many transitions the detailed view shows; `history` shows them all.
const RECENT_TRANSITIONS: usize = 5;
/// Messages are clipped in the overview; the detailed view has them whole.
const MESSAGE_WIDTH: usize = 100;
const WATCH_POLL: Duration = Duration::from_secs(1);

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// One service, as <cluster>/<service>, for a detailed view.
    #[arg(value_name = "CLUSTER/SERVICE")]
    pub key: Option<ServiceKey>,
    /// Keep watching, and redraw whenever a record or its status changes.
    #[arg(long, short = 'w')]
    pub watch: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub service: ServiceArg,
    #[command(flatten)]
    pub config: ConfigArgs,
}

fn now() -> Timestamp {
    Timestamp::from_system(SystemTime::now())
}

fn spec_of(record: &StoredRecord) -> Option<Spec> {
    record.spec().ok()
}

/// One line per service.
pub fn overview(records: &[StoredRecord], now: Timestamp) -> String {
    let mut table = Table::new(["SERVICE", "PHASE", "WEIGHTS", "STEP", "AGE", "MESSAGE"]);
    for record in records {
        let total = spec_of(record).map(|s| s.steps().len());
        let row = match &record.status {
            Some(s) => vec![
                record.key.to_string(),
                s.phase().to_string(),
                format::weights(s.weights),
                format::step(s.rollout.as_ref().map(|r| r.step), total),
                format::age(now.since(s.phase_since)),
                format::clip(&s.message, MESSAGE_WIDTH),
            ],
            None => vec![
                record.key.to_string(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "not yet seen by the controller".into(),
            ],
        };
        table.row(row);
    }
    table.render()
}

fn task_set(t: &TaskSetRef) -> String {
    format!(
        "{} in {} (task set {})",
        short_task_definition(&t.task_definition),
        short_arn(&t.target_group),
        task_set_id(&t.arn)
    )
}

/// Everything about one service, with its last few transitions.
pub fn detail(record: &StoredRecord, now: Timestamp) -> String {
    let mut lines: Vec<(&str, String)> = vec![("service", record.key.to_string())];
    let spec = record.spec();
    match &spec {
        Ok(s) => lines.push((
            "desired",
            format!("revision {} ({}), {}", s.revision, s.version, s.strategy),
        )),
        Err(e) => lines.push(("desired", format!("the record is invalid: {e}"))),
    }
    if record.body.get("paused").and_then(|v| v.as_bool()) == Some(true) {
        lines.push((
            "paused",
            "yes: set by `cutover pause`, undone by `cutover resume`".into(),
        ));
    }
    let Some(s) = &record.status else {
        lines.push((
            "phase",
            "- (the controller has not written a status yet)".into(),
        ));
        return render_pairs(&lines);
    };
    lines.push((
        "phase",
        format!(
            "{} for {} (since {})",
            s.phase(),
            format::age(now.since(s.phase_since)),
            format::time(s.phase_since)
        ),
    ));
    lines.push(("message", s.message.clone()));
    lines.push((
        "serving",
        format!("revision {}", format::or_dash(s.stable_revision.as_ref())),
    ));
    lines.push((
        "weights",
        format!("{} (active/candidate)", format::weights(s.weights)),
    ));
    lines.push(("active", s.active.as_ref().map_or("-".into(), task_set)));
    lines.push((
        "candidate",
        s.candidate.as_ref().map_or("-".into(), task_set),
    ));
    if let Some(r) = &s.rollout {
        let steps = spec.as_ref().ok().map(|s| s.steps());
        let current = steps
            .as_ref()
            .and_then(|steps| steps.get(r.step as usize))
            .map_or(String::new(), |step| format!(" ({step})"));
        lines.push((
            "rollout",
            format!("{} started {}", r.id, format::time(r.started_at)),
        ));
        lines.push((
            "step",
            format!(
                "{}{current}, for {}",
                format::step(Some(r.step), steps.map(|s| s.len())),
                format::age(now.since(r.step_started_at))
            ),
        ));
        if let Some(reason) = &r.rollback {
            lines.push(("rolling back", reason.to_string()));
        }
    }
    if let Some(f) = &s.failed {
        lines.push((
            "failed",
            format!(
                "rollout {} at {}: {}",
                f.rollout,
                format::time(f.at),
                f.reason
            ),
        ));
    }
    lines.push(("last error", format::or_dash(s.last_error.as_ref())));
    let mut out = render_pairs(&lines);
    let recent = &s.history[s.history.len().saturating_sub(RECENT_TRANSITIONS)..];
    if !recent.is_empty() {
        out.push_str("\nrecent transitions:\n");
        out.push_str(&transitions(recent));
    }
    out
}

fn render_pairs(lines: &[(&str, String)]) -> String {
    let width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0) + 2;
    lines
        .iter()
        .map(|(label, value)| format!("{label:<width$}{value}\n"))
        .collect()
}

fn transitions(history: &[crate::rollout::status::Transition]) -> String {
    let mut table = Table::new(["TIME", "TRANSITION", "REVISION", "REASON"]);
    for t in history {
        table.row(vec![
            format::time(t.at),
            format!("{} → {}", t.from, t.to),
            format::or_dash(t.revision.as_ref()),
            format::clip(&t.reason, MESSAGE_WIDTH * 2),
        ]);
    }
    table.render()
}

/// Every transition the status keeps, oldest first.
pub fn history_text(record: &StoredRecord) -> String {
    match record.status.as_ref().filter(|s| !s.history.is_empty()) {
        Some(s) => transitions(&s.history),
        None => format!("{}: no transitions recorded yet\n", record.key),
    }
}

async fn fetch(
    aws: &Aws,
    store: &DynamoStore,
    key: Option<&ServiceKey>,
) -> anyhow::Result<Vec<StoredRecord>> {
    let mut records = match key {
        Some(key) => vec![aws.record(store, key).await?],
        None => store
            .list()
            .await
            .with_context(|| format!("listing table {}", aws.config.table))?,
    };
    records.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(records)
}

fn render(records: &[StoredRecord], key: Option<&ServiceKey>, now: Timestamp) -> String {
    match (key, records) {
        (Some(_), [record]) => detail(record, now),
        (_, []) => "no records\n".into(),
        _ => overview(records, now),
    }
}

pub async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let aws = Aws::connect(&args.config).await?;
    let store = aws.store();
    let key = args.key.as_ref();
    if !args.watch {
        let records = fetch(&aws, &store, key).await?;
        // The first thing an on-call engineer must see.
        if let Some(h) = crate::cloud::halt::read(&store)
            .await
            .context("reading the fleet-wide halt")?
        {
            println!("FLEET HALTED: {h}; no rollout takes a step until `cutover unhalt`\n");
        }
        print!("{}", render(&records, key, now()));
        return Ok(ExitCode::SUCCESS);
    }
    watch(&aws, &store, key).await
}

/// Polls about every second and redraws only when a record or its status
/// changed. Ages alone do not count, so a quiet fleet prints nothing new into
/// a log; the header says when the view was drawn. The screen is cleared
/// only on a terminal.
async fn watch(
    aws: &Aws,
    store: &DynamoStore,
    key: Option<&ServiceKey>,
) -> anyhow::Result<ExitCode> {
    let terminal = std::io::stdout().is_terminal();
    // One Ctrl-C listener for the whole watch: once polled, an interrupt that
    // arrives mid-read is kept for the next select instead of being lost.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut shown: Option<Vec<StoredRecord>> = None;
    let mut last_error = None;
    loop {
        let fetched = tokio::select! {
            fetched = fetch(aws, store, key) => fetched,
            _ = &mut interrupted => return Ok(ExitCode::SUCCESS),
        };
        match fetched {
            Ok(records) => {
                last_error = None;
                if shown.as_ref() != Some(&records) {
                    let at = now();
                    let mut out = String::new();
                    if terminal {
                        out.push_str("\x1b[H\x1b[2J");
                    }
                    out.push_str(&format!("as of {} (Ctrl-C to stop)\n", format::time(at)));
                    out.push_str(&render(&records, key, at));
                    print!("{out}");
                    std::io::stdout().flush().ok();
                    shown = Some(records);
                }
            }
            // Keep watching through a passing error, saying so once.
            Err(e) => {
                let text = format!("{e:#}");
                if last_error.as_ref() != Some(&text) {
                    eprintln!("{}: {text}", format::time(now()));
                    last_error = Some(text);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(WATCH_POLL) => {}
            _ = &mut interrupted => return Ok(ExitCode::SUCCESS),
        }
    }
}

pub async fn history(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let aws = Aws::connect(&args.config).await?;
    let store = aws.store();
    let record = aws.record(&store, &args.service.key).await?;
    print!("{}", history_text(&record));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
