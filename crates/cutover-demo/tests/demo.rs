//! `cargo run --release -p cutover-demo`, the README's first command,
//! through the real binary.

use std::process::Command;

#[test]
fn the_demo_finishes_with_every_service_where_its_story_ends() {
    let out = Command::new(env!("CARGO_BIN_EXE_cutover-demo"))
        .args(["--speed", "600"])
        .output()
        .expect("run cutover-demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |service: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(service))
            .unwrap_or_else(|| panic!("no summary row for {service}:\n{stdout}"))
            .to_string()
    };
    assert!(row("demo/checkout").contains("Steady"), "{stdout}");
    assert!(row("demo/checkout").contains("checkout:2"), "{stdout}");
    assert!(row("demo/search").contains("Failed"), "{stdout}");
    assert!(
        row("demo/search").contains("search:1"),
        "rolled back to the old version:\n{stdout}"
    );
    assert!(row("demo/billing").contains("Invalid"), "{stdout}");
    // ECS's own deployment, driven through its pauses, beside the task sets.
    assert!(row("demo/payments").contains("Steady"), "{stdout}");
    assert!(row("demo/payments").contains("payments:2"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("demo/payments") && l.contains("candidate has 10% of production")),
        "the canary's first step:\n{stdout}"
    );
    assert!(stdout.contains("Shifting → RollingBack"), "{stdout}");
    assert!(!stdout.contains("invariant violated"), "{stdout}");
}
