//! The Vault/OpenBao Transit signer against a real OpenBao dev server: signatures by the
//! pinned key version verify (jsonwebtoken, with our JWK and with OpenBao's own PEM); a
//! version rotated in inside OpenBao is not used; a hung KMS fails within the timeout and
//! then fast (circuit), and signing recovers when it answers again; a KMS whose key material
//! changed under the same name never yields a signature; refusals are told apart by kind.
//! [`proxy`] runs the same through the whole proxy.

use std::time::{Duration, Instant};

use http::Method;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use resigner::http::tls::ClientTls;
use resigner::jose::alg::Alg;
use resigner::keys::SigningKey;
use resigner::keys::signer::transit::circuit::CircuitSettings;
use resigner::keys::signer::transit::wire::WireError;
use resigner::keys::signer::transit::{TransitError, TransitKey, TransitSettings, TransitToken};
use resigner::keys::signer::{Backend, SignerError};
use serde_json::Value;

use crate::common::openbao::TestOpenBao;

mod managed;
mod proxy;

fn settings(bao: &TestOpenBao, key: &str) -> TransitSettings {
    TransitSettings {
        address: bao.address(),
        mount: "transit".into(),
        key: key.into(),
        token: TransitToken::from_file(&bao.token_file()).expect("token file"),
        tls: None,
        timeout: Duration::from_millis(800),
        key_version: None,
        circuit: CircuitSettings {
            failures: 3,
            cool_down: Duration::from_millis(500),
        },
    }
}

/// The key as the proxy holds it: a [`SigningKey`] over the Transit backend, kid `t-1`.
async fn connect(settings: TransitSettings, alg: Alg) -> Result<SigningKey, TransitError> {
    let (key, material) = TransitKey::connect(settings, alg).await?;
    let backend = Backend::Transit(Box::new(key));
    Ok(SigningKey::new(Some("t-1".into()), alg, material, backend))
}

/// A server with ES256 key `k`, connected.
async fn es256_key() -> (TestOpenBao, SigningKey) {
    let bao = TestOpenBao::start().await;
    bao.create_key("k", "ecdsa-p256").await;
    let key = connect(settings(&bao, "k"), Alg::ES256).await.unwrap();
    (bao, key)
}

/// OpenBao's PEM public key of `version` of `key`.
async fn openbao_pem(bao: &TestOpenBao, key: &str, version: u32) -> String {
    let reply = bao
        .api(Method::GET, &format!("transit/keys/{key}"), None)
        .await;
    reply.json()["data"]["keys"][version.to_string()]["public_key"]
        .as_str()
        .expect("public_key")
        .to_string()
}

