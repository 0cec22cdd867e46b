//! The desired record: the public contract with platform teams. A record is
//! parsed strictly into a [`Spec`]; anything wrong is reported as a
//! [`RecordError`] that names the field and the fix.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::account;
use super::control::Control;
use super::driver_kind::{self, DriverKind, RawCodeDeploy};
use super::gate::Gates;
use super::hook::Hooks;
use super::key::ServiceKey;
use super::quote::{escape_controls, not_an_http_url, quote};
use super::revision::Revision;
use super::schema::{self, Unreadable};
use super::strategy::{Step, Strategy, humantime_serde_compat};

pub const DEFAULT_BAKE: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(10 * 60);

/// The attribute that holds the service key in a record.
pub const KEY_ATTRIBUTE: &str = "service";
/// The attribute the controller owns; writers never touch it.
pub const STATUS_ATTRIBUTE: &str = "status";
/// The attribute that carries promote/abort/retry requests.
pub const CONTROL_ATTRIBUTE: &str = "control";

/// What should run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Version {
    /// `family:revision` or a full task definition ARN.
    TaskDefinition(String),
    /// The active task definition with `image` in `container`.
    Image { image: String, container: String },
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::TaskDefinition(td) => f.write_str(td),
            Version::Image { image, container } => write!(f, "{container}={image}"),
        }
    }
}

/// A place on the load balancer whose forward action cutover weighs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// The listener's default action.
    Listener(String),
    /// A listener rule's forward action.
    Rule(String),
}

impl Route {
    pub fn arn(&self) -> &str {
        match self {
            Route::Listener(a) | Route::Rule(a) => a,
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Listener(a) => write!(f, "listener {a}"),
            Route::Rule(a) => write!(f, "rule {a}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    pub production: Route,
    pub test: Option<Route>,
    /// The two target groups that alternate between blue and green.
    pub target_groups: [String; 2],
    pub container: String,
    pub container_port: u16,
}

impl Traffic {
    /// The other target group of the pair, if `tg` is one of them.
    pub fn other_target_group(&self, tg: &str) -> Option<&str> {
        match &self.target_groups {
            [a, b] if a == tg => Some(b),
            [a, b] if b == tg => Some(a),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub assign_public_ip: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityProvider {
    pub provider: String,
    #[serde(default)]
    pub weight: u32,
    #[serde(default)]
    pub base: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Launch {
    LaunchType(String),
    CapacityProviders(Vec<CapacityProvider>),
}

/// Where a service's first task set runs. Later releases copy these from the
/// active task set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub network: Option<Network>,
    pub launch: Option<Launch>,
}

pub use super::gate::{DEFAULT_HEALTH_GRACE, MAX_HEALTH_GRACE, TargetHealthGate};

/// Where rollout events are sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    pub url: String,
    /// `json` (cutover's own payload) or `slack` (an incoming-webhook message).
    #[serde(default)]
    pub format: NotificationFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationFormat {
    #[default]
    Json,
    Slack,
}

/// A validated desired record.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub key: ServiceKey,
    pub revision: Revision,
    pub version: Version,
    pub traffic: Traffic,
    pub strategy: Strategy,
    pub bake: Duration,
    pub progress_deadline: Duration,
    pub paused: bool,
    pub auto_promote: bool,
    pub gates: Gates,
    pub hooks: Hooks,
    pub notifications: Vec<Notification>,
    pub placement: Placement,
    pub control: Control,
    pub labels: BTreeMap<String, String>,
    pub driver: DriverKind,
    /// The role to assume in the key's account, when the record names one
    /// (otherwise the controller's configured role name there).
    pub role_arn: Option<String>,
}

impl Spec {
    pub fn steps(&self) -> Vec<Step> {
        self.strategy.steps(self.auto_promote)
    }
}

pub use super::schema::Problem;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct RecordError {
    pub problems: Vec<Problem>,
}

impl RecordError {
    pub fn one(field: impl Into<String>, message: impl Into<String>) -> Self {
        RecordError {
            problems: vec![Problem {
                field: field.into(),
                message: message.into(),
            }],
        }
    }
}

/// The most problems a message lists; the rest are counted. With values
/// quoted to a short prefix, this keeps every message short, however broken
/// the record.
pub const PROBLEMS_SHOWN: usize = 20;

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().take(PROBLEMS_SHOWN).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            // Problems are built from written names and values: escape what
            // could forge a log line, whoever built the message.
            let message = escape_controls(&p.message);
            if p.field.is_empty() {
                write!(f, "{message}")?;
            } else {
                write!(f, "field `{}`: {message}", escape_controls(&p.field))?;
            }
        }
        if let Some(more) = self.problems.len().checked_sub(PROBLEMS_SHOWN)
            && more > 0
        {
            write!(f, "; and {more} more")?;
        }
        Ok(())
    }
}

/// The record as written, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    service: Option<String>,
    task_definition: Option<String>,
    image: Option<String>,
    container: Option<String>,
    container_port: Option<u16>,
    production_listener: Option<String>,
    production_rule: Option<String>,
    test_listener: Option<String>,
    test_rule: Option<String>,
    target_groups: Option<Vec<String>>,
    strategy: Option<Value>,
    #[serde(default, with = "opt_duration")]
    bake: Option<Duration>,
    #[serde(default, with = "opt_duration")]
    progress_deadline: Option<Duration>,
    #[serde(default)]
    paused: bool,
    auto_promote: Option<bool>,
    #[serde(default)]
    gates: Gates,
    #[serde(default)]
    hooks: Hooks,
    #[serde(default)]
    notifications: Vec<Notification>,
    network: Option<Network>,
    launch_type: Option<String>,
    capacity_provider_strategy: Option<Vec<CapacityProvider>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    control: Control,
    driver: Option<String>,
    codedeploy: Option<RawCodeDeploy>,
    /// Where the service is: must say what the key says.
    region: Option<String>,
    role_arn: Option<String>,
    /// Owned by the controller; ignored here.
    #[allow(dead_code)]
    status: Option<Value>,
    /// Optional writer timestamp, used to measure detection latency.
    #[allow(dead_code)]
    updated_at: Option<Value>,
}

mod opt_duration {
    use std::time::Duration;

    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::humantime_serde_compat::deserialize(d).map(Some)
    }
}

