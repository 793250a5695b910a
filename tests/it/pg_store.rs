//! The PostgreSQL key store against a real server (a throwaway cluster per test, see
//! `common::postgres`): several stores on one database converge through NOTIFY, a lost race is
//! a Conflict, every change is audited, migrations run once however many replicas start
//! together, a lost notification or a poll still converges, and a database that goes down
//! leaves every store serving its last set (or its local copy at start) with writes refused
//! quickly (`pg_store/outage.rs`). TLS (`sslmode`) is in `pg_store/tls.rs`; the managed signing
//! keys' half of the store in `pg_store/signing.rs`.

mod outage;
mod signing;
mod tls;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use resigner::keys::store::postgres::schema::MIGRATIONS;
use resigner::keys::store::{Change, KeyStore, PgStore, StoreError, StoredSet, migrate};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::common::postgres::TestPostgres;

fn key(kid: &str) -> Map<String, Value> {
    json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": kid})
        .as_object()
        .unwrap()
        .clone()
}

pub(super) fn change(kids: &[&str], by: &str) -> Change {
    Change {
        keys: kids.iter().map(|k| key(k)).collect(),
        published_at: kids
            .iter()
            .map(|k| (k.to_string(), 1_700_000_000))
            .collect(),
        by: Some(by.to_string()),
    }
}

pub(super) async fn open(pg: &TestPostgres, name: &str, cache: Option<&Path>) -> PgStore {
    PgStore::open(pg.options(name, cache))
        .await
        .unwrap_or_else(|e| panic!("open store {name}: {e}\n{}", pg.log()))
}

/// Three stores "a", "b", "c" on one database, without local copies.
async fn three(pg: &TestPostgres) -> [PgStore; 3] {
    [
        open(pg, "a", None).await,
        open(pg, "b", None).await,
        open(pg, "c", None).await,
    ]
}

