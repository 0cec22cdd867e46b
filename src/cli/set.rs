//! `cutover set`: write the version a service should run, changing only the
//! attributes named on the command line, after checking the whole record
//! the way the controller will read it.

use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use super::connect::{Aws, ServiceArg, Usage};
use super::setup::ConfigArgs;
use super::wait::{DEFAULT_TIMEOUT, Seen, Wanted, follow};
use crate::aws::store::DynamoStore;
use crate::cloud::{DesiredStore, Precondition, SpecChanges, SpecWrite, StoredRecord};
use crate::rollout::schema::{PathPart, Unreadable};
use crate::rollout::spec::KEY_ATTRIBUTE;
use crate::rollout::{Revision, ServiceKey, parse_written};

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("version").required(true).args(["task_definition", "image", "taskdef"])))]
pub struct SetArgs {
    #[command(flatten)]
    pub service: ServiceArg,
    /// The task definition to run: family:revision or its ARN.
    #[arg(long, value_name = "ARN|FAMILY:REV")]
    pub task_definition: Option<String>,
    /// The image to run in --container (or the record's container), on the
    /// active task definition.
    #[arg(long, value_name = "URI")]
    pub image: Option<String>,
    /// A CodePipeline taskdef.json to register (an identical revision is
    /// reused) and run.
    #[arg(long, value_name = "FILE")]
    pub taskdef: Option<std::path::PathBuf>,
    /// An imageDetail.json whose ImageURI fills <IMAGE1_NAME> (the n-th
    /// fills <IMAGEn_NAME>), or NAME=FILE to fill <NAME>. Repeatable.
    #[arg(
        long = "image-detail",
        value_name = "[NAME=]FILE",
        requires = "taskdef"
    )]
    pub image_details: Vec<String>,
    /// A CodeDeploy appspec.yaml: its container, port, hooks and network.
    #[arg(long, value_name = "FILE", requires = "taskdef")]
    pub appspec: Option<std::path::PathBuf>,
    /// all_at_once, a CodeDeploy ECS configuration name, or a JSON map such
    /// as '{"type":"canary","percent":10,"interval":"5m"}'.
    #[arg(long, value_name = "NAME|JSON", value_parser = strategy_value)]
    pub strategy: Option<Value>,
    /// The container that receives traffic (and whose image --image sets).
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    /// The container's port that the target groups send traffic to.
    // Taken as given: the record's parser is the one place that checks it,
    // so a bad port is refused with the record's message (exit 1) like
    // every other field, not by the argument parser.
    #[arg(long, value_name = "PORT", value_parser = port_value, allow_negative_numbers = true)]
    pub container_port: Option<Value>,
    /// The listener whose default action carries production traffic.
    #[arg(long, value_name = "ARN", conflicts_with = "production_rule")]
    pub production_listener: Option<String>,
    /// The listener rule that carries production traffic.
    #[arg(long, value_name = "ARN")]
    pub production_rule: Option<String>,
    /// A listener that gets the candidate before production does.
    #[arg(long, value_name = "ARN", conflicts_with = "test_rule")]
    pub test_listener: Option<String>,
    /// A listener rule that gets the candidate before production does.
    #[arg(long, value_name = "ARN")]
    pub test_rule: Option<String>,
    /// The two target groups that alternate between blue and green.
    #[arg(long, value_name = "ARN,ARN", value_delimiter = ',')]
    pub target_groups: Option<Vec<String>>,
    /// How long the candidate serves everything before the old task set goes.
    #[arg(long, value_name = "DURATION")]
    pub bake: Option<String>,
    /// The longest wait without progress before a rollback.
    #[arg(long, value_name = "DURATION")]
    pub progress_deadline: Option<String>,
    /// Shift to 100% without waiting for `cutover promote` (the default).
    /// `--auto-promote=false` is `--no-auto-promote`.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        // Without `=`, a value would swallow the service name that may follow.
        require_equals = true,
        default_missing_value = "true",
        overrides_with = "no_auto_promote"
    )]
    pub auto_promote: Option<bool>,
    /// Wait for `cutover promote` before the final shift to 100%.
    #[arg(long, overrides_with = "auto_promote")]
    pub no_auto_promote: bool,
    /// A label to set (repeatable); an empty value removes it.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = label)]
    pub labels: Vec<(String, String)>,
    /// Subnets of a service's first task set.
    #[arg(long, value_name = "ID,ID", value_delimiter = ',')]
    pub subnets: Option<Vec<String>>,
    /// Security groups of a service's first task set.
    #[arg(
        long,
        value_name = "ID,ID",
        value_delimiter = ',',
        requires = "subnets"
    )]
    pub security_groups: Option<Vec<String>>,
    /// Give a service's first tasks public IPs.
    #[arg(long, requires = "subnets")]
    pub assign_public_ip: bool,
    /// FARGATE, EC2 or EXTERNAL, for a service's first task set.
    #[arg(long, value_name = "TYPE")]
    pub launch_type: Option<String>,
    /// Then wait until the revision serves production (exit 0), fails, is
    /// rolled back or superseded (exit 1), or --timeout passes (exit 3),
    /// printing each transition.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: how long to wait, such as 15m or 1h30m (default 30m).
    #[arg(long, value_name = "DURATION", requires = "wait", value_parser = super::wait::timeout_value)]
    pub timeout: Option<std::time::Duration>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

