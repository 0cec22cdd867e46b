//! The release record: one change (an image or a task definition) for many
//! services, in waves, with a failure budget. Any tool writes it, so it is
//! read as strictly as a service's record: every problem is reported at
//! once, at its field, with the fix in the writer's words (DynamoDB's type
//! names, which JSON writers meet as JSON's), never in Rust's.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::rollout::key::ServiceKey;
use crate::rollout::quote::{escape_controls, name, quote};
use crate::rollout::schema::{Problem, json_written as written, not_a_field};
use crate::rollout::spec::PROBLEMS_SHOWN;

/// The most waves a release takes: more would be a schedule, not a release.
pub const MAX_WAVES: usize = 20;

/// Attributes of a release item that the release does not read: the key,
/// a writer's timestamp, and the controller's own.
const IGNORED: &[&str] = &["service", "updated_at", "status_version", "status"];
const FIELDS: &[&str] = &[
    "services",
    "selector",
    "set",
    "waves",
    "bake_between",
    "failure_budget",
    "on_halt",
    "paused",
    "abort",
    "resume",
];
/// The attributes of a service's record a release may set: its version,
/// and the container an image goes in.
pub const SETTABLE: &[&str] = &["image", "task_definition", "container"];

/// The size of a wave, counted from the start of the release: a wave
/// includes every service of the waves before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaveSize {
    /// This many services in all.
    Services(u32),
    /// This share of the release's services in all, rounded up.
    Percent(u8),
}

/// How many failed services stop the release. A limit left out does not
/// apply; with neither, the first failure stops it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailureBudget {
    pub services: Option<u32>,
    pub percent: Option<u8>,
}

impl FailureBudget {
    /// The most failed services a release of `members` services tolerates.
    pub fn allowed(&self, members: usize) -> usize {
        let by_count = self.services.map(|s| s as usize);
        let by_share = self.percent.map(|p| p as usize * members / 100);
        match (by_count, by_share) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => 0,
        }
    }
}

/// What a release does to its services' rollouts in flight when its
/// failure budget is spent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnHalt {
    /// Pause them (`paused = true` in their records); resuming the release
    /// unpauses exactly those.
    #[default]
    Pause,
    /// Abort them (`control.abort`), so each returns to its old version.
    Rollback,
}

/// A validated release record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    /// Services named one by one, deduplicated.
    pub services: BTreeSet<ServiceKey>,
    /// Every service whose `labels` hold all these pairs.
    pub selector: Option<BTreeMap<String, String>>,
    /// The attributes each member's record gets.
    pub set: BTreeMap<String, String>,
    pub waves: Vec<WaveSize>,
    pub bake_between: Duration,
    pub failure_budget: FailureBudget,
    pub on_halt: OnHalt,
    pub paused: bool,
    pub abort: bool,
    /// A person's answer to a halt: a value the release has not acted on
    /// yet forgives the failures so far, retries them and goes on.
    pub resume: Option<String>,
}

impl Release {
    /// What a member's record must say once the release wrote it: every
    /// attribute of `set`, and no version of the other kind (a record with
    /// both an image and a task definition is invalid), so a release moving
    /// a service from one kind to the other removes the old one.
    pub fn target(&self) -> BTreeMap<String, Option<String>> {
        let mut target: BTreeMap<String, Option<String>> = self
            .set
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        for (one, other) in [("image", "task_definition"), ("task_definition", "image")] {
            if target.contains_key(one) {
                target.entry(other.to_string()).or_insert(None);
            }
        }
        target
    }
}

/// Everything wrong with a release record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct ReleaseError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().take(PROBLEMS_SHOWN).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
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

