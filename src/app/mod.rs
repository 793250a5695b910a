//! The shared state of a running proxy: the current config snapshot (swapped whole on
//! reload), the IdP key clients, the custom key set and its store, the re-sign cache, the
//! upstream client, the rendered JWKS and discovery documents and the counters. Handlers load each snapshot once and
//! use it to the end of the request.

pub mod hints;
pub mod managed;
pub mod rotation;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwap;

use crate::cache::{self, ResignCache};
use crate::config::Config;
use crate::http::client::Upstreams;
use crate::idp::Idps;
use crate::keys::import::{self, ImportError};
use crate::keys::store::{KeyStore, StoreStatus, StoredSet};
use crate::keys::{CustomKeySet, RenderedJwks};
use crate::metrics::Metrics;

pub struct AppState {
    config: ArcSwap<Config>,
    next_generation: AtomicU64,
    /// One key client per configured IdP.
    pub idps: Arc<Idps>,
    custom: ArcSwap<CustomKeySet>,
    custom_generation: AtomicU64,
    /// Whether `custom` is a set the store holds (not the empty placeholder of a store that
    /// started with no set) and that passed validation: the JWKS, readiness and the
    /// management API wait for it. Never false again once true.
    has_set: AtomicBool,
    /// Why the store's set was not installed while no set is held (its validation error).
    rejected: std::sync::Mutex<Option<String>>,
    pub store: Arc<dyn KeyStore>,
    pub cache: ResignCache,
    /// Pooled upstream clients, one per distinct route TLS setting.
    pub upstream: Upstreams,
    jwks: ArcSwap<RenderedJwks>,
    /// The managed signing keys (`[signing.managed]`; empty otherwise): see [`managed`].
    managed: ArcSwap<managed::ManagedKeys>,
    managed_generation: AtomicU64,
    /// Held while a managed state is connected and swapped in, so two installs never race.
    managed_install: tokio::sync::Mutex<()>,
    custody: std::sync::OnceLock<Arc<crate::keys::managed::custody::Custody>>,
    /// The discovery documents of the current config generation.
    pub discovery: crate::discovery::DiscoveryCache,
    pub metrics: Arc<Metrics>,
    /// Threads for slow (RSA) signatures: one per core, below the workers' priority.
    pub signing_pool: crate::keys::signing_pool::SigningPool,
    reload: std::sync::Mutex<ReloadStatus>,
    /// The `resigner keys import` command that publishes the configured signing keys on
    /// this process's admin listener, named when the active key is not published.
    import_command: String,
    /// Unix time the state was built, for `/admin/status` uptime.
    pub started_at: i64,
    listeners: std::sync::OnceLock<Listeners>,
}

/// The outcome of the last reload, for `/admin/status`; written by
/// [`crate::reload::Reloader`].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadStatus {
    /// Config generation now serving.
    pub generation: u64,
    /// Unix time of the last attempt (0: none yet).
    pub at: i64,
    pub trigger: String,
    pub ok: bool,
    pub errors: Vec<String>,
    /// Settings that changed in the file but only apply after a restart.
    pub needs_restart: Vec<String>,
    pub succeeded: u64,
    pub failed: u64,
}

/// The bound listener addresses, set once by [`crate::service::start`].
#[derive(Debug, Clone, Copy)]
pub struct Listeners {
    pub public: std::net::SocketAddr,
    pub public_tls: bool,
    pub admin: std::net::SocketAddr,
    pub admin_tls: bool,
}

impl AppState {
    /// Builds the state for `config` with the custom key set already loaded from `store`;
    /// `admin_addr` is the bound admin listener. The background tasks are started by
    /// [`crate::service::start`].
    pub fn new(
        mut config: Config,
        store: Arc<dyn KeyStore>,
        custom: CustomKeySet,
        admin_addr: std::net::SocketAddr,
    ) -> Arc<Self> {
        config.generation = 1;
        let import_command = hints::import_command(
            config.source.as_deref(),
            admin_addr,
            config.admin_tls.is_some(),
        );
        let metrics = Arc::new(Metrics::default());
        let signing_pool = crate::keys::signing_pool::SigningPool::new(
            crate::http::workers::default_workers(),
            Some(metrics.signing_fallbacks.clone()),
        );
        let idps = Arc::new(Idps::new(&config.idps, metrics.clone()));
        let upstream = Upstreams::new(
            config.upstream.connect_timeout,
            config.upstream.pool_idle_timeout,
        );
        let cache = cache::build(&config.cache);
        let jwks = RenderedJwks::render(&custom.json(), &[], (1, 0, 1, 0));
        // The store marks its first set held after sending it: if it holds one now, its
        // channel has the set, and `custom` is it unless a newer one came since (which the
        // follower installs).
        let has_set = store.has_set() && is_installed(&custom, &store.subscribe().borrow());
        let state = Arc::new(AppState {
            config: ArcSwap::from_pointee(config),
            next_generation: AtomicU64::new(2),
            idps,
            custom: ArcSwap::from_pointee(custom),
            custom_generation: AtomicU64::new(1),
            has_set: AtomicBool::new(has_set),
            rejected: std::sync::Mutex::new(None),
            store,
            cache,
            upstream,
            jwks: ArcSwap::from_pointee(jwks),
            managed: ArcSwap::from_pointee(managed::ManagedKeys::default()),
            managed_generation: AtomicU64::new(1),
            managed_install: tokio::sync::Mutex::new(()),
            custody: std::sync::OnceLock::new(),
            discovery: Default::default(),
            metrics,
            signing_pool,
            reload: std::sync::Mutex::new(ReloadStatus {
                generation: 1,
                ok: true,
                ..Default::default()
            }),
            started_at: crate::jose::time::now_unix(),
            listeners: std::sync::OnceLock::new(),
            import_command,
        });
        state.log_signing_status();
        state
    }

