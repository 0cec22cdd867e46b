//! The real AWS CLI, pinned, as `scripts/awscli install` puts it in
//! `.venv-awscli/`: tests write records with it the way platform teams do.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The pinned CLI, installed if it is not there yet; `None` where it
/// cannot be, said on stderr in one line naming `test`.
pub fn path(test: &str) -> Option<PathBuf> {
    let install = Command::new(root().join("scripts/awscli"))
        .arg("install")
        .output();
    let why = match install {
        Ok(out) if out.status.success() => return Some(root().join(".venv-awscli/bin/aws")),
        Ok(out) => format!(
            "scripts/awscli install failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("scripts/awscli could not run: {e}"),
    };
    // Straight to stderr: the harness captures eprintln!, and a skip must
    // be seen.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: the AWS CLI is not available ({why})"
    );
    None
}
