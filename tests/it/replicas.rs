//! Issue #12: three `resigner serve` processes on one PostgreSQL database behave as one. A
//! PUT through any replica reaches every replica's JWKS and signing guard, with identical
//! bytes and ETags; concurrent If-Match PUTs through different replicas have one winner and
//! 412s; with the database down every replica keeps re-signing, writes answer 503, and a
//! restarted replica comes up from its local copy; a lost notification and a `kill -9` in a
//! PUT loop still converge on whole sets. A replica started with the database down and no
//! local copy is not ready until it syncs ([`cold_start`]).

mod cold_start;
mod managed;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::admin_races::{bodies, kids_of, listed_kids, put, race};
use crate::common::replicas::Cluster;

/// Generous: the follower's reconnect backoff caps at 10 s after a database outage.
const SOON: Duration = Duration::from_secs(5);
pub(crate) const AFTER_OUTAGE: Duration = Duration::from_secs(30);

/// Every replica's `/admin/status` store and JWKS fingerprint, and its `/metrics` text;
/// neither ever shows the database password.
async fn observed(cluster: &Cluster) -> Vec<(Value, String)> {
    let mut all = Vec::new();
    for admin in cluster.admins() {
        let status = crate::common::get(&format!("{admin}/admin/status"), &[]).await;
        let metrics = crate::common::get(&format!("{admin}/metrics"), &[]).await;
        let (status_text, metrics_text) = (
            String::from_utf8_lossy(&status.body).into_owned(),
            String::from_utf8_lossy(&metrics.body).into_owned(),
        );
        for text in [&status_text, &metrics_text] {
            assert!(!text.contains(crate::common::postgres::PASSWORD), "{text}");
        }
        let status = status.json();
        all.push((
            json!({"store": status["store"], "jwks": status["jwks"]}),
            metrics_text,
        ));
    }
    all
}