/// Parses and validates a record. `body` is the whole item as JSON.
pub fn parse_record(key: &ServiceKey, body: &Value) -> Result<Spec, RecordError> {
    parse_written(key, body, &[])
}

/// Like [`parse_record`], for a record read from a store that found values
/// without a JSON form (`unreadable`; the body holds null in their place).
/// Every problem is reported at once: the kind of each value first, then the
/// rules on values and between fields.
pub fn parse_written(
    key: &ServiceKey,
    body: &Value,
    unreadable: &[Unreadable],
) -> Result<Spec, RecordError> {
    let checked = schema::check(body, unreadable);
    let mut problems = checked.problems;
    let raw: Result<RawRecord, _> = serde_path_to_error::deserialize(&checked.body);
    let rules = match raw {
        Ok(raw) => validate(key, raw),
        // The check hands on only what reads; this is a gap in the schema,
        // still reported at its field rather than lost.
        Err(e) => {
            let field = e.path().to_string();
            let field = if field == "." { String::new() } else { field };
            let message = e.into_inner().to_string();
            Err(RecordError::one(field, super::quote::name(&message)))
        }
    };
    match rules {
        Ok(spec) if problems.is_empty() => Ok(spec),
        Ok(_) => Err(RecordError { problems }),
        Err(e) => {
            // A value stood in for a mistake may break a rule at the same
            // place; the mistake is what the writer needs to hear about.
            let later: Vec<Problem> = e
                .problems
                .into_iter()
                .filter(|p| !problems.iter().any(|q| related(&p.field, &q.field)))
                .collect();
            problems.extend(later);
            Err(RecordError { problems })
        }
    }
}

/// Whether one field is the other, or holds it.
fn related(a: &str, b: &str) -> bool {
    fn within(inner: &str, outer: &str) -> bool {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    }
    a == b || within(a, b) || within(b, a)
}

