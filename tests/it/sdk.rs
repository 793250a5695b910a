//! The management API driven by Auth0's official SDKs, unmodified, pointed at the proxy with
//! their `baseUrl` / `base_url` option: npm `auth0` 7.x (`CustomSigningClient`) and PyPI
//! `auth0-python` 6.x (`Auth0(...).keys.custom_signing`). Each runs `tests/sdk/custom_signing.*`:
//! get (404) → set → get → set with a private member (400) → set with a read-only token (403)
//! → delete → get (404), every error asserted as the SDK's own error class. The packages are
//! installed by `scripts/test.sh`; these tests fail (never skip) without them. The managed
//! signing keys' API (`SigningClient`, `keys.signing`) is driven in [`signing`], on one node and
//! on three replicas.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use http::Method;
use resigner::admin::error::AdminError;
use resigner::jose::alg::Alg;
use serde_json::{Value, json};

use crate::common::*;

mod signing;

const PATH: &str = "/api/v2/keys/custom-signing";
const READER: &str = "sdk-reader-token-abcdefghijklmnop";
const INSTALL: &str = "run scripts/test.sh, which installs the SDKs";

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk")
}

/// A proxy with no custom keys, the full-scope test token and a read-only one, and two fresh
/// public JWKs written to a file for the script.
struct Sdk {
    fixture: Fixture,
    keys: Vec<Value>,
    keys_file: PathBuf,
}

impl Sdk {
    async fn start() -> Sdk {
        let fixture = Fixture::builder()
            .await
            .unpublished()
            .admin_token("sdk-reader", READER, &["read:custom_signing_keys"])
            .start()
            .await;
        let keys = vec![public_jwk(Alg::ES256), public_jwk(Alg::RS256)];
        let keys_file = fixture.proxy.dir.path().join("sdk-keys.json");
        std::fs::write(&keys_file, Value::from(keys.clone()).to_string()).unwrap();
        Sdk {
            fixture,
            keys,
            keys_file,
        }
    }

    /// `program script BASE_URL FULL_TOKEN READ_ONLY_TOKEN KEYS_FILE`, run off the runtime's
    /// only thread so the proxy keeps serving the SDK.
    async fn run(&self, program: &'static str, script: &str) -> Output {
        let args = vec![
            self.fixture.admin_url("/api/v2"),
            ADMIN_TOKEN.to_string(),
            READER.to_string(),
            self.keys_file.display().to_string(),
        ];
        run_script(program, script, args).await
    }

    /// Asserts the script succeeded and returns its JSON summary.
    fn summary(&self, output: &Output, what: &str) -> Value {
        let summary = summary_of(output, what);
        let kids: Vec<Value> = self.keys.iter().map(|k| k["kid"].clone()).collect();
        assert_eq!(summary["kids"], json!(kids), "{summary}");
        summary
    }

    /// The steps every script runs, with the error class, status and our message where the
    /// SDK must raise.
    fn check_steps(&self, summary: &Value) {
        let no_keys = AdminError::NoKeys.to_string();
        let forbidden = AdminError::Forbidden(vec![
            "create:custom_signing_keys",
            "update:custom_signing_keys",
        ])
        .to_string();
        let private = format!(
            "keys[0] (kid {:?}): member \"d\" is private key material; private keys must never be uploaded, only public JWKs",
            self.keys[0]["kid"].as_str().unwrap()
        );
        let error = |step: &str, class: &str, status: u16, code: &str, message: &str| json!({"step": step, "error": class, "statusCode": status, "errorCode": code, "message": message});
        let expected = json!([
            error(
                "get (empty)",
                "NotFoundError",
                404,
                "inexistent_custom_signing_keys",
                &no_keys
            ),
            error(
                "get (wrong token)",
                "UnauthorizedError",
                401,
                "invalid_token",
                &AdminError::Unauthorized.to_string()
            ),
            {"step": "set", "ok": true},
            {"step": "get", "ok": true},
            error(
                "set (private member d)",
                "BadRequestError",
                400,
                "invalid_body",
                &private
            ),
            error(
                "set (read-only token)",
                "ForbiddenError",
                403,
                "insufficient_scope",
                &forbidden
            ),
            {"step": "get (after the refused writes)", "ok": true},
            {"step": "delete", "ok": true},
            error(
                "get (after delete)",
                "NotFoundError",
                404,
                "inexistent_custom_signing_keys",
                &no_keys
            ),
        ]);
        assert_eq!(summary["steps"], expected, "{summary:#}");
    }

    /// Our own view after the script: no keys (404), and only the IdP's key published.
    async fn assert_empty(&self) {
        let reply = send(
            Method::GET,
            &self.fixture.admin_url(PATH),
            &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            b"",
        )
        .await;
        assert_eq!(reply.status, 404, "{:?}", reply.body);
        let jwks = get(&self.fixture.url("/.well-known/jwks.json"), &[])
            .await
            .json();
        let kids: Vec<&Value> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| &k["kid"])
            .collect();
        assert_eq!(kids, [&json!("idp-1")], "{jwks}");
    }
}

/// Runs `program sdk_dir/script args...` off the runtime's threads (the proxy keeps serving).
pub(crate) async fn run_script(program: &'static str, script: &str, args: Vec<String>) -> Output {
    let mut command = Command::new(program);
    command
        .arg(sdk_dir().join(script))
        .args(args)
        .current_dir(sdk_dir());
    tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): {INSTALL}"))
}

/// Asserts a script succeeded (exit 2: its SDK is missing) and returns its JSON summary.
pub(crate) fn summary_of(output: &Output, what: &str) -> Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.code() != Some(2),
        "{what} is not installed: {INSTALL}\n{stderr}"
    );
    assert!(
        output.status.success(),
        "{what} against the management API failed ({}):\n{stderr}\nstdout: {stdout}",
        output.status
    );
    let summary: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{what}: no JSON summary ({e}): {stdout}\n{stderr}"));
    println!("{what}: {summary}");
    summary
}

#[tokio::test]
async fn node_sdk_custom_signing_client() {
    let package = sdk_dir().join("node_modules/auth0/package.json");
    let manifest = std::fs::read_to_string(&package).unwrap_or_else(|e| {
        panic!(
            "the npm package auth0 is not installed ({}: {e}): {INSTALL}",
            package.display()
        )
    });
    let version = serde_json::from_str::<Value>(&manifest).unwrap()["version"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        version.starts_with("7."),
        "tests/sdk has auth0 {version}, not 7.x: {INSTALL}"
    );

    let sdk = Sdk::start().await;
    let output = sdk.run("node", "custom_signing.mjs").await;
    let summary = sdk.summary(&output, "npm auth0 (node tests/sdk/custom_signing.mjs)");
    assert_eq!(summary["sdk"], "auth0");
    assert_eq!(summary["version"], version.as_str());
    sdk.check_steps(&summary);
    sdk.assert_empty().await;
}

#[tokio::test]
async fn python_sdk_custom_signing() {
    let sdk = Sdk::start().await;
    let output = sdk.run("python3", "custom_signing.py").await;
    let summary = sdk.summary(
        &output,
        "PyPI auth0-python (python3 tests/sdk/custom_signing.py)",
    );
    assert_eq!(summary["sdk"], "auth0-python");
    assert!(
        summary["version"].as_str().unwrap().starts_with("6."),
        "auth0-python {} is not 6.x: {INSTALL}",
        summary["version"]
    );
    sdk.check_steps(&summary);
    sdk.assert_empty().await;
}
