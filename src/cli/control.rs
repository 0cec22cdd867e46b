//! `cutover promote|abort|pause|resume|retry`: requests to the controller,
//! written into the record. Each names the rollout it is meant for, taken
//! from the status the controller last wrote, so a request that arrives
//! late never acts on a newer rollout.

use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use super::connect::{Aws, ServiceArg};
use super::setup::ConfigArgs;
use crate::cloud::{DesiredStore, Precondition, SpecChanges, SpecWrite, StoredRecord};
use crate::rollout::requests::{self, Refusal};
use crate::rollout::spec::CONTROL_ATTRIBUTE;
use crate::rollout::status::RollbackReason;
use crate::rollout::{Phase, Promote, Status};

#[derive(clap::Args, Debug)]
pub struct ControlArgs {
    #[command(flatten)]
    pub service: ServiceArg,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Promote,
    Abort,
    Pause,
    Resume,
    Retry,
}

/// A write that carries out a request, and what to say once it is done.
#[derive(Debug, PartialEq)]
struct Intent {
    changes: SpecChanges,
    precondition: Precondition,
    done: String,
}

/// What a request comes to, given the record as read. `Err` is a refusal
/// that says why, in the words of the phase the service is in.
fn intent(request: Request, record: &StoredRecord) -> Result<Option<Intent>, String> {
    let key = &record.key;
    let status = record.status.as_ref();
    let phase_is = |s: Option<&Status>| match s {
        Some(s) => format!("it is {} ({})", s.phase(), s.message),
        None => "the controller has not written its status yet".to_string(),
    };
    match request {
        Request::Pause | Request::Resume => {
            let paused = request == Request::Pause;
            let now = record
                .body
                .get("paused")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if requests::pause_request(now, paused).is_err() {
                return Ok(None);
            }
            let in_flight = status.and_then(|s| s.rollout.as_ref());
            let done = match (paused, in_flight) {
                (true, Some(r)) => format!("paused {key}: rollout {} holds where it is", r.id),
                (true, None) => format!("paused {key}: the next rollout holds once it starts"),
                (false, Some(r)) => format!("resumed {key}: rollout {} goes on", r.id),
                (false, None) => format!("resumed {key}"),
            };
            // Setting a flag is right whatever else changed, so no read
            // has to be current.
            Ok(Some(Intent {
                changes: SpecChanges::from([("paused".into(), Some(json!(paused)))]),
                precondition: Precondition::Exists,
                done,
            }))
        }
        Request::Promote => {
            let (Some(s), Ok(r)) = (status, requests::promotable(status)) else {
                return Err(format!(
                    "{key} is not waiting for promotion: {}",
                    phase_is(status)
                ));
            };
            let promote = Promote {
                rollout: r.id.clone(),
                step: r.step,
            };
            let share = s.weights.map_or(String::new(), |(_, c)| {
                format!(" with {c}% on the candidate")
            });
            let done = format!(
                "requested promotion of {key} rollout {} past step {}{share}",
                r.id, r.step
            );
            control(record, "promote", serde_json::to_value(promote).ok(), done)
        }
        Request::Abort => {
            let r = match requests::abortable(status) {
                Ok(r) => r,
                // Asked already: saying so again changes nothing.
                Err(Refusal::AlreadyRollingBack(_, RollbackReason::Aborted)) => return Ok(None),
                Err(Refusal::NothingInFlight(_)) => {
                    return Err(format!(
                        "nothing is in flight for {key} to abort: {}",
                        phase_is(status)
                    ));
                }
                Err(refusal) => return Err(format!("{key}: {refusal}")),
            };
            let mut done = format!(
                "requested abort of {key} rollout {}: traffic returns to the active task set",
                r.id
            );
            if status.is_some_and(|s| s.phase() == Phase::Invalid) {
                done.push_str(" once the record is valid again");
            }
            control(record, "abort", Some(json!(r.id.to_string())), done)
        }
        Request::Retry => {
            let Ok(f) = requests::retryable(status) else {
                return Err(format!(
                    "{key} has no failed rollout to retry: {}",
                    phase_is(status)
                ));
            };
            let done = format!(
                "requested a retry of {key} revision {} (rollout {} failed: {})",
                f.rollout.revision, f.rollout, f.reason
            );
            control(record, "retry", Some(json!(f.rollout.to_string())), done)
        }
    }
}

/// Sets one request in the `control` map, keeping the others. The whole map
/// is written, so only if nobody changed the record since it was read.
fn control(
    record: &StoredRecord,
    field: &str,
    value: Option<Value>,
    done: String,
) -> Result<Option<Intent>, String> {
    let value = value.ok_or_else(|| format!("the {field} request does not encode"))?;
    let mut map = match record.body.get(CONTROL_ATTRIBUTE) {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    if map.get(field) == Some(&value) {
        return Ok(None);
    }
    map.insert(field.to_string(), value);
    Ok(Some(Intent {
        changes: SpecChanges::from([(CONTROL_ATTRIBUTE.to_string(), Some(Value::Object(map)))]),
        precondition: Precondition::unchanged_since(record),
        done,
    }))
}

pub async fn run(request: Request, args: ControlArgs) -> anyhow::Result<ExitCode> {
    let key = &args.service.key;
    let aws = Aws::connect(&args.config).await?;
    let store = aws.store();
    let record = aws.record(&store, key).await?;
    let intent = match intent(request, &record) {
        Ok(Some(intent)) => intent,
        Ok(None) => {
            println!("{key}: already requested; nothing to write");
            return Ok(ExitCode::SUCCESS);
        }
        Err(refusal) => bail!(refusal),
    };
    let written = store
        .write_spec(key, &intent.changes, intent.precondition)
        .await
        .with_context(|| format!("writing to {key} in table {}", aws.config.table))?;
    if written == SpecWrite::PreconditionFailed {
        bail!(
            "{key} changed (or was deleted) since it was read, so nothing was written: run the command again"
        );
    }
    println!("{}", intent.done);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