    /// Records where the listeners are bound (once; later calls are ignored).
    pub fn set_listeners(&self, listeners: Listeners) {
        let _ = self.listeners.set(listeners);
    }

    /// The bound listeners; `None` before [`crate::service::start`] has bound them.
    pub fn listeners(&self) -> Option<Listeners> {
        self.listeners.get().copied()
    }

    /// The current config snapshot.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Installs a new, already validated config: routes, claims, signing keys, admin tokens
    /// and IdP settings take effect for the next request, and the new generation makes every
    /// cached token unreachable. Listener addresses, the key store and cache bounds keep their
    /// start-up values (the reloader says so in the log).
    pub fn install_config(&self, mut config: Config) -> u64 {
        config.generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let generation = config.generation;
        self.idps.update(&config.idps);
        self.config.store(Arc::new(config));
        self.log_signing_status();
        generation
    }

    /// The outcome of the last config reload.
    pub fn reload_status(&self) -> ReloadStatus {
        self.reload.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn set_reload_status(&self, status: ReloadStatus) {
        if let Ok(mut current) = self.reload.lock() {
            *current = status;
        }
    }

    /// The published custom key set.
    pub fn custom_keys(&self) -> Arc<CustomKeySet> {
        self.custom.load_full()
    }

    /// Installs a new, validated custom key set (after a PUT/DELETE or a store change): from
    /// now on a set is held.
    pub fn install_custom(&self, set: CustomKeySet) {
        self.custom.store(Arc::new(set));
        self.custom_generation.fetch_add(1, Ordering::Relaxed);
        self.mark_has_set();
        self.log_signing_status();
    }

    fn mark_has_set(&self) {
        self.has_set.store(true, Ordering::Release);
        if let Ok(mut rejected) = self.rejected.lock() {
            *rejected = None;
        }
    }

    /// Whether a valid custom set from the store is installed (one atomic load: the JWKS
    /// endpoint asks it per request). False while the store holds none yet and while the
    /// only set it holds failed validation; [`AppState::store_status`] says why.
    pub fn has_set(&self) -> bool {
        self.has_set.load(Ordering::Acquire)
    }

    /// The store's status with `no_set` as this process sees it: `None` once a valid set is
    /// installed, else the validation error of the stored set or the store's own reason.
    pub fn store_status(&self) -> StoreStatus {
        let mut status = self.store.status();
        status.no_set = match self.has_set() {
            true => None,
            false => Some(
                self.rejected
                    .lock()
                    .ok()
                    .and_then(|r| r.clone())
                    .or(status.no_set)
                    .unwrap_or_else(|| "no key set loaded yet".into()),
            ),
        };
        status
    }

    /// Every IdP's current kids, which custom keys may not reuse.
    pub fn idp_kids(&self) -> HashSet<String> {
        self.idps.kids()
    }

    /// Whether the active signing key may sign: a key set must be held and the key's public
    /// JWK published in it. The reason names the command that publishes it when importing
    /// is the fix, and the store's reason while it holds no set.
    pub fn signing_status(&self, config: &Config) -> Result<(), String> {
        if !self.has_set()
            && let Some(reason) = self.store_status().no_set
        {
            return Err(reason);
        }
        let signing = &config.signing;
        if signing.managed.is_some() {
            return match self.managed().current {
                Some(_) => Ok(()),
                None => Err(
                    "no managed current signing key is installed yet (the first keys \
                     are created, or the stored ones connected, when the key store is reached)"
                        .into(),
                ),
            };
        }
        let Some(active) = signing.active() else {
            return Err(format!(
                "the active signing key {:?} is not connected",
                signing.active_kid
            ));
        };
        let set = self.custom.load();
        if set.published_for.is(config.generation) {
            return Ok(());
        }
        set.check_published(
            active,
            signing.min_published_age.as_secs(),
            crate::jose::time::now_unix(),
        )
        .map(|()| set.published_for.set(config.generation))
        .map_err(|err| match err.needs_import() {
            true => format!(
                "{err}; import its public JWK: `{}` (management token in --token or ${})",
                self.import_command,
                hints::TOKEN_ENV
            ),
            false => err.to_string(),
        })
    }

    /// The key that signs under `config`: the managed current key with `[signing.managed]`,
    /// else the configured active key.
    pub fn active_key(&self, config: &Config) -> Option<Arc<crate::keys::SigningKey>> {
        match config.signing.managed {
            Some(_) => self.managed.load().current.clone(),
            None => config.signing.active().cloned(),
        }
    }

    fn log_signing_status(&self) {
        let config = self.config.load();
        if config.signing.managed.is_some() {
            return;
        }
        let kid = &config.signing.active_kid;
        match (self.signing_status(&config), config.signing.active()) {
            (Ok(()), _) => tracing::info!(kid, "active signing key is published"),
            (Err(reason), Some(active)) => tracing::warn!(
                kid,
                jwk = %serde_json::Value::Object(active.public_jwk().to_json()),
                "re-signing is paused: {reason}"
            ),
            (Err(reason), None) => tracing::warn!(kid, "re-signing is paused: {reason}"),
        }
    }

    /// Follows the key store: every new stored set (written by this process or edited on
    /// disk by another) is validated like a PUT and installed; an invalid one is logged and
    /// the current set stays (and while no set is held, the replica stays not ready and says
    /// why).
    pub async fn follow_store(self: Arc<Self>) {
        let mut changes = self.store.subscribe();
        // A set sent before this subscription is not news to `changes`: take it now.
        let mut held = self.store.has_set();
        loop {
            if held {
                let stored = changes.borrow_and_update().clone();
                self.follow(&stored);
            }
            if changes.changed().await.is_err() {
                return;
            }
            // Woken: the store sent a set it holds (see `KeyStore::subscribe`).
            held = true;
        }
    }

    fn follow(&self, stored: &StoredSet) {
        if is_installed(&self.custom.load(), stored) {
            if !self.has_set() {
                self.mark_has_set();
                self.log_signing_status();
            }
            return;
        }
        match custom_set(stored, &self.idp_kids()) {
            Ok(set) => {
                tracing::info!(version = set.version, kids = ?set.keys.iter().map(|k| &k.kid).collect::<Vec<_>>(), "custom key set installed");
                self.install_custom(set);
            }
            Err(err) if self.has_set() => {
                tracing::error!(error = %err, "stored custom key set is invalid; keeping the current set")
            }
            Err(err) => {
                let reason = format!(
                    "the stored custom key set (version {}) is invalid: {err}; \
                     not serving it (no JWKS, no signing) until it is fixed in the key store",
                    stored.version
                );
                tracing::error!("{reason}");
                if let Ok(mut rejected) = self.rejected.lock() {
                    *rejected = Some(reason);
                }
            }
        }
    }

    /// The published JWKS: custom keys first, then the managed keys (current, next,
    /// previous), then every IdP's keys in config order (a kid an earlier IdP publishes is
    /// left out: see [`Idps::published`]). Re-rendered only when one of its parts changed
    /// since the last rendering.
    pub fn jwks(&self) -> Arc<RenderedJwks> {
        let current = self.jwks.load_full();
        let managed = self.managed.load();
        let source = (
            self.custom_generation.load(Ordering::Relaxed),
            self.idps.jwks_source(),
            self.config.load().generation,
            managed.generation,
        );
        if current.source == source {
            return current;
        }
        // The IdP part changed (a set went stale, came back, changed): collisions too.
        self.idps.report_collisions();
        let (idp_keys, _) = self.idps.published();
        let mut ours = self.custom.load().json();
        ours.extend(managed.jwks.iter().cloned());
        let rendered = Arc::new(RenderedJwks::render(&ours, &idp_keys, source));
        self.jwks.store(rendered.clone());
        rendered
    }
}

/// Whether `stored` is the set `custom` was built from.
fn is_installed(custom: &CustomKeySet, stored: &StoredSet) -> bool {
    stored.version == custom.version && custom.json() == stored.keys
}

/// Validates a stored set and builds the published snapshot.
pub fn custom_set(
    stored: &StoredSet,
    idp_kids: &HashSet<String>,
) -> Result<CustomKeySet, ImportError> {
    let keys: Vec<serde_json::Value> = stored
        .keys
        .iter()
        .cloned()
        .map(serde_json::Value::Object)
        .collect();
    let imported = if keys.is_empty() {
        Vec::new()
    } else {
        import::validate_keys(&keys, idp_kids)?
    };
    Ok(CustomKeySet::new(
        stored.version,
        imported,
        stored.published_at.clone(),
    ))
}
