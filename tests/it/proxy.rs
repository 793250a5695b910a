//! The main job end to end: a valid IdP token is verified, its claims mapped, re-signed with
//! the customer key and forwarded; the forwarded token verifies against the proxy's JWKS.

use std::time::Duration;

use http::Method;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use resigner::jose::alg::Alg;
use serde_json::{Value, json};

use crate::common::*;

/// `/orders` -> the upstream's `/legacy` (prefix kept), every kind of claim mapping.
fn mapped_route() -> Route {
    let copy = [
        "sub",
        "scope",
        "email",
        "https://idp.test/roles",
        "level",
        "flag",
        "jti",
    ];
    Route::new("/orders")
        .upstream("/legacy")
        .set("header", "Authorization")
        .claims("audience", ["legacy-orders", "legacy-billing"])
        .claims("copy", copy)
        .claims(
            "rename",
            json!({"https://idp.test/roles": "roles", "level": "clearance"}),
        )
        .claims(
            "set",
            json!({"tenant": "acme", "tier": 2, "beta": false, "regions": ["eu", "us"]}),
        )
        .claims("remove", ["email"])
}

/// Verifies `token` with jsonwebtoken (an independent implementation) against the JWKS the
/// proxy publishes over HTTP.
pub async fn verify_with_published_jwks(
    proxy: &TestProxy,
    token: &str,
    alg: jsonwebtoken::Algorithm,
    aud: &[&str],
) -> Value {
    let jwks = proxy.url("/.well-known/jwks.json");
    verify_with_jwks_at(&jwks, "https://resigner.test/", token, alg, aud).await
}

/// Verifies `token` (issued by `issuer`) against the JWKS served at `jwks_url`.
pub async fn verify_with_jwks_at(
    jwks_url: &str,
    issuer: &str,
    token: &str,
    alg: jsonwebtoken::Algorithm,
    aud: &[&str],
) -> Value {
    let jwks: JwkSet = serde_json::from_slice(&get(jwks_url, &[]).await.body).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let kid = header.kid.expect("re-signed token has a kid");
    let jwk = jwks.find(&kid).expect("kid is published in the JWKS");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(aud);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("forwarded token verifies")
        .claims
}

