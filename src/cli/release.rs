//! `cutover release start|status|pause|resume|abort`: one change rolled out
//! to many services in waves. A release is an item of the records table,
//! written here as any tool could write it; the controller drives it and
//! writes its status back.

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use super::connect::Aws;
use super::format::{self, Table};
use super::setup::ConfigArgs;
use crate::cloud::SpecWrite;
use crate::cloud::releases::{self, ReleaseAction, StoredRelease};
use crate::fleet::ReleaseStatus;
use crate::rollout::ServiceKey;
use crate::time::Timestamp;

#[derive(clap::Subcommand, Debug)]
pub enum ReleaseCommand {
    /// Write a new release: what to set, on which services, in which waves.
    Start(Box<StartArgs>),
    /// Every release, or one in detail: its waves and each member's outcome.
    Status(StatusArgs),
    /// Start no new member; rollouts in flight go on.
    Pause(ActArgs),
    /// Lift a pause, or a halt by the failure budget (forgives the failures
    /// so far and retries them).
    Resume(ActArgs),
    /// Abort the members' rollouts in flight and start nothing again.
    Abort(ActArgs),
}

#[derive(clap::Args, Debug)]
pub struct StartArgs {
    /// The release's name (letters, digits, '-', '_', '.').
    pub name: String,
    /// The whole release as a JSON file (the fields of the README); the
    /// flags below are ignored with it.
    #[arg(long)]
    pub file: Option<std::path::PathBuf>,
    /// The image every member gets (with --container for records that name several).
    #[arg(long)]
    pub image: Option<String>,
    /// The task definition every member gets, instead of an image.
    #[arg(long)]
    pub task_definition: Option<String>,
    #[arg(long)]
    pub container: Option<String>,
    /// Members by key, comma-separated: prod/api,prod/web.
    #[arg(long, value_delimiter = ',')]
    pub services: Vec<ServiceKey>,
    /// Members by label, comma-separated: tier=web,team=payments.
    #[arg(long, value_delimiter = ',')]
    pub selector: Vec<String>,
    /// Cumulative wave sizes, comma-separated: a count (2) or a percentage
    /// (25%); the last wave takes the rest.
    #[arg(long, value_delimiter = ',', default_value = "1,50%,100%")]
    pub waves: Vec<String>,
    /// How long to wait after a wave settles before the next starts.
    #[arg(long)]
    pub bake_between: Option<String>,
    /// Halt once more than this many members failed.
    #[arg(long)]
    pub max_failed: Option<u64>,
    /// Halt once more than this percentage of the members failed.
    #[arg(long)]
    pub max_failed_percent: Option<u64>,
    /// What a halt does to members in flight: pause or rollback.
    #[arg(long)]
    pub on_halt: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    pub name: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(clap::Args, Debug)]
