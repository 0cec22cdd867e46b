//! Shared by the integration tests. Each test binary compiles this module on
//! its own and uses only part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod aws;
pub mod awscli;
pub mod cli;
pub mod emulator;
pub mod slow_proxy;
