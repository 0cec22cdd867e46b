//! `cutover-bench`: the benchmark, a binary of its own so the daemon ships
//! without it (and without tokio's test utilities, which its paused clock
//! needs).

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "cutover-bench",
    version,
    about = "Measure API calls, sweep time, detection, rollout time and memory against a naive polling loop, on the simulated cloud"
)]
struct Cli {
    #[command(flatten)]
    bench: cutover_bench::BenchArgs,
}

fn main() -> ExitCode {
    match cutover_bench::run(Cli::parse().bench) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
