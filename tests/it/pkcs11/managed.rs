//! Issue #14 with PKCS#11 custody (`[signing.managed] pkcs11 = {...}`) on a real SoftHSM2
//! token: the first keys and every rotation's new key are generated on the token (read back
//! from it by label with `resigner keys jwks --pkcs11`, matching the published JWK), the store
//! holds labels and public halves only, the token signs tokens that npm `jose` verifies, and
//! each key's certificate (signed on the token) verifies with `openssl`, its `pkcs7` form too.

use resigner::jose::alg::Alg;
use serde_json::Value;

use crate::common::serve::wait_for;
use crate::common::softhsm::SoftHsm;
use crate::common::*;
use crate::managed_keys::kid_where;

const SK_TOKEN: &str = "test-hsm-signing-token-0123456789";

fn header_kid(token: &str) -> String {
    let header = resigner::jose::b64::decode(token.split('.').next().unwrap()).unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The public JWK of the key labelled `label` on the token, as the token gives it.
fn on_token(hsm: &SoftHsm, label: &str, alg: Alg) -> Value {
    let spec = hsm.spec(label);
    let (ok, stdout, stderr) =
        hsm.resigner(&["keys", "jwks", "--pkcs11", &spec, "--alg", alg.name()]);
    assert!(ok, "key {label} is on the token: {stderr}");
    let jwks: Value = serde_json::from_str(&stdout).unwrap();
    jwks["keys"][0].clone()
}

/// `openssl verify` of a self-signed certificate, and `openssl pkcs7 -print_certs` of its
/// PKCS#7 form giving the same certificate back.
pub(crate) fn openssl_checks(dir: &std::path::Path, key: &Value) {
    let cert = dir.join(format!("{}.pem", key["kid"].as_str().unwrap()));
    std::fs::write(&cert, key["cert"].as_str().unwrap()).unwrap();
    let verify = std::process::Command::new("openssl")
        .args(["verify", "-check_ss_sig", "-partial_chain", "-CAfile"])
        .arg(&cert)
        .arg(&cert)
        .output()
        .expect("openssl runs (scripts/test.sh installs it)");
    assert!(
        verify.status.success(),
        "the token-signed certificate verifies: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let p7 = dir.join("cert.p7b");
    std::fs::write(&p7, key["pkcs7"].as_str().unwrap()).unwrap();
    let printed = std::process::Command::new("openssl")
        .args(["pkcs7", "-print_certs", "-in"])
        .arg(&p7)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&printed.stdout);
    let body = |pem: &str| -> String {
        pem.lines()
            .filter(|l| {
                !l.starts_with("-----") && !l.starts_with("subject") && !l.starts_with("issuer")
            })
            .collect()
    };
    assert_eq!(
        body(&printed),
        body(key["cert"].as_str().unwrap()),
        "{printed}"
    );
}

async fn rotate_on_the_token(alg: Alg) {
    let hsm = SoftHsm::start("managed");
    let fixture = Fixture::builder().await.with_proxy(|proxy| {
        proxy
            .managed_on_token(&hsm, alg)
            .min_published_age("0s")
            .admin_token("signing", SK_TOKEN, &SIGNING_SCOPES)
    });
    let dir = tempfile::tempdir().unwrap();
    let (public, admin) = (free_addr(), free_addr());
    let config = fixture.write_config(dir.path(), &public, &admin);
    let log = dir.path().join("serve.log");
    let _serve = hsm.serve(&config, &log);
    let admin = format!("http://{admin}");
    wait_for(&format!("{admin}/readyz"), 200).await;
    let list = || async {
        let reply = get_bearer(&format!("{admin}/api/v2/keys/signing"), SK_TOKEN).await;
        assert_eq!(reply.status, 200);
        reply.json().as_array().unwrap().clone()
    };
    let jwks = || async {
        get(&format!("http://{public}/.well-known/jwks.json"), &[])
            .await
            .json()["keys"]
            .as_array()
            .unwrap()
            .clone()
    };

    // The store holds labels and public halves only; each label is a key on the token.
    let stored: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("keys.json")).unwrap()).unwrap();
    let check_stored = |stored: &Value, published: &[Value]| {
        for key in stored["signing"]["keys"].as_array().unwrap() {
            assert!(key.get("sealed").is_none(), "nothing sealed: {key}");
            let label = key["backend_ref"].as_str().unwrap();
            assert!(label.starts_with("resigner-"), "{label}");
            let from_token = on_token(&hsm, label, alg);
            assert_eq!(
                from_token["kid"], key["kid"],
                "the token's key is the stored one"
            );
            if key["state"] != "revoked" {
                assert!(published.iter().any(|j| j["kid"] == key["kid"]));
            }
        }
    };
    check_stored(&stored, &jwks().await);
    let keys = list().await;
    for key in &keys {
        openssl_checks(dir.path(), key);
    }
    let (current, next) = (kid_where(&keys, "current"), kid_where(&keys, "next"));

    let rotated = crate::managed_keys::rotate(&admin, SK_TOKEN).await;
    assert_eq!(rotated.status, 201, "{:?}", rotated.json());
    let new_next = rotated.json()["kid"].as_str().unwrap().to_string();
    let keys = list().await;
    assert_eq!(kid_where(&keys, "current"), next);
    assert_eq!(kid_where(&keys, "next"), new_next);
    assert_eq!(kid_where(&keys, "previous"), current);
    let stored: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("keys.json")).unwrap()).unwrap();
    assert_eq!(stored["signing"]["keys"].as_array().unwrap().len(), 3);
    check_stored(&stored, &jwks().await);
    openssl_checks(
        dir.path(),
        keys.iter().find(|k| k["kid"] == new_next.as_str()).unwrap(),
    );

    // The token signs with the new current key; jose verifies it from our JWKS.
    let reply = get_bearer(&format!("http://{public}/api/x"), &fixture.token()).await;
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let token = fixture.upstream.last().bearer();
    assert_eq!(header_kid(&token), next);
    crate::common::jose::jose_verify(
        format!("http://{public}/.well-known/jwks.json"),
        token,
        AUDIENCE,
        "https://resigner.test/",
        alg,
    )
    .await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("generated on the PKCS#11 token"), "{text}");
}

#[tokio::test]
async fn managed_es256_keys_are_generated_and_rotated_on_the_token() {
    rotate_on_the_token(Alg::ES256).await;
}

#[tokio::test]
async fn managed_ps256_keys_are_generated_and_rotated_on_the_token() {
    rotate_on_the_token(Alg::PS256).await;
}
