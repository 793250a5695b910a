//! Several IdPs (issue #15 §1) through the running proxy: two test IdPs with different keys
//! and algorithms, both publishing a key with the same kid. Each token is verified only with
//! the keys of the IdP its `iss` names (cross-IdP key confusion refused), an unknown issuer
//! is refused without any fetch, per-route `issuers` and per-IdP `scope_claims` apply, the
//! aggregated JWKS publishes the colliding kid once (reported in status and metrics),
//! `[admin] issuers` limits the management API, and a reload adds and removes an IdP.
//! Every rejection row: status, RFC 6750 challenge, and the upstream never reached.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

/// The corp IdP (the fixture's): ES256 `shared` (its tokens' key) and RS256 `a-1`.
/// The partner IdP: ES256 only, its own `shared` and `b-1`; scopes in `scp`.
struct TwoIdps {
    fixture: Fixture,
    a1: IdpKey,
    partner: TestIdp,
    b_shared: IdpKey,
    b1: IdpKey,
}

/// `admin_issuers`: `[admin] issuers` (the admin audience is always set).
async fn two_idps(admin_issuers: Option<&[&str]>) -> TwoIdps {
    let a1 = IdpKey::rs256("a-1");
    let b_shared = IdpKey::es256("shared");
    let b1 = IdpKey::es256("b-1");
    let partner = TestIdp::start(&[&b_shared, &b1]).await;
    let partner_issuer = partner.issuer.clone();
    let mut builder = Fixture::builder_with(IdpKey::es256("shared"))
        .await
        .also_serve(&a1)
        .idp("name", "corp")
        .idp("algorithms", ["ES256", "RS256"])
        .route(Route::api())
        .route(Route::new("/corp").set("issuers", ["corp"]))
        .route(Route::new("/partner").set("issuers", [&partner_issuer]))
        .route(Route::new("/scoped").set("required_scopes", ["read:orders"]));
    builder = builder.admin("audience", ADMIN_AUDIENCE);
    if let Some(issuers) = admin_issuers {
        builder = builder.admin("issuers", issuers);
    }
    let fixture = builder
        .with_proxy(|proxy| {
            proxy.also_idp(
                &partner,
                json!({"name": "partner", "algorithms": ["ES256"], "scope_claims": ["scp"]}),
            )
        })
        .start()
        .await;
    TwoIdps {
        fixture,
        a1,
        partner,
        b_shared,
        b1,
    }
}

impl TwoIdps {
    fn corp_claims(&self) -> Value {
        self.fixture.claims()
    }

    fn partner_claims(&self) -> Value {
        let mut claims = claims(&self.partner.issuer, AUDIENCE);
        claims
            .as_object_mut()
            .unwrap()
            .remove("scope")
            .expect("scope");
        claims["scp"] = json!(["read:orders"]);
        claims
    }
}

/// A token with `claims`, signed by `key` with a header naming `kid` and `alg`.
fn signed(key: &IdpKey, alg: &str, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": alg, "kid": kid, "typ": "at+jwt"});
    raw_token(key, &header.to_string(), &claims.to_string())
}

const ADMIN_AUDIENCE: &str = "https://resigner.test/admin";

