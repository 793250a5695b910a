//! The IdP key client against a live test IdP: discovery, refetch on an unknown kid (once per
//! burst, then suppressed), stale-if-error, 503 when no key set was ever loaded, and never
//! replacing a good set with an empty one.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::common::idp::Mode;
use crate::common::*;

#[tokio::test]
async fn unknown_kid_burst_triggers_exactly_one_refetch() {
    let old = IdpKey::rs256("old");
    let new = IdpKey::rs256("new");
    let idp = TestIdp::start(&[&old]).await;
    let upstream = TestUpstream::start().await;
    let proxy = Arc::new(ProxyBuilder::new(&idp).api_route(&upstream).start().await);
    proxy.ready().await;
    let before = idp.fetches();
    idp.set_keys(&[&old, &new]);

    let burst = |key: &IdpKey| {
        (0..50)
            .map(|_| {
                let token = mint(key, &claims(&idp.issuer, "https://api.test"));
                let url = proxy.url("/api/x");
                tokio::spawn(async move { get_bearer(&url, &token).await.status.as_u16() })
            })
            .collect::<Vec<_>>()
    };
    let mut statuses = vec![];
    for task in burst(&new) {
        statuses.push(task.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        idp.fetches() - before,
        1,
        "one refetch for 50 concurrent requests"
    );

    // A kid the IdP does not have: within the cooldown no further fetch happens at all.
    let stranger = IdpKey::rs256("stranger");
    let mut statuses = vec![];
    for task in burst(&stranger) {
        statuses.push(task.await.unwrap());
    }
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
    let key = IdpKey::rs256("k1");
    let idp = TestIdp::start(&[&key]).await;
    let upstream = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&idp)
        .idp("unknown_kid_cooldown = \"300ms\"")
        .api_route(&upstream)
        .start()
        .await;
    proxy.ready().await;
    let stranger = IdpKey::rs256("k2");
    let before = idp.fetches();
    let token = mint(&stranger, &claims(&idp.issuer, "https://api.test"));
    assert_eq!(get_bearer(&proxy.url("/api/x"), &token).await.status, 401);
    assert_eq!(idp.fetches() - before, 1);
    assert_eq!(get_bearer(&proxy.url("/api/x"), &token).await.status, 401);
    assert_eq!(idp.fetches() - before, 1, "negative cache");
    tokio::time::sleep(Duration::from_millis(400)).await;
    idp.set_keys(&[&key, &stranger]);
    assert_eq!(get_bearer(&proxy.url("/api/x"), &token).await.status, 200);
    assert_eq!(idp.fetches() - before, 2);
}

#[tokio::test]
async fn idp_down_after_start_keeps_serving_the_last_good_set() {
    let key = IdpKey::rs256("k1");
    let idp = TestIdp::start(&[&key]).await;
    let upstream = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&idp)
        .idp("refresh = \"100ms\"")
        .idp("refresh_min = \"100ms\"")
        .api_route(&upstream)
        .start()
        .await;
    proxy.ready().await;
    idp.set_mode(Mode::Error500);
    let failed_before = proxy.counter(|m| &m.idp_fetch_failed);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        proxy.counter(|m| &m.idp_fetch_failed) > failed_before,
        "refreshes were attempted and failed"
    );
    let token = mint(&key, &claims(&idp.issuer, "https://api.test"));
    let reply = get_bearer(&proxy.url("/api/x"), &token).await;
    assert_eq!(reply.status, 200, "stale-if-error: {:?}", reply.body);
    let status = get(&proxy.admin_url("/admin/status"), &[]).await.json();
    let last_error = status["idp"]["last_error"].as_str().unwrap();
    assert!(last_error.contains("500"), "{status}");
    assert!(
        last_error.contains("); keeping the last good key set (fetched "),
        "says a good set is held, unlike before the first success: {last_error}"
    );

    // An empty or keyless JWKS never replaces the good set either.
    idp.set_mode(Mode::Up);
    idp.set_jwks(json!({"keys": []}));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let token = mint(&key, &claims(&idp.issuer, "https://api.test"));
    assert_eq!(get_bearer(&proxy.url("/api/x"), &token).await.status, 200);
    let jwks = get(&proxy.url("/.well-known/jwks.json"), &[]).await.json();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == "k1")
    );
}

#[tokio::test]
async fn no_key_set_ever_loaded_answers_503_with_retry_after() {
    let key = IdpKey::rs256("k1");
    let idp = TestIdp::start(&[&key]).await;
    idp.set_mode(Mode::Error500);
    let upstream = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&idp).api_route(&upstream).start().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let token = mint(&key, &claims(&idp.issuer, "https://api.test"));
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
    let first = IdpKey::rs256("first");
    let second = IdpKey::rs256("second");
    let idp = TestIdp::start(&[&first]).await;
    idp.set_cache_control(Some("public, max-age=1"));
    let upstream = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&idp)
        .discover()
        .idp("refresh = \"1h\"")
        .idp("refresh_min = \"1s\"")
        .api_route(&upstream)
        .start()
        .await;
    proxy.ready().await;
    idp.set_keys(&[&second]);
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
    let key = IdpKey::rs256("k1");
    let idp = TestIdp::start(&[&key]).await;
    let upstream = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&idp)
        .idp("fetch_timeout = \"200ms\"")
        .idp("refresh = \"100ms\"")
        .idp("refresh_min = \"100ms\"")
        .api_route(&upstream)
        .start()
        .await;
    proxy.ready().await;
    idp.set_delay(Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        proxy.counter(|m| &m.idp_fetch_failed) >= 1,
        "the slow fetch timed out"
    );
    let status = get(&proxy.admin_url("/admin/status"), &[]).await.json();
    assert!(
        status["idp"]["last_error"]
            .as_str()
            .unwrap()
            .contains("did not answer"),
        "{status}"
    );
    let token = mint(&key, &claims(&idp.issuer, "https://api.test"));
    assert_eq!(get_bearer(&proxy.url("/api/x"), &token).await.status, 200);
}
