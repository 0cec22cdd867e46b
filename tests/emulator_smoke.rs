//! The emulator harness starts moto, answers, resets and cleans up, and the
//! AWS SDK talks to it unchanged.

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

#[tokio::test]
async fn the_sdk_lists_dynamodb_tables_through_the_emulator() {
    let emulator = support::emulator::exclusive().await;
    let config = support::aws::config(&emulator).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let tables = client.list_tables().send().await.unwrap();
    assert!(tables.table_names().is_empty());
}
