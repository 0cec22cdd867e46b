//! `cargo run --release -p cutover-demo`, the README's first command,
//! through the real binary.

use std::process::Command;

#[test]
fn the_demo_finishes_with_every_service_where_its_story_ends() {
    let out = Command::new(env!("CARGO_BIN_EXE_cutover-demo"))
        // Faster than the default 30x, slow enough that an unoptimized
        // controller keeps up with twenty-four services; the limit leaves
        // room for a loaded machine.
        .args(["--speed", "200", "--limit", "60m"])
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

    // The release: halted by its budget when shop/inventory failed in wave
    // 2, with wave 3 left unwritten, then resumed after the fix; completed.
    let release = row("shop-base-image  ");
    assert!(release.contains("completed"), "{stdout}");
    assert!(release.contains("2 + 8 + 10"), "{stdout}");
    assert!(release.contains("20 succeeded"), "{stdout}");
    let phases = stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("phases: "))
        .unwrap_or_else(|| panic!("no release phases:\n{stdout}"));
    assert_eq!(
        phases,
        "written → rolling wave 1/3 → baking → rolling wave 2/3 → halted → rolling wave 2/3 \
         → baking → rolling wave 3/3 → completed",
        "{stdout}"
    );
    let line = |needle: &str| {
        stdout
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}:\n{stdout}"))
    };
    let failed = line("shop/inventory         RollingBack → Failed");
    let halted = line("rolling wave 2/3 → halted");
    let resumed = line("resumed the release");
    let retried = line("shop/inventory              Failed → Provisioning");
    let completed = line("rolling wave 3/3 → completed");
    assert!(
        failed < halted && halted < resumed && resumed < retried && retried < completed,
        "{stdout}"
    );
    assert!(
        stdout.contains("budget 0; rollouts in flight are paused"),
        "{stdout}"
    );
    assert!(
        stdout.contains("10 service(s) of wave 3 left unwritten"),
        "{stdout}"
    );
    assert!(
        stdout.contains("0 of 10 service(s) of wave 3 written while halted"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("was written while the release was halted"),
        "{stdout}"
    );
    // Other members of wave 2 were paused at the halt and went on after it.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with('[') && l.contains("shop/") && l.contains("→ Paused")),
        "{stdout}"
    );
    assert!(stdout.contains("retried after the resume"), "{stdout}");
}
