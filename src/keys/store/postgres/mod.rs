//! The PostgreSQL backend of the key store: one set shared by every replica.
//!
//! - Open: connect (bounded by the connect timeout), migrate the schema under an advisory
//!   lock, read the current set and save it as the local copy. With the database down, the
//!   local copy is served and the follower keeps trying; with no local copy either, the store
//!   opens holding no set ([`KeyStore::has_set`] false, [`StoreStatus::no_set`] says why):
//!   writes are refused as `Unavailable` and the follower installs the database's set as soon
//!   as it reaches it. Errors waiting will not cure (authentication, schema) fail the open.
//! - Write (of the custom set, [`schema`], or of the managed signing keys, [`signing`], each
//!   with its own version): one transaction, compare-and-set on the version, an audit row, and `pg_notify`
//!   (delivered on commit only). A lost race is `Conflict`; a database that cannot be reached
//!   is `Unavailable`, within the connect timeout.
//! - Follow ([`follow`]): a dedicated LISTEN connection; on every notification, every
//!   (re)connect and every poll the current version is read and any other set installed.
//!
//! Readers only see the watch channel: `load` and `subscribe` never wait on the database.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::watch;
use tokio_postgres::Client;

use super::{BoxFuture, Change, KeyStore, StoreError, StoreStatus, StoredSet, file};
use crate::keys::managed::{ManagedState, SigningChange};
use connect::Session;
use options::Settings;

mod connect;
mod follow;
mod options;
pub mod schema;
mod signing;
mod tls;

pub use options::{PgOptions, is_postgres_url, redact_url};

/// A key store shared through PostgreSQL. Dropping it stops its follower.
pub struct PgStore {
    shared: Arc<Shared>,
    follower: tokio::task::JoinHandle<()>,
    applied: Vec<i32>,
}

/// What the store's handle and its follower task share.
struct Shared {
    settings: Settings,
    tx: watch::Sender<Arc<StoredSet>>,
    /// Held across "read from the database, install" and "commit a write, install", so a
    /// read that started before one of our own writes never installs an older set over it.
    install: tokio::sync::Mutex<()>,
    /// The connection writes go through, made on first need and dropped on any failure.
    writer: tokio::sync::Mutex<Option<Client>>,
    migrated: AtomicBool,
    /// False from an open with the database down and no local copy until the first sync.
    has_set: AtomicBool,
    health: std::sync::Mutex<Health>,
    notifications: AtomicU64,
    polls: AtomicU64,
    reconnects: AtomicU64,
}

#[derive(Debug, Default, Clone)]
struct Health {
    reachable: bool,
    unreachable_since: Option<i64>,
    last_error: Option<String>,
    last_sync: Option<i64>,
    from_local_copy: bool,
    /// Why there is no local copy to start from, while no set is held.
    no_copy: Option<String>,
}

/// Connects and applies any missing migration; returns the versions applied. For
/// `resigner store migrate`: the same as opening a store does first.
pub async fn migrate(options: &PgOptions) -> Result<Vec<i32>, StoreError> {
    let settings = Settings::from_options(options)?;
    let (tx, _) = watch::channel(Arc::new(StoredSet::default()));
    let shared = Shared::new(settings, tx);
    let mut session = shared.connect_only("migrate").await?;
    shared.migrate(&mut session.client).await
}

impl PgStore {
    /// Opens the store; see the module doc for what happens when the database is down.
    pub async fn open(options: PgOptions) -> Result<Self, StoreError> {
        let settings = Settings::from_options(&options)?;
        let (tx, _) = watch::channel(Arc::new(StoredSet::default()));
        let shared = Arc::new(Shared::new(settings, tx));
        let mut applied = Vec::new();
        let first = async {
            let mut session = shared.connect_only("follower").await?;
            applied = shared.migrate(&mut session.client).await?;
            let set = shared
                .exchange(schema::read_current(&session.client))
                .await?;
            Ok::<_, StoreError>((session, set))
        };
        let session = match first.await {
            Ok((session, set)) => {
                shared.mark_up();
                shared.install_locked(set).await;
                Some(session)
            }
            Err(StoreError::Unavailable { .. }) => {
                shared.serve_local_copy()?;
                None
            }
            Err(err) => return Err(err),
        };
        let follower = tokio::spawn(follow::run(shared.clone(), session));
        Ok(PgStore {
            shared,
            follower,
            applied,
        })
    }

