//! Managed signing keys (`[signing.managed]`, issue #14) on one node with the file store:
//! the first current and next keys are generated at start and published; Auth0's
//! `/api/v2/keys/signing` lists, gets, rotates and revokes them; the next re-signed token
//! carries the new kid and verifies with npm `jose` from our JWKS, a token signed before the
//! rotation still verifies, a revoked key leaves the JWKS; the store file never holds a
//! private key in the clear; a wrong or missing KEK stops the start with the setting named.

use http::Method;
use resigner::jose::alg::Alg;
use serde_json::Value;

use crate::common::*;

const SK_TOKEN: &str = "test-signing-keys-token-0123456789";
const SK_READ_TOKEN: &str = "test-signing-keys-read-token-0123456789";

async fn managed(min_published_age: &str) -> Fixture {
    Fixture::builder()
        .await
        .with_proxy(|proxy| {
            proxy
                .managed(Alg::ES256)
                .min_published_age(min_published_age)
                .admin_token("signing", SK_TOKEN, &SIGNING_SCOPES)
                .admin_token("signing-read", SK_READ_TOKEN, &["read:signing_keys"])
        })
        .start()
        .await
}

fn header_kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&resigner::jose::b64::decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_string()
}

async fn list(f: &Fixture) -> Vec<Value> {
    let reply = get_bearer(&f.admin_url("/api/v2/keys/signing"), SK_READ_TOKEN).await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    reply.json().as_array().unwrap().clone()
}

/// `POST ADMIN/api/v2/keys/signing/rotate` with `token`: the reply.
pub(crate) async fn rotate(admin: &str, token: &str) -> Reply {
    send(
        Method::POST,
        &format!("{admin}/api/v2/keys/signing/rotate"),
        &[("authorization", &format!("Bearer {token}"))],
        b"",
    )
    .await
}

/// The kid of the one key of `keys` (a `/api/v2/keys/signing` list) with `flag` true.
pub(crate) fn kid_where(keys: &[Value], flag: &str) -> String {
    let found: Vec<&Value> = keys.iter().filter(|k| k[flag] == true).collect();
    assert_eq!(found.len(), 1, "one {flag} key in {keys:?}");
    found[0]["kid"].as_str().unwrap().to_string()
}

