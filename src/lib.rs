//! cutover: declarative blue/green releases for Amazon ECS.

pub mod artifacts;
pub mod aws;
pub mod cli;
pub mod config;
pub mod http;
pub mod telemetry;

// The decision core, under the paths the rest of the crate has always used.
pub use cutover_core::{fleet, rollout, time};
// The controller without a cloud, likewise.
pub use cutover_controller::{cloud, controller, metrics, notice};
// The gates' checks, hook calls and notifications over HTTP.
pub use cutover_checks::{checks, notify};
// The simulated cloud, for the demo, the benchmark and the tests.
pub use cutover_sim as sim;
