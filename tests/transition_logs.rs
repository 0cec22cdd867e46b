//! The log lines of a rollout's transitions. Alone in its test binary: a
//! thread-local subscriber shares tracing's per-callsite caches with every
//! thread of the process, and tests running beside it could make it miss
//! lines.

#[path = "observed_rollout/mod.rs"]
mod observed_rollout;

use std::io::Write;
use std::sync::{Arc, Mutex};

use cutover::aws::calls::ApiCalls;
use cutover::sim::Faults;

use observed_rollout::rollout;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn each_transition_is_logged_once_at_info_inside_its_reconcile_span() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let c = captured.clone();
            move || c.clone()
        })
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    // The test's runtime is single-threaded, so every task logs here.
    let _guard = tracing::subscriber::set_default(subscriber);
    rollout(Faults::none(), &ApiCalls::new()).await;
    let bytes = captured.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let log = String::from_utf8(bytes).unwrap();

    for transition in [
        "Steady → Provisioning",
        "Baking → Finalizing",
        "Finalizing → Steady",
    ] {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(transition)).collect();
        assert_eq!(lines.len(), 1, "{transition}:\n{log}");
        let line = lines[0];
        assert!(line.contains(" INFO "), "{line}");
        let span = line
            .split_once("reconcile{")
            .and_then(|(_, rest)| rest.split_once('}'))
            .map(|(fields, _)| fields)
            .unwrap_or_else(|| panic!("not in a reconcile span: {line}"));
        for field in ["service=prod/web", "revision=", "phase="] {
            assert!(span.contains(field), "{field}: {line}");
        }
        let reason = line.split_once(&format!("{transition}: ")).map(|(_, r)| r);
        assert!(
            reason.is_some_and(|r| !r.is_empty()),
            "the reason follows: {line}"
        );
    }
    let count = |text: &str| log.lines().filter(|l| l.contains(text)).count();
    assert_eq!(count("finished: promoted"), 1, "{log}");
    assert_eq!(count("after the record was written"), 1, "{log}");
}
