//! The `cutover` command line.

mod artifacts;
mod connect;
mod control;
mod format;
mod halt;
mod plan;
mod probe;
mod release;
mod run;
mod set;
mod setup;
mod status;
mod wait;

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
    /// Run the real controller against a simulated cloud on an accelerated
    /// clock (the same as `cargo run --release -p cutover-demo`).
    Demo(cutover_demo::DemoArgs),
    /// Run the controller against AWS (or the endpoint in the configuration).
    Run(setup::ConfigArgs),
    /// Validate the configuration (file and CUTOVER_* variables) and print it.
    CheckConfig(setup::CheckConfigArgs),
    /// Create the desired-state table with its stream (for development).
    InitTable(setup::ConfigArgs),
    /// Write the version a service should run (creating its record if needed).
    Set(Box<set::SetArgs>),
    /// Show every service's phase, or one service in detail.
    Status(status::StatusArgs),
    /// Show a service's recorded transitions, oldest first.
    History(status::HistoryArgs),
    /// Wait until a revision serves production, printing each transition:
    /// exit 0 when Steady, 1 when it failed, was rolled back, superseded or
    /// is invalid, 3 on --timeout.
    Wait(wait::WaitArgs),
    /// Let a rollout that waits for promotion go on to its next step.
    Promote(control::ControlArgs),
    /// Roll back the rollout in flight and do not start its revision again.
    Abort(control::ControlArgs),
    /// Hold a service's rollout where it is.
    Pause(control::ControlArgs),
    /// Let a paused rollout go on.
    Resume(control::ControlArgs),
    /// Start a failed revision again.
    Retry(control::ControlArgs),
    /// Show what the controller would do for a service now, without doing it.
    Plan(plan::PlanArgs),
    /// Halt every rollout of the fleet, everywhere: no step, no start, until
    /// `cutover unhalt` (rollbacks still run).
    Halt(halt::HaltArgs),
    /// Lift the fleet-wide halt: held rollouts go on from where they stood.
    Unhalt(halt::UnhaltArgs),
    /// Roll one change out to many services in waves, under a failure budget.
    #[command(subcommand)]
    Release(release::ReleaseCommand),
    /// Exit 0 if a URL answers 2xx (the container health check).
    Probe(probe::ProbeArgs),
}

/// Exit codes: 0 ok, 1 failed (or the revision waited for did not make it),
/// 2 usage (clap's own), 3 timed out waiting, 130/143 waiting stopped by
/// SIGINT/SIGTERM.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => cutover_demo::run(args),
        Command::Run(args) => runtime().and_then(|rt| rt.block_on(run::run(args))),
        Command::CheckConfig(args) => setup::check_config(args),
        Command::InitTable(args) => runtime().and_then(|rt| rt.block_on(setup::init_table(args))),
        Command::Set(args) => runtime().and_then(|rt| rt.block_on(set::set(*args))),
        Command::Status(args) => runtime().and_then(|rt| rt.block_on(status::status(args))),
        Command::History(args) => runtime().and_then(|rt| rt.block_on(status::history(args))),
        Command::Wait(args) => runtime().and_then(|rt| rt.block_on(wait::wait(args))),
        Command::Promote(args) => control(control::Request::Promote, args),
        Command::Abort(args) => control(control::Request::Abort, args),
        Command::Pause(args) => control(control::Request::Pause, args),
        Command::Resume(args) => control(control::Request::Resume, args),
        Command::Retry(args) => control(control::Request::Retry, args),
        Command::Plan(args) => runtime().and_then(|rt| rt.block_on(plan::plan(args))),
        Command::Halt(args) => runtime().and_then(|rt| rt.block_on(halt::halt(args))),
        Command::Unhalt(args) => runtime().and_then(|rt| rt.block_on(halt::unhalt(args))),
        Command::Release(command) => runtime().and_then(|rt| rt.block_on(release::run(command))),
        Command::Probe(args) => probe::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) if e.is::<connect::Usage>() => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn control(request: control::Request, args: control::ControlArgs) -> anyhow::Result<ExitCode> {
    runtime().and_then(|rt| rt.block_on(control::run(request, args)))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
