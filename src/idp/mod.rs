//! The IdP key client: fetches the IdP's JWKS (discovering its URL from the OpenID
//! configuration when not configured), refreshes it in the background honouring
//! `Cache-Control: max-age` within bounds, refetches on an unknown `kid` at most once per
//! cooldown with a single fetch in flight, remembers unknown kids briefly, and keeps the last
//! good set through failed refreshes (stale-if-error, up to `max_stale`). A set that is empty,
//! oversized or unparsable never replaces a good one. A request that finds no key set while
//! the first fetch after start is still in flight waits for it ([`IdpClient::usable_keys`]).
//! The HTTP side (discovery, bounded fetch, JWKS parsing) is in [`fetch`]; the first-attempt
//! signal and the failure wording in [`status`]; the weak-key warnings in [`weak`]; the set of
//! clients for several IdPs (one per `[[idp]]`, matched by `iss`) in [`registry`].

mod fetch;
pub mod introspect;
pub mod registry;
mod status;
mod weak;

pub use fetch::Probe;
pub use registry::{Collision, Generations, Idps};
use status::{FetchStatus, Held};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use aws_lc_rs::digest;
use http::{StatusCode, Uri};
use serde_json::{Map, Value};

use crate::config::IdpSettings;
use crate::http::client::FetchClient;
use crate::keys::VerifyKey;
use crate::metrics::{IdpSeries, Metrics};

/// Why a fetch of the IdP keys failed.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    #[error("request to {0} failed: {1}")]
    Request(String, String),
    #[error("{0} answered HTTP {1}")]
    Status(String, StatusCode),
    #[error("{0} did not answer within {1:?}")]
    Timeout(String, Duration),
    #[error("{0}: response larger than {1} bytes")]
    TooLarge(String, usize),
    #[error("{0}: {1}")]
    Invalid(String, String),
}

/// One immutable snapshot of the IdP's usable keys.
#[derive(Debug)]
pub struct IdpKeys {
    pub keys: Vec<VerifyKey>,
    by_kid: HashMap<String, usize>,
    /// Public JWK objects for republishing in the aggregated JWKS.
    pub public: Vec<Map<String, Value>>,
    /// When this content was last confirmed by a successful fetch.
    pub fetched_at: Instant,
    /// Increases whenever the key content changes (not on an identical refresh); drawn from
    /// the [`Generations`] every IdP of the process shares, so it is unique among them.
    pub generation: u64,
    digest: Vec<u8>,
}

/// Result of looking a token's `kid` up in a key set.
pub enum Lookup<'a> {
    Found(&'a VerifyKey),
    UnknownKid,
    NoKid,
}

impl IdpKeys {
    pub fn find(&self, kid: Option<&str>) -> Lookup<'_> {
        match kid {
            Some(kid) => match self.by_kid.get(kid) {
                Some(index) => Lookup::Found(&self.keys[*index]),
                None => Lookup::UnknownKid,
            },
            None if self.keys.len() == 1 => Lookup::Found(&self.keys[0]),
            None => Lookup::NoKid,
        }
    }

    pub fn kids(&self) -> Vec<String> {
        self.keys.iter().filter_map(|k| k.kid.clone()).collect()
    }
}

/// The client; shared by every request through an `Arc`.
pub struct IdpClient {
    settings: ArcSwap<IdpSettings>,
    /// Wakes the refresh loop early (settings changed).
    refresh_now: tokio::sync::Notify,
    http: FetchClient,
    current: ArcSwapOption<IdpKeys>,
    generations: Arc<Generations>,
    /// Last on-demand (unknown kid) fetch; the async mutex makes it single-flight.
    on_demand: tokio::sync::Mutex<Option<Instant>>,
    /// Unknown kids and when to forget them.
    negative: Mutex<HashMap<String, Instant>>,
    /// The discovered JWKS URI and the issuer it was discovered for.
    discovered: Mutex<Option<(String, Uri)>>,
    status: FetchStatus,
    metrics: Arc<Metrics>,
    /// Introspects opaque tokens when `[idp] introspection` is set.
    introspector: ArcSwapOption<introspect::Introspector>,
    /// This IdP's fetch counters (`{idp="<name>"}`), resolved again when a reload renames it.
    series: ArcSwap<IdpSeries>,
    /// The runtime [`IdpClient::run`] runs on (the process runtime). On-demand fetches run
    /// there too, so the fetch client's pooled connections never belong to a per-core
    /// worker's runtime, which ends with that worker.
    home: std::sync::OnceLock<tokio::runtime::Handle>,
}

impl std::fmt::Debug for IdpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpClient")
            .field("name", &self.name())
            .field("issuer", &self.settings.load().issuer)
            .finish_non_exhaustive()
    }
}

const NEGATIVE_CACHE_MAX: usize = 1024;

