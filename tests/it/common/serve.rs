//! `resigner serve` as a child process (the built binary, as an operator runs it), logging
//! JSON lines to a file, killed when dropped so a failed assertion leaves nothing running;
//! and [`wait_for`], to poll a URL until it answers a status.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http::Method;
use serde_json::Value;

use super::client::try_send;

/// A running `resigner serve --log-format json --config CONFIG`.
pub struct ServeChild {
    child: Child,
    config: PathBuf,
    pub log_path: PathBuf,
}

impl ServeChild {
    /// Starts the binary on `config` with `RUST_LOG=rust_log`; stderr goes to `log_path`.
    pub fn spawn(config: &Path, log_path: &Path, rust_log: &str) -> ServeChild {
        let log = std::fs::File::create(log_path).expect("create the log file");
        let child = Command::new(env!("CARGO_BIN_EXE_resigner"))
            .args(["serve", "--log-format", "json", "--config"])
            .arg(config)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("resigner serve starts");
        ServeChild {
            child,
            config: config.to_path_buf(),
            log_path: log_path.to_path_buf(),
        }
    }

    /// Every JSON log line written so far, parsed.
    pub fn log_events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log_path)
            .expect("read the log")
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    /// Waits for the admin listener at `admin_url`, imports the active signing key of the
    /// config through the management API, and waits until `/readyz` answers 200.
    pub async fn publish_signing_key(&self, admin_url: &str) {
        wait_for(&format!("{admin_url}/healthz"), 200).await;
        let jwk = resigner::load_config(&self.config)
            .expect("the config loads")
            .signing
            .active()
            .expect("the active key is connected")
            .public_jwk()
            .to_json();
        let put = super::send(
            Method::PUT,
            &format!("{admin_url}/api/v2/keys/custom-signing"),
            &[
                ("authorization", &format!("Bearer {}", super::ADMIN_TOKEN)),
                ("content-type", "application/json"),
            ],
            serde_json::json!({ "keys": [jwk] }).to_string().as_bytes(),
        )
        .await;
        assert_eq!(put.status, 200, "{:?}", put.body);
        wait_for(&format!("{admin_url}/readyz"), 200).await;
    }
}

/// Any child process, killed (and reaped) when dropped.
pub struct Serve(pub Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `url` until it answers `status` (10 s at most).
pub async fn wait_for(url: &str, status: u16) {
    for _ in 0..400 {
        if let Ok(reply) = try_send(Method::GET, url, &[], b"").await
            && reply.status == status
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{url} never answered {status}");
}
