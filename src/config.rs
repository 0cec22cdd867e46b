//! The daemon's configuration: a strict TOML file, overridden key by key by
//! `CUTOVER_<KEY>` environment variables. AWS credentials never come from
//! here: only from the standard provider chain.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cloud::budget::BudgetConfig;
use crate::rollout::strategy::humantime_serde_compat;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub region: String,
    pub table: String,
    pub endpoint_url: Option<String>,
    #[serde(with = "humantime_serde_compat")]
    pub poll_interval: Duration,
    #[serde(with = "humantime_serde_compat")]
    pub resync_interval: Duration,
    pub concurrency: usize,
    pub listen: String,
    pub log_format: LogFormat,
    pub lease_table: String,
    pub shards: u32,
    #[serde(with = "humantime_serde_compat")]
    pub lease_ttl: Duration,
    #[serde(with = "humantime_serde_compat")]
    pub relay_poll: Duration,
    pub replica_id: Option<String>,
    pub budgets: BudgetConfig,
    pub accounts: AccountsConfig,
    pub limits: LimitsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            region: "us-east-1".into(),
            table: "cutover-desired".into(),
            endpoint_url: None,
            poll_interval: Duration::from_secs(5),
            resync_interval: Duration::from_secs(300),
            concurrency: 64,
            listen: "0.0.0.0:8080".into(),
            log_format: LogFormat::Json,
            lease_table: "cutover-leases".into(),
            shards: 16,
            lease_ttl: Duration::from_secs(20),
            relay_poll: Duration::from_secs(1),
            replica_id: None,
            budgets: BudgetConfig::default(),
            accounts: AccountsConfig::default(),
            limits: LimitsConfig::default(),
        }
    }
}

/// Every key, what it means, and how the example shows it. The example file
/// is generated from this table, and a test keeps the two in step.
pub const KEYS: &[(&str, &str, &str)] = &[
    (
        "region",
        "AWS region of the table, the ECS services and the load balancers.",
        "region = \"us-east-1\"",
    ),
    (
        "table",
        "DynamoDB table that holds one desired record per service.",
        "table = \"cutover-desired\"",
    ),
    (
        "endpoint_url",
        "Send every AWS call to this endpoint instead of AWS's (a local emulator).",
        "# endpoint_url = \"http://127.0.0.1:5000\"",
    ),
    (
        "poll_interval",
        "How often a service in the middle of a rollout is looked at.",
        "poll_interval = \"5s\"",
    ),
    (
        "resync_interval",
        "How often every record is read again, in case a change notification was missed.",
        "resync_interval = \"5m\"",
    ),
    (
        "concurrency",
        "How many services are reconciled at the same time. A pass mostly waits on AWS and on the\n\
         # request budgets, so many are cheap; a quarter are kept for changes and rollouts.",
        "concurrency = 64",
    ),
    (
        "listen",
        "Address of the HTTP server (/metrics, /healthz, /readyz, the API).",
        "listen = \"0.0.0.0:8080\"",
    ),
    (
        "log_format",
        "\"json\" for log shippers, \"text\" for people.",
        "log_format = \"json\"",
    ),
    (
        "lease_table",
        "DynamoDB table of the shard leases through which replicas share the services.",
        "lease_table = \"cutover-leases\"",
    ),
    (
        "shards",
        "How many shards services are divided into; every replica must use the same number.",
        "shards = 16",
    ),
    (
        "lease_ttl",
        "How long a shard lease lasts unrenewed: a dead replica's services wait at most this long.",
        "lease_ttl = \"20s\"",
    ),
    (
        "relay_poll",
        "How often a replica that does not read the table's stream (only two replicas do) polls the\n\
         # lease table for changes to the records of its shards.",
        "relay_poll = \"1s\"",
    ),
    (
        "replica_id",
        "This replica's name in the lease table; unique among replicas (default: hostname-pid).",
        "# replica_id = \"cutover-1\"",
    ),
    // A table: it stays last, or the keys after it would land inside it.
    (
        "budgets",
        "AWS request budgets, per account and region, as AWS documents them: requests per second\n\
         # sustained and burst. cutover spends at most `share` of each (everyone else, ECS itself\n\
         # included, shares the rest), and drift checks of services with nothing to do at most\n\
         # `steady_share` of that: calls for a change just written, then for rollouts, go first.\n\
         # CUTOVER_BUDGETS replaces the table with an inline one, e.g. '{share = 0.25}'.",
        "[budgets]\n\
         share = 0.5\n\
         steady_share = 0.4\n\
         ecs_read = { per_second = 20, burst = 100 }\n\
         ecs_mutation = { per_second = 5, burst = 50 }\n\
         elb_read = { per_second = 10, burst = 40 }\n\
         elb_mutation = { per_second = 3, burst = 20 }\n\
         cloudwatch = { per_second = 9, burst = 9 }\n\
         dynamodb = { per_second = 1000, burst = 1000 }",
    ),
    (
        "accounts",
        "Services in other accounts (keys <region>:<account>:<cluster>/<service>) are reached by\n\
         # assuming a role there: the record's `role_arn`, or else `role_name` in that account.\n\
         # `external_id` is sent with every AssumeRole (the target roles' trust policies ask for it).\n\
         # CUTOVER_ACCOUNTS replaces the table with an inline one, e.g. '{role_name = \"cutover-target\"}'.",
        "[accounts]\n\
         # role_name = \"cutover-target\"\n\
         # external_id = \"cutover-prod\"",
    ),
    (
        "limits",
        "At most so many rollouts in flight at once: in all, per cluster, per account (each optional,\n\
         # at least 1; none by default). A rollout that would start beyond a limit waits, queued in the\n\
         # order its record was written, and says so in its status; one in flight is never stopped.\n\
         # Counted per replica: with shard leases each replica counts the services it drives.\n\
         # CUTOVER_LIMITS_ROLLOUTS, CUTOVER_LIMITS_PER_CLUSTER and CUTOVER_LIMITS_PER_ACCOUNT set one\n\
         # each; CUTOVER_LIMITS replaces the table with an inline one, e.g. '{per_cluster = 2}'.",
        "[limits]\n\
         # rollouts = 20\n\
         # per_cluster = 5\n\
         # per_account = 10",
    ),
];

