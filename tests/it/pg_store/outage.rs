//! The database going away: every store keeps serving its last set and refuses writes
//! quickly (within the connect timeout, also against a server that accepts and never
//! answers), a store started meanwhile serves its local copy (and one without a copy opens
//! holding no set, refusing writes and saying why), and when the database is back every store
//! resynchronises, the one without a set included.

use std::time::{Duration, Instant};

use resigner::keys::store::{KeyStore, PgOptions, PgStore, StoreError};

use super::{change, open, reaches};
use crate::common::postgres::TestPostgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_down_keeps_the_last_set_refuses_writes_and_resyncs_when_back() {
    let pg = TestPostgres::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (a_copy, b_copy) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let a = open(&pg, "a", Some(&a_copy)).await;
    let b = open(&pg, "b", Some(&b_copy)).await;
    let mut rb = b.subscribe();
    let first = a.write(0, change(&["k1"], "a")).await.unwrap();
    reaches(&mut rb, 1).await;

    pg.stop();
    let started = Instant::now();
    let err = a.write(1, change(&["k2"], "a")).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(a.load().await.unwrap(), first, "readers keep the last set");
    assert_eq!(**rb.borrow(), first);
    let status = a.status();
    assert!(
        !status.reachable && status.unreachable_since.is_some(),
        "{status:?}"
    );
    assert!(status.last_error.is_some());

    // A replica (re)started while the database is down serves its local copy.
    drop(b);
    let b = open(&pg, "b", Some(&b_copy)).await;
    assert_eq!(b.load().await.unwrap(), first);
    let status = b.status();
    assert!(status.from_local_copy && !status.reachable, "{status:?}");
    let mut rb = b.subscribe();
    assert!(b.has_set() && b.status().no_set.is_none());
    // One with no copy opens holding no set, says why, and refuses writes.
    let missing = dir.path().join("c.json");
    let c = PgStore::open(pg.options("c", Some(&missing)))
        .await
        .unwrap();
    let mut rc = c.subscribe();
    assert!(!c.has_set());
    let why = c.status().no_set.expect("a reason while no set is held");
    assert!(
        why.contains("unreachable") && why.contains("no local copy at") && why.contains("c.json"),
        "{why}"
    );
    let err = c.write(0, change(&["k9"], "c")).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    let d = PgStore::open(pg.options("d", None)).await.unwrap();
    let why = d.status().no_set.expect("a reason while no set is held");
    assert!(why.contains("no local copy is configured"), "{why}");

    pg.start_again().await;
    let second = a.write(1, change(&["k2"], "a")).await.unwrap();
    assert_eq!(*reaches(&mut rb, 2).await, second);
    // The store that had no set syncs on its follower's next attempt and saves its copy.
    assert_eq!(*reaches(&mut rc, 2).await, second);
    // Held once the local copy is saved, right after the set is sent.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !c.has_set() {
        assert!(Instant::now() < deadline, "{:?}", c.status());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(c.status().no_set.is_none(), "{:?}", c.status());
    assert!(missing.exists(), "the first sync writes the local copy");
    assert_eq!(c.write(2, change(&["k3"], "c")).await.unwrap().version, 3);
    let status = b.status();
    assert!(status.reachable && !status.from_local_copy, "{status:?}");
    assert_eq!(status.unreachable_since, None);
    // A's follower may have met the server still starting up; its next attempt succeeds.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !a.status().reachable {
        assert!(Instant::now() < deadline, "{:?}", a.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_is_unavailable_within_the_connect_timeout() {
    // Accepts TCP connections and never answers, like a host behind a stuck load balancer.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "postgres://u:p@{}/db?sslmode=disable",
        silent.local_addr().unwrap()
    );
    let mut options = PgOptions::new(&url);
    options.connect_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), PgStore::open(options)).await;
    let store = result.expect("bounded by the connect timeout").unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Opened without a set (no local copy configured): writes are refused, the status says
    // the store was not reached in time.
    assert!(!store.has_set());
    let why = store.status().no_set.unwrap_or_default();
    assert!(
        why.contains("unreachable") && why.contains("connect timeout"),
        "{why}"
    );
    let started = Instant::now();
    let err = store
        .write(0, super::change(&["k"], "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "refused at once"
    );
}
