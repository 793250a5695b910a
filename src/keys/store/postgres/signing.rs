//! The managed signing keys in PostgreSQL (migrations 0002 and 0003): one versioned row
//! (`resigner_signing_state`) that every write compare-and-sets, one row per key
//! (`resigner_signing_keys`), and an append-only audit row per change
//! (`resigner_signing_changes`). Uses only `tokio_postgres` and the store's own types.
//!
//! A write is one transaction: bump the version where it is still the expected one, delete
//! the keys the new list drops (none, by the managed invariants), upsert the rest in the order
//! revoked, previous, current, next (so the partial unique indexes "one current, one next",
//! checked row by row, never see two at once during a rotation), the audit row, and
//! `pg_notify` on the store's one channel ([`CHANNEL`], `resigner_keys`: migration 0002's
//! comment names a channel of its own, but one LISTEN serves both halves of the set, and the
//! follower reads both on every wake-up). The state is read back inside the transaction, so
//! what the writer installs is exactly what every follower reads after the commit.
//!
//! Private keys are stored only sealed (`sealed_private` is the decoded nonce || ciphertext ||
//! tag, `kek_id` the KEK's fingerprint), or not at all when a backend holds them
//! (`backend_ref`).

use serde_json::Value;
use tokio_postgres::GenericClient;

use super::schema::{CHANNEL, DbError};
use crate::jose::b64;
use crate::keys::managed::{KeyState, ManagedKey, ManagedState, Sealed, SigningChange};

/// The managed state as stored, in one statement (one snapshot).
pub(super) async fn read_signing(client: &impl GenericClient) -> Result<ManagedState, DbError> {
    let rows = client
        .query(
            "SELECT s.version, extract(epoch FROM s.updated_at)::bigint, s.updated_by,
                    k.kid, k.alg, k.state, k.public_jwk, k.cert, k.sealed_private, k.kek_id,
                    k.backend_ref, extract(epoch FROM k.created_at)::bigint,
                    extract(epoch FROM k.current_since)::bigint,
                    extract(epoch FROM k.current_until)::bigint,
                    extract(epoch FROM k.revoked_at)::bigint
             FROM resigner_signing_state s LEFT JOIN resigner_signing_keys k ON true
             WHERE s.id = 1
             ORDER BY k.position, k.created_at, k.kid",
            &[],
        )
        .await?;
    let Some(first) = rows.first() else {
        return Err(corrupt("the state row (id = 1) is missing"));
    };
    let version: i64 = first.get(0);
    let updated_by: Option<String> = first.get(2);
    let mut keys = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(kid) = row.get::<_, Option<String>>(3) else {
            continue; // the LEFT JOIN's row when there are no keys
        };
        let state: String = row.get(5);
        let public_jwk = match row.get::<_, Value>(6) {
            Value::Object(map) => map,
            _ => return Err(corrupt(&format!("{kid}: public_jwk is not an object"))),
        };
        let sealed_private: Option<Vec<u8>> = row.get(8);
        let kek_id: Option<String> = row.get(9);
        let sealed = match (sealed_private, kek_id) {
            (Some(data), Some(kek_id)) => Some(Sealed {
                kek_id,
                data: b64::encode(data),
            }),
            (None, _) => None,
            (Some(_), None) => {
                return Err(corrupt(&format!("{kid}: sealed_private without kek_id")));
            }
        };
        keys.push(ManagedKey {
            state: parse_state(&state).ok_or_else(|| {
                corrupt(&format!(
                    "{kid}: state {state:?} is not one this build knows"
                ))
            })?,
            alg: row.get(4),
            public_jwk,
            cert: row.get(7),
            sealed,
            backend_ref: row.get(10),
            created_at: row.get(11),
            current_since: row.get(12),
            current_until: row.get(13),
            revoked_at: row.get(14),
            kid,
        });
    }
    // Version 0 with no keys is the row migration 0002 inserted: nothing written yet (the
    // file store's empty state, so replicas on either store compare equal).
    let written = version != 0 || !keys.is_empty();
    Ok(ManagedState {
        version: u64::try_from(version).map_err(|_| corrupt("negative version"))?,
        keys,
        updated_at: if written { first.get(1) } else { None },
        updated_by,
    })
}

