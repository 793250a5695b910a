//! What the proxy counts about itself, exposed in the Prometheus text format on the admin
//! listener's `/metrics` (prometheus-client). Hot-path handles are resolved once: counters
//! with a fixed label set (cache hit/miss, IdP fetch results, upstream error kinds, reload
//! results) are members of their registered families, taken at start-up; the per-route and
//! per-signing-key series are looked up by shared `Arc<str>` labels, so recording allocates
//! only the first time a route or key is seen. Values that describe state rather than events
//! (IdP key set age, cache size) are set from [`Scrape`] at scrape time.
//!
//! The unlabelled totals (`requests`, `rejected`, `signatures`, ...) feed `/admin/status` and
//! the tests; Prometheus gets the labelled families.

mod labels;
mod last_series;
mod register;
mod store;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::StatusCode;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::jose::alg::Alg;
use labels::{
    AlgLabel, IdpLabel, IdpReason, IdpResult, KeyLabels, KidLabel, Reason, RequestLabels,
    SignerErrorLabels,
};

pub use prometheus_client::metrics::counter::Counter;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;
/// `route` label of requests that matched no route.
pub const NO_ROUTE: &str = "none";
/// `route` label of the public listener's JWKS endpoint.
pub const JWKS_ROUTE: &str = "jwks";

/// How a request to an upstream failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamError {
    /// No connection could be made (refused, unreachable, connect timeout, TLS handshake).
    Connect,
    /// No response within the route's timeout.
    Timeout,
    /// Anything else, e.g. the connection closed before a response.
    Other,
}

/// A change through the management API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    Put,
    Delete,
}

/// State read at scrape time by the `/metrics` handler.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// Whether `/readyz` would answer 200.
    pub ready: bool,
    /// Each configured signing key's kid and whether its public JWK is published (and old
    /// enough to sign with).
    pub signing_keys: Vec<(Arc<str>, bool)>,
    /// Each IdP's key set state.
    pub idps: Vec<IdpScrape>,
    pub cache_entries: u64,
    pub cache_weighted_bytes: u64,
    /// The key store's health and sync counters.
    pub store: crate::keys::store::StoreStatus,
}

/// One IdP's key set state at scrape time.
#[derive(Debug, Clone, Default)]
pub struct IdpScrape {
    /// The IdP's name (the `idp` label).
    pub name: String,
    /// Time since its key set was last confirmed; `None` before the first fetch.
    pub age: Option<Duration>,
    /// Whether a usable (not too stale) key set is loaded.
    pub loaded: bool,
}

/// One IdP's fetch counters (`resigner_idp_jwks_fetches_total{idp, result}`), resolved
/// once per client; each also counts in the process totals.
#[derive(Debug, Clone)]
pub struct IdpSeries {
    ok: Counter,
    failed: Counter,
    suppressed: Counter,
}

impl IdpSeries {
    pub fn ok(&self, metrics: &Metrics) {
        self.ok.inc();
        metrics.idp_fetch_ok.inc();
    }

    pub fn failed(&self, metrics: &Metrics) {
        self.failed.inc();
        metrics.idp_fetch_failed.inc();
    }

    /// An unknown-kid refetch skipped by the cooldown.
    pub fn suppressed(&self, metrics: &Metrics) {
        self.suppressed.inc();
        metrics.idp_fetch_suppressed.inc();
    }
}

/// The signing series of one key, resolved once.
#[derive(Debug)]
struct SignerSeries {
    kid: Box<str>,
    alg: Alg,
    backend: &'static str,
    count: Counter,
    seconds: Histogram,
}

type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

/// Process-wide metrics.
#[derive(Debug)]
pub struct Metrics {
    /// Tells instances apart in [`last_series`] (tests make several per thread).
    instance: u64,
    registry: Registry,
    /// Requests on the public listener (proxied routes and the JWKS).
    pub requests: Counter,
    /// Proxied requests answered with an error by resigner itself.
    pub rejected: Counter,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    /// Tokens signed, every key together.
    pub signatures: Counter,
    /// See [`crate::keys::signing_pool`].
    pub signing_fallbacks: Counter,
    /// IdP fetch results, every IdP together.
    pub idp_fetch_ok: Counter,
    pub idp_fetch_failed: Counter,
    pub idp_fetch_suppressed: Counter,
    idp_fetches: Family<IdpResult, Counter>,
    introspections: Family<IdpResult, Counter>,
    /// Upstream failures of every kind together.
    pub upstream_errors: Counter,
    /// Successful management API changes, every action together.
    pub admin_changes: Counter,
    pub reloads_ok: Counter,
    pub reloads_failed: Counter,
    by_route: Family<RequestLabels, Counter>,
    route_names: RwLock<HashMap<Box<str>, Arc<str>>>,
    failures: Family<Reason, Counter>,
    by_key: Family<KeyLabels, Counter>,
    signing_seconds: HistogramFamily<AlgLabel>,
    signing_errors: Family<SignerErrorLabels, Counter>,
    signers: RwLock<Vec<SignerSeries>>,
    upstream_seconds: Histogram,
    upstream_connect: Counter,
    upstream_timeout: Counter,
    upstream_other: Counter,
    admin_put: Counter,
    admin_delete: Counter,
    admin_create: Counter,
    admin_rotate: Counter,
    admin_revoke: Counter,
    idp_age: Family<IdpLabel, Gauge<f64, AtomicU64>>,
    idp_loaded: Family<IdpLabel, Gauge>,
    idp_kid_collisions: Gauge,
    ready: Gauge,
    key_published: Family<KidLabel, Gauge>,
    idp_weak_keys: Family<IdpReason, Gauge>,
    cache_entries: Gauge,
    cache_weighted_bytes: Gauge,
    store: store::StoreMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn inc(counter: &Counter) {
        counter.inc();
    }

