//! Runs a Python script with PyJWT (installed by `scripts/test.sh`) for the tests that ask an
//! independent JOSE implementation; a missing `python3` or a failing script fails the test.

use serde_json::Value;

/// Runs `script` with `args` off the async workers; returns its stdout parsed as JSON.
/// `what` names the check in the failure message.
pub async fn run_json(what: &str, script: &'static str, args: Vec<String>) -> Value {
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(&args)
            .output()
            .expect("python3 runs (scripts/test.sh installs it with PyJWT)")
    })
    .await
    .expect("python3 task");
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the script prints JSON")
}
