//! The shape the README's "How it is built" promises, checked against the
//! lock file: the decision core depends on nothing that does IO.

use std::collections::{BTreeMap, BTreeSet};

/// Every package the lock file records, by name, with the names it depends on.
fn lock_graph() -> BTreeMap<String, Vec<String>> {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
        .expect("Cargo.lock at the top of the repository");
    let lock: toml::Table = lock.parse().expect("Cargo.lock is TOML");
    let packages = lock["package"].as_array().expect("[[package]] entries");
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in packages {
        let name = p["name"].as_str().expect("package name").to_string();
        // A dependency is written "name" or "name version" when several
        // versions are locked; the name is what is checked here.
        let deps = p
            .get("dependencies")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str())
            .map(|d| d.split(' ').next().unwrap_or(d).to_string());
        graph.entry(name).or_default().extend(deps);
    }
    graph
}

/// Names of the packages `root` pulls in, itself included. The lock file
/// knows no dependency kinds, so dev-dependencies count too: the decision's
/// tests must stay as light as the decision.
fn closure(graph: &BTreeMap<String, Vec<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_string()];
    while let Some(name) = todo.pop() {
        if seen.insert(name.clone()) {
            todo.extend(graph.get(&name).into_iter().flatten().cloned());
        }
    }
    seen
}

#[test]
fn the_decision_core_depends_on_nothing_that_does_io() {
    let graph = lock_graph();
    assert!(
        graph.contains_key("cutover-core"),
        "the core crate is locked"
    );
    let io: Vec<_> = closure(&graph, "cutover-core")
        .into_iter()
        .filter(|n| {
            n.starts_with("aws-")
                || n.starts_with("tokio")
                || ["reqwest", "hyper", "axum", "mio", "socket2"].contains(&n.as_str())
        })
        .collect();
    assert!(io.is_empty(), "cutover-core pulls in {io:?}");
}

/// The ports, the loop, the simulated cloud, the demo and the benchmark
/// compile no AWS SDK: only the daemon's adapters do.
#[test]
fn only_the_daemon_compiles_an_aws_sdk() {
    let graph = lock_graph();
    for name in [
        "cutover-controller",
        "cutover-checks",
        "cutover-sim",
        "cutover-demo",
        "cutover-bench",
    ] {
        assert!(graph.contains_key(name), "{name} is locked");
        let aws: Vec<_> = closure(&graph, name)
            .into_iter()
            .filter(|n| {
                ["aws-sdk-", "aws-smithy-", "aws-config"]
                    .iter()
                    .any(|p| n.starts_with(p))
            })
            .collect();
        assert!(aws.is_empty(), "{name} pulls in {aws:?}");
    }
    assert!(closure(&graph, "cutover").contains("aws-sdk-ecs"));
}

/// The demo is the quick build: no HTTP client or server either (and so no
/// TLS stack to compile), only the loop on the simulated cloud.
#[test]
fn the_demo_compiles_no_http_stack() {
    let graph = lock_graph();
    let http: Vec<_> = closure(&graph, "cutover-demo")
        .into_iter()
        .filter(|n| ["reqwest", "hyper", "axum", "rustls", "aws-lc-sys"].contains(&n.as_str()))
        .collect();
    assert!(http.is_empty(), "cutover-demo pulls in {http:?}");
}

#[test]
fn the_daemon_is_built_on_the_core() {
    let graph = lock_graph();
    assert!(
        closure(&graph, "cutover").contains("cutover-core"),
        "cutover depends on cutover-core"
    );
}

