//! `cutover-demo`: the demo without the daemon, so it builds without an
//! AWS SDK.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "cutover-demo",
    version,
    about = "Run cutover's real controller against a simulated cloud on an accelerated clock"
)]
struct Cli {
    #[command(flatten)]
    demo: cutover_demo::DemoArgs,
}

fn main() -> ExitCode {
    match cutover_demo::run(Cli::parse().demo) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
