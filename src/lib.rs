//! cutover: declarative blue/green releases for Amazon ECS.

pub mod artifacts;
pub mod aws;
pub mod checks;
pub mod cli;
pub mod cloud;
pub mod config;
pub mod controller;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod sim;
pub mod telemetry;

// The decision core, under the paths the rest of the crate has always used.
pub use cutover_core::{rollout, time};