fn validate(key: &ServiceKey, raw: RawRecord) -> Result<Spec, RecordError> {
    let mut problems = Vec::new();
    let mut bad = |field: &str, message: String| {
        problems.push(Problem {
            field: field.to_string(),
            message,
        })
    };

    // The fields only cutover's own driver uses, and whether each is given:
    // the other drivers refuse those whose work is theirs.
    let given = [
        ("image", raw.image.is_some()),
        ("production_listener", raw.production_listener.is_some()),
        ("production_rule", raw.production_rule.is_some()),
        ("test_listener", raw.test_listener.is_some()),
        ("test_rule", raw.test_rule.is_some()),
        ("target_groups", raw.target_groups.is_some()),
        ("network", raw.network.is_some()),
        ("launch_type", raw.launch_type.is_some()),
        (
            "capacity_provider_strategy",
            raw.capacity_provider_strategy.is_some(),
        ),
        ("bake", raw.bake.is_some()),
        ("progress_deadline", raw.progress_deadline.is_some()),
        ("hooks", raw.hooks != Hooks::default()),
        (
            "gates.target_health",
            raw.gates.target_health != TargetHealthGate::default(),
        ),
        ("gates.task_failures", raw.gates.task_failures.is_some()),
    ];
    let codedeploy = driver_kind::codedeploy(
        raw.driver.as_deref(),
        raw.codedeploy.as_ref(),
        raw.strategy.as_ref(),
        &given,
        &mut bad,
    );
    let native = raw.driver.as_deref() == Some(driver_kind::NATIVE);
    if native {
        driver_kind::native_unused(&given, &mut bad);
    }
    // ECS or CodeDeploy owns the load balancer wiring.
    let deploys = codedeploy.is_some() || native;

    if let Some(s) = &raw.service
        && s != &key.to_string()
    {
        bad(
            KEY_ATTRIBUTE,
            format!(
                "{} does not match the record's key {}",
                quote(s),
                quote(&key.to_string())
            ),
        );
    }

    // The load balancer ARNs must be where the key says the service is.
    let arns: Vec<(String, &str)> = [
        ("production_listener", &raw.production_listener),
        ("production_rule", &raw.production_rule),
        ("test_listener", &raw.test_listener),
        ("test_rule", &raw.test_rule),
    ]
    .into_iter()
    .filter_map(|(f, a)| Some((f.to_string(), a.as_deref()?)))
    .chain(
        raw.target_groups
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, a)| (format!("target_groups[{i}]"), a.as_str())),
    )
    .collect();
    let arns: Vec<(&str, &str)> = arns.iter().map(|(f, a)| (f.as_str(), *a)).collect();
    for (field, message) in
        account::check(key, raw.region.as_deref(), raw.role_arn.as_deref(), &arns)
    {
        bad(&field, message);
    }
    if codedeploy.is_some() && !key.scope.is_home() {
        bad(
            "driver",
            format!(
                "is codedeploy, and the key names {}: cutover reads CodeDeploy only in its own account \
                 and region; use driver \"ecs\" or \"ecs_native\" there",
                quote(key.scope.to_string().trim_end_matches(':'))
            ),
        );
    }

    if raw.gates.cloudwatch.is_some() && !key.scope.is_home() {
        bad(
            "gates.cloudwatch",
            format!(
                "reads alarms in the controller's own account and region, and the key names {}: \
                 use a `gates.prometheus` or `gates.http` gate there",
                quote(key.scope.to_string().trim_end_matches(':'))
            ),
        );
    }

    let container = match raw.container.as_deref().map(str::trim) {
        Some(c) if !c.is_empty() => c.to_string(),
        // ECS's own deployments need a container only to put an image in.
        _ if native && raw.image.is_none() => String::new(),
        _ => {
            bad(
                "container",
                "is missing: name the container that receives traffic (and, with `image`, the one whose image changes)".into(),
            );
            String::new()
        }
    };
    let container_port = match raw.container_port {
        Some(p) if p > 0 => p,
        Some(_) => {
            bad("container_port", "must be from 1 to 65535".into());
            0
        }
        None if native => 0,
        None => {
            bad(
                "container_port",
                "is missing: give the port the target groups send traffic to".into(),
            );
            0
        }
    };

    let version = match (&raw.task_definition, &raw.image) {
        (Some(td), None) => {
            if let Err(m) = check_task_definition(td) {
                bad("task_definition", m);
            }
            Version::TaskDefinition(td.trim().to_string())
        }
        (None, Some(image)) => {
            if image.trim().is_empty() || image.chars().any(char::is_whitespace) {
                bad(
                    "image",
                    format!(
                        "{} is not an image reference such as registry/repo:tag",
                        quote(image)
                    ),
                );
            }
            Version::Image {
                image: image.clone(),
                container: container.clone(),
            }
        }
        (Some(_), Some(_)) => {
            bad(
                "image",
                "is given together with `task_definition`: give exactly one of them".into(),
            );
            Version::TaskDefinition(String::new())
        }
        (None, None) => {
            bad(
                "task_definition",
                "is missing: give `task_definition` (family:revision or ARN) or `image`".into(),
            );
            Version::TaskDefinition(String::new())
        }
    };

    let production = match (&raw.production_listener, &raw.production_rule) {
        (Some(l), None) => check_route(&mut bad, "production_listener", l, Route::Listener),
        (None, Some(r)) => check_route(&mut bad, "production_rule", r, Route::Rule),
        (Some(_), Some(_)) => {
            bad(
                "production_rule",
                "is given together with `production_listener`: give exactly one".into(),
            );
            Route::Listener(String::new())
        }
        (None, None) if deploys => Route::Listener(String::new()),
        (None, None) => {
            bad(
                "production_listener",
                "is missing: give the listener ARN (or `production_rule`) that carries production traffic".into(),
            );
            Route::Listener(String::new())
        }
    };
    let test = match (&raw.test_listener, &raw.test_rule) {
        (Some(l), None) => Some(check_route(&mut bad, "test_listener", l, Route::Listener)),
        (None, Some(r)) => Some(check_route(&mut bad, "test_rule", r, Route::Rule)),
        (Some(_), Some(_)) => {
            bad(
                "test_rule",
                "is given together with `test_listener`: give at most one".into(),
            );
            None
        }
        (None, None) => None,
    };
    if let Some(t) = &test
        && t.arn() == production.arn()
        && !t.arn().is_empty()
    {
        bad(
            "test_listener",
            "is the production route: the test route must be a different listener or rule".into(),
        );
    }

    let target_groups: [String; 2] = match raw.target_groups.as_deref() {
        Some([a, b]) => {
            for (i, tg) in [a, b].iter().enumerate() {
                if !tg.starts_with("arn:") || !tg.contains(":targetgroup/") {
                    bad(
                        &format!("target_groups[{i}]"),
                        format!(
                            "{} is not a target group ARN (arn:aws:elasticloadbalancing:…:targetgroup/…)",
                            quote(tg)
                        ),
                    );
                }
            }
            if a == b {
                bad(
                    "target_groups",
                    "names the same target group twice: blue and green need one each".into(),
                );
            }
            [a.clone(), b.clone()]
        }
        Some(other) => {
            bad(
                "target_groups",
                format!(
                    "has {} entries: give exactly 2 target group ARNs, one for blue and one for green",
                    other.len()
                ),
            );
            [String::new(), String::new()]
        }
        None if deploys => [String::new(), String::new()],
        None => {
            bad(
                "target_groups",
                "is missing: give the 2 target group ARNs that alternate between blue and green"
                    .into(),
            );
            [String::new(), String::new()]
        }
    };

    let strategy = match &raw.strategy {
        None => Strategy::AllAtOnce,
        // Checked as a deployment configuration by the driver.
        Some(_) if codedeploy.is_some() => Strategy::AllAtOnce,
        Some(v) => match parse_strategy(v) {
            Ok(s) => s,
            Err((field, m)) => {
                bad(&field, m);
                Strategy::AllAtOnce
            }
        },
    };

    let gate = &raw.gates.target_health;
    if !(1..=100).contains(&gate.min_healthy_percent) {
        bad(
            "gates.target_health.min_healthy_percent",
            format!("{} is out of range: use 1 to 100", gate.min_healthy_percent),
        );
    }
    if gate.failure_threshold == 0 {
        bad(
            "gates.target_health.failure_threshold",
            "must be at least 1".into(),
        );
    }
    if gate.grace > MAX_HEALTH_GRACE {
        bad(
            "gates.target_health.grace",
            format!(
                "{} is too long: at most {} (a candidate that is short of healthy targets for longer is failing)",
                crate::time::format_duration(gate.grace),
                crate::time::format_duration(MAX_HEALTH_GRACE)
            ),
        );
    }

    for (field, message) in raw.gates.validate().into_iter().chain(raw.hooks.validate()) {
        bad(&field, message);
    }
    // Without a test route there is no test traffic to run it after, and a
    // hook that silently never runs is worse than a refused record.
    if !deploys
        && raw.hooks.after_test_traffic.is_some()
        && raw.test_listener.is_none()
        && raw.test_rule.is_none()
    {
        bad(
            "hooks.after_test_traffic",
            "runs once the test route carries the candidate, and the record has no `test_listener` \
             or `test_rule`: add one, or use `before_production_traffic`"
                .into(),
        );
    }
    for (i, n) in raw.notifications.iter().enumerate() {
        if !(n.url.starts_with("http://") || n.url.starts_with("https://")) {
            bad(&format!("notifications[{i}].url"), not_an_http_url(&n.url));
        }
    }

    let progress_deadline = raw.progress_deadline.unwrap_or(DEFAULT_PROGRESS_DEADLINE);
    if progress_deadline < Duration::from_secs(30) {
        bad(
            "progress_deadline",
            "is shorter than 30s: tasks and health checks need longer to settle".into(),
        );
    }

    let launch = match (raw.launch_type, raw.capacity_provider_strategy) {
        (Some(t), None) => {
            if !["FARGATE", "EC2", "EXTERNAL"].contains(&t.as_str()) {
                bad(
                    "launch_type",
                    format!("{} is not one of FARGATE, EC2, EXTERNAL", quote(&t)),
                );
            }
            Some(Launch::LaunchType(t))
        }
        (None, Some(cps)) => Some(Launch::CapacityProviders(cps)),
        (Some(_), Some(_)) => {
            bad(
                "capacity_provider_strategy",
                "is given together with `launch_type`: give at most one".into(),
            );
            None
        }
        (None, None) => None,
    };
    if let Some(n) = &raw.network
        && n.subnets.is_empty()
    {
        bad(
            "network.subnets",
            "is empty: give at least one subnet".into(),
        );
    }

    let bake = raw.bake.unwrap_or(DEFAULT_BAKE);
    let native = native.then(|| driver_kind::native(&strategy, bake, progress_deadline, &mut bad));

    if !problems.is_empty() {
        return Err(RecordError { problems });
    }

    let traffic = Traffic {
        production,
        test,
        target_groups,
        container,
        container_port,
    };
    let placement = Placement {
        network: raw.network,
        launch,
    };
    let mut wiring = json!({
        "version": version,
        "traffic": traffic,
        "placement": placement,
    });
    // Added only under CodeDeploy, so the revisions of every other record
    // stay what they were.
    if let Some(cd) = &codedeploy {
        wiring["codedeploy"] = json!([cd.application, cd.deployment_group, cd.hooks]);
    }
    if native.is_some() {
        wiring["driver"] = json!(driver_kind::NATIVE);
    }
    let revision = Revision::digest(&wiring);
    Ok(Spec {
        key: key.clone(),
        revision,
        version,
        traffic,
        strategy,
        bake,
        progress_deadline,
        paused: raw.paused,
        auto_promote: raw.auto_promote.unwrap_or(true),
        gates: raw.gates,
        hooks: raw.hooks,
        notifications: raw.notifications,
        placement,
        control: raw.control,
        labels: raw.labels,
        driver: match (codedeploy, native) {
            (Some(cd), _) => DriverKind::CodeDeploy(cd),
            (None, Some(n)) => DriverKind::EcsNative(n),
            (None, None) => DriverKind::Ecs,
        },
        role_arn: raw.role_arn,
    })
}

