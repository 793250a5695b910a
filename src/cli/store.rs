//! `resigner store migrate --config FILE`: applies the PostgreSQL key store's schema
//! migrations and exits, under the same advisory lock replicas take when they start, so it
//! can run as a deploy step (a Kubernetes init container or Job) before the replicas roll.
//!
//! May use: the config, [`crate::keys::store`] and [`crate::cli::runtime`].

use std::path::Path;

use crate::cli::CliError;
use crate::cli::runtime;
use crate::config::validate::pg_options;
use crate::keys::store::{StoreError, migrate as apply};

/// Why `store migrate` failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreCliError {
    #[error("{config}: [keys] store is a file ({store}); only a postgres:// store has migrations")]
    NotPostgres { config: String, store: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies the missing migrations of the config's PostgreSQL store; prints what it did.
pub fn migrate(config_path: &Path) -> Result<(), CliError> {
    let config = crate::config::load_config(config_path)?;
    let Some(options) = pg_options(&config.keys) else {
        return Err(StoreCliError::NotPostgres {
            config: config_path.display().to_string(),
            store: config.keys.store.to_string(),
        }
        .into());
    };
    let applied = runtime::block_on(apply(&options))?.map_err(StoreCliError::from)?;
    let store = &config.keys.store;
    if applied.is_empty() {
        println!("{store}: the schema is up to date");
    } else {
        let list: Vec<String> = applied.iter().map(i32::to_string).collect();
        println!("{store}: applied migration(s) {}", list.join(", "));
    }
    Ok(())
}
