//! `cutover halt` and `cutover unhalt`: the fleet-wide big red button. They
//! write the halt item of the records table directly, as the API does, so
//! they work while the controller is down too.

use std::process::ExitCode;

use anyhow::Context;

use super::connect::Aws;
use super::setup::ConfigArgs;
use crate::cloud::halt::{self, Halting, Lifting};
use crate::time::Timestamp;

#[derive(clap::Args, Debug)]
pub struct HaltArgs {
    /// Why: an incident id, what is wrong. Every service's status shows it.
    #[arg(long)]
    pub reason: String,
    /// Who halts (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(clap::Args, Debug)]
pub struct UnhaltArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub async fn halt(args: HaltArgs) -> anyhow::Result<ExitCode> {
    let aws = Aws::connect(&args.config).await?;
    let store = aws.store();
    let by = args.by.or_else(|| std::env::var("USER").ok());
    let now = Timestamp::from_system(std::time::SystemTime::now());
    let done = halt::halt(&store, &args.reason, by.as_deref(), now)
        .await
        .with_context(|| format!("halting the fleet in table {}", aws.config.table))?;
    match done {
        Halting::Halted(h) => println!(
            "{h}\nno rollout takes a step or starts until `cutover unhalt`; rollbacks still run"
        ),
        Halting::AlreadyHalted(h) => {
            println!("the fleet was halted already, and stays so: {h}")
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn unhalt(args: UnhaltArgs) -> anyhow::Result<ExitCode> {
    let aws = Aws::connect(&args.config).await?;
    let store = aws.store();
    let done = halt::lift(&store)
        .await
        .with_context(|| format!("lifting the halt in table {}", aws.config.table))?;
    match done {
        Lifting::Lifted(h) => {
            println!(
                "lifted the halt ({}): rollouts go on from where they stood",
                h.reason
            )
        }
        Lifting::NotHalted => println!("the fleet is not halted"),
    }
    Ok(ExitCode::SUCCESS)
}
