//! A replica that starts while the database is down and has no local copy yet (its
//! `[keys] cache`, the default `keys-cache.json` in its own directory, does not exist): it
//! serves `/healthz` but is not ready, and says why on `/readyz`, `/admin/status` and
//! `/metrics`; the management API answers 503 with `Retry-After`; the JWKS and re-signed
//! requests get 503 rather than an empty set. Its follower keeps trying: once the database is
//! back it syncs, becomes ready, re-signs and writes that local copy. Polled all along, its
//! JWKS never answers 200 without the stored custom keys. A stored set that fails this
//! replica's validation (a weak key written to the table directly) keeps it not ready, with
//! the validation error as the reason.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{AFTER_OUTAGE, assert_same_jwks};
use crate::admin_races::{PATH, bodies, kids_of, put};
use crate::common::replicas::Cluster;
use crate::common::{ADMIN_TOKEN, get, public_jwk};
use resigner::jose::alg::Alg;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_started_with_the_database_down_and_no_copy_is_not_ready_until_it_syncs() {
    let mut cluster = Cluster::start(1, "60s").await;
    let signing = cluster.signing_jwk();
    // RSA keys take the validation (weak-key checks) milliseconds each: a window in which the
    // store holds the set and the replica has not installed it yet.
    let mut keys = vec![signing.clone()];
    keys.extend((0..6).map(|_| public_jwk(Alg::RS256)));
    let set = json!({ "keys": keys });
    assert_eq!(
        put(&cluster.replicas[0].admin_url(), &set, None)
            .await
            .status,
        200
    );

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

    let watcher = JwksWatch::start(cold.public_url("/.well-known/jwks.json"), kids_of(&set));
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
    let (unavailable, complete) = watcher.stop().await;
    assert!(unavailable > 0, "polled while not ready");
    assert!(complete > 0, "polled once ready");
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

/// Polls a JWKS in a tight loop and fails on any 200 that lacks one of `kids`.
struct JwksWatch {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(usize, usize)>,
}

impl JwksWatch {
    fn start(url: String, kids: Vec<Value>) -> JwksWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let (mut unavailable, mut complete) = (0, 0);
            // One more poll after the stop: the replica is ready by then.
            let mut last = false;
            while !last {
                last = flag.load(Ordering::Acquire);
                let reply = get(&url, &[]).await;
                match reply.status.as_u16() {
                    503 => unavailable += 1,
                    200 => {
                        let served = kids_of(&reply.json());
                        assert!(
                            kids.iter().all(|kid| served.contains(kid)),
                            "a 200 JWKS without the stored custom kids {kids:?}: {served:?}"
                        );
                        complete += 1;
                    }
                    other => panic!("JWKS answered {other}: {:?}", reply.body),
                }
            }
            (unavailable, complete)
        });
        JwksWatch { stop, task }
    }

    /// The 503s and complete 200s seen.
    async fn stop(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Release);
        self.task
            .await
            .expect("the JWKS watch saw only complete sets")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_replica_that_syncs_an_invalid_set_stays_not_ready_and_says_why() {
    let mut cluster = Cluster::start(1, "60s").await;
    let signing = cluster.signing_jwk();
    cluster.put_everywhere(0, &signing).await;
    // Written to the table directly, as only a hand edit could: the API refuses weak keys.
    let weak_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/weak-keys/small-factor.jwk.json");
    let weak: Value = serde_json::from_str(&std::fs::read_to_string(&weak_path).unwrap()).unwrap();
    let keys = json!([signing, weak]).to_string();
    let db = cluster.pg.admin().await;
    let version: i64 = db
        .query_one(
            "UPDATE resigner_key_set SET version = version + 1, keys = $1::text::jsonb \
             WHERE id = 1 RETURNING version",
            &[&keys],
        )
        .await
        .expect("the direct edit")
        .get(0);
    drop(db);

    cluster.pg.stop();
    let i = cluster.add_replica().await;
    let cold = &cluster.replicas[i];
    let admin = cold.admin_url();
    let jwks_url = cold.public_url("/.well-known/jwks.json");
    let watcher = JwksWatch::start(jwks_url.clone(), kids_of(&json!({"keys": [signing, weak]})));
    cluster.pg.start_again().await;

    // Synced (the local copy is the database's set, saved on sync), yet not ready.
    let copy = cold.dir.path().join("keys-cache.json");
    let deadline = Instant::now() + AFTER_OUTAGE;
    while !copy.exists() {
        assert!(Instant::now() < deadline, "never synced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expected = format!("the stored custom key set (version {version}) is invalid");
    let deadline = Instant::now() + Duration::from_secs(5);
    let reason = loop {
        let ready = get(&format!("{admin}/readyz"), &[]).await;
        assert_eq!(
            ready.status, 503,
            "an invalid set is not served: {:?}",
            ready.body
        );
        let reason = ready.json()["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if reason.contains(&expected) {
            break reason;
        }
        assert!(
            Instant::now() < deadline,
            "no validation error as the reason: {reason}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        reason.contains("weak-small-factor") && reason.contains("divisible by 751"),
        "{reason}"
    );
    let status = get(&format!("{admin}/admin/status"), &[]).await.json();
    assert_eq!(status["ready"], false, "{status}");
    assert_eq!(status["store"]["reachable"], true, "{status}");
    assert_eq!(status["store"]["version"], version, "{status}");
    assert_eq!(status["store"]["has_set"], false, "{status}");
    assert_eq!(
        status["store"]["no_set_reason"],
        reason.as_str(),
        "{status}"
    );
    let metrics =
        String::from_utf8_lossy(&get(&format!("{admin}/metrics"), &[]).await.body).into_owned();
    assert!(metrics.contains("resigner_store_has_set 0\n"), "{metrics}");
    let (unavailable, complete) = watcher.stop().await;
    assert!(
        unavailable > 0 && complete == 0,
        "{unavailable} 503s, {complete} 200s"
    );
    let jwks = get(&jwks_url, &[]).await;
    assert_eq!(jwks.status, 503, "{:?}", jwks.body);
    assert_eq!(jwks.json()["error"], "temporarily_unavailable");
    assert_eq!(cluster.proxied(i).await, 503, "no re-signing");
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let read = get(&format!("{admin}{PATH}"), &[("authorization", &auth)]).await;
    assert_eq!(read.status, 503, "{:?}", read.body);
    // The replica that validated the set before keeps its own and keeps signing.
    assert_eq!(cluster.proxied(0).await, 200);
}
