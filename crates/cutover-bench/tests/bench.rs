//! `cutover-bench` end to end, on a small fleet: it measures both sides,
//! writes its JSON and Markdown, and the figures say what the design
//! promises (a tenth of a DescribeServices call per steady service, every
//! service rolled out, nothing throttled on cutover's side).

use std::process::Command;

use serde_json::Value;

#[test]
fn a_small_bench_writes_both_reports_with_cutovers_figures_beside_the_baselines() {
    let out = std::env::temp_dir().join(format!("cutover-bench-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_cutover-bench"))
        .args(["--services", "100", "--rollout", "30", "--out"])
        .arg(&out)
        .status()
        .expect("running cutover-bench");
    assert!(status.success(), "{status:?}");

    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let sweep = |mode: &str| {
        json["sweeps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["mode"] == mode)
            .unwrap_or_else(|| panic!("no {mode} sweep in {json}"))
            .clone()
    };
    let (ours, naive) = (sweep("cutover"), sweep("naive"));
    let describes = |s: &Value| {
        s["calls_by_operation"]["ecs:DescribeServices"]
            .as_f64()
            .unwrap()
    };
    assert!((describes(&ours) - 0.1).abs() < 1e-9, "{ours}");
    assert!((describes(&naive) - 1.0).abs() < 1e-9, "{naive}");
    assert!(
        ours["calls_by_operation"]
            .as_object()
            .unwrap()
            .keys()
            .all(|op| !op.starts_with("elbv2:"))
    );
    assert_eq!(ours["detection_missed"], 0);
    assert!(ours["detection_p99_seconds"].as_f64().unwrap() > 0.0);

    let rollout = json["rollouts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["mode"] == "cutover")
        .unwrap();
    assert_eq!(rollout["failed"], 0, "{rollout}");
    assert_eq!(rollout["settled"], 30, "{rollout}");
    assert_eq!(rollout["elb_mutations"], 30, "{rollout}");
    assert!(
        rollout["throttled"].as_object().unwrap().is_empty(),
        "{rollout}"
    );

    // The same 30 services released in waves, next to the rollout.
    let release = &json["releases"][0];
    assert_eq!(release["phase"], "completed", "{release}");
    assert_eq!(release["settled"], 30, "{release}");
    assert_eq!(release["failed"], 0, "{release}");
    assert_eq!(release["elb_mutations"], 30, "{release}");
    assert_eq!(release["waves"].as_array().unwrap().len(), 4, "{release}");
    assert!(
        release["most_in_flight"].as_u64().unwrap() < 30,
        "{release}"
    );
    assert!(
        release["throttled"].as_object().unwrap().is_empty(),
        "{release}"
    );

    let markdown = std::fs::read_to_string(out.join("results.md")).unwrap();
    for heading in [
        "### Steady state and detection",
        "### Fleet rollout",
        "### Fleet release",
        "### Targets",
    ] {
        assert!(markdown.contains(heading), "{heading} missing:\n{markdown}");
    }
    std::fs::remove_dir_all(&out).ok();
}

/// The README's benchmark figures are the committed run's: every table row
/// and the line saying how it was measured appear in the README as
/// `bench/results.md` has them, so a re-run that changes a figure fails
/// here until the README says it too.
#[test]
fn the_readmes_benchmark_figures_are_the_committed_runs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let results = std::fs::read_to_string(root.join("bench/results.md")).unwrap();
    let lines: Vec<&str> = results
        .lines()
        .filter(|l| l.starts_with('|') || l.starts_with("Measured on"))
        .collect();
    assert!(lines.len() > 20, "bench/results.md has its tables");
    let missing: Vec<&&str> = lines.iter().filter(|l| !readme.contains(**l)).collect();
    assert!(
        missing.is_empty(),
        "README.md lacks these lines of bench/results.md:\n{}",
        missing
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
