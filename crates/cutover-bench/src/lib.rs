//! `cutover-bench`: cutover against a naive polling loop over the simulated
//! cloud, with AWS-like latency and AWS's request budgets enforced, on a
//! paused runtime (simulated time). Each measurement runs in a fresh child
//! process, so one fleet size's memory does not count against another's.

mod fleet;
mod measure;
mod naive;
mod release;
mod report;
mod rollout;
mod steady;
mod table;

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use report::{ReleaseRun, RolloutRun, SweepRun};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Fleet sizes to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    pub services: Vec<usize>,
    /// How many services the fleet rollout rolls out at once (0 skips it).
    #[arg(long, default_value_t = 1000)]
    pub rollout: usize,
    /// How many services the fleet release rolls out in waves (0 skips it;
    /// by default as many as --rollout).
    #[arg(long)]
    pub release: Option<usize>,
    /// Directory for results.json and results.md.
    #[arg(long, default_value = "bench")]
    pub out: PathBuf,
    /// Seed of the simulated cloud.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// One measurement, run in this process, printed as JSON (how the
    /// parent runs each measurement in a fresh process).
    #[arg(long, hide = true)]
    pub child: Option<String>,
}

/// Everything one `cutover bench` measured.
#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub machine: String,
    pub command: String,
    pub seed: u64,
    pub sweeps: Vec<SweepRun>,
    pub rollouts: Vec<RolloutRun>,
    #[serde(default)]
    pub releases: Vec<ReleaseRun>,
    pub wall_seconds: f64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Measured {
    Sweep(SweepRun),
    Rollout(RolloutRun),
    Release(ReleaseRun),
}

impl BenchArgs {
    fn release(&self) -> usize {
        self.release.unwrap_or(self.rollout)
    }
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if let Some(spec) = &args.child {
        let measured = child(spec, args.seed)?;
        println!("{}", serde_json::to_string(&measured)?);
        return Ok(ExitCode::SUCCESS);
    }
    if args.services.contains(&0) {
        anyhow::bail!("--services: every fleet size must be at least 1");
    }
    let wall = Instant::now();
    let mut results = Results {
        machine: measure::machine(),
        command: command_line(&args),
        seed: args.seed,
        sweeps: Vec::new(),
        rollouts: Vec::new(),
        releases: Vec::new(),
        wall_seconds: 0.0,
    };
    for &n in &args.services {
        for side in ["cutover", "naive"] {
            match spawn(&format!("sweep:{side}:{n}"), args.seed)? {
                Measured::Sweep(run) => results.sweeps.push(run),
                _ => anyhow::bail!("a sweep measurement answered something else"),
            }
        }
    }
    if args.rollout > 0 {
        for side in ["cutover", "naive"] {
            match spawn(&format!("rollout:{side}:{}", args.rollout), args.seed)? {
                Measured::Rollout(run) => results.rollouts.push(run),
                _ => anyhow::bail!("a rollout measurement answered something else"),
            }
        }
    }
    if args.release() > 0 {
        match spawn(&format!("release:cutover:{}", args.release()), args.seed)? {
            Measured::Release(run) => results.releases.push(run),
            _ => anyhow::bail!("a release measurement answered something else"),
        }
    }
    results.wall_seconds = wall.elapsed().as_secs_f64();
    let markdown = table::markdown(&results);
    print!("{markdown}");
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let json_path = args.out.join("results.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&results)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    let md_path = args.out.join("results.md");
    std::fs::write(&md_path, &markdown)
        .with_context(|| format!("writing {}", md_path.display()))?;
    eprintln!(
        "wrote {} and {} in {:.0} s",
        json_path.display(),
        md_path.display(),
        results.wall_seconds
    );
    Ok(ExitCode::SUCCESS)
}

fn command_line(args: &BenchArgs) -> String {
    let sizes: Vec<String> = args.services.iter().map(|n| n.to_string()).collect();
    format!(
        "cargo run --release -p cutover-bench -- --services {} --rollout {} --release {} --seed {} --out {}",
        sizes.join(","),
        args.rollout,
        args.release(),
        args.seed,
        args.out.display()
    )
}

/// Runs one measurement in a fresh process of this same binary.
fn spawn(spec: &str, seed: u64) -> anyhow::Result<Measured> {
    let started = Instant::now();
    eprintln!("measuring {spec} ...");
    let exe = std::env::current_exe().context("finding this executable")?;
    let output = Command::new(exe)
        .args(["--child", spec, "--seed", &seed.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running the {spec} measurement"))?;
    if !output.status.success() {
        anyhow::bail!("the {spec} measurement failed ({})", output.status);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or_default();
    let measured = serde_json::from_str(line)
        .with_context(|| format!("reading the {spec} measurement's answer {line:?}"))?;
    eprintln!(
        "measured {spec} in {:.1} s of wall time",
        started.elapsed().as_secs_f64()
    );
    Ok(measured)
}

/// `sweep:<side>:<services>`, `rollout:<side>:<services>` or
/// `release:cutover:<services>`, on a paused
/// runtime: every wait is simulated time, and the process does nothing else.
fn child(spec: &str, seed: u64) -> anyhow::Result<Measured> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [kind, side, n] = parts[..] else {
        anyhow::bail!("--child {spec:?}: expected kind:side:services");
    };
    let services: usize = n
        .parse()
        .with_context(|| format!("--child {spec:?}: {n:?} is not a number of services"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        Ok(match (kind, side) {
            ("sweep", "cutover") => Measured::Sweep(steady::run(services, seed).await?),
            ("sweep", "naive") => Measured::Sweep(naive::run(services, seed).await?),
            ("rollout", side) => Measured::Rollout(rollout::run(side, services, seed).await?),
            ("release", "cutover") => Measured::Release(release::run(services, seed).await?),
            _ => anyhow::bail!("--child {spec:?}: no such measurement"),
        })
    })
}