    pub fn get(counter: &Counter) -> u64 {
        counter.get()
    }

    /// One answered request on the public listener; `route` is the matched route's prefix,
    /// [`NO_ROUTE`] or [`JWKS_ROUTE`].
    pub fn record_request(&self, route: &str, status: StatusCode) {
        self.requests.inc();
        let status = status.as_u16();
        if last_series::inc_if_last(self.instance, route, status) {
            return;
        }
        let name = self.route_name(route);
        let labels = RequestLabels {
            route: name.clone(),
            status,
        };
        let counter = self.by_route.get_or_create(&labels).clone();
        counter.inc();
        last_series::remember(self.instance, name, status, counter);
    }

    /// The shared label for a route prefix; routes come from the config, so this stays small.
    fn route_name(&self, route: &str) -> Arc<str> {
        if let Some(name) = self
            .route_names
            .read()
            .ok()
            .and_then(|n| n.get(route).cloned())
        {
            return name;
        }
        let name: Arc<str> = Arc::from(route);
        if let Ok(mut names) = self.route_names.write() {
            names.entry(route.into()).or_insert_with(|| name.clone());
        }
        name
    }

    /// A proxied request refused before forwarding; `reason` is a short stable label
    /// ([`crate::proxy::ProxyError::reason`]), never token content.
    pub fn record_failure(&self, reason: &'static str) {
        self.rejected.inc();
        self.failures.get_or_create(&Reason { reason }).inc();
    }

    /// One signature that failed on `backend`; `kind` is [`crate::keys::SignerError::kind`].
    pub fn record_signing_error(&self, backend: &'static str, kind: &'static str) {
        self.signing_errors
            .get_or_create(&SignerErrorLabels { backend, kind })
            .inc();
    }

    /// One token signed with key `kid` (`alg`, on `backend`) in `elapsed`.
    pub fn record_signature(&self, kid: &str, alg: Alg, backend: &'static str, elapsed: Duration) {
        self.signatures.inc();
        let seconds = elapsed.as_secs_f64();
        let found = |signers: &[SignerSeries]| {
            signers
                .iter()
                .find(|s| s.alg == alg && s.backend == backend && &*s.kid == kid)
                .map(|series| {
                    series.count.inc();
                    series.seconds.observe(seconds);
                })
                .is_some()
        };
        if self.signers.read().is_ok_and(|signers| found(&signers)) {
            return;
        }
        let Ok(mut signers) = self.signers.write() else {
            return;
        };
        if !found(&signers) {
            let series = SignerSeries {
                kid: kid.into(),
                alg,
                backend,
                count: self.by_key.get_or_create_owned(&KeyLabels {
                    kid: Arc::from(kid),
                    alg: alg.name(),
                }),
                seconds: self.signing_seconds.get_or_create_owned(&AlgLabel {
                    alg: alg.name(),
                    backend,
                }),
            };
            series.count.inc();
            series.seconds.observe(seconds);
            signers.push(series);
        }
    }

    /// A response from an upstream arrived after `elapsed`.
    pub fn record_upstream(&self, elapsed: Duration) {
        self.upstream_seconds.observe(elapsed.as_secs_f64());
    }

    /// An upstream request got no response.
    pub fn record_upstream_error(&self, kind: UpstreamError) {
        self.upstream_errors.inc();
        match kind {
            UpstreamError::Connect => self.upstream_connect.inc(),
            UpstreamError::Timeout => self.upstream_timeout.inc(),
            UpstreamError::Other => self.upstream_other.inc(),
        };
    }

    /// A successful management API change.
    pub fn record_admin_change(&self, action: AdminAction) {
        self.admin_changes.inc();
        match action {
            AdminAction::Put => self.admin_put.inc(),
            AdminAction::Delete => self.admin_delete.inc(),
        };
    }

