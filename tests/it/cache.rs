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
