//! npm `jose` as the independent verifier of what the proxy signs: `tests/sdk/verify_jose.mjs`
//! fetches a JWKS, verifies a token for an audience, issuer and algorithm, and prints the
//! protected header and claims. `scripts/test.sh` installs Node.js and `jose`.

use std::path::PathBuf;
use std::process::Command;

use resigner::jose::alg::Alg;
use serde_json::Value;

/// Verifies `token` with npm `jose` against the JWKS at `jwks_url`, for `audience` and
/// `issuer`; returns `{header, claims}`. Fails the test when jose rejects it.
pub async fn jose_verify(
    jwks_url: String,
    token: String,
    audience: &str,
    issuer: &str,
    alg: Alg,
) -> Value {
    let sdk = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk");
    assert!(
        sdk.join("node_modules/jose/package.json").exists(),
        "npm jose is not installed in {}: run scripts/test.sh",
        sdk.display()
    );
    let args = [
        sdk.join("verify_jose.mjs").display().to_string(),
        jwks_url,
        token,
        audience.to_string(),
        issuer.to_string(),
        alg.name().to_string(),
    ];
    let output = tokio::task::spawn_blocking(move || Command::new("node").args(args).output())
        .await
        .unwrap()
        .expect("node runs (scripts/test.sh installs it)");
    assert!(
        output.status.success(),
        "jose rejected the {alg} token: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The protected header and the claims of a compact JWS, decoded without verifying it (for
/// asserting on what a verified token carries).
pub fn decoded(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut next = || -> Value {
        let part = parts.next().expect("a compact JWS");
        serde_json::from_slice(&resigner::jose::b64::decode(part).expect("base64url"))
            .expect("a JSON segment")
    };
    (next(), next())
}