#[tokio::test]
async fn each_token_is_verified_only_with_the_keys_of_the_idp_it_names() {
    let two = two_idps(None).await;
    let fx = &two.fixture;
    let corp = two.corp_claims();
    let partner = two.partner_claims();
    let corp_fetches = fx.idp.fetches();
    let partner_fetches = two.partner.fetches();
    let issuer_refused = "issuer not accepted";

    fx.expect("corp ES256 shared", "/api/x", &fx.token(), 200, "")
        .await;
    let corp_rs = signed(&two.a1, "RS256", "a-1", &corp);
    fx.expect("corp RS256 a-1", "/api/x", &corp_rs, 200, "")
        .await;
    let partner_own = signed(&two.b_shared, "ES256", "shared", &partner);
    fx.expect("partner ES256 shared", "/api/x", &partner_own, 200, "")
        .await;
    let partner_b1 = signed(&two.b1, "ES256", "b-1", &partner);
    fx.expect("partner ES256 b-1", "/api/x", &partner_b1, 200, "")
        .await;
    // The partner's token re-signed carries the partner's claims.
    let (_, forwarded) = crate::common::jose::decoded(&fx.upstream.last().bearer());
    assert_eq!(forwarded["scp"], json!(["read:orders"]));

    // Key confusion across IdPs: the same kid, the other IdP's (valid, published) key. A
    // lookup by kid over both IdPs' keys would accept one of these two.
    let bad_signature = "signature verification failed";
    let corp_by_partner_key = signed(&two.b_shared, "ES256", "shared", &corp);
    let name = "iss corp, partner's shared key";
    fx.expect(name, "/api/x", &corp_by_partner_key, 401, bad_signature)
        .await;
    let partner_by_corp_key = signed(&fx.key, "ES256", "shared", &partner);
    let name = "iss partner, corp's shared key";
    fx.expect(name, "/api/x", &partner_by_corp_key, 401, bad_signature)
        .await;
    // RS256 is corp's algorithm, not the partner's: refused before any key lookup.
    let partner_rs = signed(&two.a1, "RS256", "a-1", &partner);
    fx.expect(
        "iss partner, corp's RS256 key",
        "/api/x",
        &partner_rs,
        401,
        "algorithm not allowed",
    )
    .await;
    // The corp kid `a-1` is not the partner's: an unknown kid there, whatever corp holds.
    let partner_a1_kid = signed(&two.b1, "ES256", "a-1", &partner);
    fx.expect(
        "iss partner, kid a-1",
        "/api/x",
        &partner_a1_kid,
        401,
        "no key with this kid",
    )
    .await;

    // Unknown or inexact issuers: refused, and neither IdP is asked for keys.
    let fetches_before = (fx.idp.fetches(), two.partner.fetches());
    for (name, iss) in [
        ("unknown issuer", "https://evil.test/"),
        (
            "issuer without its trailing slash",
            fx.idp.issuer.trim_end_matches('/'),
        ),
        ("issuer in upper case", &fx.idp.issuer.to_uppercase()),
    ] {
        let mut claims = corp.clone();
        claims["iss"] = json!(iss);
        let token = signed(&IdpKey::es256("new-kid"), "ES256", "new-kid", &claims);
        fx.expect(name, "/api/x", &token, 401, issuer_refused).await;
    }
    let mut no_iss = corp.clone();
    no_iss.as_object_mut().unwrap().remove("iss");
    let token = signed(&IdpKey::es256("shared"), "ES256", "shared", &no_iss);
    fx.expect("no iss", "/api/x", &token, 401, "is missing")
        .await;
    assert_eq!(
        (fx.idp.fetches(), two.partner.fetches()),
        fetches_before,
        "no fetch for an issuer no IdP has"
    );

    // Per-route issuers, by name or by issuer URL.
    fx.expect("corp token on /corp", "/corp/x", &fx.token(), 200, "")
        .await;
    fx.expect(
        "partner token on /corp",
        "/corp/x",
        &partner_b1,
        401,
        issuer_refused,
    )
    .await;
    fx.expect(
        "partner token on /partner",
        "/partner/x",
        &partner_b1,
        200,
        "",
    )
    .await;
    fx.expect(
        "corp token on /partner",
        "/partner/x",
        &fx.token(),
        401,
        issuer_refused,
    )
    .await;

    // Each IdP's scope claims: corp reads `scope`, the partner `scp` only.
    fx.expect("corp scope", "/scoped/x", &fx.token(), 200, "")
        .await;
    fx.expect("partner scp", "/scoped/x", &partner_b1, 200, "")
        .await;
    let mut scope_string = partner.clone();
    scope_string.as_object_mut().unwrap().remove("scp");
    scope_string["scope"] = json!("read:orders");
    let token = signed(&two.b1, "ES256", "b-1", &scope_string);
    fx.expect(
        "partner scope in `scope`",
        "/scoped/x",
        &token,
        403,
        "insufficient_scope",
    )
    .await;

    // The partner's unknown kid refetched the partner's keys only; corp was never asked.
    assert_eq!(fx.idp.fetches(), corp_fetches);
    assert!(two.partner.fetches() > partner_fetches);
}

#[tokio::test]
async fn the_jwks_publishes_a_kid_two_idps_share_once_and_says_so() {
    let two = two_idps(None).await;
    let fx = &two.fixture;
    let jwks = get(&fx.url("/.well-known/jwks.json"), &[]).await.json();
    let keys = jwks["keys"].as_array().unwrap();
    let kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    let ours = fx.proxy.active_kid();
    assert_eq!(kids, [ours.as_str(), "shared", "a-1", "b-1"], "{jwks:#}");
    // The `shared` published is corp's (the first IdP), not the partner's.
    let corp_shared = &fx.key.jwk;
    assert_eq!(keys[1]["x"], corp_shared["x"]);
    assert_ne!(keys[1]["x"], two.b_shared.jwk["x"]);

    let status = get(&fx.admin_url("/admin/status"), &[]).await.json();
    assert_eq!(
        status["idp_kid_collisions"],
        json!([{"kid": "shared", "kept_by": "corp", "dropped_from": "partner"}]),
        "{status:#}"
    );
    let names: Vec<&str> = status["idps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|idp| idp["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["corp", "partner"]);
    assert_eq!(status["idps"][1]["kids"], json!(["shared", "b-1"]));
    assert_eq!(status["routes"][1]["issuers"], json!([fx.idp.issuer]));

    let metrics = get(&fx.admin_url("/metrics"), &[]).await;
    let text = std::str::from_utf8(&metrics.body).unwrap();
    for line in [
        "resigner_idp_kid_collisions 1",
        "resigner_idp_jwks_loaded{idp=\"corp\"} 1",
        "resigner_idp_jwks_loaded{idp=\"partner\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
    }
    for idp in ["corp", "partner"] {
        let ok = format!("resigner_idp_jwks_fetches_total{{idp=\"{idp}\",result=\"ok\"}} ");
        assert!(text.contains(&ok), "{ok} not in:\n{text}");
    }
}

