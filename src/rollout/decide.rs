//! `decide`: the pure heart of cutover. (Being written.)

use super::command::Decision;
use super::observed::{Observed, ServiceState};
use super::spec::{RecordError, Route, Spec};
use super::status::Status;
use crate::time::Timestamp;

/// The record as the decision sees it.
#[derive(Clone, Debug)]
pub enum Desired<'a> {
    Valid(&'a Spec),
    Invalid(&'a RecordError),
}

/// What to read from the load balancer before deciding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reads {
    pub production: Option<Route>,
    pub test: Option<Route>,
    pub target_health: Vec<String>,
}

pub fn reads(_desired: &Desired, _service: Option<&ServiceState>, _status: &Status) -> Reads {
    Reads::default()
}

pub fn decide(
    _desired: &Desired,
    _observed: &Observed,
    _status: &Status,
    _now: Timestamp,
) -> Decision {
    unimplemented!("decide is being written")
}
