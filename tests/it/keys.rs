//! The Auth0-compatible management API on the admin listener: every status code, every
//! rejection class (each leaving the stored set and the published JWKS untouched), scopes,
//! IdP-issued admin tokens, ETag / If-Match, the JWKS update without restart, and the guard
//! that only a published key signs.

use std::time::Duration;

use http::Method;
use resigner::jose::alg::Alg;
use resigner::keys::SigningKey;
use serde_json::{Value, json};

use crate::common::*;

const PATH: &str = "/api/v2/keys/custom-signing";

async fn admin(
    proxy: &TestProxy,
    method: Method,
    token: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let auth = format!("Bearer {token}");
    let mut all = vec![("authorization", auth.as_str())];
    all.extend_from_slice(headers);
    send(method, &proxy.admin_url(PATH), &all, body).await
}

async fn put(proxy: &TestProxy, body: &Value) -> Reply {
    proxy.put_keys(body).await
}

/// The stored set as the API returns it (or `Null` on 404) and the published JWKS body.
async fn snapshot(proxy: &TestProxy) -> (Value, bytes::Bytes) {
    let get = admin(proxy, Method::GET, ADMIN_TOKEN, &[], b"").await;
    let stored = if get.status == 404 {
        Value::Null
    } else {
        get.json()
    };
    (stored, get_jwks(proxy).await.body)
}

async fn get_jwks(proxy: &TestProxy) -> Reply {
    get(&proxy.url("/.well-known/jwks.json"), &[]).await
}

fn assert_auth0_error(reply: &Reply, status: u16, needle: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    let body = reply.json();
    assert_eq!(body["statusCode"], status);
    assert!(
        body["error"].is_string() && body["errorCode"].is_string(),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
}

#[tokio::test]
async fn get_put_delete_with_etags_and_the_jwks_follows() {
    let fixture = Fixture::builder().await.unpublished().start().await;
    let proxy = &fixture.proxy;

    let empty = admin(proxy, Method::GET, ADMIN_TOKEN, &[], b"").await;
    assert_auth0_error(&empty, 404, "No custom signing keys found");

    let (a, b) = (public_jwk(Alg::ES256), public_jwk(Alg::RS256));
    let mut no_kid = public_jwk(Alg::EdDSA);
    no_kid.as_object_mut().unwrap().remove("kid");
    let written = put(proxy, &json!({"keys": [a, b, no_kid]})).await;
    assert_eq!(written.status, 200, "{:?}", written.body);
    let etag = written.headers["etag"].to_str().unwrap().to_string();
    let stored = written.json();
    assert_eq!(stored["keys"].as_array().unwrap().len(), 3);
    assert_eq!(stored["keys"][0], a, "stored as sent");
    assert!(
        stored["keys"][2]["kid"].as_str().unwrap().len() == 43,
        "kid filled with the RFC 7638 thumbprint"
    );

    let read = admin(proxy, Method::GET, ADMIN_TOKEN, &[], b"").await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), stored);
    assert_eq!(read.headers["etag"], etag.as_str());

    let jwks = get_jwks(proxy).await;
    let kids: Vec<Value> = jwks.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(
        kids,
        [
            a["kid"].clone(),
            b["kid"].clone(),
            stored["keys"][2]["kid"].clone(),
            json!("idp-1")
        ],
        "custom keys in import order, then the IdP's"
    );
    let jwks_etag = jwks.headers["etag"].to_str().unwrap().to_string();
    assert_eq!(
        get(
            &proxy.url("/.well-known/jwks.json"),
            &[("if-none-match", &jwks_etag)]
        )
        .await
        .status,
        304
    );

    // If-Match: a stale ETag is refused for PUT and DELETE, the current one is accepted.
    let stale = "\"stale\"";
    let refused = admin(
        proxy,
        Method::PUT,
        ADMIN_TOKEN,
        &[("content-type", "application/json"), ("if-match", stale)],
        json!({"keys": [a]}).to_string().as_bytes(),
    )
    .await;
    assert_auth0_error(&refused, 412, "If-Match");
    assert_auth0_error(
        &admin(
            proxy,
            Method::DELETE,
            ADMIN_TOKEN,
            &[("if-match", stale)],
            b"",
        )
        .await,
        412,
        "If-Match",
    );
    assert_eq!(
        snapshot(proxy).await.0,
        stored,
        "a refused write changes nothing"
    );
    let replaced = admin(
        proxy,
        Method::PUT,
        ADMIN_TOKEN,
        &[
            ("content-type", "application/json; charset=utf-8"),
            ("if-match", &etag),
        ],
        json!({"keys": [b]}).to_string().as_bytes(),
    )
    .await;
    assert_eq!(replaced.status, 200, "{:?}", replaced.body);
    assert_eq!(
        replaced.json()["keys"],
        json!([b]),
        "PUT replaces the whole set"
    );

    let after_put = get_jwks(proxy).await;
    assert_ne!(
        after_put.headers["etag"].to_str().unwrap(),
        jwks_etag,
        "JWKS updated without restart"
    );
    assert_eq!(after_put.json()["keys"][0]["kid"], b["kid"]);
    assert_eq!(
        get(
            &proxy.url("/.well-known/jwks.json"),
            &[("if-none-match", &jwks_etag)]
        )
        .await
        .status,
        200
    );

    let deleted = admin(proxy, Method::DELETE, ADMIN_TOKEN, &[], b"").await;
    assert_eq!(deleted.status, 204);
    assert!(deleted.body.is_empty());
    assert_eq!(
        admin(proxy, Method::GET, ADMIN_TOKEN, &[], b"")
            .await
            .status,
        404
    );
    let kids: Vec<Value> = get_jwks(proxy).await.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(kids, [json!("idp-1")]);
    assert_auth0_error(
        &admin(proxy, Method::POST, ADMIN_TOKEN, &[], b"").await,
        405,
        "Method",
    );
}