fn strategy_value(raw: &str) -> Result<Value, String> {
    if raw.trim_start().starts_with('{') {
        serde_json::from_str(raw).map_err(|e| format!("not a JSON map: {e}"))
    } else {
        Ok(Value::String(raw.to_string()))
    }
}

/// A whole number goes into the record as a number and anything else as the
/// text given, for the record's parser to judge and explain.
fn port_value(raw: &str) -> Result<Value, String> {
    Ok(match raw.trim().parse::<i64>() {
        Ok(n) => json!(n),
        Err(_) => json!(raw),
    })
}

fn label(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{raw:?} is not KEY=VALUE")),
    }
}

/// What a new record needs besides the version: the traffic wiring.
fn missing_wiring(args: &SetArgs) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if args.production_listener.is_none() && args.production_rule.is_none() {
        missing.push("--production-listener or --production-rule");
    }
    if args.target_groups.is_none() {
        missing.push("--target-groups");
    }
    if args.container.is_none() && args.appspec.is_none() {
        missing.push("--container");
    }
    if args.container_port.is_none() && args.appspec.is_none() {
        missing.push("--container-port");
    }
    missing
}

/// The attributes to set or remove. Giving one of a pair of exclusive
/// attributes removes the other, so switching from `image` to
/// `task_definition` (or a listener to a rule) is one command.
fn changes(args: &SetArgs, body: &Map<String, Value>) -> SpecChanges {
    let mut c = SpecChanges::new();
    let mut one_of = |name: &str, other: &str, value: &Option<String>| {
        if let Some(v) = value {
            c.insert(name.into(), Some(json!(v)));
            c.insert(other.into(), None);
        }
    };
    one_of("task_definition", "image", &args.task_definition);
    one_of("image", "task_definition", &args.image);
    one_of(
        "production_listener",
        "production_rule",
        &args.production_listener,
    );
    one_of(
        "production_rule",
        "production_listener",
        &args.production_rule,
    );
    one_of("test_listener", "test_rule", &args.test_listener);
    one_of("test_rule", "test_listener", &args.test_rule);
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(v) = value {
            c.insert(name.into(), Some(v));
        }
    };
    put("strategy", args.strategy.clone());
    put("container", args.container.as_ref().map(|v| json!(v)));
    put("container_port", args.container_port.clone());
    put(
        "target_groups",
        args.target_groups.as_ref().map(|v| json!(v)),
    );
    put("bake", args.bake.as_ref().map(|v| json!(v)));
    put(
        "progress_deadline",
        args.progress_deadline.as_ref().map(|v| json!(v)),
    );
    let auto_promote = if args.no_auto_promote {
        Some(false)
    } else {
        args.auto_promote
    };
    put("auto_promote", auto_promote.map(|v| json!(v)));
    put("launch_type", args.launch_type.as_ref().map(|v| json!(v)));
    put(
        "network",
        args.subnets.as_ref().map(|subnets| {
            json!({
                "subnets": subnets,
                "security_groups": args.security_groups.clone().unwrap_or_default(),
                "assign_public_ip": args.assign_public_ip,
            })
        }),
    );
    if !args.labels.is_empty() {
        // Labels merge into what is there, so one label is set at a time.
        let mut labels = match body.get("labels") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        for (k, v) in &args.labels {
            if v.is_empty() {
                labels.remove(k);
            } else {
                labels.insert(k.clone(), json!(v));
            }
        }
        c.insert("labels".into(), Some(Value::Object(labels)));
    }
    // Only what differs is written, so repeating a command changes nothing.
    c.retain(|name, value| body.get(name) != value.as_ref());
    c
}