fn check_route(
    bad: &mut impl FnMut(&str, String),
    field: &str,
    arn: &str,
    make: fn(String) -> Route,
) -> Route {
    let marker = if field.ends_with("_rule") {
        ":listener-rule/"
    } else {
        ":listener/"
    };
    if !arn.starts_with("arn:") || !arn.contains(marker) {
        bad(
            field,
            format!(
                "{} is not an ALB {} ARN (arn:aws:elasticloadbalancing:…{marker}…)",
                quote(arn),
                if marker.contains("rule") {
                    "listener rule"
                } else {
                    "listener"
                }
            ),
        );
    }
    make(arn.to_string())
}

fn check_task_definition(td: &str) -> Result<(), String> {
    let td = td.trim();
    let family_rev = if td.starts_with("arn:") {
        match td.split_once(":task-definition/") {
            Some((_, rest)) => rest,
            None => {
                return Err(format!(
                    "{} is not a task definition ARN (arn:aws:ecs:…:task-definition/family:revision)",
                    quote(td)
                ));
            }
        }
    } else {
        td
    };
    match family_rev.rsplit_once(':') {
        Some((family, rev))
            if !family.is_empty()
                && family
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && rev.parse::<u32>().is_ok_and(|r| r > 0) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{} does not name a fixed revision: write family:revision (e.g. web:42) or a full ARN",
            quote(td)
        )),
    }
}

