//! cutover's controller without a cloud: the ports the decision's commands
//! and reads go through (`cloud`), the reconcile loop (`controller`), the
//! gates' and hooks' checks, notifications and metrics. It compiles no AWS
//! SDK: the AWS adapters implement its ports in the `cutover` crate, and the
//! simulated cloud in `cutover-sim`.

pub mod checks;
pub mod cloud;
pub mod controller;
pub mod metrics;
pub mod notify;

// The decision core under the paths this code has always used.
use cutover_core::{rollout, time};