/// The `[limits]` table: how many rollouts may be in flight at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub rollouts: Option<u32>,
    pub per_cluster: Option<u32>,
    pub per_account: Option<u32>,
}

impl LimitsConfig {
    /// Its keys, each also set by `CUTOVER_LIMITS_<KEY>`.
    pub const FIELDS: [&str; 3] = ["rollouts", "per_cluster", "per_account"];

    pub fn validate(&self) -> Result<(), String> {
        for (field, value) in
            Self::FIELDS
                .iter()
                .zip([self.rollouts, self.per_cluster, self.per_account])
        {
            if value == Some(0) {
                return Err(format!(
                    "`limits.{field}` is 0, which would start no rollout: use at least 1, or leave it out for no limit"
                ));
            }
        }
        Ok(())
    }

    /// The limits the controller keeps.
    pub fn limits(&self) -> crate::controller::Limits {
        crate::controller::Limits {
            rollouts: self.rollouts,
            per_cluster: self.per_cluster,
            per_account: self.per_account,
        }
    }
}

/// The `[accounts]` table of the configuration: how other accounts are
/// reached.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// The role assumed in an account whose records name no `role_arn`:
    /// `arn:<partition>:iam::<account>:role/<role_name>`. Without it, every
    /// record in another account must name its role.
    pub role_name: Option<String>,
    /// Sent with every AssumeRole; the target roles' trust policies require it.
    pub external_id: Option<String>,
}