#[tokio::test]
async fn admin_issuers_limit_whose_tokens_the_management_api_takes() {
    let admin_claims = |mut claims: Value| {
        claims["aud"] = json!(ADMIN_AUDIENCE);
        claims["scope"] = json!("read:custom_signing_keys");
        claims
    };
    // (accepted issuers, corp token status, partner token status)
    let cases: [(Option<&[&str]>, u16, u16); 3] = [
        (None, 200, 200),
        (Some(&["partner"]), 401, 200),
        (Some(&["corp"]), 200, 401),
    ];
    for (issuers, corp_status, partner_status) in cases {
        let two = two_idps(issuers).await;
        let fx = &two.fixture;
        let url = fx.admin_url("/api/v2/keys/custom-signing");
        let partner = signed(&two.b1, "ES256", "b-1", &admin_claims(two.partner_claims()));
        let corp = fx.mint(|claims| *claims = admin_claims(claims.clone()));
        let reply = get_bearer(&url, &partner).await;
        assert_eq!(
            reply.status, partner_status,
            "{issuers:?}, partner: {:?}",
            reply.body
        );
        let reply = get_bearer(&url, &corp).await;
        assert_eq!(
            reply.status, corp_status,
            "{issuers:?}, corp: {:?}",
            reply.body
        );
        // Static tokens are not IdP tokens: still accepted.
        assert_eq!(get_bearer(&url, ADMIN_TOKEN).await.status, 200);
    }
}

#[tokio::test]
async fn a_cached_answer_is_not_served_once_its_idp_keys_are_too_stale() {
    // Refreshed every 200ms while the IdP answers; stale a second after it stops answering.
    let fx = Fixture::builder()
        .await
        .idp("refresh", "200ms")
        .idp("refresh_min", "100ms")
        .idp("max_stale", "1s")
        .start()
        .await;
    let token = fx.token();
    fx.expect("fresh keys", "/api/x", &token, 200, "").await;
    fx.expect("a cache hit", "/api/x", &token, 200, "").await;
    let hits = fx.proxy.counter(|m| &m.cache_hits);
    assert!(hits >= 1);
    fx.idp.set_mode(crate::common::idp::Mode::Error500);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let reply = get_bearer(&fx.url("/api/x"), &token).await;
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    assert_eq!(
        fx.proxy.counter(|m| &m.cache_hits),
        hits,
        "not counted as a hit"
    );
}

#[tokio::test]
async fn a_reload_adds_an_idp_and_removes_one() {
    let fx = Fixture::builder().await.idp("name", "corp").start().await;
    let b1 = IdpKey::es256("b-1");
    let partner = TestIdp::start(&[&b1]).await;
    let mut claims = claims(&partner.issuer, AUDIENCE);
    claims["scope"] = json!("read:orders");
    let partner_token = signed(&b1, "ES256", "b-1", &claims);
    fx.expect(
        "partner before the reload",
        "/api/x",
        &partner_token,
        401,
        "issuer not accepted",
    )
    .await;

    let reloader =
        resigner::reload::Reloader::new(&fx.proxy.config_path, fx.proxy.running.state.clone());
    let partner_entry = json!({"name": "partner", "issuer": partner.issuer, "jwks_uri": partner.jwks_uri(), "algorithms": ["ES256"]});
    fx.proxy.rewrite_config(|doc| {
        doc.push_item("", "idp", config_doc::table(partner_entry.clone()));
    });
    reloader.reload("test").expect("reload with two IdPs");
    let mut served = false;
    for _ in 0..100 {
        if get_bearer(&fx.url("/api/x"), &partner_token).await.status == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        served,
        "the added IdP's tokens are accepted once its keys are fetched"
    );
    let corp_cached = fx.token();
    fx.expect("corp still", "/api/x", &corp_cached, 200, "")
        .await;

    // Only the partner left: corp's tokens are refused, even those cached a moment ago.
    fx.proxy.rewrite_config(|doc| {
        doc.remove("", "idp");
        doc.push_item("", "idp", config_doc::table(partner_entry.clone()));
    });
    reloader
        .reload("test")
        .expect("reload with the partner only");
    fx.expect(
        "corp after removal",
        "/api/x",
        &fx.token(),
        401,
        "issuer not accepted",
    )
    .await;
    fx.expect(
        "corp cached",
        "/api/x",
        &corp_cached,
        401,
        "issuer not accepted",
    )
    .await;
    fx.expect("partner after removal", "/api/x", &partner_token, 200, "")
        .await;
    let status = get(&fx.admin_url("/admin/status"), &[]).await.json();
    assert_eq!(status["idps"].as_array().unwrap().len(), 1, "{status:#}");
}
