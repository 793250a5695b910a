//! Opaque tokens through RFC 7662 introspection (issue #15 §3), against a real OpenID
//! Provider (npm oidc-provider, [`OidcProvider`]) issuing opaque tokens by client_credentials:
//! an active token is re-signed with the customer's key (the legacy API gets a JWT), answers
//! are cached (one introspection per token, also for concurrent requests) and no longer than
//! `cache_max`, a revoked or unknown token is 401, introspection down or refusing resigner's
//! credentials is 503, the audience, scopes and route issuers apply as to JWTs, and a route
//! whose IdPs do not introspect refuses an opaque token as before. The fixture's own test IdP
//! (JWTs) stays configured beside the provider, so one route takes both kinds.

use std::time::Duration;

use serde_json::json;

use resigner::jose::alg::Alg;

use crate::common::jose::{decoded, jose_verify};
use crate::common::oidc_provider::{INTROSPECTION_CLIENT, OidcProvider};
use crate::common::*;

struct Opaque {
    fixture: Fixture,
    provider: OidcProvider,
    /// Holds the client secret file.
    _secret_dir: tempfile::TempDir,
}

/// The fixture (JWT IdP "jwt") plus the provider as IdP "op" with introspection;
/// `secret` is the client secret resigner is given.
async fn opaque(secret: &str) -> Opaque {
    opaque_with(secret, "3s").await
}

/// [`opaque`] with answers reused for `cache_max`.
async fn opaque_with(secret: &str, cache_max: &str) -> Opaque {
    let provider = OidcProvider::start(AUDIENCE);
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("introspection-secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let op = json!({
        "name": "op",
        // Keys discovered from the provider's OpenID configuration.
        "issuer": provider.issuer,
        "algorithms": ["RS256", "ES256", "PS256"],
        // Refreshed every 200ms while the provider is up; stale a second after it stops.
        "refresh": "200ms",
        "refresh_min": "100ms",
        "max_stale": "1s",
        // No leeway: a re-signed token's cache entry lives until its exp (here cache_max).
        "leeway": "0s",
        "introspection": {
            "endpoint": provider.introspection_endpoint(),
            "client_id": INTROSPECTION_CLIENT.0,
            "client_secret_file": secret_file,
            "cache_max": cache_max,
            "negative_ttl": "30s",
        },
    });
    let fixture = Fixture::builder()
        .await
        .idp("name", "jwt")
        .route(Route::api())
        .route(Route::new("/other").set("audience", "https://other.test"))
        .route(Route::new("/write").set("required_scopes", ["write:orders"]))
        .route(Route::new("/jwt-only").set("issuers", ["jwt"]))
        .with_proxy(|proxy| proxy.also_idp_entry(op))
        .start()
        .await;
    Opaque {
        fixture,
        provider,
        _secret_dir: dir,
    }
}

fn introspections(fx: &Fixture, result: &str) -> u64 {
    let text = fx.proxy.running.state.metrics.render(&Default::default());
    let series = format!("resigner_idp_introspections_total{{idp=\"op\",result=\"{result}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |value| value.parse().unwrap())
}

#[tokio::test]
async fn an_active_opaque_token_reaches_the_legacy_api_as_a_jwt_signed_with_our_key() {
    let Opaque {
        fixture: fx,
        provider,
        ..
    } = opaque(INTROSPECTION_CLIENT.1).await;
    let token = provider.token("read:orders").await;
    assert!(
        !token.contains('.'),
        "oidc-provider issued an opaque token: {token}"
    );
    let answer = provider.introspect(&token).await;
    assert_eq!(answer["active"], true, "{answer}");

    let first = get_bearer(&fx.url("/api/x"), &token).await;
    assert_eq!(first.status, 200, "{:?}\n{}", first.body, provider.log());
    let forwarded = fx.upstream.last().bearer();
    let (header, claims) = decoded(&forwarded);
    assert_eq!(header["kid"], fx.proxy.active_kid());
    assert_eq!(claims["iss"], "https://resigner.test/");
    assert_eq!(claims["client_id"], "batch");
    assert_eq!(claims["scope"], "read:orders");
    assert!(claims.get("active").is_none() && claims.get("token_type").is_none());
    let exp = claims["exp"].as_i64().unwrap();
    assert!(exp <= answer["exp"].as_i64().unwrap(), "never a later exp");
    // npm jose verifies it against the published JWKS.
    let jwks = fx.url("/.well-known/jwks.json");
    jose_verify(
        jwks,
        forwarded,
        AUDIENCE,
        "https://resigner.test/",
        Alg::ES256,
    )
    .await;

    // The same token again: the re-sign cache answers; one introspection so far.
    fx.expect("opaque token again", "/api/x", &token, 200, "")
        .await;
    assert_eq!(introspections(&fx, "active"), 1);

    // A JWT of the other IdP on the same route still works.
    fx.expect("JWT beside it", "/api/x", &fx.token(), 200, "")
        .await;

    // Ten concurrent requests with a new token: one introspection.
    let fresh = provider.token("read:orders").await;
    // Ten concurrent requests with a new token on two routes (two re-sign cache entries):
    // one introspection.
    let (api, write) = (fx.url("/api/x"), fx.url("/write/x"));
    let (to_api, to_write) = tokio::join!(
        concurrently(5, &api, &fresh),
        concurrently(5, &write, &fresh)
    );
    assert!(to_api.iter().all(|status| *status == 200), "{to_api:?}");
    assert!(to_write.iter().all(|status| *status == 403), "{to_write:?}");
    assert_eq!(introspections(&fx, "active"), 2);

    // Audience, scopes and route issuers apply as to a JWT.
    let other = "audience not accepted";
    fx.expect("wrong audience", "/other/x", &token, 401, other)
        .await;
    let scope = "insufficient_scope";
    fx.expect("missing scope", "/write/x", &token, 403, scope)
        .await;
    let writer = provider.token("read:orders write:orders").await;
    fx.expect("with the scope", "/write/x", &writer, 200, "")
        .await;
    let jws = "not a compact JWS";
    fx.expect(
        "route without introspection",
        "/jwt-only/x",
        &token,
        401,
        jws,
    )
    .await;
}

/// `n` concurrent requests with `token` to `url`; their statuses.
async fn concurrently(n: usize, url: &str, token: &str) -> Vec<u16> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (url, token) = (url.to_string(), token.to_string());
        set.spawn(async move { get_bearer(&url, &token).await.status.as_u16() });
    }
    set.join_all().await
}