impl AccountsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(name) = &self.role_name {
            let ok = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c);
            if name.is_empty()
                || name.len() > 576
                || name.starts_with('/')
                || name.ends_with('/')
                || !name.chars().all(ok)
            {
                return Err(format!(
                    "`accounts.role_name` {name:?} is not a role name (letters, digits, +=,.@_- and a path with '/'): \
                     write the name only, such as \"cutover-target\""
                ));
            }
        }
        if let Some(id) = &self.external_id {
            let ok = |c: char| c.is_ascii_alphanumeric() || "+=,.@:_-".contains(c);
            if !(2..=96).contains(&id.len()) || !id.chars().all(ok) {
                return Err(
                    "`accounts.external_id` must be 2 to 96 letters, digits or +=,.@:_-".into(),
                );
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

impl Config {
    /// Reads `path` (if given), then applies `CUTOVER_*` overrides from `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let (name, text) = match path {
            Some(p) => (
                p.display().to_string(),
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?,
            ),
            None => ("(defaults)".to_string(), String::new()),
        };
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: name.clone(),
            message: e.to_string(),
        })?;
        for (key, _, _) in KEYS {
            let var = format!("CUTOVER_{}", key.to_uppercase());
            if let Some(raw) = env(&var) {
                table.insert(key.to_string(), env_value(key, &raw, &var)?);
            }
        }
        for field in LimitsConfig::FIELDS {
            let var = format!("CUTOVER_LIMITS_{}", field.to_uppercase());
            if let Some(raw) = env(&var) {
                let n: i64 = raw.trim().parse().map_err(|_| ConfigError::Env {
                    var: var.clone(),
                    message: format!("{raw:?} is not a whole number"),
                })?;
                let limits = table
                    .entry("limits")
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(limits) = limits {
                    limits.insert(field.to_string(), toml::Value::Integer(n));
                }
            }
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let field = e.path().to_string();
                let inner = e.into_inner();
                let message = if field == "." {
                    inner.message().to_string()
                } else {
                    format!("`{field}`: {}", inner.message())
                };
                ConfigError::Invalid {
                    path: name.clone(),
                    message,
                }
            })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            path: name,
            message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.table.trim().is_empty() {
            return Err("`table` is empty: name the DynamoDB table of desired records".into());
        }
        if self.concurrency == 0 {
            return Err("`concurrency` is 0: use at least 1".into());
        }
        if self.poll_interval < Duration::from_millis(100) {
            return Err("`poll_interval` is under 100ms: that would spend the AWS request budget on polling".into());
        }
        if self.resync_interval < self.poll_interval {
            return Err("`resync_interval` is shorter than `poll_interval`".into());
        }
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "`listen` {:?} is not an address such as 0.0.0.0:8080",
                self.listen
            ));
        }
        if self.lease_table.trim().is_empty() {
            return Err("`lease_table` is empty: name the DynamoDB table of shard leases".into());
        }
        if self.lease_table == self.table {
            return Err(
                "`lease_table` is the same as `table`: leases need a table of their own".into(),
            );
        }
        if !(1..=1024).contains(&self.shards) {
            return Err(format!("`shards` is {}: use 1 to 1024", self.shards));
        }
        if self.lease_ttl < Duration::from_secs(2) || self.lease_ttl > Duration::from_secs(600) {
            return Err(
                "`lease_ttl` must be from 2s to 10m: shorter renews too often, longer leaves a dead replica's services waiting".into(),
            );
        }
        if self.relay_poll < Duration::from_millis(100) || self.relay_poll > Duration::from_secs(60)
        {
            return Err(
                "`relay_poll` must be from 100ms to 1m: shorter spends reads on polling, longer delays every change".into(),
            );
        }
        if let Some(id) = &self.replica_id
            && (id.trim().is_empty() || id.len() > 200)
        {
            return Err(format!("`replica_id` {id:?} must be 1 to 200 characters"));
        }
        self.budgets.validate()?;
        self.accounts.validate()?;
        self.limits.validate()?;
        if let Some(url) = &self.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            // Shown at most by scheme and host: an endpoint URL may carry
            // credentials.
            return Err(format!(
                "`endpoint_url` {}",
                crate::rollout::quote::not_an_http_url(url)
            ));
        }
        Ok(())
    }

    /// `replica_id`, or the hostname and process id, which differ between
    /// replicas on one host and between ECS tasks (each has its hostname).
    pub fn replica(&self) -> String {
        if let Some(id) = &self.replica_id {
            return id.clone();
        }
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "cutover".into());
        format!("{host}-{}", std::process::id())
    }

    /// The commented example, as checked in under `config/`.
    pub fn example() -> String {
        let mut out = String::from(
            "# cutover configuration. Every key is optional; the values shown are the defaults.\n\
             # Each key can be overridden by an environment variable CUTOVER_<KEY>, e.g. CUTOVER_TABLE.\n\
             # AWS credentials are never read from this file: cutover uses the standard AWS\n\
             # provider chain (environment, profile, ECS task role, instance role).\n",
        );
        for (_, doc, example) in KEYS {
            out.push_str(&format!("\n# {doc}\n{example}\n"));
        }
        out
    }
}