#[tokio::test]
async fn valid_token_is_resigned_mapped_and_forwarded() {
    let fixture = Fixture::builder().await.route(mapped_route()).start().await;
    let (proxy, upstream) = (&fixture.proxy, &fixture.upstream);
    let incoming = fixture.claims();
    let token = mint(&fixture.key, &incoming);

    let reply = get(
        &proxy.url("/orders/42?expand=lines"),
        &[
            ("authorization", &format!("Bearer {token}")),
            ("x-legacy", "kept"),
            ("x-forwarded-for", "203.0.113.9"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.headers["x-upstream"], "yes");

    let seen = upstream.last();
    assert_eq!(
        seen.uri, "/legacy/orders/42?expand=lines",
        "prefix kept, base path prepended, query kept"
    );
    assert_eq!(seen.header("x-legacy").as_deref(), Some("kept"));
    assert_eq!(
        seen.header("x-forwarded-for").as_deref(),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(seen.header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(
        seen.header("x-forwarded-host"),
        Some(proxy.running.public_addr.to_string())
    );
    let forwarded = seen.bearer();
    assert_ne!(
        forwarded, token,
        "the IdP token never reaches the legacy API"
    );

    let header = jsonwebtoken::decode_header(&forwarded).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.kid.as_deref(), Some(proxy.active_kid().as_str()));

    let out = verify_with_published_jwks(
        proxy,
        &forwarded,
        jsonwebtoken::Algorithm::ES256,
        &["legacy-orders"],
    )
    .await;
    let now = resigner::jose::time::now_unix();
    assert_eq!(out["iss"], "https://resigner.test/");
    assert_eq!(out["aud"], json!(["legacy-orders", "legacy-billing"]));
    assert_eq!(out["sub"], "user-42");
    assert_eq!(out["scope"], "read:orders");
    assert_eq!(out["roles"], json!(["admin"]), "renamed, type kept");
    assert_eq!(out["clearance"], 7, "renamed number stays a number");
    assert_eq!(out["flag"], true, "boolean stays a boolean");
    assert_eq!(out["tenant"], "acme");
    assert_eq!(out["tier"], 2);
    assert_eq!(out["beta"], false);
    assert_eq!(out["regions"], json!(["eu", "us"]));
    assert_eq!(out["jti"], incoming["jti"]);
    assert!(out.get("email").is_none(), "removed");
    assert!(out.get("client_id").is_none(), "not in copy");
    assert!(out.get("https://idp.test/roles").is_none(), "renamed away");
    let exp = out["exp"].as_i64().unwrap();
    assert!(
        exp <= incoming["exp"].as_i64().unwrap(),
        "exp never later than the original"
    );
    assert!(
        exp <= now + 300 && exp >= now + 290,
        "exp capped by max_ttl: {exp} vs {now}"
    );
    assert!((out["iat"].as_i64().unwrap() - now).abs() <= 2);
}

#[tokio::test]
async fn short_lived_token_keeps_its_own_exp_and_custom_header_route() {
    let fixture = Fixture::builder()
        .await
        .signing_alg(Alg::RS256)
        .max_ttl("1h")
        .route(Route::new("/v1").set("header", "X-Legacy-Token"))
        .start()
        .await;
    let (proxy, upstream) = (&fixture.proxy, &fixture.upstream);
    let exp = resigner::jose::time::now_unix() + 90;
    let token = fixture.mint(|claims| claims["exp"] = json!(exp));
    let reply = get(
        &proxy.url("/v1/x"),
        &[
            ("authorization", &format!("Bearer {token}")),
            ("x-legacy-token", "forged-by-client"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = upstream.last();
    assert!(
        seen.header("authorization").is_none(),
        "the client's IdP token is not forwarded"
    );
    let values: Vec<_> = seen.headers.get_all("x-legacy-token").iter().collect();
    assert_eq!(
        values.len(),
        1,
        "the client's copy of the output header is replaced"
    );
    let forwarded = values[0].to_str().unwrap().to_string();
    assert!(
        !forwarded.starts_with("Bearer "),
        "custom headers carry the bare token"
    );
    let out = verify_with_published_jwks(
        proxy,
        &forwarded,
        jsonwebtoken::Algorithm::RS256,
        &["https://api.test"],
    )
    .await;
    assert_eq!(
        out["exp"], exp,
        "a token expiring before max_ttl keeps its exp"
    );
    assert_eq!(
        out["aud"], "https://api.test",
        "claims.audience defaults to the route audience"
    );
    assert_eq!(out["client_id"], "client-1", "copy defaults to all claims");
    assert_eq!(out["email"], "u@example.com");
}

#[tokio::test]
async fn jwks_lists_signing_key_first_then_idp_keys_with_etag() {
    let fixture = Fixture::builder()
        .await
        .also_serve(&IdpKey::es256("idp-2"))
        .discover()
        .idp("algorithms", ["RS256", "ES256"])
        .start()
        .await;
    let proxy = &fixture.proxy;
    let reply = get(&proxy.url("/.well-known/jwks.json"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.headers["cache-control"], "public, max-age=300");
    let kids: Vec<String> = reply.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    let signing = proxy.active_kid();
    assert_eq!(kids, [signing.as_str(), "idp-1", "idp-2"]);
    for jwk in reply.json()["keys"].as_array().unwrap() {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(
                jwk.get(private).is_none(),
                "private member {private} published"
            );
        }
    }
    let etag = reply.headers["etag"].to_str().unwrap().to_string();
    let again = get(
        &proxy.url("/.well-known/jwks.json"),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let admin = get(&proxy.admin_url("/.well-known/jwks.json"), &[]).await;
    assert_eq!(admin.body, reply.body);
    let post = send(Method::POST, &proxy.url("/.well-known/jwks.json"), &[], b"").await;
    assert_eq!(post.status, 405);
}

#[tokio::test]
async fn upstream_failures_map_to_502_504_and_5xx_passes_through() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let fixture = Fixture::builder()
        .await
        .route(Route::api())
        .route(Route::new("/down").upstream(format!("http://{closed}")))
        .route(Route::new("/slow").set("timeout", "300ms"))
        .start()
        .await;
    let (proxy, upstream) = (&fixture.proxy, &fixture.upstream);
    let token = fixture.token();

    let down = get_bearer(&proxy.url("/down/x"), &token).await;
    assert_eq!(down.status, 502);
    assert_eq!(down.json()["error"], "bad_gateway");

    upstream.set_status(503);
    let passthrough = send(
        Method::POST,
        &proxy.url("/api/x"),
        &[("authorization", &format!("Bearer {token}"))],
        b"payload!",
    )
    .await;
    assert_eq!(
        passthrough.status, 503,
        "upstream 5xx passed through unchanged"
    );
    assert_eq!(
        passthrough.body,
        "upstream says 503 Service Unavailable; body 8 bytes"
    );
    assert_eq!(
        upstream.last().body,
        "payload!",
        "request body streamed to the upstream"
    );
    assert_eq!(upstream.last().method, "POST");

    upstream.set_status(200);
    upstream.set_delay(Duration::from_secs(2));
    let slow = get_bearer(&proxy.url("/slow/x"), &token).await;
    assert_eq!(slow.status, 504);
    assert!(proxy.counter(|m| &m.upstream_errors) >= 2);
}

#[tokio::test]
async fn unknown_path_is_404_and_admin_reports_status() {
    let fixture = Fixture::start().await;
    let (proxy, upstream) = (&fixture.proxy, &fixture.upstream);
    let token = fixture.token();
    let reply = get_bearer(&proxy.url("/apix/y"), &token).await;
    assert_eq!(reply.status, 404, "prefixes match on segment boundaries");
    for path in ["/api/../admin", "/api/%2e%2e/admin", "/api/x%2F..%2Fadmin"] {
        let reply = get_bearer(&proxy.url(path), &token).await;
        assert_eq!(reply.status, 400, "{path}");
        assert!(reply.www().contains("invalid_request"), "{path}");
    }
    assert_eq!(upstream.count(), 0);
    assert_eq!(get(&proxy.admin_url("/healthz"), &[]).await.status, 200);
    assert_eq!(get(&proxy.admin_url("/readyz"), &[]).await.status, 200);
    let status = get(&proxy.admin_url("/admin/status"), &[]).await.json();
    assert_eq!(status["idps"][0]["kids"], json!(["idp-1"]));
    assert_eq!(status["signing"]["alg"], "ES256");
}

#[tokio::test]
async fn verify_only_and_passthrough_routes() {
    let fixture = Fixture::builder()
        .await
        .unpublished()
        .route(Route::new("/v").set("mode", "verify"))
        .route(
            Route::new("/public")
                .set("mode", "passthrough")
                .without("audience"),
        )
        .start()
        .await;
    let (proxy, upstream) = (&fixture.proxy, &fixture.upstream);
    let token = fixture.token();

    // verify: the IdP token itself is forwarded; no signing key needs to be published.
    let reply = get(
        &proxy.url("/v/x"),
        &[
            ("authorization", &format!("bearer {token}")),
            ("connection", "x-drop"),
            ("x-drop", "1"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let seen = upstream.last();
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {token}"))
    );
    assert!(seen.header("x-drop").is_none());
    assert_eq!(proxy.counter(|m| &m.signatures), 0);
    let bad = get_bearer(&proxy.url("/v/x"), &format!("{token}x")).await;
    assert_eq!(bad.status, 401);
    assert_eq!(upstream.count(), 1);

    // passthrough: no token work at all; whatever Authorization the client sent goes through.
    assert_eq!(get(&proxy.url("/public/health"), &[]).await.status, 200);
    assert!(upstream.last().header("authorization").is_none());
    assert_eq!(
        get(
            &proxy.url("/public/health"),
            &[("authorization", "Basic abc")]
        )
        .await
        .status,
        200
    );
    assert_eq!(
        upstream.last().header("authorization").as_deref(),
        Some("Basic abc")
    );
    assert_eq!(upstream.last().uri, "/public/health");
}

#[tokio::test]
async fn route_modes_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let closed = |prefix| Route::new(prefix).upstream("http://127.0.0.1:9");
    let config = Fixture::builder()
        .await
        .route(closed("/a").set("mode", "passthrough").set("audience", "x"))
        .route(closed("/b").set("mode", "proxy").set("audience", "x"))
        .route(closed("/c").without("audience"))
        .write_config(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
    let problems = resigner::load_config(&config).unwrap_err().problems();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].contains("routes[0].mode: a passthrough route does no token work"),
        "{problems:#?}"
    );
    assert!(
        problems[1].contains("routes[1].mode: \"proxy\""),
        "{problems:#?}"
    );
    assert!(
        problems[2].contains("routes[2].audience: is required"),
        "{problems:#?}"
    );
}