pub struct ActArgs {
    pub name: String,
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub async fn run(command: ReleaseCommand) -> anyhow::Result<ExitCode> {
    match command {
        ReleaseCommand::Start(args) => start(*args).await,
        ReleaseCommand::Status(args) => status(args).await,
        ReleaseCommand::Pause(args) => act(args, ReleaseAction::Pause).await,
        ReleaseCommand::Resume(args) => act(args, ReleaseAction::Resume).await,
        ReleaseCommand::Abort(args) => act(args, ReleaseAction::Abort).await,
    }
}

/// The release the flags describe.
pub fn from_flags(args: &StartArgs) -> anyhow::Result<Value> {
    let mut release = Map::new();
    let mut set = Map::new();
    for (name, value) in [
        ("image", &args.image),
        ("task_definition", &args.task_definition),
        ("container", &args.container),
    ] {
        if let Some(v) = value {
            set.insert(name.into(), json!(v));
        }
    }
    release.insert("set".into(), Value::Object(set));
    if !args.services.is_empty() {
        let keys: Vec<String> = args.services.iter().map(ToString::to_string).collect();
        release.insert("services".into(), json!(keys));
    }
    if !args.selector.is_empty() {
        let mut selector = Map::new();
        for pair in &args.selector {
            let Some((k, v)) = pair.split_once('=') else {
                bail!(
                    "--selector {pair:?}: write label=value pairs, comma-separated (tier=web,team=payments)"
                );
            };
            selector.insert(k.trim().into(), json!(v.trim()));
        }
        release.insert("selector".into(), Value::Object(selector));
    }
    let mut waves = Vec::new();
    for w in &args.waves {
        let w = w.trim();
        let wave = match w.strip_suffix('%') {
            Some(p) => {
                json!({"percent": p.trim().parse::<u64>().with_context(|| format!("--waves {w:?}: a percentage is a whole number and '%' (25%)"))?})
            }
            None => {
                json!({"services": w.parse::<u64>().with_context(|| format!("--waves {w:?}: a wave is a count of services (2) or a percentage (25%)"))?})
            }
        };
        waves.push(wave);
    }
    release.insert("waves".into(), json!(waves));
    if let Some(b) = &args.bake_between {
        release.insert("bake_between".into(), json!(b));
    }
    if args.max_failed.is_some() || args.max_failed_percent.is_some() {
        let mut budget = Map::new();
        if let Some(n) = args.max_failed {
            budget.insert("services".into(), json!(n));
        }
        if let Some(p) = args.max_failed_percent {
            budget.insert("percent".into(), json!(p));
        }
        release.insert("failure_budget".into(), Value::Object(budget));
    }
    if let Some(h) = &args.on_halt {
        release.insert("on_halt".into(), json!(h));
    }
    Ok(Value::Object(release))
}

async fn start(args: StartArgs) -> anyhow::Result<ExitCode> {
    let body = match &args.file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?
        }
        None => from_flags(&args)?,
    };
    let aws = Aws::connect(&args.config).await?;
    let store = aws.store();
    match releases::start(&store, &args.name, &body).await {
        Ok(SpecWrite::Written { .. }) => {
            println!(
                "release {} written to table {}: cutover starts it at its next resync, or at once when started through the API (`cutover release status {}` shows it)",
                args.name, aws.config.table, args.name
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(SpecWrite::PreconditionFailed) => bail!(
            "release {} exists already: a release deploys one change, so write a new one under a new name",
            args.name
        ),
        Err(e) => Err(anyhow::anyhow!("{}", e.message)),
    }
}

async fn act(args: ActArgs, action: ReleaseAction) -> anyhow::Result<ExitCode> {
    let aws = Aws::connect(&args.config).await?;
    let store = aws.store();
    let now = Timestamp::from_system(SystemTime::now());
    match releases::act(&store, &args.name, action, now)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?
    {
        None => bail!(
            "there is no release {} in table {}: `cutover release status` lists them",
            args.name,
            aws.config.table
        ),
        Some(_) => {
            println!("requested {} of release {}", action.as_str(), args.name);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let aws = Aws::connect(&args.config).await?;
    let store = aws.store();
    let text = match &args.name {
        None => overview(
            &releases::list(&store)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?,
        ),
        Some(name) => match releases::get(&store, name)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?
        {
            None => bail!("there is no release {name} in table {}", aws.config.table),
            Some(r) => detail(&r),
        },
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn counts(s: &ReleaseStatus) -> String {
    let c = &s.counts;
    format!(
        "{} ok, {} failed, {} in flight, {} pending",
        c.succeeded, c.failed, c.in_flight, c.pending
    )
}

/// One line per release.
pub fn overview(releases: &[StoredRelease]) -> String {
    let mut table = Table::new(["RELEASE", "PHASE", "MEMBERS", "MESSAGE"]);
    for r in releases {
        let name = r.name.strip_prefix("release:").unwrap_or(&r.name);
        match &r.status {
            Some(s) => table.row(vec![
                name.to_string(),
                s.phase.kind().to_string(),
                counts(s),
                format::clip(&s.message, 100),
            ]),
            None => table.row(vec![
                name.to_string(),
                "-".into(),
                "-".into(),
                "cutover has not looked at it yet".into(),
            ]),
        }
    }
    table.render()
}

/// A release's waves and each member's outcome.
pub fn detail(r: &StoredRelease) -> String {
    let name = r.name.strip_prefix("release:").unwrap_or(&r.name);
    let Some(s) = &r.status else {
        return format!("release {name}: cutover has not looked at it yet\n");
    };
    let mut out = format!(
        "release {name}: {}\n{}\nmembers: {}; failure budget: {} of {} failed count\n",
        s.phase,
        s.message,
        counts(s),
        s.budget.failed,
        s.budget.allowed,
    );
    for (i, wave) in s.waves.iter().enumerate() {
        out.push_str(&format!("\nwave {} of {}\n", i + 1, s.waves.len()));
        let mut table = Table::new(["SERVICE", "OUTCOME", "DETAIL"]);
        for m in &wave.members {
            table.row(vec![
                m.service.to_string(),
                serde_json::to_value(m.outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                m.detail.clone().unwrap_or_default(),
            ]);
        }
        out.push_str(&table.render());
    }
    out
}
