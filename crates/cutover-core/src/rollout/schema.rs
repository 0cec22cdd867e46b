//! The kinds of value each field of a record accepts, and the check that
//! walks a record against them before it is read.
//!
//! serde alone is too lenient for a public contract: it reads a struct from a
//! list by position (so `hooks = [{url}]` became a `before_install` hook), it
//! stops at the first mistake, and it words mistakes in Rust's terms
//! (`expected u16`). This check knows every field, reports every mismatch at
//! its path in DynamoDB's words (which JSON writers understand too: a JSON
//! array is a list (L), an object a map (M)), and hands serde a record with a
//! value of the right kind in place of each mistake, so the rules that follow
//! still see every other field.
//!
//! DynamoDB's types: <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html>
//! (sets are unordered and have no JSON form; binary values neither).

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

use super::control::RolloutId;
use super::quote::{name, quote};

/// One thing wrong with a record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

/// One step of a path into a record: a field of a map, or a place in a list.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathPart {
    Field(String),
    Index(usize),
}

/// Where a value sits in a record, as messages name it: `gates.http[0].url`.
pub fn path_text(path: &[PathPart]) -> String {
    let mut out = String::new();
    for part in path {
        match part {
            PathPart::Field(f) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&name(f));
            }
            PathPart::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// DynamoDB attribute types that have no JSON form. The item reader leaves
/// null in their place in the body and lists them, so the check can say what
/// was really written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoJsonForm {
    /// B
    Binary,
    /// BS
    BinarySet,
    /// NS
    NumberSet,
    /// SS
    StringSet,
    /// A number (N) that is not one, or a type this version does not know.
    Unreadable,
}

/// An attribute (or a value nested in one) the item reader could not put in
/// the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    pub path: Vec<PathPart>,
    pub written_as: NoJsonForm,
}

/// A field of a map, with the kind of value it takes.
pub(super) struct Field {
    name: &'static str,
    kind: Kind,
    required: bool,
}

const fn req(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: true,
    }
}

const fn opt(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: false,
    }
}

