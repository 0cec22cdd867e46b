//! The decision: pure rollout logic. Nothing in this module performs IO, reads
//! a clock or knows about tokio or AWS types; it is tested with plain `#[test]`s.

pub mod account;
pub mod admission;
pub mod alert;
mod checks;
mod codedeploy;
pub mod command;
pub mod control;
pub mod decide;
pub mod deployment;
mod draft;
mod driver;
pub mod driver_kind;
pub mod gate;
pub mod halt;
mod hands;
pub mod hook;
pub mod items;
pub mod key;
mod machine;
mod native;
pub mod observed;
pub mod quote;
pub mod readiness;
pub mod reading;
pub mod requests;
mod retreat;
pub mod revision;
mod rollback;
pub mod rollout_id;
pub mod schema;
pub mod service_deployment;
pub mod spec;
pub mod status;
mod sticky;
pub mod strategy;
mod task_set_reads;
pub mod trim;
pub mod unkeyed;
pub mod watch;
mod watched;

pub use command::{
    AlertKind, Command, CreateTaskSet, Decision, Event, GATES, Outcome, TARGET_HEALTH, Wake,
};
pub use control::{Control, Promote, RolloutId};
pub use decide::{Desired, decide, reads, under_rollout};
pub use key::{Scope, ServiceKey};
pub use observed::{
    EcsService, Observed, ServiceState, Stability, Stickiness, TargetCounts, TaskSet,
    TaskSetStatus, Weights,
};
pub use reading::Reads;
pub use revision::Revision;
pub use spec::{RecordError, Route, Spec, Version, parse_record, parse_written};
pub use status::{Phase, Status};

#[cfg(test)]
mod tests;
pub use strategy::{Step, Strategy};