/// Waits until `rx` holds `version` (at most 5 s) and returns it.
pub(super) async fn reaches(
    rx: &mut watch::Receiver<Arc<StoredSet>>,
    version: u64,
) -> Arc<StoredSet> {
    let waited = tokio::time::timeout(Duration::from_secs(5), async {
        rx.wait_for(|s| s.version >= version)
            .await
            .map(|s| s.clone())
    })
    .await;
    let Ok(seen) = waited else {
        panic!(
            "version {version} not reached; still {}",
            rx.borrow().version
        );
    };
    let seen = seen.expect("store alive");
    assert_eq!(seen.version, version);
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_store_reaches_the_others_and_is_audited() {
    let pg = TestPostgres::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a = open(&pg, "a", Some(&dir.path().join("a.json"))).await;
    let b = open(&pg, "b", Some(&dir.path().join("b.json"))).await;
    let c = open(&pg, "c", Some(&dir.path().join("c.json"))).await;
    let (mut rb, mut rc) = (b.subscribe(), c.subscribe());

    let written = a.write(0, change(&["k1"], "alice")).await.unwrap();
    assert_eq!(written.version, 1);
    assert_eq!(*reaches(&mut rb, 1).await, written);
    assert_eq!(*reaches(&mut rc, 1).await, written);
    assert_eq!(b.load().await.unwrap(), written);
    assert_eq!(written.updated_by.as_deref(), Some("alice"));

    let deleted = b.write(1, change(&[], "bob")).await.unwrap();
    let mut ra = a.subscribe();
    assert_eq!(*reaches(&mut ra, 2).await, deleted);
    assert_eq!(*reaches(&mut rc, 2).await, deleted);

    let status = c.status();
    assert_eq!(status.backend, "postgres");
    assert!(status.location.contains("/resigner") && !status.location.contains("password"));
    assert!(status.reachable && status.notifications >= 2, "{status:?}");
    assert!(status.last_sync.is_some() && !status.from_local_copy);

    let admin = pg.admin().await;
    let rows = admin
        .query(
            "SELECT version, action, kids, updated_by FROM resigner_key_changes ORDER BY version",
            &[],
        )
        .await
        .unwrap();
    let audit: Vec<(i64, String, Vec<String>, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        audit,
        [
            (1, "put".into(), vec!["k1".into()], Some("alice".into())),
            (2, "delete".into(), vec![], Some("bob".into())),
        ]
    );
    let tamper = admin.execute("DELETE FROM resigner_key_changes", &[]).await;
    assert!(tamper.is_err(), "the audit table is append-only");

    let copy: Value = serde_json::from_slice(&std::fs::read(dir.path().join("c.json")).unwrap())
        .expect("the local copy is JSON");
    assert_eq!(
        copy["version"], 2,
        "every store keeps a local copy of what it serves"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_with_the_same_expected_version_one_wins() {
    let pg = TestPostgres::start().await;
    let stores = three(&pg).await;
    let mut receivers: Vec<_> = stores.iter().map(|s| s.subscribe()).collect();
    for round in 0..5u64 {
        let names = ["a", "b", "c"].map(|n| format!("{n}{round}"));
        let (x, y, z) = tokio::join!(
            stores[0].write(round, change(&[&names[0]], "a")),
            stores[1].write(round, change(&[&names[1]], "b")),
            stores[2].write(round, change(&[&names[2]], "c")),
        );
        let results = [x, y, z];
        let winners: Vec<&StoredSet> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one write wins: {results:?}"
        );
        for result in &results {
            if let Err(err) = result {
                assert!(
                    matches!(err, StoreError::Conflict { expected, found } if *expected == round && *found == round + 1),
                    "{err}"
                );
            }
        }
        let winner = winners[0].clone();
        for rx in &mut receivers {
            assert_eq!(
                *reaches(rx, round + 1).await,
                winner,
                "the winner's set everywhere"
            );
        }
    }
    let admin = pg.admin().await;
    let versions: Vec<i64> = admin
        .query(
            "SELECT version FROM resigner_key_changes ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3, 4, 5], "one audit row per change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_when_three_stores_open_together() {
    let pg = TestPostgres::start().await;
    let options = pg.options("m", None);
    let (a, b, c, m) = tokio::join!(
        PgStore::open(pg.options("a", None)),
        PgStore::open(pg.options("b", None)),
        PgStore::open(pg.options("c", None)),
        migrate(&options),
    );
    let (a, b, c, m) = (a.unwrap(), b.unwrap(), c.unwrap(), m.unwrap());
    let runs: Vec<&[i32]> = vec![
        a.applied_migrations(),
        b.applied_migrations(),
        c.applied_migrations(),
        &m,
    ];
    let all: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(
        runs.iter().filter(|r| !r.is_empty()).collect::<Vec<_>>(),
        [&all.as_slice()],
        "one opener migrated everything, the others found it done: {runs:?}"
    );
    let admin = pg.admin().await;
    let recorded: i64 = admin
        .query_one("SELECT count(*) FROM resigner_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded as usize, MIGRATIONS.len());
    assert!(migrate(&options).await.unwrap().is_empty(), "up to date");

    admin
        .execute(
            "UPDATE resigner_migrations SET sha256 = 'edited' WHERE version = 1",
            &[],
        )
        .await
        .unwrap();
    let err = migrate(&options).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Backend { .. }) && err.to_string().contains("migration 1"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_notification_still_converges_through_the_reconnect_reload() {
    let pg = TestPostgres::start().await;
    let a = open(&pg, "a", None).await;
    let b = open(&pg, "b", None).await;
    let mut rb = b.subscribe();
    a.write(0, change(&["k1"], "a")).await.unwrap();
    reaches(&mut rb, 1).await;

    // B's listening backend is terminated and cannot come back until the change has
    // committed through A (whose writer connection stays): B never receives its NOTIFY.
    let admin = pg.cut_off("b follower").await;
    let written = a.write(1, change(&["k2"], "a")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        b.load().await.unwrap().version,
        1,
        "B missed the notification"
    );
    admin
        .batch_execute("ALTER ROLE resigner LOGIN")
        .await
        .unwrap();
    assert_eq!(*reaches(&mut rb, 2).await, written);
    assert!(b.status().reconnects >= 1, "{:?}", b.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_without_a_notification_is_found_by_the_poll() {
    let pg = TestPostgres::start().await;
    let mut options = pg.options("p", None);
    options.poll_interval = Duration::from_millis(200);
    let store = PgStore::open(options).await.unwrap();
    let mut rx = store.subscribe();
    // The listener reads the current row when it connects; only after its first poll can
    // a change be one that nothing but a later poll finds.
    let mut polls_before = 0;
    for _ in 0..100 {
        polls_before = store.status().polls;
        if polls_before >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        polls_before >= 1,
        "no poll within 5 s: {:?}",
        store.status()
    );
    pg.admin()
        .await
        .batch_execute(
            r#"UPDATE resigner_key_set SET version = 7, keys = '[{"kid": "sql"}]' WHERE id = 1"#,
        )
        .await
        .unwrap();
    let seen = reaches(&mut rx, 7).await;
    assert_eq!(seen.kids(), ["sql"]);
    let status = store.status();
    assert!(
        status.polls > polls_before && status.notifications == 0 && status.reconnects == 0,
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_come_from_a_file_or_pgpassword_and_a_wrong_one_is_not_an_outage() {
    let pg = TestPostgres::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bare = pg
        .url()
        .replace(&format!(":{}@", crate::common::postgres::PASSWORD), "@");
    let password_file = dir.path().join("password");
    std::fs::write(
        &password_file,
        format!("{}\n", crate::common::postgres::PASSWORD),
    )
    .unwrap();
    let mut options = pg.options("f", None);
    options.url = bare.clone();
    options.password_file = Some(password_file);
    let from_file = PgStore::open(options.clone()).await.unwrap();
    from_file.write(0, change(&["k1"], "f")).await.unwrap();

    options.password_file = None;
    options.env_password = Some(crate::common::postgres::PASSWORD.into());
    let cache = dir.path().join("copy.json");
    options.cache = Some(cache.clone());
    PgStore::open(options.clone()).await.unwrap();
    assert!(cache.exists(), "the local copy is written at open");

    options.env_password = Some("wrong".into());
    let err = PgStore::open(options).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Backend { .. }),
        "a wrong password stops start-up even with a local copy: {err}"
    );
    assert!(!err.to_string().contains("wrong"), "{err}");
}

/// Not a timed test: prints the NOTIFY -> subscriber latency over 200 changes with three
/// stores (each change through the next store in turn; from the write's return to the moment
/// each other store's watch channel holds it). Asserts only that every change reached every
/// store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_to_subscriber_latency_over_200_changes() {
    let pg = TestPostgres::start().await;
    let stores = three(&pg).await;
    let (arrived, mut arrivals) = tokio::sync::mpsc::unbounded_channel();
    for (index, store) in stores.iter().enumerate() {
        let (mut rx, arrived) = (store.subscribe(), arrived.clone());
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let version = rx.borrow_and_update().version;
                let _ = arrived.send((index, version, Instant::now()));
            }
        });
    }
    let mut latencies = Vec::new();
    for version in 0..200u64 {
        let writer = (version % 3) as usize;
        let kid = format!("k{version}");
        stores[writer]
            .write(version, change(&[&kid], "bench"))
            .await
            .unwrap();
        let committed = Instant::now();
        let mut pending = 2;
        while pending > 0 {
            let next = tokio::time::timeout(Duration::from_secs(5), arrivals.recv()).await;
            let (index, seen, at) = next
                .unwrap_or_else(|_| panic!("version {} did not reach every store", version + 1))
                .expect("watchers alive");
            if index != writer && seen == version + 1 {
                latencies.push(at.saturating_duration_since(committed));
                pending -= 1;
            }
        }
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "pg store convergence over {} deliveries (200 changes, 3 stores): p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    for store in &stores {
        assert_eq!(store.load().await.unwrap().kids(), ["k199"]);
    }
}