/// What a field accepts.
pub(super) enum Kind {
    /// A string (S).
    Text,
    /// A string (S), one of these.
    Name(&'static [&'static str]),
    /// A whole number (N) from `min` to `max`.
    Whole {
        min: u64,
        max: u64,
    },
    /// Any number (N).
    Number,
    Bool,
    /// Text such as `"5m"` (S), or a whole number of seconds (N).
    Duration,
    /// `<revision>#<attempt>` (S).
    RolloutId,
    /// When a writer wrote the record: RFC 3339 text (S) or epoch seconds
    /// (N). Only measured, never acted on, so its content is not checked.
    Timestamp,
    /// A list (L) of one kind; the text names its items for messages.
    List(&'static Kind, &'static str),
    /// A map (M) with these fields; the text is an example for messages.
    Map(&'static [Field], &'static str),
    /// A map (M) with free keys, every value of one kind.
    Dict(&'static Kind),
    /// A map (M) keyed by some of these names, every value of one kind.
    Keyed(&'static [&'static str], &'static Kind),
    /// The kind, or null (NULL) when null has a meaning of its own.
    Nullable(&'static Kind),
    /// Anything, null included.
    Any,
    /// A strategy name (S) or a strategy map (M).
    Strategy,
    /// One step of an explicit strategy.
    Step,
}

const U32: u64 = u32::MAX as u64;
const AT_LEAST_ONE: Kind = Kind::Whole { min: 1, max: U32 };
const HOOK_POINTS: &[&str] = &[
    "before_install",
    "after_install",
    "after_test_traffic",
    "before_production_traffic",
    "after_production_traffic",
];
const NO_DATA: Kind = Kind::Name(&["fail", "pass", "wait"]);

const HOOK: Kind = Kind::Map(
    &[req("url", Kind::Text), opt("timeout", Kind::Duration)],
    "{url = \"https://…\", timeout = \"10m\"}",
);
const HOOKS: Kind = Kind::Map(
    &[
        opt("before_install", HOOK),
        opt("after_install", HOOK),
        opt("after_test_traffic", HOOK),
        opt("before_production_traffic", HOOK),
        opt("after_production_traffic", HOOK),
    ],
    "{before_install = {url = \"https://…\"}}, keyed by hook point",
);

const HTTP_GATE: Kind = Kind::Map(
    &[
        req("name", Kind::Text),
        req("url", Kind::Text),
        opt("method", Kind::Name(&["GET", "POST"])),
        opt("body", Kind::Text),
        opt(
            "expect_status",
            Kind::Nullable(&Kind::Whole { min: 100, max: 999 }),
        ),
        opt("expect_body", Kind::Text),
        opt(
            "expect_json",
            Kind::Map(
                &[req("pointer", Kind::Text), req("equals", Kind::Any)],
                "{pointer = \"/status\", equals = \"ok\"}",
            ),
        ),
        opt("interval", Kind::Duration),
        opt("failure_threshold", AT_LEAST_ONE),
        opt("timeout", Kind::Duration),
    ],
    "{name = \"smoke\", url = \"https://…\"}",
);

const PROMETHEUS_GATE: Kind = Kind::Map(
    &[
        req("name", Kind::Text),
        req("address", Kind::Text),
        req("query", Kind::Text),
        opt("max", Kind::Number),
        opt("min", Kind::Number),
        opt("on_empty", NO_DATA),
        opt("on_nan", NO_DATA),
        opt("interval", Kind::Duration),
        opt("failure_threshold", AT_LEAST_ONE),
        opt("timeout", Kind::Duration),
    ],
    "{name = \"errors\", address = \"http://prometheus:9090\", query = \"…\", max = 0.01}",
);

const GATES: Kind = Kind::Map(
    &[
        opt(
            "target_health",
            Kind::Map(
                &[
                    opt("min_healthy_percent", Kind::Whole { min: 1, max: 100 }),
                    opt("failure_threshold", AT_LEAST_ONE),
                    opt("grace", Kind::Duration),
                ],
                "{min_healthy_percent = 100, failure_threshold = 2, grace = \"2m\"}",
            ),
        ),
        opt("http", Kind::List(&HTTP_GATE, "HTTP gates (M)")),
        opt(
            "prometheus",
            Kind::List(&PROMETHEUS_GATE, "Prometheus gates (M)"),
        ),
        opt(
            "cloudwatch",
            Kind::Map(
                &[
                    req("alarms", Kind::List(&Kind::Text, "alarm names (S)")),
                    opt("interval", Kind::Duration),
                    opt("failure_threshold", AT_LEAST_ONE),
                    opt("timeout", Kind::Duration),
                ],
                "{alarms = [\"web-5xx\"]}",
            ),
        ),
        opt(
            "task_failures",
            Kind::Map(&[req("threshold", AT_LEAST_ONE)], "{threshold = 3}"),
        ),
    ],
    "{target_health = {min_healthy_percent = 100}, http = [...]}",
);

const CONTROL: Kind = Kind::Map(
    &[
        opt(
            "promote",
            Kind::Map(
                &[
                    req("rollout", Kind::RolloutId),
                    req("step", Kind::Whole { min: 0, max: U32 }),
                ],
                "{rollout = \"<revision>#<attempt>\", step = 2}",
            ),
        ),
        opt("abort", Kind::RolloutId),
        opt("retry", Kind::RolloutId),
        opt(
            "hooks",
            Kind::Keyed(
                HOOK_POINTS,
                &Kind::Map(
                    &[
                        req("rollout", Kind::RolloutId),
                        req("verdict", Kind::Name(&["pass", "fail"])),
                        opt("detail", Kind::Text),
                    ],
                    "{rollout = \"<revision>#<attempt>\", verdict = \"pass\"}",
                ),
            ),
        ),
    ],
    "{abort = \"<revision>#<attempt>\"}",
);

/// Every field of a record. Which are required, and how values relate to
/// each other, is the spec's business: this is only what each one accepts.
const RECORD: &[Field] = &[
    opt("service", Kind::Text),
    opt("task_definition", Kind::Text),
    opt("image", Kind::Text),
    opt("container", Kind::Text),
    opt("container_port", Kind::Whole { min: 1, max: 65535 }),
    opt("production_listener", Kind::Text),
    opt("production_rule", Kind::Text),
    opt("test_listener", Kind::Text),
    opt("test_rule", Kind::Text),
    opt(
        "target_groups",
        Kind::List(&Kind::Text, "the two target group ARNs (S)"),
    ),
    opt("strategy", Kind::Strategy),
    opt("bake", Kind::Duration),
    opt("progress_deadline", Kind::Duration),
    opt("paused", Kind::Bool),
    opt("auto_promote", Kind::Bool),
    opt("gates", GATES),
    opt("hooks", HOOKS),
    opt(
        "notifications",
        Kind::List(
            &Kind::Map(
                &[
                    req("url", Kind::Text),
                    opt("format", Kind::Name(&["json", "slack"])),
                ],
                "{url = \"https://…\", format = \"slack\"}",
            ),
            "notifications (M)",
        ),
    ),
    opt(
        "network",
        Kind::Map(
            &[
                req("subnets", Kind::List(&Kind::Text, "subnet IDs (S)")),
                opt(
                    "security_groups",
                    Kind::List(&Kind::Text, "security group IDs (S)"),
                ),
                opt("assign_public_ip", Kind::Bool),
            ],
            "{subnets = [\"subnet-…\"], security_groups = [\"sg-…\"]}",
        ),
    ),
    opt("launch_type", Kind::Text),
    opt(
        "capacity_provider_strategy",
        Kind::List(
            &Kind::Map(
                &[
                    req("provider", Kind::Text),
                    opt("weight", Kind::Whole { min: 0, max: U32 }),
                    opt("base", Kind::Whole { min: 0, max: U32 }),
                ],
                "{provider = \"FARGATE_SPOT\", weight = 1}",
            ),
            "capacity providers (M)",
        ),
    ),
    opt("labels", Kind::Dict(&Kind::Text)),
    opt("control", CONTROL),
    opt("driver", Kind::Text),
    opt(
        "codedeploy",
        Kind::Map(
            &[
                req("application", Kind::Text),
                req("deployment_group", Kind::Text),
                opt("hooks", Kind::Keyed(HOOK_POINTS, &Kind::Text)),
            ],
            "{application = \"…\", deployment_group = \"…\"}",
        ),
    ),
    opt("region", Kind::Text),
    opt("role_arn", Kind::Text),
    // The controller's own attribute, and a writer's timestamp: read elsewhere.
    opt("status", Kind::Any),
    opt("updated_at", Kind::Timestamp),
];

const STRATEGY_TYPES: &[&str] = &["all_at_once", "canary", "linear", "steps"];
const EVERY: &[Field] = &[
    req("type", Kind::Text),
    req("percent", Kind::Whole { min: 1, max: 99 }),
    req("interval", Kind::Duration),
];
const STEPS: &[Field] = &[
    req("type", Kind::Text),
    req(
        "steps",
        Kind::List(&Kind::Step, "steps such as {set_weight = 10} (M)"),
    ),
];
const ALL_AT_ONCE: &[Field] = &[req("type", Kind::Text)];

/// The problems with the shape of a record, and the record to read: the
/// same, with a value of the right kind in place of each mistake.
pub(super) struct Checked {
    pub problems: Vec<Problem>,
    pub body: Value,
}

/// Walks `body` against the record's schema. `unreadable` lists the values
/// the item reader left as null because they have no JSON form.
pub(super) fn check(body: &Value, unreadable: &[Unreadable]) -> Checked {
    let mut walk = Walk {
        unreadable: unreadable
            .iter()
            .map(|u| (u.path.as_slice(), u.written_as))
            .collect(),
        problems: Vec::new(),
        path: Vec::new(),
    };
    let body = match body {
        Value::Object(m) => walk.map(m, RECORD, None),
        other => {
            walk.bad(format!(
                "the record {}: write a map (M) of fields",
                written(&Written::Json(other), false)
            ));
            Value::Object(Map::new())
        }
    };
    Checked {
        problems: walk.problems,
        body,
    }
}

/// What was written, for messages.
enum Written<'a> {
    Json(&'a Value),
    NoJson(NoJsonForm),
}

struct Walk<'a> {
    unreadable: BTreeMap<&'a [PathPart], NoJsonForm>,
    problems: Vec<Problem>,
    path: Vec<PathPart>,
}

