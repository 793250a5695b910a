//! Issue #14 with Transit custody (`[signing.managed] transit = {...}`) on a real OpenBao:
//! the first keys and each rotation's new key are created in the engine (not exportable, no
//! plaintext backup, under the name the store holds), the engine signs the re-signed token
//! (npm `jose` verifies it from our JWKS) and each key's certificate (`openssl` verifies it).

use http::Method;
use resigner::jose::alg::Alg;
use serde_json::Value;

use crate::common::openbao::TestOpenBao;
use crate::common::*;
use crate::managed_keys::kid_where;
use crate::pkcs11::managed::openssl_checks;

const SK_TOKEN: &str = "test-transit-signing-token-0123456789";

/// Every managed key's name is a key in the engine that cannot leave it.
async fn in_the_engine(bao: &TestOpenBao, stored: &Value, key_type: &str) {
    for key in stored["signing"]["keys"].as_array().unwrap() {
        assert!(key.get("sealed").is_none(), "nothing sealed: {key}");
        let name = key["backend_ref"].as_str().unwrap();
        assert!(name.starts_with("resigner-"), "{name}");
        let reply = bao
            .api(Method::GET, &format!("transit/keys/{name}"), None)
            .await;
        assert_eq!(reply.status, 200, "{name} is in the engine");
        let data = &reply.json()["data"];
        assert_eq!(data["type"], key_type, "{data}");
        assert_eq!(data["exportable"], false, "{data}");
        assert_eq!(data["allow_plaintext_backup"], false, "{data}");
    }
}

async fn rotate_in_the_engine(alg: Alg, key_type: &str) {
    let bao = TestOpenBao::start().await;
    let f = Fixture::builder()
        .await
        .with_proxy(|proxy| {
            proxy
                .managed_in_transit(&bao, alg)
                .min_published_age("0s")
                .admin_token("signing", SK_TOKEN, &SIGNING_SCOPES)
        })
        .start()
        .await;
    let list = || async {
        let reply = get_bearer(&f.admin_url("/api/v2/keys/signing"), SK_TOKEN).await;
        assert_eq!(reply.status, 200);
        reply.json().as_array().unwrap().clone()
    };
    let stored = || {
        serde_json::from_slice::<Value>(
            &std::fs::read(f.proxy.dir.path().join("keys.json")).unwrap(),
        )
        .unwrap()
    };
    in_the_engine(&bao, &stored(), key_type).await;
    let keys = list().await;
    for key in &keys {
        openssl_checks(f.proxy.dir.path(), key);
    }
    let next = kid_where(&keys, "next");

    let rotated = crate::managed_keys::rotate(&f.admin_url(""), SK_TOKEN).await;
    assert_eq!(rotated.status, 201, "{:?}", rotated.json());
    let new_next = rotated.json()["kid"].as_str().unwrap().to_string();
    let stored = stored();
    assert_eq!(stored["signing"]["keys"].as_array().unwrap().len(), 3);
    in_the_engine(&bao, &stored, key_type).await;
    let keys = list().await;
    assert_eq!(kid_where(&keys, "current"), next);
    openssl_checks(
        f.proxy.dir.path(),
        keys.iter().find(|k| k["kid"] == new_next.as_str()).unwrap(),
    );

    let reply = get_bearer(&f.proxy.url("/api/x"), &f.token()).await;
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let token = f.upstream.last().bearer();
    let header: Value = serde_json::from_slice(
        &resigner::jose::b64::decode(token.split('.').next().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        header["kid"],
        next.as_str(),
        "the engine signs with the new current key"
    );
    crate::common::jose::jose_verify(
        f.proxy.url("/.well-known/jwks.json"),
        token,
        AUDIENCE,
        "https://resigner.test/",
        alg,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_es256_keys_are_created_and_rotated_in_the_engine() {
    rotate_in_the_engine(Alg::ES256, "ecdsa-p256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_rs256_keys_are_created_and_rotated_in_the_engine() {
    rotate_in_the_engine(Alg::RS256, "rsa-2048").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_eddsa_keys_are_created_and_rotated_in_the_engine() {
    rotate_in_the_engine(Alg::EdDSA, "ed25519").await;
}
