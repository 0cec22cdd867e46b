//! The `cutover` binary, run as a platform team would against the emulator:
//! configured only through `CUTOVER_*` variables and the standard AWS
//! credential chain.

use std::process::Command;

use super::aws::REGION;

/// What one run of the binary left behind.
#[derive(Debug)]
pub struct Run {
    /// `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with both outputs unless the exit code is `code`.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit code {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

pub fn cutover(endpoint: &str, table: &str, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .env_remove("CUTOVER_CONFIG")
        .env("CUTOVER_ENDPOINT_URL", endpoint)
        .env("CUTOVER_TABLE", table)
        .env("CUTOVER_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/nonexistent/cutover-test")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/cutover-test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap_or_else(|e| panic!("running cutover {args:?}: {e}"));
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