    /// The migrations this open applied (empty when the schema was up to date, or when the
    /// database was down and the follower migrates later).
    pub fn applied_migrations(&self) -> &[i32] {
        &self.applied
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.shared.settings.location)
            .field("version", &self.shared.tx.borrow().version)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

impl Shared {
    fn new(settings: Settings, tx: watch::Sender<Arc<StoredSet>>) -> Self {
        Shared {
            settings,
            tx,
            install: tokio::sync::Mutex::new(()),
            writer: tokio::sync::Mutex::new(None),
            migrated: AtomicBool::new(false),
            has_set: AtomicBool::new(true),
            health: std::sync::Mutex::new(Health::default()),
            notifications: AtomicU64::new(0),
            polls: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
        }
    }

    /// Starts serving the local copy because the database is down at open; without one,
    /// starts holding no set (a corrupt copy is an error).
    fn serve_local_copy(&self) -> Result<(), StoreError> {
        let copy = match &self.settings.cache {
            None => Err("no local copy is configured to start from".to_string()),
            Some(path) => match file::read_set(path)? {
                Some(set) => Ok((set, path)),
                None => Err(format!("there is no local copy at {} yet", path.display())),
            },
        };
        let (set, path) = match copy {
            Ok(found) => found,
            Err(no_copy) => {
                tracing::warn!(store = %self.settings.location, "key store database unreachable at start and {no_copy}: \
                    not ready (no JWKS, no signing, writes refused) until the database is reached");
                self.has_set.store(false, Ordering::Release);
                if let Ok(mut health) = self.health.lock() {
                    health.no_copy = Some(no_copy);
                }
                return Ok(());
            }
        };
        tracing::warn!(store = %self.settings.location, copy = %path.display(), version = set.version,
            "key store database unreachable at start; serving the local copy until it is back");
        if let Ok(mut health) = self.health.lock() {
            health.from_local_copy = true;
        }
        self.tx.send_replace(Arc::new(set));
        Ok(())
    }

    /// Installs `set` unless it is what we serve; saves it as the local copy. The caller
    /// holds `install`.
    async fn install_locked(&self, set: StoredSet) {
        if let Ok(mut health) = self.health.lock() {
            health.last_sync = Some(crate::jose::time::now_unix());
            health.from_local_copy = false;
            health.no_copy = None;
        }
        let first = !self.has_set.load(Ordering::Acquire);
        let current = self.tx.borrow().clone();
        if *current == set {
            if first {
                // The database holds the empty set this store started with: still a sync.
                self.save_copy(&set).await;
                self.mark_has_set(first, &set);
            }
            return;
        }
        if set.version < current.version {
            tracing::warn!(store = %self.settings.location, ours = current.version, database = set.version,
                "the database holds an older version than this replica served; installing the database's set");
        }
        tracing::info!(store = %self.settings.location, version = set.version, "key store set changed");
        let set = Arc::new(set);
        self.tx.send_replace(set.clone());
        // Saved before the first set counts as held: once `has_set`, the copy is there.
        self.save_copy(&set).await;
        self.mark_has_set(first, &set);
    }

    async fn save_copy(&self, set: &StoredSet) {
        if let Some(path) = &self.settings.cache
            && let Err(err) = file::save(path, set).await
        {
            tracing::error!(error = %err, "cannot save the local copy of the key store");
        }
    }

    /// After the first sync of a store opened with no set: it holds one now. The set is on
    /// the channel already; subscribers are notified again, so one that subscribed between
    /// the send and this mark (and so saw the set as not yet held) still installs it, and so
    /// does one when the database holds the very set the store started with.
    fn mark_has_set(&self, first: bool, set: &StoredSet) {
        if first {
            self.has_set.store(true, Ordering::Release);
            self.tx.send_modify(|_| ());
            tracing::info!(store = %self.settings.location, version = set.version,
                "key store reached: first key set synced from the database");
        }
    }

