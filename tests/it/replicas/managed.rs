//! Issue #14 on three replicas sharing one PostgreSQL database: managed signing keys created
//! once, rotated through one replica's `/api/v2/keys/signing/rotate` and revoked through
//! another's, reach every replica within a second (the poll is a minute: only the
//! notification explains it), with identical JWKS bytes and every replica signing with the
//! new current key. The database holds private keys only sealed. Two replicas with the same
//! `rotate_every` rotate once between them.

use std::time::{Duration, Instant};

use http::Method;
use serde_json::Value;

use crate::common::replicas::Cluster;
use crate::common::*;
use crate::managed_keys::kid_where;

const SK_TOKEN: &str = "test-replica-signing-token-0123456789";
const WITHIN: Duration = Duration::from_secs(1);

fn signing_admin(builder: ProxyBuilder) -> ProxyBuilder {
    builder
        .min_published_age("0s")
        .admin_token("signing", SK_TOKEN, &SIGNING_SCOPES)
}

fn scheduled(builder: ProxyBuilder) -> ProxyBuilder {
    signing_admin(builder).set("signing.managed", "rotate_every", "1h")
}

async fn listed(admin: &str) -> Vec<Value> {
    let reply = get_bearer(&format!("{admin}/api/v2/keys/signing"), SK_TOKEN).await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    reply.json().as_array().unwrap().clone()
}

fn jwks_kids(body: &[u8]) -> Vec<String> {
    let jwks: Value = serde_json::from_slice(body).unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until every replica signs with `current` and publishes the same JWKS, whose kids
/// start with `published`; panics after `within` with what each replica shows.
async fn converged(cluster: &Cluster, current: &str, published: &[String], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let mut signed = Vec::new();
        for i in 0..cluster.replicas.len() {
            signed.push(cluster.resigned_kid(i).await);
        }
        let jwks = cluster.jwks().await;
        let same = jwks.iter().all(|j| *j == jwks[0]);
        let kids = jwks_kids(&jwks[0].0);
        if same && signed.iter().all(|k| k == current) && kids.starts_with(published) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not converged on {current} / {published:?} within {within:?}: signing {signed:?}, \
             JWKS kids {:?}",
            jwks.iter().map(|j| jwks_kids(&j.0)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn actions(cluster: &Cluster) -> Vec<String> {
    let db = cluster.pg.admin().await;
    db.query(
        "SELECT action FROM resigner_signing_changes ORDER BY version",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|row| row.get(0))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_through_one_replica_reaches_every_replica_within_a_second() {
    let cluster = Cluster::managed(3, "60s", signing_admin).await;
    let admins = cluster.admins();
    let keys = listed(&admins[0]).await;
    for admin in &admins[1..] {
        assert_eq!(listed(admin).await, keys, "one key set, created once");
    }
    assert_eq!(actions(&cluster).await, ["create"]);
    let (current, next) = (kid_where(&keys, "current"), kid_where(&keys, "next"));
    converged(&cluster, &current, &[current.clone(), next.clone()], WITHIN).await;

    let rotated = crate::managed_keys::rotate(&admins[1], SK_TOKEN).await;
    assert_eq!(rotated.status, 201, "{:?}", rotated.json());
    let new_next = rotated.json()["kid"].as_str().unwrap().to_string();
    let published = [next.clone(), new_next.clone(), current.clone()];
    converged(&cluster, &next, &published, WITHIN).await;
    for admin in &admins {
        let keys = listed(admin).await;
        assert_eq!(kid_where(&keys, "current"), next);
        assert_eq!(kid_where(&keys, "previous"), current);
    }

    let revoked = send(
        Method::PUT,
        &format!("{}/api/v2/keys/signing/{current}/revoke", admins[2]),
        &[("authorization", &format!("Bearer {SK_TOKEN}"))],
        b"",
    )
    .await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.json());
    converged(&cluster, &next, &[next.clone(), new_next.clone()], WITHIN).await;
    for jwks in cluster.jwks().await {
        assert!(!jwks_kids(&jwks.0).contains(&current), "revoked everywhere");
    }
    assert_eq!(actions(&cluster).await, ["create", "rotate", "revoke"]);
    sealed_only(&cluster).await;
}

/// No column of the key rows holds a private key in the clear: every `sealed_private`
/// unseals with the KEK, and neither its DER nor the private scalar is in any row's text.
async fn sealed_only(cluster: &Cluster) {
    let db = cluster.pg.admin().await;
    let rows = db
        .query(
            "SELECT kid, alg, sealed_private, kek_id, t::text FROM resigner_signing_keys t",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    let kek_bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&TEST_KEK[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let kek =
        resigner::keys::managed::kek::Kek::from_bytes(&kek_bytes.try_into().unwrap()).unwrap();
    for row in rows {
        let (kid, alg): (String, String) = (row.get(0), row.get(1));
        let sealed = resigner::keys::managed::Sealed {
            data: resigner::jose::b64::encode(row.get::<_, Vec<u8>>(2)),
            kek_id: row.get(3),
        };
        let der = kek
            .unseal(&sealed, &kid, &alg)
            .expect("sealed under the KEK");
        let text: String = row.get(4);
        let d = &der[7..39];
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert!(
            !text.contains(&hex(d)),
            "the private scalar of {kid} in clear"
        );
        assert!(!text.contains(&resigner::jose::b64::encode(d)));
        assert!(
            !text.contains(&hex(&der)),
            "the PKCS#8 DER of {kid} in clear"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_with_one_schedule_rotate_once() {
    let cluster = Cluster::managed(2, "60s", scheduled).await;
    let keys = listed(&cluster.admins()[0]).await;
    let (current, next) = (kid_where(&keys, "current"), kid_where(&keys, "next"));
    // The current key has been current for two hours: a rotation is due on both replicas at
    // once, which is what time passing would do (an edit of the state, as a write makes it:
    // a new version and a notification).
    let db = cluster.pg.admin().await;
    db.batch_execute(
        "BEGIN;
         UPDATE resigner_signing_keys SET created_at = created_at - interval '2 hours',
             current_since = current_since - interval '2 hours';
         UPDATE resigner_signing_state SET version = version + 1;
         SELECT pg_notify('resigner_keys', 'test');
         COMMIT;",
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while actions(&cluster).await.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "no scheduled rotation within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    converged(
        &cluster,
        &next,
        std::slice::from_ref(&next),
        Duration::from_secs(5),
    )
    .await;
    // Both schedules have looked again since (they check at least every 5 s).
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        actions(&cluster).await,
        ["create", "rotate"],
        "one rotation"
    );
    for admin in cluster.admins() {
        let keys = listed(&admin).await;
        assert_eq!(kid_where(&keys, "current"), next);
        assert_eq!(kid_where(&keys, "previous"), current);
    }
}
