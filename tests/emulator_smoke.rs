//! The emulator harness starts moto, answers, resets and cleans up.

mod support;

use support::emulator::Emulator;

#[test]
fn emulator_starts_answers_reset_and_stops_on_drop() {
    let emulator = Emulator::start().unwrap();
    assert!(emulator.endpoint().starts_with("http://127.0.0.1:"));
    emulator.reset().unwrap();
    let pid = emulator.pid();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(emulator);
    // Killed and reaped, so the pid no longer names a process.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}