fn introspector(
    settings: &IdpSettings,
    metrics: &Arc<Metrics>,
) -> Option<Arc<introspect::Introspector>> {
    let introspection = settings.introspection.clone()?;
    Some(Arc::new(introspect::Introspector::new(
        introspection,
        &settings.issuer,
        &settings.name,
        settings.tls.as_deref(),
        metrics.clone(),
    )))
}

impl IdpClient {
    /// A client for one IdP; `generations` is shared by every IdP of the process (a new
    /// [`Generations`] for a client of its own).
    pub fn new(
        settings: Arc<IdpSettings>,
        http: FetchClient,
        metrics: Arc<Metrics>,
        generations: Arc<Generations>,
    ) -> Self {
        IdpClient {
            introspector: ArcSwapOption::new(introspector(&settings, &metrics)),
            series: ArcSwap::from_pointee(metrics.idp_series(&settings.name)),
            settings: ArcSwap::new(settings),
            refresh_now: tokio::sync::Notify::new(),
            http,
            current: ArcSwapOption::empty(),
            generations,
            on_demand: tokio::sync::Mutex::new(None),
            home: std::sync::OnceLock::new(),
            negative: Mutex::new(HashMap::new()),
            discovered: Mutex::new(None),
            status: FetchStatus::new(),
            metrics,
        }
    }

    pub fn settings(&self) -> Arc<IdpSettings> {
        self.settings.load_full()
    }

    /// The introspector for opaque tokens; `None` without `[idp] introspection`.
    pub fn introspector(&self) -> Option<Arc<introspect::Introspector>> {
        self.introspector.load_full()
    }

    /// The IdP's name (its metrics label).
    pub fn name(&self) -> String {
        self.settings.load().name.clone()
    }

    /// Whether a usable key set is loaded: what a cached answer verified with it needs.
    pub fn is_usable(&self) -> bool {
        self.current
            .load()
            .as_ref()
            .is_some_and(|keys| keys.fetched_at.elapsed() <= self.settings.load().max_stale)
    }

    /// Applies reloaded settings (allow-list, leeway, typ, refresh bounds and cooldowns take
    /// effect at once); a changed issuer or JWKS URI triggers an immediate refetch.
    pub fn update_settings(&self, settings: Arc<IdpSettings>) {
        let old = self.settings.swap(settings.clone());
        if old.introspection != settings.introspection || old.name != settings.name {
            self.introspector
                .store(introspector(&settings, &self.metrics));
        }
        if old.name != settings.name {
            self.series
                .store(Arc::new(self.metrics.idp_series(&settings.name)));
            weak::forget(&old.name, &self.metrics);
        }
        if old.issuer != settings.issuer
            || old.jwks_uri != settings.jwks_uri
            || old.algorithms != settings.algorithms
        {
            tracing::info!(idp = %settings.name, issuer = %settings.issuer, "IdP settings changed; refetching the key set");
            self.refresh_now.notify_one();
        }
    }

    /// The current key set, or `None` when none was ever loaded or the last good one is older
    /// than `max_stale`.
    pub fn current(&self) -> Option<Arc<IdpKeys>> {
        self.current
            .load_full()
            .filter(|keys| keys.fetched_at.elapsed() <= self.settings.load().max_stale)
    }

    /// The current key set; when there is none yet and the first fetch after start is still
    /// in flight, waits for that fetch (at most `fetch_timeout`). Once the first attempt has
    /// ended, never waits: with the IdP down, `None` comes at once. With keys loaded this is
    /// [`IdpClient::current`], one atomic load.
    pub async fn usable_keys(&self) -> Option<Arc<IdpKeys>> {
        if let Some(keys) = self.current() {
            return Some(keys);
        }
        if !self.status.first_attempt_ended() {
            tracing::debug!("no IdP key set yet: waiting for the first fetch");
            let limit = self.settings.load().fetch_timeout;
            self.status.wait_first_attempt(limit).await;
        }
        self.current()
    }

    /// Time since the last loaded key set (usable or too stale) was confirmed by a fetch.
    pub fn age(&self) -> Option<Duration> {
        self.current
            .load()
            .as_ref()
            .map(|keys| keys.fetched_at.elapsed())
    }

    /// The last fetch error, if the last fetch failed, with the attempt number and what is
    /// held meanwhile ("no key set is loaded yet" or "keeping the last good key set ...").
    pub fn last_error(&self) -> Option<String> {
        self.status.last_error()
    }

