//! SDK configuration that points at the emulator.

use std::sync::Once;

use aws_config::SdkConfig;
use cutover::aws::{Endpoint, sdk_config};

use super::emulator::Emulator;

pub const REGION: &str = "us-east-1";

/// Credentials still come from the standard provider chain, as in
/// production: the emulator accepts any, so the test process gets dummy
/// ones in its environment, and no developer profile is read by accident.
fn dummy_credentials() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: set once, before any SDK client of this test process
        // exists; the harness's own threads only read the environment
        // through std, which serializes with this.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
            std::env::remove_var("AWS_SESSION_TOKEN");
            std::env::remove_var("AWS_PROFILE");
            std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/cutover-test");
            std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/cutover-test");
            std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        }
    });
}

pub async fn config(emulator: &Emulator) -> SdkConfig {
    config_at(emulator.endpoint()).await
}

/// The same, for an endpoint in front of the emulator (a proxy).
pub async fn config_at(url: String) -> SdkConfig {
    dummy_credentials();
    sdk_config(&Endpoint {
        region: Some(REGION.to_string()),
        url: Some(url),
    })
    .await
}
