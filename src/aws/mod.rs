//! The AWS adapters: the only place where SDK types appear. Each one
//! implements a port from [`crate::cloud`] and hands back domain types and
//! [`crate::cloud::CloudError`]s.

pub mod accounts;
pub mod alb;
pub mod alb_convert;
pub mod calls;
pub mod cloudwatch;
pub mod codedeploy;
pub mod ecs;
mod ecs_convert;
mod ecs_counts;
mod ecs_image;
pub mod error;
mod fenced;
mod item;
pub mod leases;
mod relay;
pub mod service_deployments;
pub mod store;
mod streams;
mod table;
pub mod taskdef;
mod unkeyed;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

pub use leases::DynamoLeases;
pub use store::DynamoStore;

/// Attempts per call, the first included. The SDK's standard mode backs off
/// exponentially with jitter between them; this is the only retry layer on a
/// call, the controller just reconciles the key again later.
const MAX_ATTEMPTS: u32 = 3;
/// One attempt; a slow Scan page or GetRecords still fits.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// All attempts with their backoff, so a stuck call cannot hold a worker.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the AWS clients send requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// `None`: the standard region chain (`AWS_REGION`, the profile, IMDS).
    pub region: Option<String>,
    /// Sends every service's requests here instead of to AWS: the local
    /// emulator in tests and demos.
    pub url: Option<String>,
}

/// The shared SDK configuration. Credentials come only from the standard
/// provider chain (environment, profile, web identity, ECS task role, IMDS).
pub async fn sdk_config(endpoint: &Endpoint) -> SdkConfig {
    loader(endpoint).load().await
}

/// The configuration loader every SDK configuration starts from: the retry
/// and timeout policy, the region and the endpoint.
pub(crate) fn loader(endpoint: &Endpoint) -> aws_config::ConfigLoader {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        );
    if let Some(region) = &endpoint.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &endpoint.url {
        loader = loader.endpoint_url(url.clone());
    }
    loader
}
