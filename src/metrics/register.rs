//! Builds [`Metrics`]: every family and gauge registered under its `resigner_` name (the
//! README lists them), and the fixed-label members resolved once for the hot path.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use super::labels::{
    Action, AlgLabel, KeyLabels, KidLabel, Kind, Reason, RequestLabels, ResultLabel,
};
use super::{HistogramFamily, Metrics};

fn signing_histogram() -> Histogram {
    // 25 µs .. ~0.4 s: EdDSA and ECDSA sit at the bottom, RSA 4096 near 10 ms.
    Histogram::new(exponential_buckets(0.000_025, 2.0, 15))
}

fn upstream_histogram() -> Histogram {
    // 1 ms .. ~33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Metrics {
    /// Builds every series and registers it under the `resigner_` names listed in the README.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let by_route = Family::<RequestLabels, Counter>::default();
        registry.register(
            "resigner_requests",
            "Requests on the public listener by route prefix (\"none\": no route, \"jwks\": the JWKS) and status",
            by_route.clone(),
        );
        let failures = Family::<Reason, Counter>::default();
        registry.register(
            "resigner_verification_failures",
            "Proxied requests refused before forwarding, by reason",
            failures.clone(),
        );
        let lookups = Family::<ResultLabel, Counter>::default();
        registry.register(
            "resigner_resign_cache_lookups",
            "Re-sign cache lookups of verified tokens by result (hit, miss)",
            lookups.clone(),
        );
        let by_key = Family::<KeyLabels, Counter>::default();
        registry.register(
            "resigner_signatures",
            "Tokens signed, by signing key kid and alg",
            by_key.clone(),
        );
        let signing_seconds = HistogramFamily::<AlgLabel>::new_with_constructor(signing_histogram);
        registry.register(
            "resigner_signature_duration_seconds",
            "Time to sign one token, by alg",
            signing_seconds.clone(),
        );
        let signing_fallbacks = Counter::default();
        registry.register(
            "resigner_signing_fallbacks",
            "RSA signatures that waited 250ms for idle CPU and then ran at normal priority",
            signing_fallbacks.clone(),
        );
        let fetches = Family::<ResultLabel, Counter>::default();
        registry.register(
            "resigner_idp_jwks_fetches",
            "IdP JWKS fetches by result (ok, failed, suppressed: an unknown-kid refetch skipped by the cooldown)",
            fetches.clone(),
        );
        let upstream_seconds = upstream_histogram();
        registry.register(
            "resigner_upstream_duration_seconds",
            "Time from sending a request upstream to its response headers",
            upstream_seconds.clone(),
        );
        let upstream_errors = Family::<Kind, Counter>::default();
        registry.register(
            "resigner_upstream_errors",
            "Upstream requests that got no response, by kind (connect, timeout, other)",
            upstream_errors.clone(),
        );
        let admin = Family::<Action, Counter>::default();
        registry.register(
            "resigner_admin_changes",
            "Custom signing key set changes through the management API, by action (put, delete)",
            admin.clone(),
        );
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "resigner_config_reloads",
            "Configuration reloads by result (ok, failed)",
            reloads.clone(),
        );
        let idp_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "resigner_idp_jwks_age_seconds",
            "Seconds since the current IdP key set was last fetched successfully (NaN before the first)",
            idp_age.clone(),
        );
        let idp_loaded = Gauge::default();
        registry.register(
            "resigner_idp_jwks_loaded",
            "1 when a usable IdP key set is loaded, else 0",
            idp_loaded.clone(),
        );
        let ready = Gauge::default();
        registry.register(
            "resigner_ready",
            "1 when /readyz answers 200 (IdP keys loaded, active signing key published), else 0",
            ready.clone(),
        );
        let key_published = Family::<KidLabel, Gauge>::default();
        registry.register(
            "resigner_signing_key_published",
            "Per configured signing key: 1 when its public JWK is in the published custom key set (and older than min_published_age), else 0",
            key_published.clone(),
        );
        let build = Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]);
        registry.register(
            "resigner_build",
            "The running build: resigner's version",
            build,
        );
        let cache_entries = Gauge::default();
        registry.register(
            "resigner_resign_cache_entries",
            "Re-signed tokens in the cache",
            cache_entries.clone(),
        );
        let cache_weighted_bytes = Gauge::default();
        registry.register(
            "resigner_resign_cache_weighted_bytes",
            "Weighted size of the re-sign cache: bytes (token + 160 per entry); the entry count when bounded by max_entries",
            cache_weighted_bytes.clone(),
        );
        let member = |family: &Family<ResultLabel, Counter>, result| {
            family.get_or_create_owned(&ResultLabel { result })
        };
        let kind = |kind| upstream_errors.get_or_create_owned(&Kind { kind });
        let action = |action| admin.get_or_create_owned(&Action { action });
        Metrics {
            requests: Counter::default(),
            rejected: Counter::default(),
            cache_hits: member(&lookups, "hit"),
            cache_misses: member(&lookups, "miss"),
            signatures: Counter::default(),
            signing_fallbacks,
            idp_fetch_ok: member(&fetches, "ok"),
            idp_fetch_failed: member(&fetches, "failed"),
            idp_fetch_suppressed: member(&fetches, "suppressed"),
            upstream_errors: Counter::default(),
            admin_changes: Counter::default(),
            reloads_ok: member(&reloads, "ok"),
            reloads_failed: member(&reloads, "failed"),
            by_route,
            route_names: RwLock::new(HashMap::new()),
            failures,
            by_key,
            signing_seconds,
            signers: RwLock::new(Vec::new()),
            upstream_seconds,
            upstream_connect: kind("connect"),
            upstream_timeout: kind("timeout"),
            upstream_other: kind("other"),
            admin_put: action("put"),
            admin_delete: action("delete"),
            idp_age,
            idp_loaded,
            ready,
            key_published,
            cache_entries,
            cache_weighted_bytes,
            registry,
        }
    }
}