    /// Why no set is held, or `None` when one is.
    fn no_set(&self, health: &Health) -> Option<String> {
        if self.has_set.load(Ordering::Acquire) {
            return None;
        }
        let location = &self.settings.location;
        let no_copy = health.no_copy.as_deref().unwrap_or("no local copy");
        Some(match (&health.last_error, health.reachable) {
            (Some(error), false) => format!(
                "key store {location} is unreachable ({error}) and {no_copy}: no key set to serve until the database is reached"
            ),
            _ => format!(
                "key store {location}: no key set synced from the database yet and {no_copy}"
            ),
        })
    }

    fn status(&self) -> StoreStatus {
        let health = self.health.lock().map(|h| h.clone()).unwrap_or_default();
        StoreStatus {
            no_set: self.no_set(&health),
            backend: "postgres",
            location: self.settings.location.clone(),
            version: self.tx.borrow().version,
            reachable: health.reachable,
            unreachable_since: health.unreachable_since,
            last_error: health.last_error,
            last_sync: health.last_sync,
            from_local_copy: health.from_local_copy,
            notifications: self.notifications.load(Ordering::Relaxed),
            polls: self.polls.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
        }
    }
}

impl KeyStore for PgStore {
    fn load(&self) -> BoxFuture<'_, Result<StoredSet, StoreError>> {
        Box::pin(async move { Ok((**self.shared.tx.borrow()).clone()) })
    }

    fn write(&self, expected: u64, change: Change) -> BoxFuture<'_, Result<StoredSet, StoreError>> {
        Box::pin(self.shared.write(expected, change))
    }

    fn write_signing(
        &self,
        expected: u64,
        change: SigningChange,
    ) -> BoxFuture<'_, Result<ManagedState, StoreError>> {
        Box::pin(self.shared.write_signing(expected, change))
    }

    fn has_set(&self) -> bool {
        self.shared.has_set.load(Ordering::Acquire)
    }

    fn subscribe(&self) -> watch::Receiver<Arc<StoredSet>> {
        self.shared.tx.subscribe()
    }

    fn status(&self) -> StoreStatus {
        self.shared.status()
    }
}

impl Shared {
    async fn write(&self, expected: u64, change: Change) -> Result<StoredSet, StoreError> {
        self.write_with(expected, Pending::Custom(&change)).await
    }

    async fn write_signing(
        &self,
        expected: u64,
        change: SigningChange,
    ) -> Result<ManagedState, StoreError> {
        let set = self.write_with(expected, Pending::Signing(&change)).await?;
        Ok(set.signing)
    }

    /// One compare-and-set through the writer connection; returns the set installed on
    /// success.
    async fn write_with(
        &self,
        expected: u64,
        pending: Pending<'_>,
    ) -> Result<StoredSet, StoreError> {
        let _install = self.install.lock().await;
        if !self.has_set.load(Ordering::Acquire) {
            // The version a caller bases its change on is not known yet: nothing to compare.
            return Err(StoreError::Unavailable {
                location: self.settings.location.clone(),
                message: "no key set synced from the database yet".into(),
            });
        }
        let mut writer = self.writer.lock().await;
        if writer.as_ref().is_none_or(Client::is_closed) {
            *writer = Some(self.connect("writer").await?.client);
        }
        let Some(client) = writer.as_mut() else {
            return Err(self.down("no connection".into()));
        };
        let result = self
            .exchange(async {
                Ok(match pending {
                    Pending::Custom(change) => {
                        schema::compare_and_set(client, expected, change).await?
                    }
                    // The served custom half with the new managed half (the follower brings
                    // any newer custom set this replica has not installed yet).
                    Pending::Signing(change) => {
                        signing::compare_and_set_signing(client, expected, change)
                            .await?
                            .map(|signing| StoredSet {
                                signing,
                                ..(**self.tx.borrow()).clone()
                            })
                    }
                })
            })
            .await;
        match result {
            Ok(Ok(set)) => {
                self.mark_up();
                self.install_locked(set.clone()).await;
                Ok(set)
            }
            Ok(Err(found)) => {
                self.mark_up();
                Err(StoreError::Conflict { expected, found })
            }
            Err(err) => {
                // The connection's state is unknown (a timeout may have hit after COMMIT was
                // sent): start afresh; the follower installs whatever was committed.
                *writer = None;
                Err(err)
            }
        }
    }
}

/// A write to make: of the custom key set, or of the managed signing keys.
enum Pending<'a> {
    Custom(&'a Change),
    Signing(&'a SigningChange),
}
