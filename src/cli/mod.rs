//! The `cutover` command line.

mod demo;
mod run;
mod setup;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "cutover",
    version,
    about = "Declarative blue/green releases for Amazon ECS"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the real controller against a simulated cloud on an accelerated clock.
    Demo(demo::DemoArgs),
    /// Run the controller against AWS (or the endpoint in the configuration).
    Run(setup::ConfigArgs),
    /// Validate the configuration (file and CUTOVER_* variables) and print it.
    CheckConfig(setup::CheckConfigArgs),
    /// Create the desired-state table with its stream (for development).
    InitTable(setup::ConfigArgs),
}

/// Exit codes: 0 ok, 1 failed, 2 usage (clap's own).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Run(args) => runtime().and_then(|rt| rt.block_on(run::run(args))),
        Command::CheckConfig(args) => setup::check_config(args),
        Command::InitTable(args) => runtime().and_then(|rt| rt.block_on(setup::init_table(args))),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
