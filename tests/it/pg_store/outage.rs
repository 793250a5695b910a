//! The database going away: every store keeps serving its last set and refuses writes
//! quickly (within the connect timeout, also against a server that accepts and never
//! answers), a store started meanwhile serves its local copy (and one without a copy does not
//! start), and when the database is back every store resynchronises.

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
    // One with no copy cannot start.
    let missing = dir.path().join("c.json");
    let err = PgStore::open(pg.options("c", Some(&missing)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable { .. }) && err.to_string().contains("c.json"),
        "{err}"
    );
    let err = PgStore::open(pg.options("c", None)).await.unwrap_err();
    assert!(
        err.to_string().contains("no local copy is configured"),
        "{err}"
    );

    pg.start_again().await;
    let second = a.write(1, change(&["k2"], "a")).await.unwrap();
    assert_eq!(*reaches(&mut rb, 2).await, second);
    let status = b.status();
    assert!(status.reachable && !status.from_local_copy, "{status:?}");
    assert_eq!(status.unreachable_since, None);
    assert!(a.status().reachable);
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
    let err = result.expect("bounded by the connect timeout").unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
