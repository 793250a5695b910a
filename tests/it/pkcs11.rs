//! The PKCS#11 signer against a real SoftHSM2 token: the key pair is generated on the token by
//! `resigner keys generate --pkcs11`, its public JWK published, `resigner serve` re-signs
//! through the token and npm `jose` verifies the result from the proxy's JWKS (ES256, RS256);
//! the token taken away gives 503 `signing_unavailable` (counted, logged, shown in
//! `/admin/status`) and signing resumes when it is back, without a restart; a token key whose
//! public half is not published never signs. Each test has its own SoftHSM directory and its
//! own proxy process (the module's state is per process); [`module_level`] drives the signer
//! API itself, in a child test process per SoftHSM directory.

pub(crate) mod managed;
mod module_level;

use std::path::PathBuf;

use http::Method;
use resigner::jose::alg::Alg;
use serde_json::{Value, json};

use crate::common::serve::{Serve, wait_for};
use crate::common::softhsm::SoftHsm;
use crate::common::*;

/// A proxy process signing with a key on a SoftHSM token, and what the test needs around it.
struct HsmProxy {
    fixture: FixtureBuilder,
    hsm: SoftHsm,
    _serve: Serve,
    public: String,
    admin: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl HsmProxy {
    /// Generates `alg` key `kid` on a new token and starts `resigner serve` signing with it;
    /// publishes its JWK (as printed by `keys generate`) when `publish`.
    async fn start(alg: Alg, kid: &str, publish: bool) -> HsmProxy {
        let hsm = SoftHsm::start("resigner");
        let jwk = hsm.keys("generate", "signing", alg, kid);
        assert_eq!(
            (jwk["kid"].as_str(), jwk["alg"].as_str()),
            (Some(kid), Some(alg.name()))
        );
        assert!(
            jwk.get("d").is_none() && jwk.get("p").is_none(),
            "public members only"
        );
        let fixture = Fixture::builder()
            .await
            .with_proxy(|proxy| proxy.pkcs11_key(&hsm, "signing", alg, kid));
        let dir = tempfile::tempdir().unwrap();
        let (public, admin) = (free_addr(), free_addr());
        let config = fixture.write_config(dir.path(), &public, &admin);
        let log = dir.path().join("serve.log");
        let serve = hsm.serve(&config, &log);
        let proxy = HsmProxy {
            fixture,
            hsm,
            _serve: serve,
            public: format!("http://{public}"),
            admin: format!("http://{admin}"),
            log,
            _dir: dir,
        };
        wait_for(&format!("{}/healthz", proxy.admin), 200).await;
        if publish {
            let put = send(
                Method::PUT,
                &format!("{}/api/v2/keys/custom-signing", proxy.admin),
                &[
                    ("authorization", &format!("Bearer {ADMIN_TOKEN}")),
                    ("content-type", "application/json"),
                ],
                json!({ "keys": [jwk] }).to_string().as_bytes(),
            )
            .await;
            assert_eq!(put.status, 200, "{:?}", put.body);
            wait_for(&format!("{}/readyz", proxy.admin), 200).await;
        }
        proxy
    }

    async fn call(&self) -> Reply {
        get_bearer(&format!("{}/api/x", self.public), &self.fixture.token()).await
    }

    async fn status(&self) -> Value {
        get(&format!("{}/admin/status", self.admin), &[])
            .await
            .json()
    }

    async fn metrics(&self) -> String {
        text(&get(&format!("{}/metrics", self.admin), &[]).await)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

/// The 503 was counted as `signing_unavailable`.
fn assert_signing_unavailable(metrics: &str) {
    let failures = "resigner_verification_failures_total{reason=\"signing_unavailable\"}";
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with(failures) && !l.ends_with(" 0")),
        "{metrics}"
    );
}

fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

/// Verifies `token` with npm `jose` against the proxy's JWKS; returns its header and claims.
async fn jose_verify(proxy: &HsmProxy, token: String, alg: Alg) -> Value {
    crate::common::jose::jose_verify(
        format!("{}/.well-known/jwks.json", proxy.public),
        token,
        AUDIENCE,
        "https://resigner.test/",
        alg,
    )
    .await
}

#[tokio::test]
async fn the_proxy_re_signs_through_softhsm_and_jose_verifies_es256_and_rs256() {
    for (alg, kid) in [(Alg::ES256, "hsm-es256"), (Alg::RS256, "hsm-rs256")] {
        let proxy = HsmProxy::start(alg, kid, true).await;
        let reply = proxy.call().await;
        assert_eq!(reply.status, 200, "{alg}: {}", text(&reply));
        let forwarded = proxy.fixture.upstream.last().bearer();
        let verdict = jose_verify(&proxy, forwarded, alg).await;
        assert_eq!(verdict["header"]["kid"], kid);
        assert_eq!(verdict["header"]["alg"], alg.name());
        assert_eq!(verdict["claims"]["sub"], "user-42");

        let status = proxy.status().await;
        let key = &status["signing"]["keys"][0];
        assert_eq!(
            (key["backend"].as_str(), key["healthy"].as_bool()),
            (Some("pkcs11"), Some(true)),
            "{status}"
        );
        let metrics = proxy.metrics().await;
        let count = format!(
            "resigner_signature_duration_seconds_count{{alg=\"{}\",backend=\"pkcs11\"}} 1",
            alg.name()
        );
        assert!(metrics.lines().any(|line| line == count), "{metrics}");

        // `keys jwks --pkcs11` reads the same public key from the token.
        let jwks = proxy.hsm.keys("jwks", "signing", alg, kid);
        let served = get(&format!("{}/.well-known/jwks.json", proxy.public), &[])
            .await
            .json();
        assert_eq!(jwks["keys"][0]["x"], served["keys"][0]["x"]);
        assert_eq!(jwks["keys"][0]["n"], served["keys"][0]["n"]);
    }
}

#[tokio::test]
async fn a_token_that_goes_away_gives_503_and_signing_resumes_when_it_is_back() {
    let proxy = HsmProxy::start(Alg::ES256, "hsm-away", true).await;
    assert_eq!(proxy.call().await.status, 200);

    proxy.hsm.remove_token();
    // A new IdP token each call: a cached re-signed token would hide the signer.
    let reply = proxy.call().await;
    assert_eq!(reply.status, 503, "{}", text(&reply));
    assert_eq!(reply.json()["error"], "temporarily_unavailable");
    assert_signing_unavailable(&proxy.metrics().await);
    let status = proxy.status().await;
    let key = &status["signing"]["keys"][0];
    assert_eq!(key["healthy"], false, "{status}");
    assert!(key["backend_problem"].is_string(), "{status}");
    let metrics = proxy.metrics().await;
    assert!(
        metrics.lines().any(|l| l
            .starts_with("resigner_signing_errors_total{backend=\"pkcs11\",kind=\"unavailable\"}")),
        "{metrics}"
    );
    assert!(
        proxy.log().contains("PKCS#11 key stopped signing"),
        "{}",
        proxy.log()
    );

    proxy.hsm.restore_token();
    let mut last = None;
    for _ in 0..40 {
        let reply = proxy.call().await;
        if reply.status == 200 {
            last = Some(reply);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let reply = last.expect("signing resumes once the token is back, without a restart");
    assert_eq!(reply.status, 200);
    let verdict = jose_verify(&proxy, proxy.fixture.upstream.last().bearer(), Alg::ES256).await;
    assert_eq!(verdict["header"]["kid"], "hsm-away");
    assert_eq!(proxy.status().await["signing"]["keys"][0]["healthy"], true);
}

#[tokio::test]
async fn a_token_key_whose_public_half_is_not_published_never_signs() {
    let proxy = HsmProxy::start(Alg::ES256, "hsm-unpublished", false).await;
    let reply = proxy.call().await;
    assert_eq!(reply.status, 503, "{}", text(&reply));
    assert_eq!(reply.json()["error"], "temporarily_unavailable");
    assert_signing_unavailable(&proxy.metrics().await);
    assert_eq!(proxy.fixture.upstream.count(), 0, "nothing was forwarded");
    let ready = get(&format!("{}/readyz", proxy.admin), &[]).await;
    assert_eq!(ready.status, 503);
    assert!(text(&ready).contains("hsm-unpublished"), "{}", text(&ready));
    let metrics = proxy.metrics().await;
    assert!(
        !metrics.contains("backend=\"pkcs11\"} "),
        "no signature was made: {metrics}"
    );
}

#[tokio::test]
async fn a_reload_to_a_key_that_cannot_be_connected_is_refused_and_the_running_key_signs_on() {
    let proxy = HsmProxy::start(Alg::ES256, "hsm-reload", true).await;
    assert_eq!(proxy.call().await.status, 200);
    let config = proxy._dir.path().join("resigner.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("key_label = \"signing\""), "{text}");
    std::fs::write(
        &config,
        text.replace("key_label = \"signing\"", "key_label = \"gone\""),
    )
    .unwrap();
    let mut reload = Value::Null;
    for _ in 0..100 {
        reload = proxy.status().await["reload"].clone();
        if reload["failed"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(reload["ok"], false, "{reload}");
    let errors = reload["errors"].to_string();
    assert!(
        errors.contains("no private key labelled \\\"gone\\\""),
        "{errors}"
    );
    assert_eq!(
        proxy.call().await.status,
        200,
        "the running key still signs"
    );
}

#[tokio::test]
async fn a_token_key_that_cannot_be_found_stops_the_start_with_the_reason() {
    let hsm = SoftHsm::start("resigner");
    let fixture = Fixture::builder()
        .await
        .with_proxy(|proxy| proxy.pkcs11_key(&hsm, "no-such-key", Alg::ES256, "k"));
    let dir = tempfile::tempdir().unwrap();
    let config = fixture.write_config(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
    let config = config.to_str().unwrap().to_string();
    let (ok, _, stderr) = hsm.resigner(&["check", "--config", &config]);
    assert!(!ok);
    assert!(
        stderr.contains("signing key \"k\"")
            && stderr.contains("no private key labelled \"no-such-key\""),
        "{stderr}"
    );
}
