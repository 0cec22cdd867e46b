//! CloudWatch alarms for the CloudWatch gate: DescribeAlarms by name.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::{AlarmType, StateValue};

use super::calls::{ApiCalls, cloudwatch_client};
use super::error::from_sdk;
use crate::checks::{Alarm, AlarmState, Alarms, cloudwatch::NAMES_PER_CALL};
use crate::cloud::{CloudError, ErrorKind};

const DESCRIBE_ALARMS: &str = "cloudwatch:DescribeAlarms";

pub struct CloudWatchAlarms {
    client: aws_sdk_cloudwatch::Client,
}

impl CloudWatchAlarms {
    /// Every request attempt is counted in `calls`.
    pub fn new(sdk: &SdkConfig, calls: &ApiCalls) -> Self {
        CloudWatchAlarms {
            client: cloudwatch_client(sdk, calls),
        }
    }
}

fn state(value: Option<&StateValue>) -> AlarmState {
    match value {
        Some(StateValue::Alarm) => AlarmState::Alarm,
        Some(StateValue::Ok) => AlarmState::Ok,
        _ => AlarmState::InsufficientData,
    }
}

#[async_trait]
impl Alarms for CloudWatchAlarms {
    async fn describe(&self, names: &[String]) -> Result<BTreeMap<String, Alarm>, CloudError> {
        if names.len() > NAMES_PER_CALL {
            return Err(CloudError::new(
                ErrorKind::Invalid,
                DESCRIBE_ALARMS,
                format!(
                    "{} alarm names in one request; at most {NAMES_PER_CALL} are allowed",
                    names.len()
                ),
            ));
        }
        let mut found = BTreeMap::new();
        let mut next = None;
        loop {
            // Without AlarmTypes, composite alarms are left out of the answer.
            let out = self
                .client
                .describe_alarms()
                .set_alarm_names(Some(names.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .max_records(NAMES_PER_CALL as i32)
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| from_sdk(DESCRIBE_ALARMS, e))?;
            for a in out.metric_alarms() {
                if let Some(name) = a.alarm_name() {
                    let reason = a.state_reason().unwrap_or_default().to_string();
                    let state = state(a.state_value());
                    found.insert(name.to_string(), Alarm { state, reason });
                }
            }
            for a in out.composite_alarms() {
                if let Some(name) = a.alarm_name() {
                    let reason = a.state_reason().unwrap_or_default().to_string();
                    let state = state(a.state_value());
                    found.insert(name.to_string(), Alarm { state, reason });
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => return Ok(found),
            }
        }
    }
}