impl Walk<'_> {
    fn bad(&mut self, message: String) {
        self.problems.push(Problem {
            field: path_text(&self.path),
            message,
        });
    }

    fn at<T>(&mut self, part: PathPart, f: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(part);
        let out = f(self);
        self.path.pop();
        out
    }

    /// The value to read in place of `v`: `v` itself when it fits `kind`
    /// (numbers normalised), or a stand-in of the right kind after a problem
    /// is noted.
    fn value(&mut self, v: &Value, kind: &Kind, required: bool) -> Value {
        if let Some(t) = self.unreadable.get(self.path.as_slice()).copied() {
            return self.mismatch(Written::NoJson(t), kind, required);
        }
        match (kind, v) {
            (Kind::Any, v) => {
                // Nothing inside is read by kind, but a value without a JSON
                // form is still not what the writer meant.
                let here = self.path.clone();
                let inside: Vec<(Vec<PathPart>, NoJsonForm)> = self
                    .unreadable
                    .iter()
                    .filter(|(p, _)| p.starts_with(&here))
                    .map(|(p, t)| (p.to_vec(), *t))
                    .collect();
                for (path, t) in inside {
                    self.problems.push(Problem {
                        field: path_text(&path),
                        message: format!(
                            "{}: write a value with a JSON form",
                            written(&Written::NoJson(t), false)
                        ),
                    });
                }
                v.clone()
            }
            (Kind::Nullable(_), Value::Null) => Value::Null,
            (Kind::Timestamp, Value::String(_) | Value::Number(_)) => v.clone(),
            (Kind::Nullable(inner), v) => self.value(v, inner, required),
            (Kind::Text | Kind::Strategy, Value::String(_)) => v.clone(),
            (Kind::Name(names), Value::String(s)) => {
                if names.contains(&s.as_str()) {
                    v.clone()
                } else {
                    self.bad(format!("{} is not one of {}", quote(s), names.join(", ")));
                    stand_in(kind)
                }
            }
            (Kind::Whole { min, max }, Value::Number(n)) => self.whole(n, *min, *max),
            (Kind::Number, Value::Number(_)) | (Kind::Bool, Value::Bool(_)) => v.clone(),
            (Kind::Duration, Value::String(s)) => match humantime::parse_duration(s.trim()) {
                Ok(_) => v.clone(),
                Err(_) => {
                    self.bad(format!(
                        "{} is not a duration: write it as \"90s\", \"5m\" or \"1h 30m\", or as a whole number of seconds",
                        quote(s)
                    ));
                    stand_in(kind)
                }
            },
            (Kind::Duration, Value::Number(n)) => match whole(n) {
                Some(secs) if (0..=u64::MAX as i128).contains(&secs) => Value::from(secs as u64),
                _ => {
                    self.bad(
                        "must be a whole number of seconds, or a duration such as \"90s\" or \"5m\""
                            .into(),
                    );
                    stand_in(kind)
                }
            },
            (Kind::RolloutId, Value::String(s)) => match s.parse::<RolloutId>() {
                Ok(_) => v.clone(),
                Err(_) => {
                    self.bad(format!(
                        "{} is not a rollout id: write <revision>#<attempt>, as `cutover status` shows it",
                        quote(s)
                    ));
                    stand_in(kind)
                }
            },
            (Kind::List(item, _), Value::Array(items)) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.at(PathPart::Index(i), |w| w.value(v, item, true)))
                    .collect(),
            ),
            (Kind::Map(fields, _), Value::Object(m)) => self.map(m, fields, None),
            (Kind::Dict(item), Value::Object(m)) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let v = self.at(PathPart::Field(k.clone()), |w| w.value(v, item, true));
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            (Kind::Keyed(keys, item), Value::Object(m)) => {
                let mut out = Map::new();
                for (k, v) in m {
                    self.at(PathPart::Field(k.clone()), |w| {
                        if keys.contains(&k.as_str()) {
                            out.insert(k.clone(), w.value(v, item, true));
                        } else {
                            w.bad(format!("is not one of {}", keys.join(", ")));
                        }
                    });
                }
                Value::Object(out)
            }
            (Kind::Strategy, Value::Object(m)) => self.strategy(m),
            (Kind::Step, Value::String(s)) if s == "pause_until_promoted" => v.clone(),
            (Kind::Step, Value::Object(m)) => self.step(m),
            (kind, v) => self.mismatch(Written::Json(v), kind, required),
        }
    }

    fn mismatch(&mut self, found: Written<'_>, kind: &Kind, required: bool) -> Value {
        let list_wanted = matches!(kind, Kind::List(..));
        let mut message = format!("{}: write {}", written(&found, list_wanted), want(kind));
        if !required && matches!(found, Written::Json(Value::Null)) {
            message.push_str(", or leave the field out");
        }
        self.bad(message);
        stand_in(kind)
    }

    /// Says the range, not the number: a number far out of range may not
    /// print as the writer wrote it (`1e+41`), and the writer knows it.
    fn whole(&mut self, n: &Number, min: u64, max: u64) -> Value {
        match whole(n) {
            Some(w) if (i128::from(min)..=i128::from(max)).contains(&w) => Value::from(w as u64),
            Some(w) if w > i128::from(max) && max >= U32 => {
                self.bad(format!("must be at most {max}"));
                Value::from(min)
            }
            Some(_) => {
                self.bad(format!("must be {}", bounds(min, max)));
                Value::from(min)
            }
            None => {
                self.bad(format!("must be a whole number {}", bounds(min, max)));
                Value::from(min)
            }
        }
    }

    /// A map with known fields: unknown ones are problems (and dropped),
    /// missing required ones too (and stood in for).
    fn map(&mut self, m: &Map<String, Value>, fields: &[Field], of: Option<&str>) -> Value {
        let of = match of {
            Some(of) => of.to_string(),
            None if self.path.is_empty() => "the record".to_string(),
            None => format!("`{}`", path_text(&self.path)),
        };
        let mut out = Map::new();
        for (k, v) in m {
            self.at(PathPart::Field(k.clone()), |w| {
                match fields.iter().find(|f| f.name == k) {
                    Some(f) => {
                        out.insert(k.clone(), w.value(v, &f.kind, f.required));
                    }
                    None => w.bad(unknown(k, fields, &of)),
                }
            });
        }
        for f in fields.iter().filter(|f| f.required) {
            if !m.contains_key(f.name) {
                self.at(PathPart::Field(f.name.to_string()), |w| {
                    w.bad(format!("is missing: give {}", want(&f.kind)));
                });
                out.insert(f.name.to_string(), stand_in(&f.kind));
            }
        }
        Value::Object(out)
    }

    fn strategy(&mut self, m: &Map<String, Value>) -> Value {
        let ty = self.at(PathPart::Field("type".into()), |w| match m.get("type") {
            Some(Value::String(t)) if STRATEGY_TYPES.contains(&t.as_str()) => Some(t.clone()),
            Some(v) => {
                w.value(v, &Kind::Name(STRATEGY_TYPES), true);
                None
            }
            None => {
                w.bad(format!(
                    "is missing: use one of {}",
                    STRATEGY_TYPES.join(", ")
                ));
                None
            }
        });
        let Some(ty) = ty else {
            return stand_in(&Kind::Strategy);
        };
        let fields = match ty.as_str() {
            "canary" | "linear" => EVERY,
            "steps" => STEPS,
            _ => ALL_AT_ONCE,
        };
        self.map(m, fields, Some(&format!("a {ty} strategy")))
    }

    /// `{set_weight = 10}`, `{pause = "5m"}` or `"pause_until_promoted"`.
    fn step(&mut self, m: &Map<String, Value>) -> Value {
        let mut entries = m.iter();
        match (entries.next(), entries.next()) {
            (Some((k, v)), None) => {
                let kind = match k.as_str() {
                    "set_weight" => Kind::Whole { min: 0, max: 100 },
                    "pause" => Kind::Duration,
                    _ => {
                        self.at(PathPart::Field(k.clone()), |w| {
                            w.bad(
                                "is not a step: use set_weight, pause or \"pause_until_promoted\""
                                    .into(),
                            )
                        });
                        return stand_in(&Kind::Step);
                    }
                };
                let v = self.at(PathPart::Field(k.clone()), |w| w.value(v, &kind, true));
                Value::Object(Map::from_iter([(k.clone(), v)]))
            }
            _ => {
                self.bad(format!(
                    "has {} fields: a step is exactly one of {{set_weight = 10}}, {{pause = \"5m\"}} or \"pause_until_promoted\"",
                    m.len()
                ));
                stand_in(&Kind::Step)
            }
        }
    }
}