/// An environment value typed like the key it overrides.
fn env_value(key: &str, raw: &str, var: &str) -> Result<toml::Value, ConfigError> {
    Ok(match key {
        "concurrency" | "shards" => {
            toml::Value::Integer(raw.trim().parse().map_err(|_| ConfigError::Env {
                var: var.to_string(),
                message: format!("{raw:?} is not a whole number"),
            })?)
        }
        "budgets" | "accounts" | "limits" => {
            let parsed: toml::Table =
                toml::from_str(&format!("v = {raw}")).map_err(|e| ConfigError::Env {
                    var: var.to_string(),
                    message: format!(
                        "{raw:?} is not an inline table such as {{share = 0.25}}: {e}"
                    ),
                })?;
            parsed
                .get("v")
                .cloned()
                .unwrap_or(toml::Value::Table(toml::Table::new()))
        }
        _ => toml::Value::String(raw.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::budget::Rate;
    use std::collections::BTreeMap;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn load_str(text: &str, env: &BTreeMap<&str, &str>) -> Result<Config, ConfigError> {
        let dir = std::env::temp_dir().join(format!("cutover-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("{n}.toml"));
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path), |k| env.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn the_checked_in_example_is_what_the_code_generates() {
        let checked_in = include_str!("../config/cutover.example.toml");
        assert_eq!(
            checked_in,
            Config::example(),
            "config/cutover.example.toml drifted: regenerate it with `cutover check-config --print-example > config/cutover.example.toml`"
        );
    }

    #[test]
    fn the_example_parses_to_the_defaults_and_documents_every_key() {
        let parsed: Config = toml::from_str(&Config::example()).unwrap();
        assert_eq!(parsed, Config::default());
        // Every key, including the optional one the defaults leave out.
        let all = Config {
            endpoint_url: Some("http://x".into()),
            replica_id: Some("r".into()),
            ..Config::default()
        };
        let table = toml::Table::try_from(&all).unwrap();
        let documented: Vec<&str> = KEYS.iter().map(|(k, _, _)| *k).collect();
        for key in table.keys() {
            assert!(documented.contains(&key.as_str()), "{key} is not in KEYS");
        }
        assert_eq!(table.len(), KEYS.len());
    }

    #[test]
    fn an_endpoint_url_that_is_not_http_shows_no_credentials() {
        let config = Config {
            endpoint_url: Some("ftp://key:s3cret@ecs.internal/p?X-Amz-Signature=abc".into()),
            ..Config::default()
        };
        let e = config.validate().unwrap_err();
        assert!(
            e.contains("endpoint_url") && e.contains("ecs.internal"),
            "{e}"
        );
        for secret in ["key:", "s3cret", "Signature", "abc"] {
            assert!(!e.contains(secret), "{secret} in {e}");
        }
    }

    #[test]
    fn an_unknown_key_names_the_key_and_the_file() {
        let e = load_str("tabel = \"x\"\n", &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("tabel") && e.contains(".toml"), "{e}");
    }

    #[test]
    fn environment_variables_override_the_file() {
        let env = BTreeMap::from([
            ("CUTOVER_TABLE", "from-env"),
            ("CUTOVER_CONCURRENCY", "3"),
            ("CUTOVER_POLL_INTERVAL", "2s"),
        ]);
        let c = load_str("table = \"from-file\"\nconcurrency = 9\n", &env).unwrap();
        assert_eq!(c.table, "from-env");
        assert_eq!(c.concurrency, 3);
        assert_eq!(c.poll_interval, Duration::from_secs(2));
    }

    #[test]
    fn a_bad_environment_value_names_the_variable() {
        let env = BTreeMap::from([("CUTOVER_CONCURRENCY", "lots")]);
        let e = load_str("", &env).unwrap_err().to_string();
        assert!(e.contains("CUTOVER_CONCURRENCY"), "{e}");
    }

    #[test]
    fn bad_values_are_explained() {
        for (text, needle) in [
            ("concurrency = 0\n", "concurrency"),
            ("poll_interval = \"1ms\"\n", "poll_interval"),
            ("listen = \"everywhere\"\n", "listen"),
            ("log_format = \"xml\"\n", "log_format"),
            ("poll_interval = \"soon\"\n", "soon"),
            ("shards = 0\n", "shards"),
            ("lease_ttl = \"1s\"\n", "lease_ttl"),
            ("relay_poll = \"10ms\"\n", "relay_poll"),
            ("relay_poll = \"2m\"\n", "relay_poll"),
            ("lease_table = \"cutover-desired\"\n", "lease_table"),
        ] {
            let e = load_str(text, &BTreeMap::new()).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn no_file_means_defaults() {
        assert_eq!(Config::load(None, no_env).unwrap(), Config::default());
    }

    #[test]
    fn budgets_come_from_their_table_or_the_environment() {
        let text = "[budgets]\nshare = 0.25\nelb_mutation = { per_second = 2, burst = 10 }\n";
        let c = load_str(text, &BTreeMap::new()).unwrap();
        assert_eq!(c.budgets.share, 0.25);
        assert_eq!(c.budgets.elb_mutation, Rate::new(2.0, 10));
        assert_eq!(c.budgets.ecs_read, BudgetConfig::default().ecs_read);
        let env = BTreeMap::from([("CUTOVER_BUDGETS", "{share = 0.1}")]);
        assert_eq!(load_str(text, &env).unwrap().budgets.share, 0.1);
        for (text, needle) in [
            ("[budgets]\nshare = 2\n", "budgets.share"),
            ("[budgets]\nelb_reads = 1\n", "elb_reads"),
            (
                "[budgets]\necs_read = { per_second = 0, burst = 1 }\n",
                "ecs_read",
            ),
        ] {
            let e = load_str(text, &BTreeMap::new()).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
        let env = BTreeMap::from([("CUTOVER_BUDGETS", "lots")]);
        let e = load_str("", &env).unwrap_err().to_string();
        assert!(e.contains("CUTOVER_BUDGETS"), "{e}");
    }

    #[test]
    fn limits_come_from_their_table_or_the_environment_and_zero_is_refused() {
        assert_eq!(Config::default().limits, LimitsConfig::default());
        let c = load_str("[limits]\nper_cluster = 2\n", &BTreeMap::new()).unwrap();
        assert_eq!(c.limits.per_cluster, Some(2));
        assert_eq!(c.limits.rollouts, None);
        let env = BTreeMap::from([
            ("CUTOVER_LIMITS_ROLLOUTS", "10"),
            ("CUTOVER_LIMITS_PER_ACCOUNT", "4"),
        ]);
        let c = load_str("[limits]\nper_cluster = 2\n", &env).unwrap();
        assert_eq!(
            (
                c.limits.rollouts,
                c.limits.per_cluster,
                c.limits.per_account
            ),
            (Some(10), Some(2), Some(4))
        );
        let env = BTreeMap::from([("CUTOVER_LIMITS", "{per_account = 3}")]);
        assert_eq!(load_str("", &env).unwrap().limits.per_account, Some(3));
        for (text, needle) in [
            ("[limits]\nper_cluster = 0\n", "limits.per_cluster"),
            ("[limits]\nrollouts = -1\n", "limits.rollouts"),
            ("[limits]\nper_service = 1\n", "per_service"),
        ] {
            let e = load_str(text, &BTreeMap::new()).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
        let e = load_str("[limits]\nper_cluster = 0\n", &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 1"), "{e}");
        let env = BTreeMap::from([("CUTOVER_LIMITS_PER_CLUSTER", "two")]);
        let e = load_str("", &env).unwrap_err().to_string();
        assert!(e.contains("CUTOVER_LIMITS_PER_CLUSTER"), "{e}");
        let env = BTreeMap::from([("CUTOVER_LIMITS_PER_CLUSTER", "0")]);
        let e = load_str("", &env).unwrap_err().to_string();
        assert!(e.contains("limits.per_cluster"), "{e}");
    }
}
