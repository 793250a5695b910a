//! How the binary reports an error that ends it: one line, each cause once (no
//! `os error 2: ... os error 2`), and under `--log-format json` a JSON log line, so a log
//! pipeline sees why the process stopped.

use std::net::TcpListener;

use serde_json::Value;

use crate::cli::resigner;

#[tokio::test]
async fn a_missing_config_file_is_named_once_with_its_cause_once() {
    let run = resigner(
        &["check", "--config", "/nonexistent/resigner.toml"],
        "",
        &[],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let line = run.stderr.trim();
    assert!(line.starts_with("resigner: "), "{line}");
    assert!(line.contains("/nonexistent/resigner.toml"), "{line}");
    assert_eq!(line.matches("os error 2").count(), 1, "{line}");
    assert_eq!(line.lines().count(), 1, "{line}");
}

#[tokio::test]
async fn a_busy_listen_address_is_said_once() {
    let tmp = tempfile::tempdir().unwrap();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let config = crate::cli_errors::config_listening_on(tmp.path(), &addr);
    let run = resigner(&["serve", "--config", config.to_str().unwrap()], "", &[]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let line = run.stderr.trim();
    assert!(line.contains(&addr), "{line}");
    assert_eq!(line.matches("os error 98").count(), 1, "{line}");
}

#[tokio::test]
async fn fatal_errors_are_json_lines_under_log_format_json() {
    let args = [
        "--log-format",
        "json",
        "serve",
        "--config",
        "/nonexistent/r.toml",
    ];
    let run = resigner(&args, "", &[]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let line = run.stderr.trim();
    let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(event["level"], "ERROR");
    let message = event["fields"]["message"].as_str().unwrap();
    assert!(message.contains("/nonexistent/r.toml"), "{message}");
    assert_eq!(message.matches("os error 2").count(), 1, "{message}");
}

/// A valid config (with its signing key) whose public listener is `listen`.
pub fn config_listening_on(dir: &std::path::Path, listen: &str) -> std::path::PathBuf {
    crate::common::write_key(&dir.join("signing.pem"), resigner::jose::alg::Alg::ES256);
    let path = dir.join("resigner.toml");
    let admin = crate::common::free_addr();
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"{listen}\"\n[admin]\nlisten = \"{admin}\"\n\
             [idp]\nissuer = \"http://127.0.0.1:9/\"\njwks_uri = \"http://127.0.0.1:9/jwks\"\n\
             [signing]\nissuer = \"https://resigner.test/\"\n\
             [[signing.keys]]\npath = \"signing.pem\"\nalg = \"ES256\"\n\
             [keys]\nstore = \"keys.json\"\n"
        ),
    )
    .unwrap();
    path
}