fn parse_strategy(v: &Value) -> Result<Strategy, (String, String)> {
    let strategy = match v {
        Value::String(name) => Strategy::from_name(name).ok_or_else(|| {
            (
                "strategy".to_string(),
                format!(
                    "{} is not a known strategy name: use all_at_once, one of CodeDeploy's \
                     ECS configurations (e.g. CodeDeployDefault.ECSCanary10Percent5Minutes), \
                     or a map such as {{type = \"canary\", percent = 10, interval = \"5m\"}}",
                    quote(name)
                ),
            )
        })?,
        Value::Object(map) => parse_strategy_map(map)?,
        _ => {
            return Err((
                "strategy".into(),
                "is neither a strategy name nor a map".into(),
            ));
        }
    };
    strategy
        .validate()
        .map_err(|(f, m)| (format!("strategy.{f}"), m))?;
    Ok(strategy)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EveryFields {
    percent: u8,
    #[serde(with = "humantime_serde_compat")]
    interval: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFields {
    steps: Vec<Step>,
}

/// Dispatches on `type` by hand: serde's internally tagged enums lose the
/// path of a nested error, and the path is what tells a writer where to look.
fn parse_strategy_map(map: &serde_json::Map<String, Value>) -> Result<Strategy, (String, String)> {
    const TYPES: &str = "all_at_once, canary, linear, steps";
    let ty = match map.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(_) => {
            return Err(("strategy.type".into(), format!("is not one of {TYPES}")));
        }
        None => {
            return Err((
                "strategy.type".into(),
                format!("is missing: use one of {TYPES}"),
            ));
        }
    };
    let mut rest = map.clone();
    rest.remove("type");
    let rest = Value::Object(rest);
    fn fields<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, (String, String)> {
        serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "strategy".to_string()
            } else {
                format!("strategy.{path}")
            };
            (field, e.into_inner().to_string())
        })
    }
    match ty {
        "all_at_once" => {
            if let Some(k) = rest.as_object().and_then(|m| m.keys().next()) {
                return Err((
                    format!("strategy.{k}"),
                    "all_at_once takes no parameters".into(),
                ));
            }
            Ok(Strategy::AllAtOnce)
        }
        "canary" => fields::<EveryFields>(&rest).map(|f| Strategy::Canary {
            percent: f.percent,
            interval: f.interval,
        }),
        "linear" => fields::<EveryFields>(&rest).map(|f| Strategy::Linear {
            percent: f.percent,
            interval: f.interval,
        }),
        "steps" => fields::<StepFields>(&rest).map(|f| Strategy::Steps { steps: f.steps }),
        other => Err((
            "strategy.type".into(),
            format!("{} is not a strategy: use one of {TYPES}", quote(other)),
        )),
    }
}
