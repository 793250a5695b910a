//! The key store's part of `/admin/status`: the backend, where it is (never a password),
//! the set version served, whether the store is reachable (and since when not), the last
//! sync and how changes arrived, whether it holds a set at all (and why not); and a SHA-256 fingerprint of the published JWKS, so the
//! replicas of one deployment can be compared at a glance (same version, same fingerprint).

use serde_json::{Value, json};

use crate::app::AppState;
use crate::jose::time::format_utc;

/// The `store` object of `/admin/status`.
pub fn store(state: &AppState) -> Value {
    let status = state.store_status();
    json!({
        "backend": status.backend,
        "location": status.location,
        "version": status.version,
        "reachable": status.reachable,
        "unreachable_since": status.unreachable_since.map(format_utc),
        "last_error": status.last_error,
        "last_sync": status.last_sync.map(format_utc),
        "from_local_copy": status.from_local_copy,
        "has_set": status.no_set.is_none(),
        "no_set_reason": status.no_set,
        "notifications": status.notifications,
        "polls": status.polls,
        "reconnects": status.reconnects,
    })
}

/// The `jwks` object of `/admin/status`: the published document's ETag and SHA-256 (hex).
pub fn jwks(state: &AppState) -> Value {
    let jwks = state.jwks();
    json!({
        "etag": jwks.etag,
        "sha256": crate::keys::digest::sha256_hex(&jwks.body),
    })
}
