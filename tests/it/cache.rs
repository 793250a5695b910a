//! The re-sign cache: a hit skips signing, concurrent misses on one token sign once, and a
//! signing key change makes every cached token unreachable.

use resigner::jose::alg::Alg;

use crate::common::*;

#[tokio::test]
async fn cache_hit_skips_signing_and_concurrent_misses_sign_once() {
    let fixture = Fixture::builder()
        .await
        .signing_alg(Alg::RS256)
        .start()
        .await;
    let (proxy, upstream) = (&fixture.proxy, &fixture.upstream);
    let token = fixture.token();
    assert_eq!(get_bearer(&proxy.url("/api/a"), &token).await.status, 200);
    assert_eq!(proxy.counter(|m| &m.signatures), 1);
    assert_eq!(get_bearer(&proxy.url("/api/b"), &token).await.status, 200);
    assert_eq!(
        proxy.counter(|m| &m.signatures),
        1,
        "second request served from the cache"
    );
    assert_eq!(proxy.counter(|m| &m.cache_hits), 1);
    let seen = upstream.seen();
    assert_eq!(seen[0].bearer(), seen[1].bearer());

    let fresh = fixture.token();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (url, token) = (proxy.url("/api/c"), fresh.clone());
            tokio::spawn(async move { get_bearer(&url, &token).await.status.as_u16() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    assert_eq!(
        proxy.counter(|m| &m.signatures),
        2,
        "20 concurrent requests with one new token sign once"
    );
}

#[tokio::test]
async fn signing_key_change_invalidates_cached_tokens() {
    let fixture = Fixture::start().await;
    let (proxy, upstream) = (&fixture.proxy, &fixture.upstream);
    let token = fixture.token();
    assert_eq!(get_bearer(&proxy.url("/api/a"), &token).await.status, 200);
    let old_kid = proxy.active_kid();
    let new_kid = proxy.rotate_signing_key(Alg::EdDSA).await;
    assert_ne!(old_kid, new_kid);
    assert_eq!(get_bearer(&proxy.url("/api/a"), &token).await.status, 200);
    assert_eq!(
        proxy.counter(|m| &m.signatures),
        2,
        "the old cached token was not served"
    );
    let forwarded = upstream.last().bearer();
    let header = jsonwebtoken::decode_header(&forwarded).unwrap();
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    crate::proxy::verify_with_published_jwks(
        proxy,
        &forwarded,
        jsonwebtoken::Algorithm::EdDSA,
        &["https://api.test"],
    )
    .await;
}

/// One keep-alive connection repeating its token is served from its connection's memo
/// (`cache::LastToken`) exactly what the cache would serve: a signing key rotation, another
/// route, another token in between and the entry's expiry are all seen on that connection.
#[tokio::test]
async fn a_connection_repeating_its_token_sees_every_change() {
    let fixture = Fixture::builder()
        .await
        // No leeway: the entry lives until the token's exp.
        .idp("leeway", "0s")
        .route(Route::api())
        .route(Route::new("/other"))
        .start()
        .await;
    let (proxy, upstream) = (&fixture.proxy, &fixture.upstream);
    let signatures = || proxy.counter(|m| &m.signatures);
    let mut conn = KeepAlive::open(&proxy.url("")).await;
    let token = fixture.token();
    for round in 0..3 {
        assert_eq!(conn.get("/api/a", &token).await.0, 200, "round {round}");
    }
    assert_eq!((signatures(), proxy.counter(|m| &m.cache_hits)), (1, 2));
    let first = upstream.last().bearer();

    let new_kid = proxy.rotate_signing_key(Alg::EdDSA).await;
    assert_eq!(conn.get("/api/a", &token).await.0, 200);
    assert_eq!(signatures(), 2, "re-signed under the new key");
    let rotated = upstream.last().bearer();
    assert_ne!(rotated, first);
    let header = jsonwebtoken::decode_header(&rotated).unwrap();
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));

    assert_eq!(conn.get("/other/a", &token).await.0, 200);
    assert_eq!(signatures(), 3, "another route is another entry");
    let other = fixture.token();
    assert_eq!(conn.get("/api/a", &other).await.0, 200);
    assert_eq!(conn.get("/api/a", &token).await.0, 200);
    assert_eq!(signatures(), 4, "the first token's entry from the cache");
    assert_eq!(upstream.last().bearer(), rotated);

    // A token two seconds from its exp: served from the memo until then, refused after.
    let exp = resigner::jose::time::now_unix() + 2;
    let short = fixture.mint(|claims| claims["exp"] = serde_json::json!(exp));
    assert_eq!(conn.get("/api/a", &short).await.0, 200);
    assert_eq!(conn.get("/api/a", &short).await.0, 200);
    assert_eq!(signatures(), 5);
    while resigner::jose::time::now_unix() <= exp {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        conn.get("/api/a", &short).await.0,
        401,
        "expired, not remembered"
    );
}