#[tokio::test]
async fn every_bad_import_is_a_400_naming_the_problem_and_changes_nothing() {
    let fixture = Fixture::start().await;
    let proxy = &fixture.proxy;
    let before = snapshot(proxy).await;
    let good = public_jwk(Alg::ES256);
    let with = |member: &str, value: Value| {
        let mut key = good.clone();
        key[member] = value;
        key
    };
    let without = |member: &str| {
        let mut key = good.clone();
        key.as_object_mut().unwrap().remove(member);
        key
    };
    let rsa = public_jwk(Alg::RS256);
    let with_rsa = |member: &str, value: Value| {
        let mut key = rsa.clone();
        key[member] = value;
        key
    };
    use crate::common::idp::b64;
    let other_cert = cert_for(Alg::ES256).1;
    let (own_der, own_cert, own_jwk) = cert_for(Alg::ES256);
    let _ = own_der;
    let mut bad_x5t = own_jwk.clone();
    bad_x5t["x5c"] = json!([own_cert]);
    bad_x5t["x5t#S256"] = json!(b64([0u8; 32]));
    let eleven: Vec<Value> = (0..11).map(|_| public_jwk(Alg::EdDSA)).collect();

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "private member d",
            json!({"keys": [with("d", json!("AAAA"))]}),
            "private key material",
        ),
        (
            "private member p",
            json!({"keys": [with_rsa("p", json!("AAAA"))]}),
            "\"p\" is private key material",
        ),
        (
            "symmetric member k",
            json!({"keys": [with("k", json!("c2VjcmV0"))]}),
            "private key material",
        ),
        (
            "x5u",
            json!({"keys": [with("x5u", json!("http://127.0.0.1:1/cert"))]}),
            "never fetches",
        ),
        (
            "unknown member",
            json!({"keys": [with("foo", json!("bar"))]}),
            "\"foo\" is not an allowed",
        ),
        (
            "kty missing",
            json!({"keys": [without("kty")]}),
            "\"kty\" is required",
        ),
        (
            "kty oct",
            json!({"keys": [with("kty", json!("oct"))]}),
            "\"kty\" must be",
        ),
        (
            "kty not a string",
            json!({"keys": [with("kty", json!(["EC"]))]}),
            "\"kty\" must be a string",
        ),
        (
            "use enc",
            json!({"keys": [with("use", json!("enc"))]}),
            "\"use\" must be \"sig\"",
        ),
        (
            "key_ops sign",
            json!({"keys": [with("key_ops", json!(["sign", "verify"]))]}),
            "key_ops",
        ),
        (
            "key_ops not an array",
            json!({"keys": [with("key_ops", json!("verify"))]}),
            "key_ops",
        ),
        (
            "alg none",
            json!({"keys": [with("alg", json!("none"))]}),
            "\"alg\" must be one of",
        ),
        (
            "alg HS256",
            json!({"keys": [with("alg", json!("HS256"))]}),
            "\"alg\" must be one of",
        ),
        (
            "alg of another family",
            json!({"keys": [with("alg", json!("RS256"))]}),
            "cannot be used with an EC key",
        ),
        (
            "alg of another curve",
            json!({"keys": [with("alg", json!("ES384"))]}),
            "curve P-256",
        ),
        (
            "crv unknown",
            json!({"keys": [with("crv", json!("secp256k1"))]}),
            "unsupported curve",
        ),
        (
            "point not on the curve",
            json!({"keys": [with("y", json!(b64([9u8; 32])))]}),
            "not on the curve",
        ),
        (
            "coordinate too short",
            json!({"keys": [with("x", json!(b64([9u8; 31])))]}),
            "wrong length",
        ),
        (
            "padded base64",
            json!({"keys": [with("x", json!(format!("{}=", good["x"].as_str().unwrap())))]}),
            "base64url without padding",
        ),
        (
            "standard base64 alphabet",
            json!({"keys": [with("x", json!("+/+/"))]}),
            "base64url without padding",
        ),
        (
            "n on an EC key",
            json!({"keys": [with("n", json!("AQAB"))]}),
            "does not belong",
        ),
        (
            "RSA exponent 3",
            json!({"keys": [with_rsa("e", json!("Aw"))]}),
            "AQAB",
        ),
        (
            "RSA 1024 bits",
            json!({"keys": [with_rsa("n", json!(b64([0xc1u8; 128])))]}),
            "1024 bits",
        ),
        (
            "RSA leading zero",
            json!({"keys": [with_rsa("n", json!(b64([&[0u8][..], &[0xc1u8; 256][..]].concat())))]}),
            "zero octet",
        ),
        (
            "Ed25519 key too short",
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64([1u8; 31])}]}),
            "wrong length",
        ),
        (
            "kid empty",
            json!({"keys": [with("kid", json!(""))]}),
            "\"kid\" must be 1 to 256",
        ),
        (
            "kid a number",
            json!({"keys": [with("kid", json!(5))]}),
            "\"kid\" must be a string",
        ),
        (
            "kid of the IdP",
            json!({"keys": [with("kid", json!("idp-1"))]}),
            "identity provider",
        ),
        (
            "duplicate kids",
            json!({"keys": [good, good]}),
            "duplicate kid",
        ),
        (
            "x5c of another key",
            json!({"keys": [with("x5c", json!([other_cert]))]}),
            "different public key",
        ),
        (
            "x5c not base64",
            json!({"keys": [with("x5c", json!(["%%%"]))]}),
            "x5c",
        ),
        (
            "x5c not a certificate",
            json!({"keys": [with("x5c", json!(["AAAA"]))]}),
            "leaf certificate",
        ),
        (
            "x5t#S256 not matching",
            json!({"keys": [bad_x5t]}),
            "does not match the x5c leaf",
        ),
        ("eleven keys", json!({"keys": eleven}), "at most 10"),
        ("no keys", json!({"keys": []}), "at least one"),
        (
            "keys missing",
            json!({}),
            "missing required member \"keys\"",
        ),
        (
            "extra top-level member",
            json!({"keys": [good], "tenant": "x"}),
            "unknown top-level member",
        ),
        (
            "keys not an array",
            json!({"keys": good}),
            "must be an array",
        ),
        (
            "key not an object",
            json!({"keys": ["EC"]}),
            "must be a JSON object",
        ),
        ("body an array", json!([good]), "must be an object"),
    ];
    let count = cases.len();
    for (name, body, needle) in cases {
        let reply = put(proxy, &body).await;
        assert_auth0_error(&reply, 400, needle);
        let set_level = [
            "eleven keys",
            "no keys",
            "keys missing",
            "extra top-level member",
            "keys not an array",
            "body an array",
        ];
        if !set_level.contains(&name) {
            assert!(
                reply.json()["message"].as_str().unwrap().contains("keys["),
                "{name}: names the key"
            );
        }

        assert_eq!(
            snapshot(proxy).await,
            before,
            "{name} changed the stored set or the JWKS"
        );
    }
    assert!(count >= 40);

    type RawCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16, &'a str);
    let raw_cases: Vec<RawCase> = vec![
        (
            "not JSON",
            vec![("content-type", "application/json")],
            b"{keys:".to_vec(),
            400,
            "not valid JSON",
        ),
        (
            "duplicate members",
            vec![("content-type", "application/json")],
            format!("{{\"keys\":[{good}],\"keys\":[]}}").into_bytes(),
            400,
            "more than once",
        ),
        (
            "content type text",
            vec![("content-type", "text/plain")],
            json!({"keys": [good]}).to_string().into_bytes(),
            400,
            "Content-Type",
        ),
        (
            "no content type",
            vec![],
            json!({"keys": [good]}).to_string().into_bytes(),
            400,
            "Content-Type",
        ),
        (
            "body over 64 KiB",
            vec![("content-type", "application/json")],
            format!("{{\"keys\":[{good}],\"pad\":\"{}\"}}", "x".repeat(70_000)).into_bytes(),
            413,
            "larger than",
        ),
        (
            "deeply nested",
            vec![("content-type", "application/json")],
            format!("{{\"keys\":{}{}}}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            400,
            "not valid JSON",
        ),
    ];
    for (name, headers, body, status, needle) in raw_cases {
        let reply = admin(proxy, Method::PUT, ADMIN_TOKEN, &headers, &body).await;
        assert_auth0_error(&reply, status, needle);
        assert_eq!(
            snapshot(proxy).await,
            before,
            "{name} changed the stored set or the JWKS"
        );
    }
}