    /// A change of the managed signing keys (`create`, `rotate`, `revoke`), by the API, the
    /// schedule or the first start.
    pub fn record_signing_key_change(&self, action: &str) {
        self.admin_changes.inc();
        match action {
            "create" => self.admin_create.inc(),
            "rotate" => self.admin_rotate.inc(),
            _ => self.admin_revoke.inc(),
        };
    }

    /// One configuration reload attempt, installed (`ok`) or refused.
    pub fn record_reload(&self, ok: bool) {
        if ok {
            self.reloads_ok.inc();
        } else {
            self.reloads_failed.inc();
        }
    }

    /// The current keys of IdP `idp` that fail a weak-key check, per reason label.
    pub fn set_idp_weak_keys(&self, idp: &str, counts: &[(&'static str, i64)]) {
        let idp: Arc<str> = Arc::from(idp);
        for (reason, count) in counts {
            self.idp_weak_keys
                .get_or_create(&IdpReason {
                    idp: idp.clone(),
                    reason,
                })
                .set(*count);
        }
    }

    /// The fetch counters of IdP `idp`.
    pub fn idp_series(&self, idp: &str) -> IdpSeries {
        let idp: Arc<str> = Arc::from(idp);
        let member = |result| {
            self.idp_fetches.get_or_create_owned(&IdpResult {
                idp: idp.clone(),
                result,
            })
        };
        IdpSeries {
            ok: member("ok"),
            failed: member("failed"),
            suppressed: member("suppressed"),
        }
    }

    /// Drops the series of an IdP that left the config or was renamed (its fetch counters
    /// and weak-key gauges; the age and loaded gauges follow every scrape).
    /// `weak_reasons`: the reason labels its weak-key gauges may have.
    pub fn forget_idp(&self, idp: &str, weak_reasons: &[&'static str]) {
        let idp: Arc<str> = Arc::from(idp);
        for result in ["ok", "failed", "suppressed"] {
            self.idp_fetches.remove(&IdpResult {
                idp: idp.clone(),
                result,
            });
        }
        for result in ["active", "inactive", "failed"] {
            self.introspections.remove(&IdpResult {
                idp: idp.clone(),
                result,
            });
        }
        for reason in weak_reasons {
            self.idp_weak_keys.remove(&IdpReason {
                idp: idp.clone(),
                reason,
            });
        }
    }

    /// One call to IdP `idp`'s introspection endpoint: `active`, `inactive` or `failed`.
    pub fn record_introspection(&self, idp: &str, result: &'static str) {
        self.introspections
            .get_or_create(&IdpResult {
                idp: Arc::from(idp),
                result,
            })
            .inc();
    }

    /// Kids published by two IdPs (the later IdP's key is left out of the JWKS).
    pub fn set_idp_kid_collisions(&self, count: usize) {
        self.idp_kid_collisions
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Every metric in the Prometheus text format (0.0.4), with the state gauges set from
    /// `scrape` first.
    pub fn render(&self, scrape: &Scrape) -> String {
        // IdPs leave the config on reload: only the configured ones have a series.
        self.idp_age.clear();
        self.idp_loaded.clear();
        for idp in &scrape.idps {
            let label = IdpLabel {
                idp: Arc::from(idp.name.as_str()),
            };
            self.idp_age
                .get_or_create(&label)
                .set(idp.age.map_or(f64::NAN, |age| age.as_secs_f64()));
            self.idp_loaded
                .get_or_create(&label)
                .set(i64::from(idp.loaded));
        }
        self.ready.set(i64::from(scrape.ready));
        // Keys leave the config on reload: only the configured ones have a series.
        self.key_published.clear();
        for (kid, published) in &scrape.signing_keys {
            self.key_published
                .get_or_create(&KidLabel { kid: kid.clone() })
                .set(i64::from(*published));
        }
        self.cache_entries
            .set(i64::try_from(scrape.cache_entries).unwrap_or(i64::MAX));
        self.cache_weighted_bytes
            .set(i64::try_from(scrape.cache_weighted_bytes).unwrap_or(i64::MAX));
        self.store.set(&scrape.store);
        let mut text = String::with_capacity(8 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        text
    }

    /// A JSON snapshot of the totals, for `/admin/status`.
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "requests": self.requests.get(),
            "rejected": self.rejected.get(),
            "cache_hits": self.cache_hits.get(),
            "cache_misses": self.cache_misses.get(),
            "signatures": self.signatures.get(),
            "idp_fetch_ok": self.idp_fetch_ok.get(),
            "idp_fetch_failed": self.idp_fetch_failed.get(),
            "idp_fetch_suppressed": self.idp_fetch_suppressed.get(),
            "upstream_errors": self.upstream_errors.get(),
            "admin_changes": self.admin_changes.get(),
            "reloads_ok": self.reloads_ok.get(),
            "reloads_failed": self.reloads_failed.get(),
        })
    }
}

#[cfg(test)]
mod tests;
