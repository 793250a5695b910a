//! `sslmode` against a TLS-enabled test server (a certificate for `localhost`/`127.0.0.1`
//! from a private CA): verify-full and verify-ca with the CA, require without one, disable
//! stays plain, and what must be refused is: verify-full without a CA, with another CA, or
//! for a host name the certificate does not carry. `pg_stat_ssl` tells whether the session
//! really is encrypted.

use resigner::keys::store::{KeyStore, PgOptions, PgStore, StoreError};

use crate::common::postgres::{DATABASE, PASSWORD, TestPostgres, USER};
use crate::common::tls::TestCa;

fn options(pg: &TestPostgres, host: &str, query: &str, name: &str) -> PgOptions {
    let mut options = pg.options(name, None);
    options.url = format!(
        "postgres://{USER}:{PASSWORD}@{host}:{}/{DATABASE}?{query}&application_name={name}",
        pg.port
    );
    options
}

/// Whether the follower session of store `name` is encrypted.
async fn encrypted(pg: &TestPostgres, name: &str) -> bool {
    pg.admin()
        .await
        .query_one(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = $1",
            &[&format!("{name} follower")],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_is_honoured_and_unverifiable_servers_are_refused() {
    let ca = TestCa::new("pg test CA");
    let pg = TestPostgres::start_tls(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write(dir.path(), "ca.pem");

    let mut full = options(&pg, "localhost", "sslmode=verify-full", "full");
    full.ca_file = Some(ca_file.clone());
    let store = PgStore::open(full).await.unwrap();
    store
        .compare_and_set(0, vec![], Default::default())
        .await
        .unwrap();
    assert!(encrypted(&pg, "full").await);

    let rootcert = format!("sslmode=verify-full&sslrootcert={}", ca_file.display());
    let _in_url = PgStore::open(options(&pg, "127.0.0.1", &rootcert, "inurl"))
        .await
        .unwrap();
    assert!(encrypted(&pg, "inurl").await);

    let _require = PgStore::open(options(&pg, "127.0.0.1", "sslmode=require", "req"))
        .await
        .unwrap();
    assert!(encrypted(&pg, "req").await, "require encrypts without a CA");
    let _plain = PgStore::open(options(&pg, "127.0.0.1", "sslmode=disable", "plain"))
        .await
        .unwrap();
    assert!(
        !encrypted(&pg, "plain").await,
        "disable never negotiates TLS"
    );

    let err = PgStore::open(options(&pg, "localhost", "sslmode=verify-full", "noca"))
        .await
        .expect_err("verify-full without a CA");
    assert!(matches!(err, StoreError::Settings(_)), "{err}");

    let other = TestCa::new("another CA");
    let mut wrong_ca = options(&pg, "localhost", "sslmode=verify-full", "wrongca");
    wrong_ca.ca_file = Some(other.write(dir.path(), "other.pem"));
    let err = PgStore::open(wrong_ca).await.expect_err("another CA");
    assert!(
        matches!(err, StoreError::Backend { .. }) && err.to_string().contains("certificate"),
        "an untrusted server is a settings problem, not an outage: {err}"
    );

    // The certificate does not name "db.invalid": verify-full refuses, verify-ca accepts.
    let mut wrong_name = options(
        &pg,
        "db.invalid",
        "sslmode=verify-full&hostaddr=127.0.0.1",
        "name",
    );
    wrong_name.ca_file = Some(ca_file.clone());
    let err = PgStore::open(wrong_name)
        .await
        .expect_err("a wrong host name");
    assert!(err.to_string().contains("certificate"), "{err}");
    let mut chain_only = options(
        &pg,
        "db.invalid",
        "sslmode=verify-ca&hostaddr=127.0.0.1",
        "ca",
    );
    chain_only.ca_file = Some(ca_file);
    let _chain = PgStore::open(chain_only).await.unwrap();
    assert!(encrypted(&pg, "ca").await);
}
