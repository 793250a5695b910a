//! The managed signing keys' half of the PostgreSQL store (migrations 0002 and 0003): a write
//! through one store reaches the others equal to what the writer returned, keys in the order
//! written (even created in one second), with its own version and audit row; a custom-set
//! write leaves the managed half as it is; a stale version is a Conflict; and the database's
//! own constraints refuse two current keys, leaving the stored state untouched.

use std::time::Duration;

use resigner::keys::managed::{
    KeyState, ManagedKey, ManagedState, Sealed, SigningAction, SigningChange,
};
use resigner::keys::store::{KeyStore, StoreError};
use serde_json::json;

use super::{change, open};
use crate::common::postgres::TestPostgres;

const T: i64 = 1_790_000_000;

fn managed_key(kid: &str, state: KeyState) -> ManagedKey {
    ManagedKey {
        kid: kid.into(),
        alg: "ES256".into(),
        state,
        public_jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": "x", "y": "y"})
            .as_object()
            .unwrap()
            .clone(),
        cert: format!("-----BEGIN CERTIFICATE-----\n{kid}\n-----END CERTIFICATE-----\n"),
        sealed: Some(Sealed {
            kek_id: "kek-test".into(),
            data: resigner::jose::b64::encode(kid.as_bytes().repeat(4)),
        }),
        backend_ref: None,
        created_at: T,
        current_since: (state == KeyState::Current).then_some(T),
        current_until: None,
        revoked_at: None,
    }
}

fn signing(keys: Vec<ManagedKey>, action: SigningAction) -> SigningChange {
    let kids = keys.iter().map(|k| k.kid.clone()).collect();
    SigningChange {
        keys,
        action,
        kids,
        by: Some("ops".into()),
    }
}

/// Waits until `store` serves managed version `version` and returns its whole set's halves.
async fn signing_at(store: &dyn KeyStore, version: u64) -> ManagedState {
    let mut rx = store.subscribe();
    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        rx.wait_for(|s| s.signing.version >= version)
            .await
            .map(|s| s.signing.clone())
    })
    .await
    .unwrap_or_else(|_| panic!("managed version {version} not reached"))
    .expect("store alive");
    assert_eq!(seen.version, version);
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_keys_are_shared_ordered_versioned_and_constrained() {
    let pg = TestPostgres::start().await;
    let (a, b) = (open(&pg, "a", None).await, open(&pg, "b", None).await);
    assert!(
        b.load().await.unwrap().signing.is_empty(),
        "none written yet"
    );

    // Created in one second, in this order: next before current on purpose.
    let create = signing(
        vec![
            managed_key("k-next", KeyState::Next),
            managed_key("k-cur", KeyState::Current),
        ],
        SigningAction::Create,
    );
    let written = a.write_signing(0, create.clone()).await.unwrap();
    assert_eq!(written.version, 1);
    assert_eq!(written.keys, create.keys, "read back as written");
    assert_eq!(written.updated_by.as_deref(), Some("ops"));
    assert_eq!(signing_at(&b, 1).await, written);
    assert_eq!(
        b.load().await.unwrap().version,
        0,
        "the custom set's version"
    );

    // A custom write through b leaves the managed half in place, on both stores.
    let custom = b.write(0, change(&["c1"], "bob")).await.unwrap();
    assert_eq!(custom.signing, written);
    let mut ra = a.subscribe();
    let seen = super::reaches(&mut ra, 1).await;
    assert_eq!(seen.signing, written);

    let stale = b.write_signing(0, create.clone()).await;
    assert!(
        matches!(
            stale,
            Err(StoreError::Conflict {
                expected: 0,
                found: 1
            })
        ),
        "{stale:?}"
    );

    let mut previous = managed_key("k-cur", KeyState::Previous);
    previous.current_until = Some(T + 5);
    let mut current = managed_key("k-next", KeyState::Current);
    current.current_since = Some(T + 5);
    let rotate = signing(
        vec![current, previous, managed_key("k-new", KeyState::Next)],
        SigningAction::Rotate,
    );
    let rotated = b.write_signing(1, rotate.clone()).await.unwrap();
    assert_eq!(rotated.keys, rotate.keys);
    assert_eq!(signing_at(&a, 2).await, rotated);

    // Two current keys: the partial unique index refuses the write; nothing changes.
    let mut twice = rotate.clone();
    twice.keys[2].state = KeyState::Current;
    twice.keys[2].current_since = Some(T + 9);
    let refused = a.write_signing(2, twice).await;
    assert!(refused.is_err(), "{refused:?}");
    let db = pg.admin().await;
    let version: i64 = db
        .query_one("SELECT version FROM resigner_signing_state", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, 2, "the refused write left the state as it was");
    let audit: Vec<(i64, String, Vec<String>)> = db
        .query(
            "SELECT version, action, kids FROM resigner_signing_changes ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        audit,
        [
            (1, "create".into(), vec!["k-next".into(), "k-cur".into()]),
            (
                2,
                "rotate".into(),
                vec!["k-next".into(), "k-cur".into(), "k-new".into()]
            ),
        ]
    );
    // The writer's connection recovers after the refused transaction.
    assert_eq!(a.load().await.unwrap().signing, rotated);
    let mut revoked = rotate.clone();
    revoked.keys[1].state = KeyState::Revoked;
    revoked.keys[1].revoked_at = Some(T + 20);
    revoked.action = SigningAction::Revoke;
    let after = a.write_signing(2, revoked.clone()).await.unwrap();
    assert_eq!(after.keys, revoked.keys);
    assert_eq!(signing_at(&b, 3).await, after);
}