/// The shipping binary carries no benchmark, and the benchmark's paused
/// clock (tokio's test utilities) comes only with it and the tests.
#[test]
fn the_daemon_ships_without_the_benchmark() {
    let graph = lock_graph();
    assert!(
        graph.contains_key("cutover-bench"),
        "the benchmark is locked"
    );
    assert!(!closure(&graph, "cutover").contains("cutover-bench"));
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("the top-level manifest");
    let manifest: toml::Table = manifest.parse().expect("Cargo.toml is TOML");
    let tokio = &manifest["dependencies"]["tokio"];
    let features = tokio
        .get("features")
        .and_then(|f| f.as_array())
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str());
    assert!(
        !features.clone().any(|f| f == "test-util"),
        "the daemon's tokio has {:?}",
        features.collect::<Vec<_>>()
    );
    let workspace = &manifest["workspace"]["dependencies"]["tokio"]["features"];
    assert!(
        !workspace
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f.as_str() == Some("test-util")),
        "the workspace's tokio has test-util: {workspace}"
    );
}

/// Each crate's top-level modules, lowest first: a module may name
/// (`crate::…`) only modules before it in its list, so arrows run one way
/// and no two modules import each other.
const LAYERS: [(&str, &[&str]); 4] = [
    ("crates/cutover-core/src", &["time", "rollout"]),
    (
        "crates/cutover-controller/src",
        &["cloud", "notice", "metrics", "controller"],
    ),
    ("crates/cutover-checks/src", &["checks", "notify"]),
    (
        "src",
        &["artifacts", "config", "telemetry", "aws", "http", "cli"],
    ),
];

/// Every `.rs` file under `dir`.
fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn modules_import_only_the_modules_below_them() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut wrong = Vec::new();
    for (dir, layers) in LAYERS {
        for (rank, module) in layers.iter().enumerate() {
            let mut files = Vec::new();
            let as_dir = root.join(dir).join(module);
            if as_dir.is_dir() {
                sources(&as_dir, &mut files);
            } else {
                files.push(root.join(dir).join(format!("{module}.rs")));
            }
            assert!(!files.is_empty(), "{dir}/{module} has sources");
            for file in files {
                let text = std::fs::read_to_string(&file).expect("a source file");
                for above in &layers[rank + 1..] {
                    if text.contains(&format!("crate::{above}")) {
                        wrong.push(format!("{} names crate::{above}", file.display()));
                    }
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

/// Inside a module, its submodules' imports of each other (`super::x`,
/// `crate::<module>::x`, outside tests): the names of the strongly
/// connected groups of more than one, each a cycle.
fn import_cycles(dir: &std::path::Path, top: &str) -> Vec<Vec<String>> {
    let mut subs: BTreeMap<String, Vec<std::path::PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("a module directory") {
        let path = entry.expect("a directory entry").path();
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == "mod" || name == "tests" || name.ends_with("_tests") {
            continue;
        }
        let mut files = Vec::new();
        if path.is_dir() {
            sources(&path, &mut files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
        subs.entry(name).or_default().extend(files);
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, files) in &subs {
        for file in files {
            let text = std::fs::read_to_string(file).expect("a source file");
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for other in subs.keys().filter(|o| *o != name) {
                let named = [
                    format!("super::{other}::"),
                    format!("super::{other}::{{"),
                    format!("crate::{top}::{other}::"),
                ];
                if named.iter().any(|n| code.contains(n.as_str())) {
                    edges.entry(name.clone()).or_default().insert(other.clone());
                }
            }
        }
    }
    // A group is a cycle: every member reaches every other.
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for next in edges.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let mut cycles: Vec<Vec<String>> = Vec::new();
    for name in subs.keys() {
        let from = reach(name);
        let group: Vec<String> = subs
            .keys()
            .filter(|o| *o == name || (from.contains(*o) && reach(o).contains(name)))
            .cloned()
            .collect();
        if group.len() > 1 && !cycles.contains(&group) {
            cycles.push(group);
        }
    }
    cycles
}

#[test]
fn no_two_submodules_import_each_other() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for (dir, layers) in LAYERS {
        for module in layers.iter() {
            let as_dir = root.join(dir).join(module);
            if as_dir.is_dir() {
                for cycle in import_cycles(&as_dir, module) {
                    found.push(format!("{dir}/{module}: {}", cycle.join(" <-> ")));
                }
            }
        }
    }
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}