/// What was written, in DynamoDB's words, as the start of a message.
fn written(found: &Written<'_>, list_wanted: bool) -> String {
    let unordered = if list_wanted {
        ", which has no order"
    } else {
        ""
    };
    match found {
        Written::Json(v) => json_written(v).into(),
        Written::NoJson(NoJsonForm::Binary) => "is binary (B)".into(),
        Written::NoJson(NoJsonForm::BinarySet) => format!("is a binary set (BS){unordered}"),
        Written::NoJson(NoJsonForm::NumberSet) => format!("is a number set (NS){unordered}"),
        Written::NoJson(NoJsonForm::StringSet) => format!("is a string set (SS){unordered}"),
        Written::NoJson(NoJsonForm::Unreadable) => "is a value cutover cannot read".into(),
    }
}

/// What a JSON value is, in DynamoDB's words, as the start of a message.
pub(crate) fn json_written(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "is a string (S)",
        Value::Number(_) => "is a number (N)",
        Value::Bool(_) => "is a boolean (BOOL)",
        Value::Null => "is null (NULL)",
        Value::Array(_) => "is a list (L)",
        Value::Object(_) => "is a map (M)",
    }
}

/// What a kind of field wants, in DynamoDB's words, to follow "write".
fn want(kind: &Kind) -> String {
    match kind {
        Kind::Text => "a string (S)".into(),
        Kind::Name(names) => format!("a string (S), one of {}", names.join(", ")),
        Kind::Whole { min, max } => format!("a whole number (N) {}", bounds(*min, *max)),
        Kind::Number => "a number (N)".into(),
        Kind::Bool => "true or false (BOOL)".into(),
        Kind::Duration => {
            "a duration such as \"90s\" or \"5m\" (S), or a whole number of seconds (N)".into()
        }
        Kind::RolloutId => "a rollout id \"<revision>#<attempt>\" (S)".into(),
        Kind::Timestamp => "an RFC 3339 time (S) or seconds since 1970 (N)".into(),
        Kind::List(_, items) => format!("a list (L) of {items}"),
        Kind::Map(_, example) => format!("a map (M) such as {example}"),
        Kind::Dict(item) => format!("a map (M) whose values are each {}", want(item)),
        Kind::Keyed(keys, item) => format!(
            "a map (M) keyed by {}, whose values are each {}",
            keys.join(", "),
            want(item)
        ),
        Kind::Nullable(inner) => format!("{}, or null (NULL)", want(inner)),
        Kind::Any => "any value".into(),
        Kind::Strategy => "a strategy name (S) such as \"all_at_once\", or a map (M) such as {type = \"canary\", percent = 10, interval = \"5m\"}".into(),
        Kind::Step => "a step: {set_weight = 10} or {pause = \"5m\"} (M), or \"pause_until_promoted\" (S)".into(),
    }
}