fn apply(body: &Map<String, Value>, changes: &SpecChanges) -> Value {
    let mut next = body.clone();
    for (name, value) in changes {
        match value {
            Some(v) => next.insert(name.clone(), v.clone()),
            None => next.remove(name),
        };
    }
    Value::Object(next)
}

fn body_of(key: &ServiceKey, record: Option<&StoredRecord>) -> Map<String, Value> {
    match record.map(|r| &r.body) {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::from_iter([(KEY_ATTRIBUTE.to_string(), json!(key.to_string()))]),
    }
}

pub async fn set(args: SetArgs) -> anyhow::Result<ExitCode> {
    let aws = Aws::connect(&args.config).await?;
    let store = aws.store();
    let written = write(&args, &aws, &store).await?;
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    // Transitions already in the record were before this write.
    let seen = Seen::of(written.current.as_ref());
    let timeout = args.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let wanted = Wanted::exactly(&written.revision);
    follow(&aws, &store, &args.service.key, wanted, seen, timeout).await
}

/// The revision the record asks for once written, and the record as it
/// was read before.
struct Written {
    revision: Revision,
    current: Option<StoredRecord>,
}

async fn write(args: &SetArgs, aws: &Aws, store: &DynamoStore) -> anyhow::Result<Written> {
    let key = args.service.key.clone();
    let current = aws.read(store, &key).await?;
    if current.is_none() {
        let missing = missing_wiring(args);
        if !missing.is_empty() {
            return Err(Usage(format!(
                "{key} has no record yet, and a new record needs {}",
                missing.join(", ")
            ))
            .into());
        }
    }
    let body = body_of(&key, current.as_ref());
    let mut changes = changes(args, &body);
    if let Some(taskdef) = &args.taskdef {
        let files = super::artifacts::Files {
            taskdef,
            image_details: &args.image_details,
            appspec: args.appspec.as_ref(),
            container_given: args.container.is_some(),
            port_given: args.container_port.is_some(),
            network_given: args.subnets.is_some(),
        };
        for warning in super::artifacts::apply(aws, &key, &files, &body, &mut changes).await? {
            eprintln!("warning: {warning}");
        }
    }
    let before = current.as_ref().and_then(|r| r.spec().ok());
    // A value the table could not read (a binary, a set) stays at fault
    // unless this write replaces its attribute.
    let unreadable: Vec<Unreadable> = current
        .as_ref()
        .map(|r| {
            r.unreadable
                .iter()
                .filter(|u| !matches!(u.path.first(), Some(PathPart::Field(f)) if changes.contains_key(f)))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let spec = match parse_written(&key, &apply(&body, &changes), &unreadable) {
        Ok(spec) => spec,
        Err(problems) => bail!("the record would be invalid, so nothing was written: {problems}"),
    };
    let revision = spec.revision.clone();
    if changes.is_empty() {
        println!("{key}: nothing to change; revision {revision}");
        return Ok(Written { revision, current });
    }
    let precondition = match &current {
        Some(record) => Precondition::unchanged_since(record),
        None => Precondition::Absent,
    };
    let written = store
        .write_spec(&key, &changes, precondition)
        .await
        .with_context(|| format!("writing {key} to table {}", aws.config.table))?;
    if written == SpecWrite::PreconditionFailed {
        bail!(
            "{key} was {} by someone else since it was read, so nothing was written: run the command again",
            if current.is_some() {
                "changed or deleted"
            } else {
                "created"
            }
        );
    }
    let how = match (&current, &before) {
        (None, _) => "new record".to_string(),
        (Some(_), None) => "was invalid before".to_string(),
        (Some(_), Some(b)) if b.revision == revision => {
            "unchanged: only policy fields changed".to_string()
        }
        (Some(_), Some(b)) => format!("changed from {}", b.revision),
    };
    println!("{key}: wrote revision {revision} ({how})");
    let in_flight = current
        .as_ref()
        .and_then(|r| r.status.as_ref())
        .and_then(|s| s.rollout.as_ref())
        .filter(|r| r.id.revision != revision);
    if let Some(r) = in_flight {
        println!(
            "it supersedes rollout {} in flight: traffic returns to the active task set first",
            r.id
        );
    }
    Ok(Written { revision, current })
}

#[cfg(test)]
#[path = "set_tests.rs"]
mod tests;
