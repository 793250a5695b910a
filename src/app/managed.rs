//! The managed signing keys as this process serves them: an immutable [`ManagedKeys`]
//! snapshot (the stored state, a signer for every published key, the current key, the
//! public JWKs in publication order) swapped whole, like the custom key set.
//!
//! Where a state comes from: the store's watch channel ([`AppState::follow_managed`]: every
//! write by any replica, through NOTIFY or the file watcher), or this process's own write (a
//! rotation, a revocation, the first keys). Installing connects every published key *before*
//! the swap (a sealed key is unsealed with the KEK, a token key is found by its label), so
//! the request path only ever loads the snapshot; a key that cannot be connected keeps the
//! running snapshot and says why.
//!
//! May use: `keys::managed` (custody, transitions), `keys::store`; nothing on the request
//! path waits here.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::AppState;
use crate::keys::SigningKey;
use crate::keys::managed::custody::Custody;
use crate::keys::managed::error::ManagedError;
use crate::keys::managed::{KeyState, ManagedKey, ManagedState, SigningAction, SigningChange};
use crate::keys::store::StoreError;

/// How long a process that lost the race to create the first keys waits for the winner's.
const FIRST_KEYS_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The managed keys one request sees.
#[derive(Debug, Default)]
pub struct ManagedKeys {
    /// Changes with every installed state; part of the re-sign cache key, so a rotation or a
    /// revocation makes every cached token unreachable by construction.
    pub generation: u64,
    pub state: ManagedState,
    /// `"sk-<version>"`: the ETag of `/api/v2/keys/signing`.
    pub etag: String,
    /// The key that signs.
    pub current: Option<Arc<SigningKey>>,
    /// A signer for every published key (current, next, previous), by kid.
    signers: Vec<Arc<SigningKey>>,
    /// The public JWKs to publish: current, next, then previous keys newest first.
    pub jwks: Vec<Map<String, Value>>,
}

impl ManagedKeys {
    fn build(generation: u64, state: ManagedState, signers: Vec<Arc<SigningKey>>) -> Self {
        let current_kid = state.find(KeyState::Current).map(|k| k.kid.clone());
        let current = signers
            .iter()
            .find(|s| Some(s.kid()) == current_kid.as_deref())
            .cloned();
        let mut published: Vec<&ManagedKey> = state
            .keys
            .iter()
            .filter(|k| k.state.is_published())
            .collect();
        let rank = |k: &ManagedKey| match k.state {
            KeyState::Current => 0,
            KeyState::Next => 1,
            _ => 2,
        };
        published.sort_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then(b.current_until.cmp(&a.current_until))
        });
        let jwks = published.iter().map(|k| k.public_jwk.clone()).collect();
        ManagedKeys {
            generation,
            etag: etag(state.version),
            state,
            current,
            signers,
            jwks,
        }
    }

    fn signer(&self, kid: &str) -> Option<&Arc<SigningKey>> {
        self.signers.iter().find(|s| s.kid() == kid)
    }
}

/// The ETag of the managed keys at `version`.
pub fn etag(version: u64) -> String {
    format!("\"sk-{version}\"")
}

/// Why a managed state could not be installed or written.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Managed(#[from] ManagedError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a managed key task stopped: {0}")]
    Task(String),
}

/// Runs blocking custody work (key generation, unsealing, token calls) off the workers.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ManagedError> + Send + 'static,
) -> Result<T, InstallError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| InstallError::Task(err.to_string()))?
        .map_err(InstallError::from)
}

impl AppState {
    /// The managed keys snapshot (empty when `[signing.managed]` is off).
    pub fn managed(&self) -> Arc<ManagedKeys> {
        self.managed.load_full()
    }

    /// The managed keys' generation for the re-sign cache key (0 without managed keys).
    pub fn managed_generation(&self, config: &crate::config::Config) -> u64 {
        match config.signing.managed {
            Some(_) => self.managed.load().generation,
            None => 0,
        }
    }

    /// The custody of managed keys; `None` when `[signing.managed]` is off.
    pub fn custody(&self) -> Option<Arc<Custody>> {
        self.custody.get().cloned()
    }

    /// Sets the custody opened at start (once).
    pub fn set_custody(&self, custody: Arc<Custody>) {
        let _ = self.custody.set(custody);
    }

