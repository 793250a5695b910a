//! Counters the proxy keeps about itself. Plain atomics for now: cheap on the hot path and
//! readable by tests and the admin status endpoint.

use std::sync::atomic::{AtomicU64, Ordering};

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub rejected: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub signatures: AtomicU64,
    pub idp_fetch_ok: AtomicU64,
    pub idp_fetch_failed: AtomicU64,
    pub idp_fetch_suppressed: AtomicU64,
    pub upstream_errors: AtomicU64,
    pub admin_changes: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// A JSON snapshot of every counter.
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "requests": Self::get(&self.requests),
            "rejected": Self::get(&self.rejected),
            "cache_hits": Self::get(&self.cache_hits),
            "cache_misses": Self::get(&self.cache_misses),
            "signatures": Self::get(&self.signatures),
            "idp_fetch_ok": Self::get(&self.idp_fetch_ok),
            "idp_fetch_failed": Self::get(&self.idp_fetch_failed),
            "idp_fetch_suppressed": Self::get(&self.idp_fetch_suppressed),
            "upstream_errors": Self::get(&self.upstream_errors),
            "admin_changes": Self::get(&self.admin_changes),
        })
    }
}
