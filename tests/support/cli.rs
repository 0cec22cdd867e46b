//! The `cutover` binary, run as a platform team would against the emulator:
//! configured only through `CUTOVER_*` variables and the standard AWS
//! credential chain.

use std::process::{Child, Command, Stdio};

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

/// The binary with the emulator's endpoint, the table and dummy credentials.
pub fn command(endpoint: &str, table: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cutover"));
    command
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
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

/// Runs to the end.
pub fn cutover(endpoint: &str, table: &str, args: &[&str]) -> Run {
    let out = command(endpoint, table, args)
        .output()
        .unwrap_or_else(|e| panic!("running cutover {args:?}: {e}"));
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts a long-running command (`status --watch`) with its stdout piped.
pub fn spawn(endpoint: &str, table: &str, args: &[&str]) -> Child {
    command(endpoint, table, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting cutover {args:?}: {e}"))
}
