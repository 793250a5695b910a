//! Issue #14's "done when": rotation and revocation of managed signing keys through Auth0's
//! official SDKs, unmodified (npm `auth0` 7.x `SigningClient`, PyPI `auth0-python` 6.x
//! `keys.signing`), on one node (file store) and on three replicas sharing PostgreSQL. Each
//! SDK runs `tests/sdk/signing_keys.*`: list → get → get unknown (404) → wrong token (401) →
//! rotate with a read-only token (403) → rotate → every replica shows it → revoke the current
//! key (409) → revoke the previous key → every replica shows it → get the revoked key. The
//! Node script runs first, then the Python one from where it left the keys. After each, our
//! own view is checked: the API's states, the JWKS, and the kid every replica signs with.

use resigner::admin::error::AdminError;
use resigner::app::rotation::RotationError;
use resigner::keys::managed::{KeyState, ManagedError};
use serde_json::{Value, json};

use super::{run_script, summary_of};
use crate::common::replicas::Cluster;
use crate::common::*;
use crate::managed_keys::kid_where;

const FULL: &str = "sdk-signing-full-token-0123456789";
const READ: &str = "sdk-signing-read-token-0123456789";

fn tokens(builder: ProxyBuilder) -> ProxyBuilder {
    builder
        .min_published_age("0s")
        .admin_token("sdk-signing", FULL, &SIGNING_SCOPES)
        .admin_token("sdk-signing-read", READ, &["read:signing_keys"])
}

/// The steps both scripts run, with the SDK's error class and our status, errorCode and
/// message; `base` is the SDK's class for a status its API description does not list, `kids`
/// what the script reported.
fn expected_steps(base: &str, kids: &Value) -> Value {
    let error = |step: &str, class: &str, status: u16, code: &str, err: AdminError| {
        json!({"step": step, "error": class, "statusCode": status, "errorCode": code,
            "message": err.to_string()})
    };
    let ok = |step: &str| json!({"step": step, "ok": true});
    let current_not_previous = RotationError::Managed(ManagedError::NotPrevious {
        kid: kids["next"].as_str().unwrap().to_string(),
        state: KeyState::Current,
    });
    json!([
        ok("list"),
        ok("get (next)"),
        error(
            "get (unknown kid)",
            "NotFoundError",
            404,
            "inexistent_signing_key",
            AdminError::UnknownSigningKey("no-such-kid".into())
        ),
        error(
            "list (wrong token)",
            "UnauthorizedError",
            401,
            "invalid_token",
            AdminError::Unauthorized
        ),
        error(
            "rotate (read-only token)",
            "ForbiddenError",
            403,
            "insufficient_scope",
            AdminError::Forbidden(vec!["create:signing_keys", "update:signing_keys"])
        ),
        ok("rotate"),
        ok("list (every replica, after rotate)"),
        error(
            "revoke (current)",
            base,
            409,
            "conflict",
            current_not_previous.into()
        ),
        ok("revoke (previous)"),
        ok("list (every replica, after revoke)"),
        ok("get (revoked)"),
    ])
}

/// Runs both SDK scripts against `admins`; after each, `check` sees the kids it reported.
async fn both_sdks(admins: &[String], mut after: impl AsyncFnMut(&Value)) {
    let bases = admins
        .iter()
        .map(|a| format!("{a}/api/v2"))
        .collect::<Vec<_>>()
        .join(",");
    let args = || vec![bases.clone(), FULL.to_string(), READ.to_string()];
    let mut previous: Option<Value> = None;
    for (program, script, sdk, major, base) in [
        ("node", "signing_keys.mjs", "auth0", "7.", "ManagementError"),
        (
            "python3",
            "signing_keys.py",
            "auth0-python",
            "6.",
            "ApiError",
        ),
    ] {
        let output = run_script(program, script, args()).await;
        let summary = summary_of(&output, &format!("{sdk} ({program} tests/sdk/{script})"));
        assert_eq!(summary["sdk"], sdk);
        assert!(
            summary["version"].as_str().unwrap().starts_with(major),
            "{sdk} {} is not {major}x",
            summary["version"]
        );
        assert_eq!(summary["replicas"], admins.len());
        let expected = expected_steps(base, &summary["kids"]);
        assert_eq!(summary["steps"], expected, "{summary:#}");
        let kids = &summary["kids"];
        if let Some(before) = &previous {
            // The second SDK started where the first left the keys.
            assert_eq!(kids["current"], before["next"], "{kids} after {before}");
            assert_eq!(kids["next"], before["rotated"], "{kids} after {before}");
        }
        after(kids).await;
        previous = Some(kids.clone());
    }
}

async fn listed(admin: &str) -> Vec<Value> {
    let reply = get_bearer(&format!("{admin}/api/v2/keys/signing"), READ).await;
    assert_eq!(reply.status, 200);
    reply.json().as_array().unwrap().clone()
}

/// Our API and JWKS at `admin` / `public` agree with what the SDK reported.
async fn agrees(admin: &str, jwks_url: &str, kids: &Value) {
    let keys = listed(admin).await;
    assert_eq!(kid_where(&keys, "current"), kids["next"].as_str().unwrap());
    assert_eq!(kid_where(&keys, "next"), kids["rotated"].as_str().unwrap());
    let revoked = keys.iter().find(|k| k["kid"] == kids["current"]).unwrap();
    assert_eq!(revoked["revoked"], true, "{revoked}");
    let jwks = get(jwks_url, &[]).await.json();
    let published: Vec<&Value> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["kid"])
        .collect();
    assert_eq!(published[..2], [&kids["next"], &kids["rotated"]], "{jwks}");
    assert!(!published.contains(&&kids["current"]), "{jwks}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdks_rotate_and_revoke_on_one_node() {
    let f = Fixture::builder()
        .await
        .with_proxy(|proxy| tokens(proxy.managed(resigner::jose::alg::Alg::ES256)))
        .start()
        .await;
    let admin = f.admin_url("");
    let jwks = f.proxy.url("/.well-known/jwks.json");
    both_sdks(std::slice::from_ref(&admin), async |kids: &Value| {
        agrees(&admin, &jwks, kids).await;
        let reply = get_bearer(&f.proxy.url("/api/x"), &f.token()).await;
        assert_eq!(reply.status, 200);
        let token = f.upstream.last().bearer();
        let header: Value = serde_json::from_slice(
            &resigner::jose::b64::decode(token.split('.').next().unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(header["kid"], kids["next"], "the new current key signs");
        jose::jose_verify(
            jwks.clone(),
            token,
            AUDIENCE,
            "https://resigner.test/",
            resigner::jose::alg::Alg::ES256,
        )
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdks_rotate_and_revoke_on_three_replicas() {
    let cluster = Cluster::managed(3, "60s", tokens).await;
    let admins = cluster.admins();
    both_sdks(&admins, async |kids: &Value| {
        for (i, admin) in admins.iter().enumerate() {
            let jwks = cluster.replicas[i].public_url("/.well-known/jwks.json");
            agrees(admin, &jwks, kids).await;
            assert_eq!(
                cluster.resigned_kid(i).await,
                kids["next"].as_str().unwrap(),
                "replica {i} signs with the new current key"
            );
        }
        crate::replicas::assert_same_jwks(&cluster).await;
    })
    .await;
}
