//! `cutover check-config` and `cutover init-table`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::aws::leases::DynamoLeases;
use crate::aws::store::DynamoStore;
use crate::aws::{Endpoint, sdk_config};
use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    /// The configuration file (TOML). `CUTOVER_*` variables override it.
    #[arg(long, short = 'c', env = "CUTOVER_CONFIG")]
    pub config: Option<PathBuf>,
}

impl ConfigArgs {
    pub fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::load(self.config.as_deref(), |k| {
            std::env::var(k).ok()
        })?)
    }
}

#[derive(clap::Args, Debug)]
pub struct CheckConfigArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Print the commented example configuration instead.
    #[arg(long)]
    pub print_example: bool,
}

pub fn check_config(args: CheckConfigArgs) -> anyhow::Result<ExitCode> {
    if args.print_example {
        print!("{}", Config::example());
        return Ok(ExitCode::SUCCESS);
    }
    let config = args.config.load()?;
    let shown = toml::to_string_pretty(&config).context("rendering the configuration")?;
    println!("configuration is valid:\n{shown}");
    Ok(ExitCode::SUCCESS)
}

pub fn endpoint(config: &Config) -> Endpoint {
    Endpoint {
        region: Some(config.region.clone()),
        url: config.endpoint_url.clone(),
    }
}

pub async fn init_table(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let config = args.load()?;
    let sdk = sdk_config(&endpoint(&config)).await;
    let store = DynamoStore::new(&sdk, &config.table);
    let ready = store
        .create_table()
        .await
        .with_context(|| format!("creating table {}", config.table))?;
    if ready.created {
        println!("created table {} with its stream", config.table);
    } else {
        println!("table {} already exists", config.table);
    }
    let leases = DynamoLeases::new(&sdk, &config.lease_table);
    let created = leases
        .create_table()
        .await
        .with_context(|| format!("creating lease table {}", config.lease_table))?;
    if created {
        println!("created lease table {}", config.lease_table);
    } else {
        println!("lease table {} already exists", config.lease_table);
    }
    Ok(ExitCode::SUCCESS)
}