/// Reads a release record: every attribute of the item but `status`.
pub fn parse_release(body: &Value) -> Result<Release, ReleaseError> {
    let mut r = Reader::default();
    let Some(map) = body.as_object() else {
        r.bad(
            "",
            format!("the release {}: write a map (M) of fields", written(body)),
        );
        return Err(r.done());
    };
    for k in map.keys() {
        if !IGNORED.contains(&k.as_str()) && !FIELDS.contains(&k.as_str()) {
            r.bad(&name(k), unknown(k));
        }
    }
    let services = r.services(map.get("services"));
    let selector = r.selector(map.get("selector"));
    if map.get("services").is_none() && map.get("selector").is_none() {
        r.bad(
            "services",
            "is missing: list the services (<cluster>/<service>), or give a `selector` of labels, or both".into(),
        );
    } else if map
        .get("services")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
        && selector.is_none()
    {
        r.bad(
            "services",
            "is empty: list the services (<cluster>/<service>), or give a `selector` of labels"
                .into(),
        );
    }
    let set = r.set(map.get("set"));
    let waves = r.waves(map.get("waves"));
    let bake_between = match map.get("bake_between") {
        None => Duration::ZERO,
        Some(v) => r.duration("bake_between", v),
    };
    let failure_budget = r.budget(map.get("failure_budget"));
    let on_halt = match map.get("on_halt") {
        None => OnHalt::Pause,
        Some(Value::String(s)) if s == "pause" => OnHalt::Pause,
        Some(Value::String(s)) if s == "rollback" => OnHalt::Rollback,
        Some(Value::String(s)) => {
            r.bad(
                "on_halt",
                format!("{} is not one of pause, rollback", quote(s)),
            );
            OnHalt::Pause
        }
        Some(v) => {
            r.bad(
                "on_halt",
                format!("{}: write \"pause\" or \"rollback\" (S)", written(v)),
            );
            OnHalt::Pause
        }
    };
    let paused = r.flag("paused", map.get("paused"));
    let abort = r.flag("abort", map.get("abort"));
    let resume = match map.get("resume") {
        None => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::String(_)) => {
            r.bad(
                "resume",
                "is empty: write a value it has not had before, such as the time".into(),
            );
            None
        }
        Some(v) => {
            r.bad(
                "resume",
                format!(
                    "{}: write a string (S) it has not had before, such as the time",
                    written(v)
                ),
            );
            None
        }
    };
    if !r.problems.is_empty() {
        return Err(r.done());
    }
    Ok(Release {
        services: services.unwrap_or_default(),
        selector,
        set,
        waves,
        bake_between,
        failure_budget,
        on_halt,
        paused,
        abort,
        resume,
    })
}

#[derive(Default)]
struct Reader {
    problems: Vec<Problem>,
}

impl Reader {
    fn bad(&mut self, field: &str, message: String) {
        self.problems.push(Problem {
            field: field.to_string(),
            message,
        });
    }

    fn done(self) -> ReleaseError {
        ReleaseError {
            problems: self.problems,
        }
    }

