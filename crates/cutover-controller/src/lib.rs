//! cutover's controller without a cloud: the ports the decision's commands
//! and reads go through (`cloud`, `notice`), the reconcile loop
//! (`controller`) and the metrics. It compiles no AWS SDK and no HTTP
//! client: the AWS adapters implement its ports in the `cutover` crate, the
//! HTTP checks and notifications in `cutover-checks`, and the simulated
//! cloud in `cutover-sim`.

pub mod cloud;
pub mod controller;
pub mod metrics;
pub mod notice;

// The decision core under the paths this code has always used.
use cutover_core::{fleet, rollout, time};
