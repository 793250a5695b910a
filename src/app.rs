//! The shared state of a running proxy: the current config snapshot (swapped whole on
//! reload), the IdP key client, the re-sign cache, the upstream client, the rendered JWKS
//! and the counters. Handlers load each snapshot once and use it to the end of the request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::http_client::{self, UpstreamClient};
use crate::idp::IdpClient;
use crate::keys::RenderedJwks;
use crate::metrics::Metrics;
use crate::proxy::cache::{self, ResignCache};

pub struct AppState {
    config: ArcSwap<Config>,
    next_generation: AtomicU64,
    pub idp: Arc<IdpClient>,
    pub cache: ResignCache,
    pub upstream: UpstreamClient,
    jwks: ArcSwap<RenderedJwks>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// Builds the state for `config`; the IdP client's background task is started by the
    /// server (see [`crate::server::start`]).
    pub fn new(mut config: Config) -> Arc<Self> {
        config.generation = 1;
        let metrics = Arc::new(Metrics::default());
        let fetch = http_client::fetch_client(config.idp.fetch_timeout);
        let idp = Arc::new(IdpClient::new(config.idp.clone(), fetch, metrics.clone()));
        let upstream = http_client::upstream_client(
            config.upstream.connect_timeout,
            config.upstream.pool_idle_timeout,
        );
        let cache = cache::build(&config.cache);
        let jwks = render(&config, None);
        Arc::new(AppState {
            config: ArcSwap::from_pointee(config),
            next_generation: AtomicU64::new(2),
            idp,
            cache,
            upstream,
            jwks: ArcSwap::from_pointee(jwks),
            metrics,
        })
    }

    /// The current config snapshot.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Installs a new, already validated config. Listener addresses, IdP settings and cache
    /// bounds keep their start-up values; routes, claims and signing keys take effect for the
    /// next request, and the new generation makes every cached token unreachable.
    pub fn install_config(&self, mut config: Config) -> u64 {
        config.generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let generation = config.generation;
        self.config.store(Arc::new(config));
        generation
    }

    /// The published JWKS: signing keys first, then the IdP's keys. Re-rendered only when
    /// the config or the IdP key set changed since the last rendering.
    pub fn jwks(&self) -> Arc<RenderedJwks> {
        let current = self.jwks.load_full();
        let config = self.config.load();
        let idp = self.idp.current();
        let source = (
            config.generation,
            idp.as_ref().map_or(0, |keys| keys.generation),
        );
        if current.source == source {
            return current;
        }
        let rendered = Arc::new(render(&config, idp.as_deref()));
        self.jwks.store(rendered.clone());
        rendered
    }
}

fn render(config: &Config, idp: Option<&crate::idp::IdpKeys>) -> RenderedJwks {
    let custom: Vec<_> = config
        .signing
        .keys
        .iter()
        .map(|key| key.public_jwk().to_json())
        .collect();
    let idp_keys = idp.map(|keys| keys.public.clone()).unwrap_or_default();
    RenderedJwks::render(
        &custom,
        &idp_keys,
        (config.generation, idp.map_or(0, |keys| keys.generation)),
    )
}
