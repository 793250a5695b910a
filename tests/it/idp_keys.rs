//! The IdP key client against a live test IdP: discovery, refetch on an unknown kid (once per
//! burst, then suppressed), stale-if-error, 503 when no key set was ever loaded, and never
//! replacing a good set with an empty one.

use std::time::Duration;

use serde_json::json;

use crate::common::idp::Mode;
use crate::common::*;

/// A fixture whose proxy refreshes the IdP keys every 100 ms, with what `more` adds.
async fn refreshing_fixture(more: impl FnOnce(FixtureBuilder) -> FixtureBuilder) -> Fixture {
    let builder = Fixture::builder()
        .await
        .idp("refresh", "100ms")
        .idp("refresh_min", "100ms");
    more(builder).start().await
}

/// Asserts that `/admin/status` names the last failed IdP fetch with `needle`.
async fn assert_last_idp_error(proxy: &TestProxy, needle: &str) {
    let status = get(&proxy.admin_url("/admin/status"), &[]).await.json();
    let error = status["idps"][0]["last_error"].as_str().unwrap();
    assert!(error.contains(needle), "{status}");
}

/// 50 concurrent requests, each with its own token signed by `key`; their statuses.
async fn burst(fixture: &Fixture, key: &IdpKey) -> Vec<u16> {
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let token = mint(key, &fixture.claims());
            let url = fixture.url("/api/x");
            tokio::spawn(async move { get_bearer(&url, &token).await.status.as_u16() })
        })
        .collect();
    let mut statuses = vec![];
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

#[tokio::test]
async fn unknown_kid_burst_triggers_exactly_one_refetch() {
    let fixture = Fixture::start().await;
    let (proxy, idp) = (&fixture.proxy, &fixture.idp);
    let new = IdpKey::rs256("new");
    let before = idp.fetches();
    idp.set_keys(&[&fixture.key, &new]);

    let statuses = burst(&fixture, &new).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        idp.fetches() - before,
        1,
        "one refetch for 50 concurrent requests"
    );

    // A kid the IdP does not have: within the cooldown no further fetch happens at all.
    let statuses = burst(&fixture, &IdpKey::rs256("stranger")).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(
        idp.fetches() - before,
        1,
        "refetches are suppressed during the cooldown"
    );
    assert!(proxy.counter(|m| &m.idp_fetch_suppressed) >= 50);
}

#[tokio::test]
async fn unknown_kid_refetches_again_after_the_cooldown() {
    let fixture = Fixture::builder()
        .await
        .idp("unknown_kid_cooldown", "300ms")
        .start()
        .await;
    let (proxy, idp) = (&fixture.proxy, &fixture.idp);
    let stranger = IdpKey::rs256("k2");
    let before = idp.fetches();
    let token = mint(&stranger, &fixture.claims());
    assert_eq!(get_bearer(&proxy.url("/api/x"), &token).await.status, 401);
    assert_eq!(idp.fetches() - before, 1);
    assert_eq!(get_bearer(&proxy.url("/api/x"), &token).await.status, 401);
    assert_eq!(idp.fetches() - before, 1, "negative cache");
    tokio::time::sleep(Duration::from_millis(400)).await;
    idp.set_keys(&[&fixture.key, &stranger]);
    assert_eq!(get_bearer(&proxy.url("/api/x"), &token).await.status, 200);
    assert_eq!(idp.fetches() - before, 2);
}

#[tokio::test]
async fn idp_down_after_start_keeps_serving_the_last_good_set() {
    let fixture = refreshing_fixture(|builder| builder).await;
    let (proxy, idp) = (&fixture.proxy, &fixture.idp);
    idp.set_mode(Mode::Error500);
    let failed_before = proxy.counter(|m| &m.idp_fetch_failed);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        proxy.counter(|m| &m.idp_fetch_failed) > failed_before,
        "refreshes were attempted and failed"
    );
    let token = fixture.token();
    let reply = get_bearer(&proxy.url("/api/x"), &token).await;
    assert_eq!(reply.status, 200, "stale-if-error: {:?}", reply.body);
    assert_last_idp_error(proxy, "500").await;
    assert_last_idp_error(proxy, "); keeping the last good key set (fetched ").await;

    // An empty or keyless JWKS never replaces the good set either.
    idp.set_mode(Mode::Up);
    idp.set_jwks(json!({"keys": []}));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let token = fixture.token();
    assert_eq!(get_bearer(&proxy.url("/api/x"), &token).await.status, 200);
    let jwks = get(&proxy.url("/.well-known/jwks.json"), &[]).await.json();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == "idp-1")
    );
}

#[tokio::test]
async fn no_key_set_ever_loaded_answers_503_with_retry_after() {
    let builder = Fixture::builder().await;
    builder.idp.set_mode(Mode::Error500);
    let fixture = builder.start_not_ready().await;
    let (proxy, idp, upstream) = (&fixture.proxy, &fixture.idp, &fixture.upstream);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let token = fixture.token();
    let reply = get_bearer(&proxy.url("/api/x"), &token).await;
    assert_eq!(reply.status, 503);
    assert!(reply.headers.contains_key("retry-after"));
    assert_eq!(reply.json()["error"], "temporarily_unavailable");
    let ready = get(&proxy.admin_url("/readyz"), &[]).await;
    assert_eq!(ready.status, 503);
    assert!(ready.json()["reason"].as_str().unwrap().contains("500"));
    assert_eq!(upstream.count(), 0);

    // Once the IdP recovers, the start-up retry loop loads the keys.
    idp.set_mode(Mode::Up);
    proxy.ready().await;
    assert_eq!(get_bearer(&proxy.url("/api/x"), &token).await.status, 200);
}

#[tokio::test]
async fn jwks_uri_is_discovered_and_cache_control_drives_refresh() {
    let builder = Fixture::builder_with(IdpKey::rs256("first")).await;
    builder.idp.set_cache_control(Some("public, max-age=1"));
    let fixture = builder
        .discover()
        .idp("refresh", "1h")
        .idp("refresh_min", "1s")
        .start()
        .await;
    let (proxy, idp) = (&fixture.proxy, &fixture.idp);
    idp.set_keys(&[&IdpKey::rs256("second")]);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let jwks = get(&proxy.url("/.well-known/jwks.json"), &[]).await.json();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(
        kids.contains(&"second") && !kids.contains(&"first"),
        "max-age=1 refreshed the set: {kids:?}"
    );
}

#[tokio::test]
async fn slow_idp_times_out_and_the_last_good_set_keeps_serving() {
    let fixture = refreshing_fixture(|builder| builder.idp("fetch_timeout", "200ms")).await;
    let (proxy, idp) = (&fixture.proxy, &fixture.idp);
    idp.set_delay(Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        proxy.counter(|m| &m.idp_fetch_failed) >= 1,
        "the slow fetch timed out"
    );
    assert_last_idp_error(proxy, "did not answer").await;
    let token = fixture.token();
    assert_eq!(get_bearer(&proxy.url("/api/x"), &token).await.status, 200);
}