#[tokio::test]
async fn revoked_and_unknown_tokens_are_refused_within_cache_max() {
    let Opaque {
        fixture: fx,
        provider,
        ..
    } = opaque(INTROSPECTION_CLIENT.1).await;
    let token = provider.token("read:orders").await;
    fx.expect("active", "/api/x", &token, 200, "").await;
    // The answer came before this instant: it is reused until at most 3s (cache_max) later.
    let answered = std::time::Instant::now();
    // The re-signed token expires with the answer it came from.
    let (_, forwarded) = decoded(&fx.upstream.last().bearer());
    let now = resigner::jose::time::now_unix();
    assert!(forwarded["exp"].as_i64().unwrap() <= now + 3, "{forwarded}");
    provider.revoke(&token).await;
    assert_eq!(provider.introspect(&token).await["active"], false);
    // Answers are reused for at most cache_max, the re-signed token's cache entry too.
    tokio::time::sleep(Duration::from_millis(3300).saturating_sub(answered.elapsed())).await;
    let inactive = "token is not active";
    fx.expect("revoked", "/api/x", &token, 401, inactive).await;
    assert_eq!(introspections(&fx, "inactive"), 1);

    let unknown = "an-opaque-token-the-provider-never-issued";
    fx.expect("unknown", "/api/x", unknown, 401, inactive).await;
    fx.expect("unknown again", "/api/x", unknown, 401, inactive)
        .await;
    assert_eq!(
        introspections(&fx, "inactive"),
        2,
        "an inactive answer is cached"
    );
    let reply = get_bearer(&fx.url("/api/x"), unknown).await;
    assert_eq!(reply.json()["error"], "invalid_token");
}

#[tokio::test]
async fn a_cached_opaque_answer_does_not_need_the_idps_jwks() {
    let Opaque {
        fixture: fx,
        mut provider,
        ..
    } = opaque_with(INTROSPECTION_CLIENT.1, "10s").await;
    let token = provider.token("read:orders").await;
    fx.expect("active", "/api/x", &token, 200, "").await;
    // The provider gone: its JWKS goes stale (max_stale 1s); the cached answer stands.
    provider.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !fx.proxy.running.state.idps.all()[1].is_usable(),
        "stale by now"
    );
    let hits = fx.proxy.counter(|m| &m.cache_hits);
    fx.expect("cached, JWKS stale", "/api/x", &token, 200, "")
        .await;
    assert_eq!(fx.proxy.counter(|m| &m.cache_hits), hits + 1);
    // A JWT of that IdP would need the keys: none is cached, so this is the JWT IdP's.
    fx.expect("JWT of the other IdP", "/api/x", &fx.token(), 200, "")
        .await;
}

#[tokio::test]
async fn introspection_that_cannot_answer_is_a_503_never_a_401() {
    // resigner's client secret is wrong: the provider refuses the introspection call.
    let Opaque {
        fixture: fx,
        mut provider,
        ..
    } = opaque("not-the-secret").await;
    let token = provider.token("read:orders").await;
    for round in 0..2 {
        let reply = get_bearer(&fx.url("/api/x"), &token).await;
        assert_eq!(reply.status, 503, "round {round}: {:?}", reply.body);
        assert!(reply.headers.contains_key("retry-after"));
        assert_eq!(reply.json()["error"], "temporarily_unavailable");
    }
    assert_eq!(introspections(&fx, "failed"), 2, "a failure is not cached");
    assert_eq!(fx.upstream.count(), 0);

    // The provider gone: still 503.
    provider.stop();
    let reply = get_bearer(&fx.url("/api/x"), &token).await;
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    // JWTs of the other IdP are unaffected.
    fx.expect("JWT", "/api/x", &fx.token(), 200, "").await;
}