    /// Background task: initial fetch with exponential backoff, then periodic refreshes.
    pub async fn run(self: Arc<Self>) {
        let _ = self.home.set(tokio::runtime::Handle::current());
        let mut backoff = Duration::from_millis(250);
        loop {
            let wait = match self.attempt(Some(backoff)).await {
                Ok(max_age) => {
                    backoff = Duration::from_millis(250);
                    let settings = self.settings.load();
                    max_age
                        .unwrap_or(settings.refresh)
                        .clamp(settings.refresh_min, settings.refresh_max)
                }
                Err(_) => {
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.refresh_now.notified() => {}
            }
        }
    }

    /// Called when a token names a kid the current set lacks. Refetches at most once per
    /// cooldown, with one fetch in flight however many requests wait, and remembers kids that
    /// stay unknown. Returns the (possibly new) current set.
    pub async fn refresh_for_unknown_kid(self: &Arc<Self>, kid: &str) -> Option<Arc<IdpKeys>> {
        if self.is_known_unknown(kid) {
            self.series.load().suppressed(&self.metrics);
            return self.current();
        }
        let mut last = self.on_demand.lock().await;
        if let Some(keys) = self.current()
            && matches!(keys.find(Some(kid)), Lookup::Found(_))
        {
            return Some(keys);
        }
        if last.is_some_and(|at| at.elapsed() < self.settings.load().unknown_kid_cooldown) {
            self.series.load().suppressed(&self.metrics);
            self.remember_unknown(kid);
            return self.current();
        }
        *last = Some(Instant::now());
        match self.home.get() {
            Some(home) => {
                let client = self.clone();
                let _ = home.spawn(async move { client.fetch_now().await }).await;
            }
            None => {
                let _ = self.fetch_now().await;
            }
        }
        drop(last);
        let keys = self.current();
        if !keys
            .as_ref()
            .is_some_and(|keys| matches!(keys.find(Some(kid)), Lookup::Found(_)))
        {
            self.remember_unknown(kid);
        }
        keys
    }

    fn is_known_unknown(&self, kid: &str) -> bool {
        let Ok(mut negative) = self.negative.lock() else {
            return false;
        };
        match negative.get(kid) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                negative.remove(kid);
                false
            }
            None => false,
        }
    }

    fn remember_unknown(&self, kid: &str) {
        let Ok(mut negative) = self.negative.lock() else {
            return;
        };
        let now = Instant::now();
        if negative.len() >= NEGATIVE_CACHE_MAX {
            negative.retain(|_, until| *until > now);
            if negative.len() >= NEGATIVE_CACHE_MAX {
                negative.clear();
            }
        }
        negative.insert(
            kid.chars().take(256).collect(),
            now + self.settings.load().unknown_kid_cooldown,
        );
    }

    /// Fetches the JWKS now and installs it when valid. Returns the response's max-age.
    pub async fn fetch_now(&self) -> Result<Option<Duration>, IdpError> {
        self.attempt(None).await
    }

    /// [`IdpClient::fetch_now`], counted and logged; `retry`: when the refresh loop tries
    /// again if this attempt fails.
    async fn attempt(&self, retry: Option<Duration>) -> Result<Option<Duration>, IdpError> {
        let result =
            tokio::time::timeout(self.settings.load().fetch_timeout, self.fetch_and_install())
                .await;
        let result = match result {
            Ok(result) => result,
            Err(_) => Err(IdpError::Timeout(
                "the IdP".into(),
                self.settings.load().fetch_timeout,
            )),
        };
        match &result {
            Ok(_) => {
                self.series.load().ok(&self.metrics);
                self.status.succeeded();
            }
            Err(err) => {
                self.series.load().failed(&self.metrics);
                self.status.failed(err, self.held(), retry);
            }
        }
        result
    }

    fn held(&self) -> Held {
        match self.age() {
            None => Held::Nothing,
            Some(age) if age <= self.settings.load().max_stale => Held::Good(age),
            Some(age) => Held::TooStale(age),
        }
    }

    fn install(&self, keys: Vec<VerifyKey>) {
        let public: Vec<Map<String, Value>> = keys.iter().map(VerifyKey::public_json).collect();
        let canonical = serde_json::to_vec(&public).unwrap_or_default();
        let digest = digest::digest(&digest::SHA256, &canonical)
            .as_ref()
            .to_vec();
        let previous = self.current.load_full();
        let generation = match &previous {
            Some(prev) if prev.digest == digest => prev.generation,
            _ => self.generations.allocate(),
        };
        let mut by_kid = HashMap::new();
        for (index, key) in keys.iter().enumerate() {
            if let Some(kid) = &key.kid {
                by_kid.entry(kid.clone()).or_insert(index);
            }
        }
        let changed = previous.as_ref().is_none_or(|p| p.generation != generation);
        let name = self.name();
        if changed {
            weak::report(&name, &keys, &self.metrics);
            tracing::info!(idp = %name, generation, kids = ?keys.iter().filter_map(|k| k.kid.as_deref()).collect::<Vec<_>>(), "IdP key set installed");
        }
        self.current.store(Some(Arc::new(IdpKeys {
            keys,
            by_kid,
            public,
            fetched_at: Instant::now(),
            generation,
            digest,
        })));
        if changed {
            // After the store: whoever sees the new generation also sees the new keys.
            self.generations.publish();
        }
    }
}