/// The compare-and-set write of the managed keys: `Ok(Err(found))` when the stored version is
/// not `expected`.
pub(super) async fn compare_and_set_signing(
    client: &mut tokio_postgres::Client,
    expected: u64,
    change: &SigningChange,
) -> Result<Result<ManagedState, u64>, DbError> {
    let expected_db =
        i64::try_from(expected).map_err(|_| DbError::Schema("version out of range".into()))?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "UPDATE resigner_signing_state
             SET version = version + 1, updated_at = now(), updated_by = $2
             WHERE id = 1 AND version = $1
             RETURNING version",
            &[&expected_db, &change.by],
        )
        .await?;
    let Some(row) = row else {
        let found: i64 = tx
            .query_one(
                "SELECT version FROM resigner_signing_state WHERE id = 1",
                &[],
            )
            .await?
            .get(0);
        return Ok(Err(u64::try_from(found).unwrap_or(0)));
    };
    let version: i64 = row.get(0);
    let kids: Vec<&str> = change.keys.iter().map(|k| k.kid.as_str()).collect();
    tx.execute(
        "DELETE FROM resigner_signing_keys WHERE NOT (kid = ANY($1))",
        &[&kids],
    )
    .await?;
    for wanted in [
        KeyState::Revoked,
        KeyState::Previous,
        KeyState::Current,
        KeyState::Next,
    ] {
        for (position, key) in change.keys.iter().enumerate() {
            if key.state == wanted {
                upsert(&tx, key, position, version).await?;
            }
        }
    }
    tx.execute(
        "INSERT INTO resigner_signing_changes (version, action, kids, updated_by)
         VALUES ($1, $2, $3, $4)",
        &[&version, &change.action.as_str(), &change.kids, &change.by],
    )
    .await?;
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[&CHANNEL, &format!("signing:{version}")],
    )
    .await?;
    let state = read_signing(&tx).await?;
    tx.commit().await?;
    Ok(Ok(state))
}

/// Inserts `key`, or updates what a transition may change (state, its times, the position);
/// `changed_in` moves only when something did.
async fn upsert(
    tx: &tokio_postgres::Transaction<'_>,
    key: &ManagedKey,
    position: usize,
    version: i64,
) -> Result<(), DbError> {
    let position = i32::try_from(position).map_err(|_| corrupt("too many keys"))?;
    let sealed_private = match &key.sealed {
        Some(sealed) => Some(b64::decode(&sealed.data).ok_or_else(|| {
            DbError::Schema(format!(
                "{}: the sealed private key is not base64url",
                key.kid
            ))
        })?),
        None => None,
    };
    let kek_id = key.sealed.as_ref().map(|s| s.kek_id.as_str());
    let public_jwk = Value::Object(key.public_jwk.clone());
    tx.execute(
        "INSERT INTO resigner_signing_keys AS k (kid, alg, state, public_jwk, cert,
             sealed_private, kek_id, backend_ref, created_at, current_since, current_until,
             revoked_at, changed_in, position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, to_timestamp($9::bigint),
             to_timestamp($10::bigint), to_timestamp($11::bigint), to_timestamp($12::bigint),
             $13, $14)
         ON CONFLICT (kid) DO UPDATE SET state = EXCLUDED.state,
             current_since = EXCLUDED.current_since, current_until = EXCLUDED.current_until,
             revoked_at = EXCLUDED.revoked_at, position = EXCLUDED.position,
             changed_in = EXCLUDED.changed_in
         WHERE (k.state, k.current_since, k.current_until, k.revoked_at, k.position)
             IS DISTINCT FROM (EXCLUDED.state, EXCLUDED.current_since, EXCLUDED.current_until,
                 EXCLUDED.revoked_at, EXCLUDED.position)",
        &[
            &key.kid,
            &key.alg,
            &key.state.as_str(),
            &public_jwk,
            &key.cert,
            &sealed_private,
            &kek_id,
            &key.backend_ref,
            &key.created_at,
            &key.current_since,
            &key.current_until,
            &key.revoked_at,
            &version,
            &position,
        ],
    )
    .await?;
    Ok(())
}

fn parse_state(text: &str) -> Option<KeyState> {
    [
        KeyState::Next,
        KeyState::Current,
        KeyState::Previous,
        KeyState::Revoked,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
}

fn corrupt(what: &str) -> DbError {
    DbError::Schema(format!("resigner_signing_keys: {what}"))
}
