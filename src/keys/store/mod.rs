//! Durable storage of the custom key set behind a small trait, so every backend offers the
//! same three things: a versioned read, a compare-and-set write (of the custom key set, or of
//! the managed signing keys, each with its own version), and a change notification
//! (which also reports changes made by another process or another replica).
//!
//! Backends: [`FileStore`] (a JSON file, the default, one process) and [`PgStore`]
//! (PostgreSQL, shared by replicas: LISTEN/NOTIFY as a wake-up, a poll and a reload on every
//! reconnect as the safety net, and a local copy on disk for start-ups while the database is
//! down). A PostgreSQL store opened with the database down and no local copy holds no set
//! until its follower reaches the database ([`KeyStore::has_set`]). Readers only ever see the
//! watch channel: nothing on the request path waits on a store.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::keys::managed::{ManagedState, SigningChange};

mod file;
pub mod postgres;

pub use file::FileStore;
pub use postgres::{PgOptions, PgStore, migrate};

/// A boxed future, so the trait stays object-safe (`Arc<dyn KeyStore>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The stored document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredSet {
    /// Increases by one with every write through the store.
    pub version: u64,
    /// The JWKs as accepted by the management API (kid filled in), in import order.
    pub keys: Vec<Map<String, Value>>,
    /// Unix time each kid was first published.
    #[serde(default)]
    pub published_at: BTreeMap<String, i64>,
    /// Unix time of the write that made this version (absent in files written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    /// Who made that write, as the caller named itself to the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    /// The managed signing keys (sealed private halves only), versioned on their own: a
    /// rotation does not change `version` (the custom-signing ETag), a custom write does not
    /// change `signing.version`. Absent in files written before managed keys.
    #[serde(default, skip_serializing_if = "ManagedState::is_empty")]
    pub signing: ManagedState,
}

impl StoredSet {
    /// The kids of the set, in import order (for the audit trail).
    pub fn kids(&self) -> Vec<String> {
        kids_of(&self.keys)
    }
}

fn kids_of(keys: &[Map<String, Value>]) -> Vec<String> {
    keys.iter()
        .filter_map(|k| k.get("kid").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// One write: the whole new set, and who asked for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    pub keys: Vec<Map<String, Value>>,
    pub published_at: BTreeMap<String, i64>,
    /// The caller (an admin token's name), recorded as `updated_by` and in the audit trail.
    pub by: Option<String>,
}

impl Change {
    /// The audit action: an empty set is a delete, anything else replaces the set.
    pub fn action(&self) -> &'static str {
        if self.keys.is_empty() {
            "delete"
        } else {
            "put"
        }
    }

    pub fn kids(&self) -> Vec<String> {
        kids_of(&self.keys)
    }
}

/// Why the store could not read or write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key store {path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("key store {path} is corrupt: {message}")]
    Corrupt { path: String, message: String },
    #[error("key store {path}: cannot write: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("key store changed concurrently (expected version {expected}, found {found})")]
    Conflict { expected: u64, found: u64 },
    /// The backend cannot be reached now (database down, connect timeout): a write is not
    /// made and may be retried later; readers keep the last set they have.
    #[error("key store {location} is unavailable: {message}")]
    Unavailable { location: String, message: String },
    /// The backend answered with an error that waiting will not cure (authentication,
    /// permissions, a schema it does not know).
    #[error("key store {location}: {message}")]
    Backend { location: String, message: String },
    /// The store's settings are wrong (URL, sslmode, password sources, CA file).
    #[error("key store settings: {0}")]
    Settings(String),
}

/// What a store reports about itself, for `/admin/status` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StoreStatus {
    /// `"file"` or `"postgres"`.
    pub backend: &'static str,
    /// The file path, or the database as `user@host:port/dbname` (never a password).
    pub location: String,
    /// The version of the set this process serves.
    pub version: u64,
    /// Whether the last contact with the backend succeeded.
    pub reachable: bool,
    /// Unix time of the first failed contact since the last success.
    pub unreachable_since: Option<i64>,
    /// The last error met talking to the backend (cleared by a success).
    pub last_error: Option<String>,
    /// Unix time the served set was last confirmed against the backend.
    pub last_sync: Option<i64>,
    /// True while the set served came from the local copy and not (yet) from the backend.
    pub from_local_copy: bool,
    /// Why this process holds no key set at all (it started with the backend unreachable and
    /// no local copy); `None` once it has one. While `Some`, the process is not ready: it
    /// publishes no JWKS, signs nothing and refuses writes.
    pub no_set: Option<String>,
    /// Change notifications received (PostgreSQL NOTIFY; external edits for the file).
    pub notifications: u64,
    /// Periodic polls made.
    pub polls: u64,
    /// Connections (re)established by the follower after the first one.
    pub reconnects: u64,
}

/// Storage of the custom key set.
pub trait KeyStore: Send + Sync {
    /// The current set with its version (never waits on a database).
    fn load(&self) -> BoxFuture<'_, Result<StoredSet, StoreError>>;
    /// Writes `change` if the stored version is still `expected`; returns the new set. A lost
    /// race is [`StoreError::Conflict`]; a backend that cannot be reached is
    /// [`StoreError::Unavailable`].
    fn write(&self, expected: u64, change: Change) -> BoxFuture<'_, Result<StoredSet, StoreError>>;
    /// Writes the managed signing keys if their stored version is still `expected`; returns
    /// the new managed state (the custom set is untouched). A lost race is
    /// [`StoreError::Conflict`]. Subscribers are woken with the new set.
    fn write_signing(
        &self,
        expected: u64,
        change: SigningChange,
    ) -> BoxFuture<'_, Result<ManagedState, StoreError>>;
    /// [`KeyStore::write`] without naming the caller.
    fn compare_and_set(
        &self,
        expected: u64,
        keys: Vec<Map<String, Value>>,
        published_at: BTreeMap<String, i64>,
    ) -> BoxFuture<'_, Result<StoredSet, StoreError>> {
        self.write(
            expected,
            Change {
                keys,
                published_at,
                by: None,
            },
        )
    }
    /// Whether a set is held (from the backend or the local copy). Cheap: the request path
    /// asks it. False only for a store opened while its backend was unreachable and without a
    /// local copy, until the first sync; [`StoreStatus::no_set`] says why. Whether the app
    /// serves that set is [`crate::app::AppState::has_set`]: it validates it first.
    fn has_set(&self) -> bool;
    /// Notified with every new set, whoever wrote it, and once more when the first set is
    /// held (so `has_set` is true for the set a subscriber is woken with).
    fn subscribe(&self) -> watch::Receiver<Arc<StoredSet>>;
    /// The backend's health and sync counters.
    fn status(&self) -> StoreStatus;
}