/// Every replica's JWKS bytes and ETag are the same.
pub(crate) async fn assert_same_jwks(cluster: &Cluster) {
    let all = cluster.jwks().await;
    assert!(!all[0].1.is_empty(), "the JWKS has an ETag");
    assert!(
        all.iter().all(|j| *j == all[0]),
        "JWKS differ: {:?}",
        all.iter()
            .map(|(b, e)| (String::from_utf8_lossy(b).into_owned(), e.clone()))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_through_one_replica_reaches_every_jwks_and_signing_guard() {
    // A poll of a minute: only the notification can explain convergence within SOON.
    let cluster = Cluster::start(3, "60s").await;
    // Replicas 1 and 2 are ready and sign only because the database gave them the key
    // replica 0 published.
    for i in 0..3 {
        assert_eq!(cluster.proxied(i).await, 200, "replica {i} re-signs");
    }
    let signing = cluster.signing_jwk();
    let body = bodies(&signing, 1).remove(0);
    let reply = put(&cluster.replicas[1].admin_url(), &body, None).await;
    assert_eq!(reply.status, 200);
    cluster.converge(&kids_of(&body), SOON).await;
    assert_same_jwks(&cluster).await;
    let jwks: Value = serde_json::from_slice(&cluster.jwks().await[2].0).unwrap();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == body["keys"][1]["kid"])
    );

    // Convergence is visible: same version and fingerprint everywhere, in status and metrics.
    let seen = observed(&cluster).await;
    let (first, _) = &seen[0];
    assert_eq!(first["store"]["backend"], "postgres");
    assert_eq!(first["store"]["reachable"], true);
    let location = first["store"]["location"].as_str().unwrap();
    assert!(
        location.starts_with("postgres://resigner@127.0.0.1:"),
        "{location}"
    );
    assert!(first["store"]["last_sync"].is_string());
    assert_eq!(first["jwks"]["sha256"].as_str().unwrap().len(), 64);
    let version = first["store"]["version"].as_u64().unwrap();
    assert!(version >= 2, "{first}");
    for (status, metrics) in &seen {
        assert_eq!(status["jwks"], first["jwks"]);
        assert_eq!(status["store"]["version"], version);
        assert!(
            metrics.contains(&format!("resigner_store_version {version}\n")),
            "{metrics}"
        );
        assert!(
            metrics.contains("resigner_store_reachable 1\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("resigner_store_notifications_total "),
            "{metrics}"
        );
    }
    let (replica1, _) = &seen[1];
    assert!(
        replica1["store"]["notifications"].as_u64().unwrap() >= 1,
        "{replica1}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_if_match_puts_through_different_replicas_have_one_winner() {
    let cluster = Cluster::start(3, "60s").await;
    let signing = cluster.signing_jwk();
    cluster
        .converge(&kids_of(&json!({"keys": [signing]})), SOON)
        .await;
    let auth = format!("Bearer {}", crate::common::ADMIN_TOKEN);
    let read = crate::common::get(
        &format!(
            "{}{}",
            cluster.replicas[0].admin_url(),
            crate::admin_races::PATH
        ),
        &[("authorization", &auth)],
    )
    .await;
    let etag = read.headers["etag"].to_str().unwrap().to_string();

    let bodies = bodies(&signing, 9);
    let replies = race(&cluster.admins(), &bodies, Some(&etag)).await;

    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    let winners: Vec<usize> = (0..bodies.len()).filter(|&i| statuses[i] == 200).collect();
    assert_eq!(winners.len(), 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 412),
        "{statuses:?}"
    );
    cluster.converge(&kids_of(&bodies[winners[0]]), SOON).await;
    assert_same_jwks(&cluster).await;

    // Without If-Match every one applies; all replicas end on one writer's whole set.
    let replies = race(&cluster.admins(), &bodies, None).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let last = listed_kids(&cluster.replicas[0].admin_url()).await;
    assert!(bodies.iter().any(|b| kids_of(b) == last), "{last:?}");
    cluster.converge(&last, SOON).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_down_replicas_keep_signing_and_writes_get_503() {
    let mut cluster = Cluster::start(3, "60s").await;
    let signing = cluster.signing_jwk();
    let before = cluster.put_everywhere(0, &signing).await;

    cluster.pg.stop();
    for i in 0..3 {
        assert_eq!(
            cluster.proxied(i).await,
            200,
            "replica {i} re-signs with the database down"
        );
    }
    let refused = put(
        &cluster.replicas[1].admin_url(),
        &bodies(&signing, 1)[0],
        None,
    )
    .await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(refused.json()["statusCode"], 503);
    let seen = observed(&cluster).await;
    let (status, metrics) = &seen[1];
    assert_eq!(status["store"]["reachable"], false, "{status}");
    assert!(status["store"]["unreachable_since"].is_string(), "{status}");
    assert!(
        metrics.contains("resigner_store_reachable 0\n"),
        "{metrics}"
    );
    // A replica restarted meanwhile serves its local copy.
    cluster.replicas[2].kill();
    cluster.replicas[2].start().await;
    crate::common::serve::wait_for(&format!("{}/readyz", cluster.replicas[2].admin_url()), 200)
        .await;
    assert_eq!(
        cluster.proxied(2).await,
        200,
        "the restarted replica re-signs"
    );
    cluster.converge(&kids_of(&before), SOON).await;
    assert_same_jwks(&cluster).await;

    cluster.pg.start_again().await;
    let after = bodies(&signing, 1).remove(0);
    let mut status = 0;
    for _ in 0..40 {
        status = put(&cluster.replicas[1].admin_url(), &after, None)
            .await
            .status
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(status, 200, "a PUT succeeds once the database is back");
    cluster.converge(&kids_of(&after), AFTER_OUTAGE).await;
    assert_same_jwks(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_notification_still_converges() {
    let cluster = Cluster::start(3, "60s").await;
    let signing = cluster.signing_jwk();
    let warm = cluster.put_everywhere(0, &signing).await;

    // Replica 1's listening connection is cut and kept out (NOLOGIN) while a PUT commits
    // through replica 0, whose writer connection is already open: its NOTIFY is lost.
    let admin = cluster.pg.cut_off("replica1 follower").await;
    let lost = bodies(&signing, 1).remove(0);
    assert_eq!(
        put(&cluster.replicas[0].admin_url(), &lost, None)
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        listed_kids(&cluster.replicas[1].admin_url()).await,
        kids_of(&warm),
        "replica 1 missed the notification"
    );
    admin
        .batch_execute("ALTER ROLE resigner LOGIN")
        .await
        .unwrap();
    // The poll is a minute away: the reload on reconnect brings it.
    cluster
        .converge(&kids_of(&lost), Duration::from_secs(15))
        .await;
    assert_same_jwks(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_a_put_loop_never_publishes_a_partial_set() {
    let mut cluster = Cluster::start(3, "60s").await;
    let signing = cluster.signing_jwk();
    // Each set: the signing key and three keys of its own.
    let sets: Vec<Value> = (0..40)
        .map(|_| {
            let extra = bodies(&signing, 3);
            let keys: Vec<Value> = std::iter::once(signing.clone())
                .chain(extra.iter().map(|b| b["keys"][1].clone()))
                .collect();
            json!({ "keys": keys })
        })
        .collect();
    let mut whole: HashSet<Vec<String>> = sets
        .iter()
        .map(|s| kids_of(s).iter().map(|k| k.to_string()).collect())
        .collect();
    whole.insert(vec![signing["kid"].to_string()]);
    let writer = cluster.replicas[2].admin_url();
    let loop_sets = sets.clone();
    let writes = tokio::spawn(async move {
        for set in &loop_sets {
            // Fails (connection refused) once the replica is killed.
            let _ = crate::common::client::try_send(
                http::Method::PUT,
                &format!("{writer}{}", crate::admin_races::PATH),
                &[
                    (
                        "authorization",
                        &format!("Bearer {}", crate::common::ADMIN_TOKEN),
                    ),
                    ("content-type", "application/json"),
                ],
                set.to_string().as_bytes(),
            )
            .await;
        }
    });
    let watchers = [
        cluster.replicas[0].admin_url(),
        cluster.replicas[1].admin_url(),
    ];
    let mut seen = Vec::new();
    for round in 0..60 {
        if round == 20 {
            assert!(!writes.is_finished(), "the kill lands inside the PUT loop");
            cluster.replicas[2].kill();
        }
        for admin in &watchers {
            seen.push(listed_kids(admin).await);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    writes.await.unwrap();
    for kids in &seen {
        let kids: Vec<String> = kids.iter().map(|k| k.to_string()).collect();
        assert!(
            whole.contains(&kids),
            "a partial or foreign set was published: {kids:?}"
        );
    }
    cluster.replicas[2].start().await;
    let last = listed_kids(&cluster.replicas[0].admin_url()).await;
    let shown: Vec<String> = last.iter().map(|k| k.to_string()).collect();
    assert!(whole.contains(&shown), "{shown:?}");
    cluster.converge(&last, SOON).await;
    assert_same_jwks(&cluster).await;
}