    fn services(&mut self, v: Option<&Value>) -> Option<BTreeSet<ServiceKey>> {
        let items = match v? {
            Value::Array(items) => items,
            other => {
                self.bad(
                    "services",
                    format!(
                        "{}: write a list (L) of service keys such as \"prod/web\" (S)",
                        written(other)
                    ),
                );
                return None;
            }
        };
        let mut keys = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let field = format!("services[{i}]");
            match item {
                Value::String(s) => match s.parse::<ServiceKey>() {
                    Ok(k) => {
                        keys.insert(k);
                    }
                    Err(e) => self.bad(
                        &field,
                        format!(
                            "{} is not a service key: {}; write <cluster>/<service>, such as \"prod/web\"",
                            quote(s),
                            e.why
                        ),
                    ),
                },
                other => self.bad(
                    &field,
                    format!(
                        "{}: write a service key such as \"prod/web\" (S)",
                        written(other)
                    ),
                ),
            }
        }
        Some(keys)
    }

    fn selector(&mut self, v: Option<&Value>) -> Option<BTreeMap<String, String>> {
        let map = match v? {
            Value::Object(m) => m,
            other => {
                self.bad(
                    "selector",
                    format!(
                        "{}: write a map (M) of labels such as {{tier = \"web\"}}",
                        written(other)
                    ),
                );
                return None;
            }
        };
        if map.is_empty() {
            self.bad(
                "selector",
                "is empty, and would choose every service: give the labels to match, such as {tier = \"web\"}".into(),
            );
            return None;
        }
        Some(self.strings("selector", map, "a label value"))
    }

    fn strings(
        &mut self,
        at: &str,
        map: &Map<String, Value>,
        what: &str,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (k, v) in map {
            match v {
                Value::String(s) => {
                    out.insert(k.clone(), s.clone());
                }
                other => self.bad(
                    &format!("{at}.{}", name(k)),
                    format!("{}: write {what} (S)", written(other)),
                ),
            }
        }
        out
    }

    fn set(&mut self, v: Option<&Value>) -> BTreeMap<String, String> {
        const EXAMPLE: &str = "{image = \"registry/app:1.4.2\"}";
        let map = match v {
            None => {
                self.bad(
                    "set",
                    format!("is missing: give the attributes each service's record gets, such as {EXAMPLE}"),
                );
                return BTreeMap::new();
            }
            Some(Value::Object(m)) => m,
            Some(other) => {
                self.bad(
                    "set",
                    format!("{}: write a map (M) such as {EXAMPLE}", written(other)),
                );
                return BTreeMap::new();
            }
        };
        for k in map.keys().filter(|k| !SETTABLE.contains(&k.as_str())) {
            self.bad(
                &format!("set.{}", name(k)),
                format!(
                    "is not an attribute a release sets: use {}",
                    SETTABLE.join(", ")
                ),
            );
        }
        let known: Map<String, Value> = map
            .iter()
            .filter(|(k, _)| SETTABLE.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let set = self.strings("set", &known, "a string");
        for (k, v) in &set {
            if v.trim().is_empty() || v.chars().any(char::is_whitespace) {
                let fix = match k.as_str() {
                    "image" => "an image reference such as registry/repo:tag",
                    "task_definition" => "family:revision (e.g. web:42) or a task definition ARN",
                    _ => "a container name",
                };
                self.bad(&format!("set.{k}"), format!("{} is not {fix}", quote(v)));
            } else if k == "task_definition" && !fixed_task_definition(v) {
                self.bad(
                    "set.task_definition",
                    format!(
                        "{} does not name a fixed revision: write family:revision (e.g. web:42) or a full ARN",
                        quote(v)
                    ),
                );
            }
        }
        match (
            map.contains_key("image"),
            map.contains_key("task_definition"),
        ) {
            (true, true) => self.bad(
                "set.image",
                "is given together with `set.task_definition`: a record takes exactly one of them"
                    .into(),
            ),
            (false, false) if map.keys().all(|k| SETTABLE.contains(&k.as_str())) => self.bad(
                "set",
                "names no version: give `image` or `task_definition`".into(),
            ),
            _ => {}
        }
        set
    }

    fn waves(&mut self, v: Option<&Value>) -> Vec<WaveSize> {
        const EXAMPLE: &str = "[{services = 1}, {percent = 25}, {percent = 100}]";
        let items = match v {
            None => {
                self.bad(
                    "waves",
                    format!("is missing: give the waves, such as {EXAMPLE}"),
                );
                return Vec::new();
            }
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.bad(
                    "waves",
                    format!(
                        "{}: write a list (L) of waves such as {EXAMPLE}",
                        written(other)
                    ),
                );
                return Vec::new();
            }
        };
        if items.is_empty() || items.len() > MAX_WAVES {
            self.bad(
                "waves",
                format!(
                    "has {} waves: give 1 to {MAX_WAVES}, such as {EXAMPLE}",
                    items.len()
                ),
            );
        }
        let mut waves = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("waves[{i}]");
            let wave = match item {
                Value::Object(m) if m.len() == 1 => {
                    let (k, v) = m.iter().next().expect("one entry");
                    let field = format!("{at}.{}", name(k));
                    match k.as_str() {
                        "services" => self
                            .whole(&field, v, 1, u32::MAX as u64)
                            .map(|n| WaveSize::Services(n as u32)),
                        "percent" => self
                            .whole(&field, v, 1, 100)
                            .map(|n| WaveSize::Percent(n as u8)),
                        _ => {
                            self.bad(&field, "is not a wave size: use services or percent".into());
                            None
                        }
                    }
                }
                Value::Object(m) => {
                    self.bad(
                        &at,
                        format!(
                            "has {} fields: a wave is exactly one of {{services = 5}} or {{percent = 25}}",
                            m.len()
                        ),
                    );
                    None
                }
                other => {
                    self.bad(
                        &at,
                        format!(
                            "{}: write a map (M), {{services = 5}} or {{percent = 25}}",
                            written(other)
                        ),
                    );
                    None
                }
            };
            let Some(wave) = wave else { continue };
            // Waves are cumulative: a wave of the same kind that is no
            // larger than one before it would add nobody.
            let earlier =
                waves
                    .iter()
                    .rev()
                    .find_map(|(j, w): &(usize, WaveSize)| match (w, wave) {
                        (WaveSize::Services(a), WaveSize::Services(b)) if *a >= b => {
                            Some((*j, format!("{a} services")))
                        }
                        (WaveSize::Percent(a), WaveSize::Percent(b)) if *a >= b => {
                            Some((*j, format!("{a}%")))
                        }
                        _ => None,
                    });
            if let Some((j, size)) = earlier {
                self.bad(
                    &at,
                    format!(
                        "is no larger than waves[{j}] ({size}): each wave counts every service \
                         from the start of the release, so give it more than the wave before"
                    ),
                );
            }
            waves.push((i, wave));
        }
        waves.into_iter().map(|(_, w)| w).collect()
    }

    fn budget(&mut self, v: Option<&Value>) -> FailureBudget {
        const EXAMPLE: &str = "{services = 2, percent = 5}";
        let map = match v {
            None => return FailureBudget::default(),
            Some(Value::Object(m)) => m,
            Some(other) => {
                self.bad(
                    "failure_budget",
                    format!("{}: write a map (M) such as {EXAMPLE}", written(other)),
                );
                return FailureBudget::default();
            }
        };
        let mut budget = FailureBudget::default();
        for (k, v) in map {
            let field = format!("failure_budget.{}", name(k));
            match k.as_str() {
                "services" => {
                    budget.services = self.whole(&field, v, 0, u32::MAX as u64).map(|n| n as u32)
                }
                "percent" => budget.percent = self.whole(&field, v, 0, 100).map(|n| n as u8),
                _ => self.bad(
                    &field,
                    "is not a field of a failure budget: use services, percent or both".into(),
                ),
            }
        }
        if map.is_empty() {
            self.bad(
                "failure_budget",
                format!("is empty: give services, percent or both, such as {EXAMPLE}, or leave it out to halt on the first failure"),
            );
        }
        budget
    }

    fn whole(&mut self, field: &str, v: &Value, min: u64, max: u64) -> Option<u64> {
        let range = if max >= u32::MAX as u64 {
            format!("at least {min}")
        } else {
            format!("from {min} to {max}")
        };
        let n = match v {
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            }),
            other => {
                self.bad(
                    field,
                    format!("{}: write a whole number (N) {range}", written(other)),
                );
                return None;
            }
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(_) => {
                self.bad(field, format!("must be {range}"));
                None
            }
            None => {
                self.bad(field, format!("must be a whole number {range}"));
                None
            }
        }
    }

    fn duration(&mut self, field: &str, v: &Value) -> Duration {
        match v {
            Value::String(s) => match humantime::parse_duration(s.trim()) {
                Ok(d) => d,
                Err(_) => {
                    self.bad(
                        field,
                        format!(
                            "{} is not a duration: write it as \"90s\", \"5m\" or \"1h 30m\", or as a whole number of seconds",
                            quote(s)
                        ),
                    );
                    Duration::ZERO
                }
            },
            Value::Number(_) => self
                .whole(field, v, 0, u64::MAX)
                .map_or(Duration::ZERO, Duration::from_secs),
            other => {
                self.bad(
                    field,
                    format!(
                        "{}: write a duration such as \"90s\" or \"10m\" (S), or a whole number of seconds (N)",
                        written(other)
                    ),
                );
                Duration::ZERO
            }
        }
    }

    fn flag(&mut self, field: &str, v: Option<&Value>) -> bool {
        match v {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.bad(
                    field,
                    format!("{}: write true or false (BOOL)", written(other)),
                );
                false
            }
        }
    }
}

fn unknown(k: &str) -> String {
    not_a_field(k, FIELDS.iter().copied(), "a release")
}

/// `family:revision` or a task definition ARN that ends in one, as a
/// service's record takes it: a release of `web:latest` would deploy
/// whatever that means at each service's turn.
fn fixed_task_definition(td: &str) -> bool {
    let family_rev = match td.split_once(":task-definition/") {
        Some((arn, rest)) if arn.starts_with("arn:") => rest,
        Some(_) => return false,
        None if td.starts_with("arn:") => return false,
        None => td,
    };
    match family_rev.rsplit_once(':') {
        Some((family, rev)) => {
            !family.is_empty()
                && family
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && rev.parse::<u32>().is_ok_and(|r| r > 0)
        }
        None => false,
    }
}
