//! Opening the store `[keys]` selects (part of the wiring: it reads the config and starts the
//! store's tasks), so the service, the demo and the CLI all open it the same way: the file store with its edit watcher, or the PostgreSQL store (which runs its
//! own follower, and serves the local copy when the database is down at start).

use std::sync::Arc;

use crate::config::{KeysSettings, StoreSelection, validate::pg_options};
use crate::keys::store::{BoxFuture, FileStore, KeyStore, PgStore, StoreError};

/// An opened store and the background task that follows it, if the caller must run one.
pub struct Opened {
    pub store: Arc<dyn KeyStore>,
    /// The file store's watcher of outside edits; `None` for PostgreSQL (its follower is
    /// part of the store and stops when the store is dropped).
    pub watcher: Option<BoxFuture<'static, ()>>,
}

/// Opens the store of `settings`. Errors name the store without any password.
pub async fn open(settings: &KeysSettings) -> Result<Opened, StoreError> {
    match &settings.store {
        StoreSelection::File(path) => {
            let store = FileStore::open(path)?;
            let watcher = Box::pin(store.clone().watch_file(settings.poll_interval));
            Ok(Opened {
                store,
                watcher: Some(watcher),
            })
        }
        StoreSelection::Postgres { .. } => {
            let options = pg_options(settings)
                .ok_or_else(|| StoreError::Settings("the store is not a postgres:// URL".into()))?;
            let store = PgStore::open(options).await?;
            Ok(Opened {
                store: Arc::new(store),
                watcher: None,
            })
        }
    }
}