/// Verifies `token` with our published JWK and with OpenBao's PEM; returns the claims.
fn verify(token: &str, key: &SigningKey, pem: &str, alg: Algorithm) -> Value {
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(Value::Object(key.public_jwk().to_json())).expect("our JWK");
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let ours = DecodingKey::from_jwk(&jwk).expect("decoding key from our JWK");
    let theirs = match alg {
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem.as_bytes()),
        _ => DecodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .expect("decoding key from OpenBao's PEM");
    let claims = jsonwebtoken::decode::<Value>(token, &ours, &validation)
        .expect("verifies with our JWK")
        .claims;
    jsonwebtoken::decode::<Value>(token, &theirs, &validation)
        .expect("verifies with OpenBao's public key");
    claims
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signs_with_every_supported_key_type() {
    let bao = TestOpenBao::start().await;
    bao.create_key("ec256", "ecdsa-p256").await;
    bao.create_key("ec384", "ecdsa-p384").await;
    bao.create_key("rsa", "rsa-2048").await;
    for (name, alg, jwt_alg) in [
        ("ec256", Alg::ES256, Algorithm::ES256),
        ("ec384", Alg::ES384, Algorithm::ES384),
        ("rsa", Alg::RS256, Algorithm::RS256),
        ("rsa", Alg::PS256, Algorithm::PS256),
    ] {
        let key = connect(settings(&bao, name), alg).await.expect("connect");
        assert_eq!((key.backend(), key.key_version()), ("transit", Some(1)));
        let token = key
            .sign_compact_async(br#"{"sub":"user-42","n":1}"#)
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, jwt_alg);
        assert_eq!(header.kid.as_deref(), Some("t-1"));
        let claims = verify(&token, &key, &openbao_pem(&bao, name, 1).await, jwt_alg);
        assert_eq!(claims["sub"], "user-42", "{alg}");
        // The blocking form (CLI commands) signs through the same backend.
        let blocking = tokio::task::block_in_place(|| key.sign_compact(b"{}")).unwrap();
        verify(&blocking, &key, &openbao_pem(&bao, name, 1).await, jwt_alg);
    }
}

#[tokio::test]
async fn a_version_rotated_in_inside_openbao_is_not_used() {
    let (bao, key) = es256_key().await;
    assert_eq!(bao.rotate("k").await, 2);
    let token = key.sign_compact_async(br#"{"sub":"a"}"#).await.unwrap();
    verify(
        &token,
        &key,
        &openbao_pem(&bao, "k", 1).await,
        Algorithm::ES256,
    );
    assert_eq!(key.key_version(), Some(1));
    // A new connection without a pin takes the newest (another JWK); with a pin, the pinned.
    let newest = connect(settings(&bao, "k"), Alg::ES256).await.unwrap();
    assert_eq!(newest.key_version(), Some(2));
    assert_ne!(newest.public_jwk(), key.public_jwk());
    let mut pinned = settings(&bao, "k");
    pinned.key_version = Some(1);
    let pinned = connect(pinned, Alg::ES256).await.unwrap();
    assert_eq!(pinned.public_jwk(), key.public_jwk());
    let mut missing = settings(&bao, "k");
    missing.key_version = Some(7);
    match connect(missing, Alg::ES256).await {
        Err(TransitError::Invalid(WireError::NoVersion(7, 2))) => {}
        other => panic!("a missing pinned version: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_kms_fails_within_the_timeout_then_fast_and_recovers() {
    let (bao, key) = es256_key().await;
    key.sign_compact_async(b"{}").await.expect("signs while up");
    bao.pause();
    for attempt in 0..3 {
        let started = Instant::now();
        let result = key.sign_compact_async(b"{}").await;
        let took = started.elapsed();
        assert!(
            matches!(&result, Err(SignerError::Timeout(text)) if text.contains("transit (timeout)")),
            "attempt {attempt}: {result:?}"
        );
        assert!(
            // Bounded by the timeout, not a hang: the upper bound leaves room for a loaded
            // CI machine (the KMS is stopped, so nothing else can end the call early).
            took >= Duration::from_millis(790) && took < Duration::from_millis(3000),
            "attempt {attempt} took {took:?} for a timeout of 800ms"
        );
    }
    let health = key.health().expect("unhealthy");
    assert!(
        health.starts_with("circuit open: the KMS did not answer"),
        "{health}"
    );
    let started = Instant::now();
    let result = key.sign_compact_async(b"{}").await;
    assert!(
        matches!(&result, Err(SignerError::Unavailable(text)) if text.contains("circuit_open")),
        "{result:?}"
    );
    // No network round trip at all: far below the 800 ms timeout.
    assert!(started.elapsed() < Duration::from_millis(200), "fails fast");
    bao.resume();
    // Once the cool-down has passed, one probe closes the circuit again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let token = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        match key.sign_compact_async(br#"{"sub":"back"}"#).await {
            Ok(token) => break token,
            Err(err) => assert!(Instant::now() < deadline, "no recovery: {err:?}"),
        }
    };
    verify(
        &token,
        &key,
        &openbao_pem(&bao, "k", 1).await,
        Algorithm::ES256,
    );
    assert_eq!(key.health(), None);
}

#[tokio::test]
async fn a_kms_that_lost_its_key_never_yields_a_signature() {
    let (bao, key) = es256_key().await;
    // A new dev server on the same address: the key is gone; OpenBao refuses (400).
    bao.restart().await;
    let reply = bao.api(Method::GET, "transit/keys/k", None).await;
    assert_eq!(reply.status, 404, "dev mode keeps no keys");
    match key.sign_compact_async(b"{}").await {
        Err(SignerError::Refused(text)) => {
            assert!(
                text.contains("400 Bad Request: signing key not found"),
                "{text}"
            )
        }
        other => panic!("a key gone from the KMS: {other:?}"),
    }
    // The same name, new material at the same version: OpenBao signs, the check refuses.
    bao.create_key("k", "ecdsa-p256").await;
    match key.sign_compact_async(b"{}").await {
        Err(SignerError::Refused(text)) => assert!(text.contains("(mismatch)"), "{text}"),
        other => panic!("a signature by other key material: {other:?}"),
    }
    let health = key.health().expect("the last error is shown");
    assert!(
        health.starts_with("the KMS signature does not verify"),
        "answers are not outages: {health}"
    );
}

#[tokio::test]
async fn an_unreachable_kms_is_retried_and_reported_as_unavailable() {
    let bao = TestOpenBao::start().await;
    bao.create_key("k", "rsa-2048").await;
    let key = connect(settings(&bao, "k"), Alg::RS256).await.unwrap();
    let token = bao.token.clone();
    drop(bao);
    let started = Instant::now();
    match key.sign_compact_async(b"{}").await {
        Err(SignerError::Unavailable(text)) => {
            assert!(
                text.starts_with("transit (connect): cannot reach the KMS"),
                "{text}"
            );
            assert!(!text.contains(&token), "{text}");
        }
        other => panic!("a stopped KMS: {other:?}"),
    }
    // Three attempts with 20 ms and 40 ms between them, well inside the timeout.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(60) && took < Duration::from_millis(800),
        "{took:?}"
    );
}

#[tokio::test]
async fn refusals_are_told_apart() {
    let bao = TestOpenBao::start().await;
    bao.create_key("rsa", "rsa-2048").await;
    let mut bad_token = settings(&bao, "rsa");
    bad_token.token = TransitToken::new("not-the-token").unwrap();
    let unknown_key = settings(&bao, "nope");
    let mut bad_mount = settings(&bao, "rsa");
    bad_mount.mount = "../sys".into();
    let mut bad_address = settings(&bao, "rsa");
    bad_address.address = format!("{}/v1", bao.address());
    let cases: [(&str, TransitSettings, Alg, &str); 5] = [
        ("wrong token", bad_token, Alg::RS256, "denied"),
        ("unknown key", unknown_key, Alg::ES256, "not_found"),
        (
            "rsa key for ES256",
            settings(&bao, "rsa"),
            Alg::ES256,
            "invalid",
        ),
        ("mount escaping its path", bad_mount, Alg::RS256, "config"),
        ("address with a path", bad_address, Alg::RS256, "config"),
    ];
    for (name, settings, alg, kind) in cases {
        match connect(settings, alg).await {
            Err(err) => assert_eq!(err.kind(), kind, "{name}: {err}"),
            Ok(key) => panic!("{name}: connected {key:?}"),
        }
    }
    let key = connect(settings(&bao, "rsa"), Alg::RS256).await.unwrap();
    assert!(!format!("{key:?}").contains(&bao.token));
}

#[tokio::test]
async fn an_https_kms_is_trusted_through_ca_file_only() {
    let bao = TestOpenBao::start_tls().await;
    bao.create_key("k", "ecdsa-p256").await;
    match connect(settings(&bao, "k"), Alg::ES256).await {
        Err(TransitError::Connect { reason, .. }) => {
            assert!(reason.contains("UnknownIssuer"), "{reason}")
        }
        other => panic!("a server certificate from an unknown CA: {other:?}"),
    }
    let mut trusted = settings(&bao, "k");
    trusted.tls = Some(ClientTls::load(Some(&bao.ca_file()), None).expect("the CA file loads"));
    let key = connect(trusted, Alg::ES256)
        .await
        .expect("connects over https");
    key.sign_compact_async(br#"{"sub":"tls"}"#)
        .await
        .expect("signs over https");
}