async fn jwks_kids(f: &Fixture) -> Vec<String> {
    let reply = get(&f.proxy.url("/.well-known/jwks.json"), &[]).await;
    reply.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

async fn resigned(f: &Fixture, token: &str) -> String {
    let reply = get_bearer(&f.proxy.url("/api/x"), token).await;
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    f.upstream.last().bearer()
}

async fn jose(f: &Fixture, token: String) -> Value {
    jose::jose_verify(
        f.proxy.url("/.well-known/jwks.json"),
        token,
        AUDIENCE,
        "https://resigner.test/",
        Alg::ES256,
    )
    .await
}

#[tokio::test]
async fn rotate_and_revoke_through_the_signing_keys_api() {
    let f = managed("0s").await;
    let keys = list(&f).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    let (first_current, first_next) = (kid_where(&keys, "current"), kid_where(&keys, "next"));
    for key in &keys {
        assert!(
            key["cert"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert_eq!(key["fingerprint"].as_str().unwrap().len(), 59, "{key}");
        assert_eq!(key["thumbprint"].as_str().unwrap().len(), 40, "{key}");
    }
    let published = jwks_kids(&f).await;
    assert_eq!(published[..2], [first_current.clone(), first_next.clone()]);

    let before = resigned(&f, &f.token()).await;
    assert_eq!(header_kid(&before), first_current);
    jose(&f, before.clone()).await;

    let one = get_bearer(
        &f.admin_url(&format!("/api/v2/keys/signing/{first_next}")),
        SK_READ_TOKEN,
    )
    .await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["next"], true);
    let denied = rotate(&f.admin_url(""), SK_READ_TOKEN).await;
    assert_eq!(denied.status, 403, "a read-only token cannot rotate");

    let rotated = rotate(&f.admin_url(""), SK_TOKEN).await;
    assert_eq!(rotated.status, 201, "{:?}", rotated.json());
    let new_next = rotated.json()["kid"].as_str().unwrap().to_string();
    let keys = list(&f).await;
    assert_eq!(kid_where(&keys, "current"), first_next);
    assert_eq!(kid_where(&keys, "next"), new_next);
    assert_eq!(kid_where(&keys, "previous"), first_current);
    assert_eq!(
        jwks_kids(&f).await[..3],
        [first_next.clone(), new_next.clone(), first_current.clone()]
    );

    // The same incoming token: the cached entry is not served; the new current signs it.
    let after = resigned(&f, &f.token()).await;
    assert_eq!(header_kid(&after), first_next);
    jose(&f, after).await;
    // A token signed before the rotation still verifies: the previous key is published.
    jose(&f, before).await;

    let revoke = |kid: String| {
        let url = f.admin_url(&format!("/api/v2/keys/signing/{kid}/revoke"));
        async move {
            send(
                Method::PUT,
                &url,
                &[("authorization", &format!("Bearer {SK_TOKEN}"))],
                b"",
            )
            .await
        }
    };
    assert_eq!(
        revoke(first_next.clone()).await.status,
        409,
        "the current key cannot be revoked"
    );
    assert_eq!(
        revoke(new_next.clone()).await.status,
        409,
        "the next key cannot be revoked"
    );
    let revoked = revoke(first_current.clone()).await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.json());
    assert_eq!(revoked.json()["kid"], first_current.as_str());
    assert!(
        !jwks_kids(&f).await.contains(&first_current),
        "a revoked key leaves the JWKS at once"
    );
    // Whatever the cache held is not served: the current key signs the next request.
    let after_revoke = resigned(&f, &f.token()).await;
    assert_eq!(header_kid(&after_revoke), first_next);
    jose(&f, after_revoke).await;
    let keys = list(&f).await;
    let gone = keys
        .iter()
        .find(|k| k["kid"] == first_current.as_str())
        .unwrap();
    assert_eq!(gone["revoked"], true);
    assert!(gone["revoked_at"].as_str().unwrap().ends_with('Z'));
    let unknown = get_bearer(
        &f.admin_url("/api/v2/keys/signing/no-such-kid"),
        SK_READ_TOKEN,
    )
    .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn the_store_holds_sealed_keys_only_and_the_kek_is_required() {
    let f = managed("0s").await;
    let store = f.proxy.dir.path().join("keys.json");
    let bytes = std::fs::read(&store).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let stored: Value = serde_json::from_slice(&bytes).unwrap();
    let keys = stored["signing"]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let kek_bytes: [u8; 32] = (0..32)
        .map(|i| u8::from_str_radix(&TEST_KEK[2 * i..2 * i + 2], 16).unwrap())
        .collect::<Vec<u8>>()
        .try_into()
        .unwrap();
    let kek = resigner::keys::managed::kek::Kek::from_bytes(&kek_bytes).unwrap();
    for key in keys {
        assert!(key["public_jwk"].get("d").is_none());
        let sealed: resigner::keys::managed::Sealed =
            serde_json::from_value(key["sealed"].clone()).unwrap();
        let kid = key["kid"].as_str().unwrap();
        let der = kek.unseal(&sealed, kid, "ES256").unwrap();
        // The PKCS#8 DER in any encoding is nowhere in the file.
        use base64::Engine;
        for encoded in [
            base64::engine::general_purpose::STANDARD.encode(&der),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der),
            der.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        ] {
            assert!(
                !text.contains(&encoded[..40]),
                "private key material in the store file"
            );
        }
        assert!(!bytes.windows(der.len()).any(|w| w == der.as_slice()));
        // The private scalar (the JWK `d`) is not there either (P-256 PKCS#8: bytes 7..39).
        let d = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der[7..39]);
        assert!(
            !text.contains(&d),
            "the JWK d of {kid} is in the store file"
        );
    }

    // A second process on the same store: a wrong KEK stops the start, naming it; no KEK too.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&store, dir.path().join("keys.json")).unwrap();
    let config = std::fs::read_to_string(&f.proxy.config_path)
        .unwrap()
        .replace(
            &f.proxy.dir.path().display().to_string(),
            &dir.path().display().to_string(),
        );
    let config = config
        .lines()
        .map(|line| match line.trim_start().starts_with("listen") {
            true => "listen = \"127.0.0.1:0\"".to_string(),
            false => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config_path = dir.path().join("resigner.toml");
    std::fs::write(&config_path, config).unwrap();
    std::fs::write(dir.path().join("kek"), "ab".repeat(32)).unwrap();
    let err = match resigner::start(resigner::load_config(&config_path).unwrap()).await {
        Ok(_) => panic!("a wrong KEK must stop the start"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("sealed under key-encryption key"), "{err}");
    std::fs::remove_file(dir.path().join("kek")).unwrap();
    let err = match resigner::start(resigner::load_config(&config_path).unwrap()).await {
        Ok(_) => panic!("a missing KEK must stop the start"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("signing.managed.kek_file"), "{err}");
}

#[tokio::test]
async fn a_rotation_before_the_next_key_is_old_enough_is_refused() {
    let f = managed("1h").await;
    let keys = list(&f).await;
    let rotated = rotate(&f.admin_url(""), SK_TOKEN).await;
    assert_eq!(rotated.status, 409, "{:?}", rotated.json());
    assert!(
        rotated.json()["message"]
            .as_str()
            .unwrap()
            .contains("min_published_age")
    );
    assert_eq!(list(&f).await, keys, "nothing changed");
}
