//! The admin listener (loopback by default).
//!
//! Endpoints:
//! - `GET /healthz` — 200 while the process runs
//! - `GET /readyz` — 200 when the IdP keys are loaded, 503 with the reason otherwise
//! - `GET /admin/status` — JSON: config generation, active signing kid, IdP key age and kids,
//!   counters
//! - `GET /.well-known/jwks.json` — the same JWKS as the public listener

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use crate::app::AppState;
use crate::body::{self, Body};
use crate::router;

/// Routes one request on the admin listener.
pub async fn handle(state: &AppState, request: Request<Incoming>) -> Response<Body> {
    match request.uri().path() {
        "/healthz" => body::json(StatusCode::OK, &json!({"status": "ok"})),
        "/readyz" => readiness(state),
        "/admin/status" => body::json(StatusCode::OK, &status(state)),
        router::JWKS_PATH => router::jwks(state, &request),
        _ => body::json(StatusCode::NOT_FOUND, &json!({"error": "not_found"})),
    }
}

fn readiness(state: &AppState) -> Response<Body> {
    match state.idp.current() {
        Some(_) => body::json(StatusCode::OK, &json!({"status": "ready"})),
        None => {
            let reason = state
                .idp
                .last_error()
                .unwrap_or_else(|| "IdP keys not loaded yet".into());
            body::json(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "not ready", "reason": reason}),
            )
        }
    }
}

fn status(state: &AppState) -> serde_json::Value {
    let config = state.config();
    let idp = state.idp.current();
    json!({
        "config_generation": config.generation,
        "signing": {"active_kid": config.signing.active.kid(), "alg": config.signing.active.alg().name()},
        "idp": {
            "issuer": state.idp.settings().issuer,
            "loaded": idp.is_some(),
            "age_seconds": idp.as_ref().map(|k| k.fetched_at.elapsed().as_secs()),
            "kids": idp.as_ref().map(|k| k.kids()),
            "last_error": state.idp.last_error(),
        },
        "cache_entries": state.cache.entry_count(),
        "counters": state.metrics.snapshot(),
    })
}