    /// Connects every published key of `state` (reusing the signers of keys already served)
    /// and swaps the snapshot; the running snapshot stays on any failure.
    pub async fn install_managed(&self, state: ManagedState) -> Result<(), InstallError> {
        let Some(custody) = self.custody() else {
            return Ok(());
        };
        let _one = self.managed_install.lock().await;
        let running = self.managed();
        if running.state == state && running.generation != 0 {
            return Ok(());
        }
        // An older state than the one served, read before a newer write was installed: stale,
        // unless the store itself went back (a restored database), which it then holds.
        if state.version < running.state.version && running.generation != 0 {
            let stored = self.store.load().await?.signing.version;
            if stored >= running.state.version {
                tracing::debug!(
                    stale = state.version,
                    serving = running.state.version,
                    "an older managed state than the one served is not installed"
                );
                return Ok(());
            }
        }
        let mut signers = Vec::new();
        for key in state.keys.iter().filter(|k| k.state.is_published()) {
            match running.signer(&key.kid) {
                Some(signer) if same_key(&running.state, key) => signers.push(signer.clone()),
                _ => {
                    let (custody, key) = (custody.clone(), key.clone());
                    signers.push(blocking(move || custody.connect(&key)).await?);
                }
            }
        }
        let generation = self
            .managed_generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let snapshot = ManagedKeys::build(generation, state, signers);
        tracing::info!(
            version = snapshot.state.version,
            current = snapshot.current.as_ref().map(|k| k.kid()),
            published = snapshot.jwks.len(),
            "managed signing keys installed"
        );
        self.managed.store(Arc::new(snapshot));
        Ok(())
    }

    /// Brings this process to the store's managed state: the first current and next keys are
    /// generated when the store holds none yet (one replica wins the compare-and-set; the
    /// others install what it wrote), anything else is installed.
    pub async fn sync_managed(&self, stored: &ManagedState) -> Result<(), InstallError> {
        let Some(custody) = self.custody() else {
            return Ok(());
        };
        if !stored.keys.is_empty() {
            return self.install_managed(stored.clone()).await;
        }
        let alg = match &self.config().signing.managed {
            Some(spec) => spec.alg,
            None => return Ok(()),
        };
        let now = crate::jose::time::now_unix();
        let (first, second) = (custody.clone(), custody.clone());
        let current = blocking(move || first.generate(alg, now)).await?;
        let next = blocking(move || second.generate(alg, now)).await?;
        let keys = crate::keys::managed::transitions::bootstrap(current, next, now);
        let kids = keys.iter().map(|k| k.kid.clone()).collect();
        let change = SigningChange {
            keys,
            action: SigningAction::Create,
            kids,
            by: Some("resigner".into()),
        };
        match self.store.write_signing(stored.version, change).await {
            Ok(written) => {
                super::rotation::audit("resigner", SigningAction::Create, &written, &[]);
                self.install_managed(written).await
            }
            Err(StoreError::Conflict { .. }) => {
                // Another replica created them first: serve its keys (ours were never stored)
                // once this process's copy of the store has them.
                let latest = self.first_keys_written_elsewhere().await?;
                self.install_managed(latest).await
            }
            Err(err) => Err(err.into()),
        }
    }

    /// The managed state another process created first, as soon as the store's follower has
    /// installed it (a shared store notifies within milliseconds; its poll is the bound).
    async fn first_keys_written_elsewhere(&self) -> Result<ManagedState, InstallError> {
        let mut changes = self.store.subscribe();
        let wait = async {
            loop {
                let signing = changes.borrow_and_update().signing.clone();
                if !signing.keys.is_empty() {
                    return Some(signing);
                }
                changes.changed().await.ok()?;
            }
        };
        match tokio::time::timeout(FIRST_KEYS_WAIT, wait).await {
            Ok(Some(signing)) => Ok(signing),
            _ => {
                let status = self.store.status();
                Err(InstallError::Store(StoreError::Unavailable {
                    location: status.location,
                    message: format!(
                        "another process created the first managed keys, and they did not arrive within {} s",
                        FIRST_KEYS_WAIT.as_secs()
                    ),
                }))
            }
        }
    }

    /// Follows the store's managed state (whoever wrote it) for as long as the store runs.
    pub async fn follow_managed(self: Arc<Self>) {
        if self.custody().is_none() {
            return;
        }
        let mut changes = self.store.subscribe();
        loop {
            if self.store.has_set() {
                let stored = changes.borrow_and_update().signing.clone();
                if let Err(err) = self.sync_managed(&stored).await {
                    tracing::error!(error = %err, version = stored.version,
                        "managed signing keys from the store cannot be installed; keeping the running keys");
                }
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Whether `key` is a key `running` serves under the same kid and material (its state or
/// timestamps may have changed: the signer is the same).
fn same_key(running: &ManagedState, key: &ManagedKey) -> bool {
    running.get(&key.kid).is_some_and(|old| {
        old.public_jwk == key.public_jwk
            && old.sealed == key.sealed
            && old.backend_ref == key.backend_ref
    })
}
