//! A real OpenID Provider on loopback: npm `oidc-provider` run by
//! `tests/sdk/introspection_idp.mjs` (installed by `scripts/test.sh`; a test fails, never
//! skips, without it). It issues opaque access tokens by client_credentials (client `batch`)
//! for one resource, answers RFC 7662 introspection (client `resigner`) and revokes tokens.
//! The child is killed when the value is dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use http::Method;
use serde_json::Value;

use super::client::send;

/// resigner's client at the provider.
pub const INTROSPECTION_CLIENT: (&str, &str) = ("resigner", "resigner-secret");
/// The client that gets tokens.
pub const BATCH_CLIENT: (&str, &str) = ("batch", "batch-secret");

pub struct OidcProvider {
    pub issuer: String,
    child: Child,
    /// The provider's stderr (its warnings and errors), for failure messages.
    log: tempfile::NamedTempFile,
}

impl OidcProvider {
    /// Starts the provider; its tokens are for the resource `audience`.
    pub fn start(audience: &str) -> OidcProvider {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk");
        assert!(
            sdk.join("node_modules/oidc-provider/package.json").exists(),
            "npm oidc-provider is not installed in tests/sdk: run scripts/test.sh"
        );
        let log = tempfile::NamedTempFile::new().expect("log file");
        let mut child = Command::new("node")
            .arg(sdk.join("introspection_idp.mjs"))
            .arg(audience)
            .current_dir(&sdk)
            .stdout(Stdio::piped())
            .stderr(log.reopen().expect("log file"))
            .spawn()
            .expect("node runs (scripts/test.sh installs it)");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        stdout
            .read_line(&mut line)
            .expect("the provider prints its issuer");
        // Kept open and drained: a closed pipe would end the provider at its next write.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let started: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("oidc-provider did not start ({e}): {line:?}"));
        OidcProvider {
            issuer: started["issuer"].as_str().expect("issuer").to_string(),
            child,
            log,
        }
    }

    /// What the provider wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    pub fn introspection_endpoint(&self) -> String {
        format!("{}/token/introspection", self.issuer)
    }

    /// A fresh opaque access token for client `batch` with `scope`.
    pub async fn token(&self, scope: &str) -> String {
        let body = format!(
            "grant_type=client_credentials&scope={}",
            scope.replace(' ', "+")
        );
        let reply = self
            .post("/token", BATCH_CLIENT, &body)
            .await
            .unwrap_or_else(|status| panic!("token request: HTTP {status}"));
        reply["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// Revokes `token` (RFC 7009).
    pub async fn revoke(&self, token: &str) {
        let body = format!("token={token}&token_type_hint=access_token");
        self.post("/token/revocation", BATCH_CLIENT, &body)
            .await
            .unwrap_or_else(|status| panic!("revocation: HTTP {status}"));
    }

    /// The provider's own introspection answer for `token`.
    pub async fn introspect(&self, token: &str) -> Value {
        let body = format!("token={token}");
        self.post("/token/introspection", INTROSPECTION_CLIENT, &body)
            .await
            .unwrap_or_else(|status| panic!("introspection: HTTP {status}"))
    }

    async fn post(&self, path: &str, client: (&str, &str), body: &str) -> Result<Value, u16> {
        use base64::Engine;
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", client.0, client.1));
        let reply = send(
            Method::POST,
            &format!("{}{path}", self.issuer),
            &[
                ("authorization", &format!("Basic {basic}")),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            body.as_bytes(),
        )
        .await;
        match reply.status.as_u16() {
            200 => Ok(if reply.body.is_empty() {
                Value::Null
            } else {
                reply.json()
            }),
            other => Err(other),
        }
    }

    /// Stops the provider (its endpoints refuse connections from now on).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}
