//! Discovery of resigner's own issuer (`[server] public_url`): a real client library (PyJWT,
//! with Python's urllib for the discovery step) finds the keys from the issuer alone and
//! verifies a re-signed token; both documents' fields, HEAD, 405, the unset behaviour
//! (the paths are routed like any other) and a reload that changes the documents.
//! PyJWT is installed by `scripts/test.sh`; this test fails (never skips) without it.

use std::time::Duration;

use http::Method;
use resigner::jose::alg::Alg;
use serde_json::{Value, json};

use crate::common::*;

const DISCOVER_PY: &str = r#"
import json, sys, urllib.request
import jwt
issuer, token, audience = sys.argv[1:4]
with urllib.request.urlopen(issuer.rstrip("/") + "/.well-known/openid-configuration") as reply:
    meta = json.load(reply)
assert meta["issuer"] == issuer, meta
key = jwt.PyJWKClient(meta["jwks_uri"]).get_signing_key_from_jwt(token)
claims = jwt.decode(token, key.key, algorithms=meta["id_token_signing_alg_values_supported"],
                    audience=audience, issuer=meta["issuer"],
                    options={"require": ["exp", "iat", "iss", "aud"]})
print(json.dumps(claims))
"#;

const OPENID: &str = "/.well-known/openid-configuration";
const OAUTH: &str = "/.well-known/oauth-authorization-server";

/// A fixture whose issuer and `public_url` are the proxy's own loopback URL, so discovery
/// from the issuer reaches the proxy itself.
async fn self_issued(alg: Alg) -> (Fixture, String) {
    let (public, admin) = (free_addr(), free_addr());
    let issuer = format!("http://{public}");
    let fixture = Fixture::builder()
        .await
        .signing_alg(alg)
        .set("signing", "issuer", &issuer)
        .server("public_url", format!("{issuer}/"))
        .with_proxy(|proxy| proxy.listen_on(&public, &admin))
        .start()
        .await;
    (fixture, issuer)
}

#[tokio::test]
async fn pyjwt_discovers_the_keys_from_the_issuer_and_verifies_a_resigned_token() {
    let (fixture, issuer) = self_issued(Alg::PS256).await;
    let token = fixture.token();
    assert_eq!(
        get_bearer(&fixture.proxy.url("/api/x"), &token)
            .await
            .status,
        200
    );
    let forwarded = fixture.upstream.last().bearer();
    let claims = python::run_json(
        "discovery + PyJWT",
        DISCOVER_PY,
        vec![issuer, forwarded, AUDIENCE.into()],
    )
    .await;
    assert_eq!(claims["sub"], "user-42");
}

#[tokio::test]
async fn both_documents_name_the_issuer_its_jwks_and_its_algorithms() {
    let (fixture, issuer) = self_issued(Alg::ES384).await;
    let proxy = &fixture.proxy;
    let openid = get(&proxy.url(OPENID), &[]).await;
    assert_eq!(openid.status, 200);
    assert_eq!(openid.headers["content-type"], "application/json");
    let jwks_cache = get(&proxy.url("/.well-known/jwks.json"), &[]).await;
    assert_eq!(
        openid.headers["cache-control"], jwks_cache.headers["cache-control"],
        "cached like the JWKS"
    );
    let jwks_uri = format!("{issuer}/.well-known/jwks.json");
    assert_eq!(
        openid.json(),
        json!({
            "issuer": issuer,
            "jwks_uri": jwks_uri,
            "response_types_supported": [],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES384"],
        })
    );
    let oauth = get(&proxy.url(OAUTH), &[]).await;
    assert_eq!(oauth.status, 200);
    assert_eq!(
        oauth.json(),
        json!({
            "issuer": issuer,
            "jwks_uri": jwks_uri,
            "response_types_supported": [],
            "id_token_signing_alg_values_supported": ["ES384"],
        })
    );
    let jwks = get(&jwks_uri, &[]).await;
    assert_eq!(
        jwks.status, 200,
        "jwks_uri is where the proxy serves its JWKS"
    );
    assert!(
        jwks.json()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == proxy.active_kid().as_str()),
        "the published JWKS holds the signing key"
    );

    let head = send(Method::HEAD, &proxy.url(OPENID), &[], b"").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.headers["content-length"],
        openid.body.len().to_string().as_str()
    );
    let post = send(Method::POST, &proxy.url(OAUTH), &[], b"").await;
    assert_eq!(post.status, 405);
    assert_eq!(post.headers["allow"], "GET, HEAD");
    let metrics = get(&proxy.admin_url("/metrics"), &[]).await;
    let metrics = String::from_utf8_lossy(&metrics.body);
    assert!(
        metrics.contains(r#"resigner_requests_total{route="discovery",status="200"} 3"#),
        "counted under route=\"discovery\": {metrics}"
    );
}

#[tokio::test]
async fn without_public_url_the_paths_are_routed_like_any_other() {
    let fixture = Fixture::start().await;
    for path in [OPENID, OAUTH] {
        let reply = get(&fixture.proxy.url(path), &[]).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(
            reply.json()["error"],
            "not_found",
            "{path}: no route matches"
        );
    }
    let routed = Fixture::builder()
        .await
        .route(Route::new("/"))
        .start()
        .await;
    let reply = get_bearer(&routed.proxy.url(OPENID), &routed.token()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        routed.upstream.last().uri,
        OPENID,
        "proxied to the route's upstream"
    );
}

#[tokio::test]
async fn a_reload_changes_the_documents_and_can_turn_them_off() {
    let (fixture, issuer) = self_issued(Alg::ES256).await;
    let proxy = &fixture.proxy;
    let (_reloader, _tasks) = proxy.watch();
    let moved = format!("{issuer}/tenant");
    proxy.rewrite_config(|doc| {
        doc.set("signing", "issuer", &moved);
        doc.set("server", "public_url", "https://api.example.com/edge");
    });
    let mut document = Value::Null;
    for _ in 0..250 {
        document = get(&proxy.url(OPENID), &[]).await.json();
        if document["issuer"] == moved.as_str() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(document["issuer"], moved.as_str(), "{document}");
    assert_eq!(
        document["jwks_uri"],
        "https://api.example.com/edge/.well-known/jwks.json"
    );

    proxy.rewrite_config(|doc| doc.remove("server", "public_url"));
    let mut status = 200;
    for _ in 0..250 {
        status = get(&proxy.url(OAUTH), &[]).await.status.as_u16();
        if status == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 404, "off again after the reload");
}

#[tokio::test]
async fn check_refuses_a_public_url_that_is_not_a_plain_absolute_url() {
    for (url, problem) in [
        ("api.example.com", "is not an http:// or https:// URL"),
        ("ftp://api.example.com", "is not an http:// or https:// URL"),
        (
            "https://api.example.com/?x=1",
            "must not have a query or fragment",
        ),
        ("https://user@api.example.com", "must not carry user info"),
    ] {
        let fixture = Fixture::builder().await.server("public_url", url);
        let dir = tempfile::tempdir().unwrap();
        let path = fixture.write_config(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
        let err = resigner::config::load_config(&path)
            .expect_err(url)
            .to_string();
        assert!(
            err.contains("server.public_url") && err.contains(problem),
            "{url}: {err}"
        );
    }
}