/// A self-signed certificate for a fresh key: (PKCS#8 DER, base64 DER cert, public JWK).
fn cert_for(alg: Alg) -> (Vec<u8>, String, Value) {
    use base64::Engine;
    let der = SigningKey::generate_pkcs8(alg).unwrap();
    let pair = rcgen::KeyPair::try_from(der.as_slice()).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["resigner.test".into()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    let jwk = Value::Object(
        SigningKey::from_pkcs8(&der, alg, None)
            .unwrap()
            .public_jwk()
            .to_json(),
    );
    (
        der,
        base64::engine::general_purpose::STANDARD.encode(cert.der()),
        jwk,
    )
}

#[tokio::test]
async fn x5c_with_the_same_key_is_accepted() {
    use aws_lc_rs::digest;
    let fixture = Fixture::builder().await.unpublished().start().await;
    let proxy = &fixture.proxy;
    for alg in [Alg::RS256, Alg::ES384, Alg::EdDSA] {
        let (_, cert, mut jwk) = cert_for(alg);
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD
            .decode(&cert)
            .unwrap();
        jwk["x5c"] = json!([cert]);
        jwk["x5t#S256"] = json!(crate::common::idp::b64(digest::digest(
            &digest::SHA256,
            &der
        )));
        let reply = put(proxy, &json!({"keys": [jwk]})).await;
        assert_eq!(reply.status, 200, "{alg}: {:?}", reply.body);
    }
}

#[tokio::test]
async fn authentication_and_scopes() {
    let reader = "reader-token-abcdefghijklmnop";
    let fixture = Fixture::builder()
        .await
        .admin("audience", "https://resigner.test/api/v2/")
        .admin_token("reader", reader, &["read:custom_signing_keys"])
        .start()
        .await;
    let (proxy, idp, key) = (&fixture.proxy, &fixture.idp, &fixture.key);
    let body = json!({"keys": [public_jwk(Alg::ES256)]}).to_string();
    let json_type = [("content-type", "application/json")];

    let missing = send(Method::GET, &proxy.admin_url(PATH), &[], b"").await;
    assert_auth0_error(&missing, 401, "Invalid token.");
    assert!(missing.www().starts_with("Bearer"));
    assert_auth0_error(
        &admin(proxy, Method::GET, "wrong-token", &[], b"").await,
        401,
        "Invalid token.",
    );

    assert_eq!(
        admin(proxy, Method::GET, reader, &[], b"").await.status,
        200
    );
    let forbidden = admin(proxy, Method::PUT, reader, &json_type, body.as_bytes()).await;
    assert_auth0_error(
        &forbidden,
        403,
        "create:custom_signing_keys, update:custom_signing_keys",
    );
    assert_auth0_error(
        &admin(proxy, Method::DELETE, reader, &[], b"").await,
        403,
        "delete:custom_signing_keys",
    );

    // IdP access tokens for the admin audience, scopes from `scope` or `permissions`.
    let admin_claims = |scope: &str| {
        let mut c = claims(&idp.issuer, "https://resigner.test/api/v2/");
        c["scope"] = json!(scope);
        c
    };
    let read_only = mint(key, &admin_claims("read:custom_signing_keys"));
    assert_eq!(
        admin(proxy, Method::GET, &read_only, &[], b"").await.status,
        200
    );
    assert_auth0_error(
        &admin(proxy, Method::PUT, &read_only, &json_type, body.as_bytes()).await,
        403,
        "expected all of",
    );
    let only_create = mint(key, &admin_claims("create:custom_signing_keys"));
    assert_auth0_error(
        &admin(
            proxy,
            Method::PUT,
            &only_create,
            &json_type,
            body.as_bytes(),
        )
        .await,
        403,
        "update:custom_signing_keys",
    );
    let mut rbac = admin_claims("");
    rbac["permissions"] = json!([
        "create:custom_signing_keys",
        "update:custom_signing_keys",
        "read:custom_signing_keys"
    ]);
    let writer = mint(key, &rbac);
    let written = admin(proxy, Method::PUT, &writer, &json_type, body.as_bytes()).await;
    assert_eq!(written.status, 200, "{:?}", written.body);

    // The proxy's own audience, a foreign issuer, and a token signed by a customer key: 401.
    let api_token = mint(key, &claims(&idp.issuer, "https://api.test"));
    assert_auth0_error(
        &admin(proxy, Method::GET, &api_token, &[], b"").await,
        401,
        "Invalid token.",
    );
    let customer = IdpKey::es256("customer-1");
    let mut customer_jwk = customer.jwk.clone();
    customer_jwk.as_object_mut().unwrap().remove("use");
    assert_eq!(
        put(proxy, &json!({"keys": [customer_jwk]})).await.status,
        200
    );
    let forged = mint(
        &customer,
        &admin_claims("read:custom_signing_keys delete:custom_signing_keys"),
    );
    assert_auth0_error(
        &admin(proxy, Method::DELETE, &forged, &[], b"").await,
        401,
        "Invalid token.",
    );
    assert_eq!(
        admin(proxy, Method::GET, ADMIN_TOKEN, &[], b"")
            .await
            .status,
        200,
        "the forged DELETE changed nothing"
    );
}

#[tokio::test]
async fn only_a_published_key_signs() {
    let fixture = Fixture::builder().await.unpublished().start().await;
    let (proxy, upstream) = (&fixture.proxy, &fixture.upstream);
    let token = fixture.token();
    let refused = get_bearer(&proxy.url("/api/x"), &token).await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert!(refused.headers.contains_key("retry-after"));
    let ready = get(&proxy.admin_url("/readyz"), &[]).await;
    assert_eq!(ready.status, 503);
    let active = proxy.active_jwk();
    assert!(
        ready.json()["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("{:?}", active["kid"].as_str().unwrap()))
    );

    // A key with the same kid but other material is not "published".
    let mut impostor = public_jwk(Alg::ES256);
    impostor["kid"] = active["kid"].clone();
    assert_eq!(put(proxy, &json!({"keys": [impostor]})).await.status, 200);
    assert_eq!(get_bearer(&proxy.url("/api/x"), &token).await.status, 503);

    assert_eq!(put(proxy, &json!({"keys": [active]})).await.status, 200);
    assert_eq!(get_bearer(&proxy.url("/api/x"), &token).await.status, 200);
    assert_eq!(get(&proxy.admin_url("/readyz"), &[]).await.status, 200);
    assert_eq!(
        upstream.count(),
        1,
        "nothing was forwarded while the key was unpublished"
    );

    // Deleting the set pauses re-signing again (cached tokens included).
    assert_eq!(
        admin(proxy, Method::DELETE, ADMIN_TOKEN, &[], b"")
            .await
            .status,
        204
    );
    assert_eq!(get_bearer(&proxy.url("/api/x"), &token).await.status, 503);
}

#[tokio::test]
async fn min_published_age_delays_a_newly_published_key() {
    let fixture = Fixture::builder()
        .await
        .min_published_age("2s")
        .start()
        .await;
    let (proxy, token) = (&fixture.proxy, fixture.token());
    let early = get_bearer(&proxy.url("/api/x"), &token).await;
    assert_eq!(early.status, 503);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(get_bearer(&proxy.url("/api/x"), &token).await.status, 200);
}
