//! The `cutover` command line.

mod demo;

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
}

/// Exit codes: 0 ok, 1 failed, 2 usage (clap's own).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
