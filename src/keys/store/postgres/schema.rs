//! The SQL side of the PostgreSQL store: versioned migrations (the files in `migrations/`,
//! compiled in) applied under a transaction-scoped advisory lock so replicas starting
//! together do not race, and the two queries the store makes: read the current set, and the
//! compare-and-set write (with its audit row and `pg_notify`, all in one transaction).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tokio_postgres::Client;

use super::super::{Change, StoredSet};

/// One schema step. Versions only grow; an applied file is never edited (its SHA-256 is
/// recorded and checked), a change of schema is a new file.
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "key_set",
        sql: include_str!("migrations/0001_key_set.sql"),
    },
    Migration {
        version: 2,
        name: "signing_keys",
        sql: include_str!("migrations/0002_signing_keys.sql"),
    },
    Migration {
        version: 3,
        name: "signing_key_order",
        sql: include_str!("migrations/0003_signing_key_order.sql"),
    },
];

/// The channel every write notifies (payload: the new version).
pub const CHANNEL: &str = "resigner_keys";

/// `pg_advisory_xact_lock` key of the migrations ("resigner" in ASCII).
const MIGRATION_LOCK: i64 = 0x7265_7369_676e_6572;

/// What went wrong at the database.
#[derive(Debug, thiserror::Error)]
pub(super) enum DbError {
    #[error(transparent)]
    Pg(#[from] tokio_postgres::Error),
    /// The database's content is not what this program wrote (schema or data).
    #[error("{0}")]
    Schema(String),
}

/// Applies the migrations the database lacks, in one transaction under the advisory lock;
/// returns the versions applied (none when up to date).
pub(super) async fn migrate(client: &mut Client) -> Result<Vec<i32>, DbError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS resigner_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            sha256 text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let rows = tx
        .query("SELECT version, sha256 FROM resigner_migrations", &[])
        .await?;
    let applied: BTreeMap<i32, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut done = Vec::new();
    for migration in MIGRATIONS {
        let sha = crate::keys::digest::sha256_hex(migration.sql);
        match applied.get(&migration.version) {
            Some(recorded) if *recorded == sha => continue,
            Some(_) => {
                return Err(DbError::Schema(format!(
                    "migration {} ({}) was applied with different SQL than this build's",
                    migration.version, migration.name
                )));
            }
            None => {}
        }
        tx.batch_execute(migration.sql).await?;
        tx.execute(
            "INSERT INTO resigner_migrations (version, name, sha256) VALUES ($1, $2, $3)",
            &[&migration.version, &migration.name, &sha],
        )
        .await?;
        done.push(migration.version);
    }
    if let Some(newer) = applied
        .keys()
        .find(|v| !MIGRATIONS.iter().any(|m| m.version == **v))
    {
        tracing::warn!(
            migration = newer,
            "the database has a migration this build does not know (a newer resigner ran); continuing"
        );
    }
    tx.commit().await?;
    Ok(done)
}

/// The current set, as stored.
pub(super) async fn read_current(client: &Client) -> Result<StoredSet, DbError> {
    let row = client
        .query_one(
            "SELECT version, keys, published_at, extract(epoch FROM updated_at)::bigint, updated_by
             FROM resigner_key_set WHERE id = 1",
            &[],
        )
        .await?;
    let version: i64 = row.get(0);
    let keys: Value = row.get(1);
    let published: Value = row.get(2);
    let corrupt = |what: &str| DbError::Schema(format!("resigner_key_set: {what}"));
    let keys = match keys {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(map) => Ok(map),
                _ => Err(corrupt("a key is not a JSON object")),
            })
            .collect::<Result<Vec<Map<String, Value>>, DbError>>()?,
        _ => return Err(corrupt("keys is not an array")),
    };
    Ok(StoredSet {
        version: u64::try_from(version).map_err(|_| corrupt("negative version"))?,
        keys,
        published_at: serde_json::from_value(published)
            .map_err(|e| corrupt(&format!("published_at: {e}")))?,
        updated_at: row.get(3),
        updated_by: row.get(4),
        signing: super::signing::read_signing(client).await?,
    })
}

/// The compare-and-set write: `Ok(Err(found))` when the stored version is not `expected`.
pub(super) async fn compare_and_set(
    client: &mut Client,
    expected: u64,
    change: &Change,
) -> Result<Result<StoredSet, u64>, DbError> {
    let expected_db =
        i64::try_from(expected).map_err(|_| DbError::Schema("version out of range".into()))?;
    let keys = Value::Array(change.keys.iter().cloned().map(Value::Object).collect());
    let published = serde_json::to_value(&change.published_at)
        .map_err(|e| DbError::Schema(format!("published_at: {e}")))?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "UPDATE resigner_key_set
             SET version = version + 1, keys = $2, published_at = $3, updated_at = now(),
                 updated_by = $4
             WHERE id = 1 AND version = $1
             RETURNING version, extract(epoch FROM updated_at)::bigint",
            &[&expected_db, &keys, &published, &change.by],
        )
        .await?;
    let Some(row) = row else {
        let found: i64 = tx
            .query_one("SELECT version FROM resigner_key_set WHERE id = 1", &[])
            .await?
            .get(0);
        return Ok(Err(u64::try_from(found).unwrap_or(0)));
    };
    let version: i64 = row.get(0);
    tx.execute(
        "INSERT INTO resigner_key_changes (version, action, kids, updated_by)
         VALUES ($1, $2, $3, $4)",
        &[&version, &change.action(), &change.kids(), &change.by],
    )
    .await?;
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[&CHANNEL, &version.to_string()],
    )
    .await?;
    // The managed half is not this write's: read as committed, so the set installed is the
    // one every follower reads.
    let signing = super::signing::read_signing(&tx).await?;
    tx.commit().await?;
    Ok(Ok(StoredSet {
        version: u64::try_from(version).unwrap_or(expected + 1),
        keys: change.keys.clone(),
        published_at: change.published_at.clone(),
        updated_at: row.get(1),
        updated_by: change.by.clone(),
        signing,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_name_their_file() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version as usize, index + 1);
            let header = format!("-- {:04}: ", migration.version);
            assert!(
                migration.sql.starts_with(&header),
                "{} starts with {header:?}",
                migration.name
            );
        }
    }
}
