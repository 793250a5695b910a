//! A replica that starts while the database is down and has no local copy (`[keys] cache`
//! absent): it serves `/healthz` but is not ready, and says why on `/readyz`,
//! `/admin/status` and `/metrics`; the management API answers 503 with `Retry-After`; the
//! JWKS and re-signed requests get 503 rather than an empty set. Its follower keeps trying:
//! once the database is back it syncs, becomes ready and re-signs.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{AFTER_OUTAGE, assert_same_jwks};
use crate::admin_races::{PATH, bodies, kids_of, put};
use crate::common::replicas::Cluster;
use crate::common::{ADMIN_TOKEN, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_started_with_the_database_down_and_no_copy_is_not_ready_until_it_syncs() {
    let mut cluster = Cluster::start(1, "60s").await;
    let signing = cluster.signing_jwk();
    let set = cluster.put_everywhere(0, &signing).await;

    cluster.pg.stop();
    let i = cluster.add_replica().await;
    let cold = &cluster.replicas[i];
    let (admin, copy) = (cold.admin_url(), cold.dir.path().join("keys-cache.json"));
    assert!(!copy.exists());

    let ready = get(&format!("{admin}/readyz"), &[]).await;
    assert_eq!(ready.status, 503);
    let reason = ready.json()["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("unreachable") && reason.contains("no local copy at"),
        "{reason}"
    );
    let status = get(&format!("{admin}/admin/status"), &[]).await.json();
    assert_eq!(status["ready"], false, "{status}");
    assert_eq!(status["store"]["has_set"], false, "{status}");
    assert_eq!(status["store"]["reachable"], false, "{status}");
    let why = status["store"]["no_set_reason"]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("no local copy at"), "{status}");
    let metrics =
        String::from_utf8_lossy(&get(&format!("{admin}/metrics"), &[]).await.body).into_owned();
    for series in [
        "resigner_store_has_set 0\n",
        "resigner_store_reachable 0\n",
        "resigner_ready 0\n",
    ] {
        assert!(metrics.contains(series), "{series}: {metrics}");
    }

    // Nothing to read, nothing to base a write on: 503 with Retry-After.
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let read = get(&format!("{admin}{PATH}"), &[("authorization", &auth)]).await;
    let refused = put(&admin, &bodies(&signing, 1)[0], None).await;
    for reply in [&read, &refused] {
        assert_eq!(reply.status, 503, "{:?}", reply.body);
        assert!(reply.headers.contains_key("retry-after"));
    }
    // No JWKS without its keys, and no signing.
    let jwks = get(&cold.public_url("/.well-known/jwks.json"), &[]).await;
    assert_eq!(jwks.status, 503, "{:?}", jwks.body);
    assert!(jwks.headers.contains_key("retry-after"));
    assert_eq!(jwks.json()["error"], "temporarily_unavailable");
    assert_eq!(cluster.proxied(i).await, 503, "no re-signing without a set");
    // The replica that has a set keeps signing meanwhile.
    assert_eq!(cluster.proxied(0).await, 200);

    cluster.pg.start_again().await;
    let deadline = Instant::now() + AFTER_OUTAGE;
    let mut last: Value;
    loop {
        let reply = get(&format!("{admin}/readyz"), &[]).await;
        last = reply.json();
        if reply.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready again: {last}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cluster.proxied(i).await, 200, "re-signs once synced");
    cluster
        .converge(&kids_of(&set), Duration::from_secs(5))
        .await;
    assert_same_jwks(&cluster).await;
    // Saved (off the request path) right after the set is installed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !copy.exists() {
        assert!(
            Instant::now() < deadline,
            "the first sync saves the local copy"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = get(&format!("{admin}/admin/status"), &[]).await.json();
    assert_eq!(status["store"]["has_set"], true, "{status}");
    assert_eq!(status["store"]["no_set_reason"], Value::Null, "{status}");
    // And it takes writes again, which reach the other replica.
    let after = bodies(&signing, 1).remove(0);
    assert_eq!(put(&admin, &after, None).await.status, 200);
    cluster
        .converge(&kids_of(&after), Duration::from_secs(5))
        .await;
}
