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
use prometheus_client::registry::{Metric, Registry};

use super::labels::{
    Action, AlgLabel, IdpLabel, IdpReason, IdpResult, KeyLabels, KidLabel, Kind, Reason,
    RequestLabels, ResultLabel, SignerErrorLabels,
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

/// Registers `metric` under `name` with `help` and returns the handle the hot path keeps.
fn register<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

impl Metrics {
    /// Builds every series and registers it under the `resigner_` names listed in the README.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let by_route = register(
            &mut registry,
            "resigner_requests",
            "Requests on the public listener by route prefix (\"none\": no route, \"jwks\": the JWKS) and status",
            Family::<RequestLabels, Counter>::default(),
        );
        let failures = register(
            &mut registry,
            "resigner_verification_failures",
            "Proxied requests refused before forwarding, by reason",
            Family::<Reason, Counter>::default(),
        );
        let lookups = register(
            &mut registry,
            "resigner_resign_cache_lookups",
            "Re-sign cache lookups of verified tokens by result (hit, miss)",
            Family::<ResultLabel, Counter>::default(),
        );
        let by_key = register(
            &mut registry,
            "resigner_signatures",
            "Tokens signed, by signing key kid and alg",
            Family::<KeyLabels, Counter>::default(),
        );
        let signing_seconds = register(
            &mut registry,
            "resigner_signature_duration_seconds",
            "Time to sign one token, by alg and signer backend (memory, pkcs11, transit)",
            HistogramFamily::<AlgLabel>::new_with_constructor(signing_histogram),
        );
        let signing_errors = register(
            &mut registry,
            "resigner_signing_errors",
            "Signatures that failed, by signer backend and kind (unavailable, timeout, refused, failed)",
            Family::<SignerErrorLabels, Counter>::default(),
        );
        let signing_fallbacks = register(
            &mut registry,
            "resigner_signing_fallbacks",
            "RSA signatures that waited 250ms for idle CPU and then ran at normal priority",
            Counter::default(),
        );
        let fetches = register(
            &mut registry,
            "resigner_idp_jwks_fetches",
            "IdP JWKS fetches by IdP name and result (ok, failed, suppressed: an unknown-kid refetch skipped by the cooldown)",
            Family::<IdpResult, Counter>::default(),
        );
        let introspections = register(
            &mut registry,
            "resigner_idp_introspections",
            "Calls to an IdP's RFC 7662 introspection endpoint (cached answers not counted), by IdP name and result (active, inactive, failed)",
            Family::<IdpResult, Counter>::default(),
        );
        let upstream_seconds = register(
            &mut registry,
            "resigner_upstream_duration_seconds",
            "Time from sending a request upstream to its response headers",
            upstream_histogram(),
        );
        let upstream_errors = register(
            &mut registry,
            "resigner_upstream_errors",
            "Upstream requests that got no response, by kind (connect, timeout, other)",
            Family::<Kind, Counter>::default(),
        );
        let admin = register(
            &mut registry,
            "resigner_admin_changes",
            "Custom signing key set changes through the management API, by action (put, delete)",
            Family::<Action, Counter>::default(),
        );
        let reloads = register(
            &mut registry,
            "resigner_config_reloads",
            "Configuration reloads by result (ok, failed)",
            Family::<ResultLabel, Counter>::default(),
        );
        let idp_age = register(
            &mut registry,
            "resigner_idp_jwks_age_seconds",
            "Per IdP: seconds since its current key set was last fetched successfully (NaN before the first)",
            Family::<IdpLabel, Gauge<f64, AtomicU64>>::default(),
        );
        let idp_loaded = register(
            &mut registry,
            "resigner_idp_jwks_loaded",
            "Per IdP: 1 when a usable key set is loaded, else 0",
            Family::<IdpLabel, Gauge>::default(),
        );
        let idp_kid_collisions = register(
            &mut registry,
            "resigner_idp_kid_collisions",
            "Kids published by two IdPs: the later IdP's key with that kid is left out of the JWKS",
            Gauge::default(),
        );
        let ready = register(
            &mut registry,
            "resigner_ready",
            "1 when /readyz answers 200 (IdP keys loaded, active signing key published), else 0",
            Gauge::default(),
        );
        let key_published = register(
            &mut registry,
            "resigner_signing_key_published",
            "Per configured signing key: 1 when its public JWK is in the published custom key set (and older than min_published_age), else 0",
            Family::<KidLabel, Gauge>::default(),
        );
        let idp_weak_keys = register(
            &mut registry,
            "resigner_idp_weak_keys",
            "IdP keys in the current set that fail a weak-key check (kept in use, logged as a warning), by IdP name and reason (small_factor, close_primes, roca, exponent, invalid_point)",
            Family::<IdpReason, Gauge>::default(),
        );
        let build = Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]);
        registry.register(
            "resigner_build",
            "The running build: resigner's version",
            build,
        );
        let cache_entries = register(
            &mut registry,
            "resigner_resign_cache_entries",
            "Re-signed tokens in the cache",
            Gauge::default(),
        );
        let cache_weighted_bytes = register(
            &mut registry,
            "resigner_resign_cache_weighted_bytes",
            "Weighted size of the re-sign cache: bytes (token + 160 per entry); the entry count when bounded by max_entries",
            Gauge::default(),
        );
        let store = super::store::StoreMetrics::register(&mut registry);
        let member = |family: &Family<ResultLabel, Counter>, result| {
            family.get_or_create_owned(&ResultLabel { result })
        };
        let kind = |kind| upstream_errors.get_or_create_owned(&Kind { kind });
        let action = |action| admin.get_or_create_owned(&Action { action });
        static INSTANCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Metrics {
            instance: INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            requests: Counter::default(),
            rejected: Counter::default(),
            cache_hits: member(&lookups, "hit"),
            cache_misses: member(&lookups, "miss"),
            signatures: Counter::default(),
            signing_fallbacks,
            idp_fetch_ok: Counter::default(),
            idp_fetch_failed: Counter::default(),
            idp_fetch_suppressed: Counter::default(),
            idp_fetches: fetches,
            introspections,
            upstream_errors: Counter::default(),
            admin_changes: Counter::default(),
            reloads_ok: member(&reloads, "ok"),
            reloads_failed: member(&reloads, "failed"),
            by_route,
            route_names: RwLock::new(HashMap::new()),
            failures,
            by_key,
            signing_seconds,
            signing_errors,
            signers: RwLock::new(Vec::new()),
            upstream_seconds,
            upstream_connect: kind("connect"),
            upstream_timeout: kind("timeout"),
            upstream_other: kind("other"),
            admin_put: action("put"),
            admin_delete: action("delete"),
            admin_create: action("create"),
            admin_rotate: action("rotate"),
            admin_revoke: action("revoke"),
            idp_age,
            idp_loaded,
            idp_kid_collisions,
            ready,
            key_published,
            idp_weak_keys,
            cache_entries,
            cache_weighted_bytes,
            store,
            registry,
        }
    }
}
