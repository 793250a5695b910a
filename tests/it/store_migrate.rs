//! `resigner store migrate --config FILE` as an operator runs it: against a fresh database
//! it applies every migration (the tables exist afterwards), a second run finds the schema up
//! to date, neither prints the password, and a file store is refused with exit 1.

use resigner::keys::store::postgres::schema::MIGRATIONS;

use crate::cli::resigner;
use crate::common::postgres::{PASSWORD, TestPostgres};
use crate::common::*;

#[tokio::test]
async fn migrate_applies_the_schema_once_and_refuses_a_file_store() {
    let pg = TestPostgres::start().await;
    let idp = TestIdp::start(&[&IdpKey::rs256("idp-1")]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = ProxyBuilder::new(&idp)
        .set("keys", "store", pg.url())
        .write_config(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
    let args = ["store", "migrate", "--config", config.to_str().unwrap()];

    let first = resigner(&args, "", &[]).await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let all: Vec<String> = MIGRATIONS.iter().map(|m| m.version.to_string()).collect();
    assert!(
        first
            .stdout
            .contains(&format!("applied migration(s) {}", all.join(", "))),
        "{}",
        first.stdout
    );
    let tables = pg
        .admin()
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'resigner_key_set'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(tables, 1);
    let second = resigner(&args, "", &[]).await;
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(second.stdout.contains("up to date"), "{}", second.stdout);
    for run in [&first, &second] {
        assert!(!format!("{}{}", run.stdout, run.stderr).contains(PASSWORD));
    }

    let file = ProxyBuilder::new(&idp).write_config(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
    let refused = resigner(
        &["store", "migrate", "--config", file.to_str().unwrap()],
        "",
        &[],
    )
    .await;
    assert_eq!(refused.code, Some(1));
    assert!(
        refused.stderr.contains("only a postgres:// store"),
        "{}",
        refused.stderr
    );
}
