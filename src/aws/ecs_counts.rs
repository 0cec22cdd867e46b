//! Which task set counts ECS actually sent.
//!
//! The SDK models `computedDesiredCount`, `runningCount` and `pendingCount`
//! as plain integers that default to 0, so a count ECS left out reads as "no
//! tasks". For the controller a count it was not told is unknown: "0 running"
//! would fail a health gate that "unknown" leaves to the target health. The
//! only place the difference survives is the response body, so a per-request
//! interceptor reads it once the SDK has buffered it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::Value;

/// Which counts one task set carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reported {
    pub computed_desired: bool,
    pub running: bool,
    pub pending: bool,
}

impl Reported {
    pub const ALL: Reported = Reported {
        computed_desired: true,
        running: true,
        pending: true,
    };
}

/// What one response said, by task set ARN.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reports {
    /// `None` when the body could not be read: the SDK's numbers are then
    /// taken as sent, which is what ECS itself always does.
    seen: Option<BTreeMap<String, Reported>>,
}

impl Reports {
    /// Every object in an ECS JSON response that has a `taskSetArn`,
    /// wherever it sits (`services[].taskSets[]`, `taskSet`, `taskSets[]`).
    pub fn parse(body: &[u8]) -> Reports {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return Reports::default();
        };
        let mut seen = BTreeMap::new();
        collect(&value, &mut seen);
        Reports { seen: Some(seen) }
    }

    pub fn for_task_set(&self, arn: Option<&str>) -> Reported {
        match (&self.seen, arn) {
            (Some(seen), Some(arn)) => seen.get(arn).copied().unwrap_or(Reported::ALL),
            _ => Reported::ALL,
        }
    }
}

fn collect(value: &Value, seen: &mut BTreeMap<String, Reported>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(arn)) = map.get("taskSetArn") {
                let has = |k: &str| map.get(k).is_some_and(|v| !v.is_null());
                seen.insert(
                    arn.clone(),
                    Reported {
                        computed_desired: has("computedDesiredCount"),
                        running: has("runningCount"),
                        pending: has("pendingCount"),
                    },
                );
            }
            map.values().for_each(|v| collect(v, seen));
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, seen)),
        _ => {}
    }
}

/// Add with `.customize().interceptor(probe.clone())`, read after `send()`.
#[derive(Clone, Debug, Default)]
pub struct CountsProbe {
    last: Arc<Mutex<Reports>>,
}

impl CountsProbe {
    pub fn reports(&self) -> Reports {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Intercept for CountsProbe {
    fn name(&self) -> &'static str {
        "cutover::CountsProbe"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // A retried request overwrites the earlier attempt's answer: only the
        // last one becomes the output.
        let reports = context
            .response()
            .body()
            .bytes()
            .map(Reports::parse)
            .unwrap_or_default();
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = reports;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "arn:aws:ecs:us-east-1:1:task-set/c/s/ecs-svc/1";
    const B: &str = "arn:aws:ecs:us-east-1:1:task-set/c/s/ecs-svc/2";

    #[test]
    fn finds_task_sets_in_services_and_alone() {
        let body = format!(
            r#"{{"services":[{{"serviceName":"s","runningCount":3,"taskSets":[
                {{"taskSetArn":"{A}","computedDesiredCount":2,"runningCount":0,"pendingCount":1}},
                {{"taskSetArn":"{B}","scale":{{"value":100.0,"unit":"PERCENT"}}}}]}}],
              "failures":[]}}"#
        );
        let reports = Reports::parse(body.as_bytes());
        assert_eq!(reports.for_task_set(Some(A)), Reported::ALL);
        assert_eq!(
            reports.for_task_set(Some(B)),
            Reported {
                computed_desired: false,
                running: false,
                pending: false
            }
        );

        let created = format!(r#"{{"taskSet":{{"taskSetArn":"{B}","runningCount":null}}}}"#);
        let reports = Reports::parse(created.as_bytes());
        assert!(
            !reports.for_task_set(Some(B)).running,
            "null is not a count"
        );
    }

    #[test]
    fn an_unreadable_body_trusts_the_sdk() {
        assert_eq!(
            Reports::parse(b"<html>").for_task_set(Some(A)),
            Reported::ALL
        );
        assert_eq!(Reports::default().for_task_set(Some(A)), Reported::ALL);
        assert_eq!(
            Reports::parse(b"{}").for_task_set(None),
            Reported::ALL,
            "nothing to look up"
        );
    }
}