/// "from 1 to 65535", or "at least 1" where the top is only the limit of
/// the number's type.
fn bounds(min: u64, max: u64) -> String {
    if max >= U32 {
        format!("at least {min}")
    } else {
        format!("from {min} to {max}")
    }
}

/// A value of the right kind, read in place of a mistake. Rules on the
/// record may still complain about it; those complaints are dropped, since
/// the mistake at the same place is already reported.
fn stand_in(kind: &Kind) -> Value {
    match kind {
        Kind::Text => Value::String(String::new()),
        Kind::Name(names) => Value::String(names.first().copied().unwrap_or_default().into()),
        Kind::Whole { min, .. } => Value::from(*min),
        Kind::Number => Value::from(0),
        Kind::Bool => Value::Bool(false),
        Kind::Duration => Value::from(60),
        Kind::RolloutId => Value::String("0#0".into()),
        Kind::Timestamp => Value::from(0),
        Kind::List(..) => Value::Array(Vec::new()),
        Kind::Map(fields, _) => Value::Object(
            fields
                .iter()
                .filter(|f| f.required)
                .map(|f| (f.name.to_string(), stand_in(&f.kind)))
                .collect(),
        ),
        Kind::Dict(_) | Kind::Keyed(..) => Value::Object(Map::new()),
        Kind::Nullable(_) | Kind::Any => Value::Null,
        Kind::Strategy => Value::String("all_at_once".into()),
        Kind::Step => Value::String("pause_until_promoted".into()),
    }
}

/// A number as a whole number, if it is one (`8080.0` is), saturating far
/// outside any range a field takes.
fn whole(n: &Number) -> Option<i128> {
    if let Some(u) = n.as_u64() {
        return Some(u.into());
    }
    if let Some(i) = n.as_i64() {
        return Some(i.into());
    }
    let f = n.as_f64()?;
    (f.is_finite() && f.fract() == 0.0).then_some(f as i128)
}

fn unknown(k: &str, fields: &[Field], of: &str) -> String {
    let names = fields.iter().map(|f| f.name).filter(|f| *f != "status");
    not_a_field(k, names, of)
}

/// "is not a field of `of`: remove it", with the closest of `names` (two
/// edits away at most) as a suggestion.
pub(crate) fn not_a_field<'a>(k: &str, names: impl Iterator<Item = &'a str>, of: &str) -> String {
    let mut message = format!("is not a field of {of}: remove it");
    if let Some(close) = names
        .min_by_key(|f| edit_distance(k, f))
        .filter(|f| edit_distance(k, f) <= 2)
    {
        message.push_str(&format!(", or did you mean `{close}`?"));
    }
    message
}

/// Levenshtein distance, capped: names longer than any field are far anyway.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (prev + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}
