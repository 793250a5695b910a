//! The admin listener (loopback by default).
//!
//! Endpoints:
//! - `GET|PUT|DELETE /api/v2/keys/custom-signing` — the Auth0-compatible management API for
//!   the customer's public signing keys (see [`keys`])
//! - `GET /healthz` — 200 while the process runs
//! - `GET /readyz` — 200 when the IdP keys are loaded and the active signing key is
//!   published; 503 with the reasons otherwise
//! - `GET /admin/status` — JSON: config generation, signing key and whether it is published,
//!   custom key set version, IdP key age and kids, counters
//! - `GET /.well-known/jwks.json` — the same JWKS as the public listener
//! - `GET /metrics` — Prometheus text format (see [`crate::metrics`] and the README)
//!
//! Every response carries the request's `X-Request-Id` (see [`crate::request_id`]).

pub mod auth;
pub mod error;
pub mod keys;

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::json;

use crate::app::AppState;
use crate::body::{self, Body};
use crate::metrics::{self, Scrape};
use crate::{request_id, router};

pub const CUSTOM_SIGNING_PATH: &str = "/api/v2/keys/custom-signing";

/// Handles one request on the admin listener, in its request id's span.
pub async fn handle(state: &AppState, request: Request<Incoming>) -> Response<Body> {
    request_id::scope(request, |request| route(state, request)).await
}

async fn route(state: &AppState, request: Request<Incoming>) -> Response<Body> {
    match request.uri().path() {
        CUSTOM_SIGNING_PATH => keys::handle(state, request)
            .await
            .unwrap_or_else(|err| err.response()),
        "/healthz" => body::json(StatusCode::OK, &json!({"status": "ok"})),
        "/readyz" => readiness(state),
        "/admin/status" => body::json(StatusCode::OK, &status(state)),
        router::JWKS_PATH => router::jwks(state, &request),
        "/metrics" => metrics(state).await,
        path if path.starts_with("/api/") => error::AdminError::NoEndpoint.response(),
        _ => body::json(StatusCode::NOT_FOUND, &json!({"error": "not_found"})),
    }
}

/// `/metrics`: the registry in the Prometheus text format, with the state gauges read now.
async fn metrics(state: &AppState) -> Response<Body> {
    // Apply pending inserts and evictions so the cache size is current.
    state.cache.run_pending_tasks().await;
    let scrape = Scrape {
        idp_age: state.idp.age(),
        idp_loaded: state.idp.current().is_some(),
        cache_entries: state.cache.entry_count(),
        cache_weighted_bytes: state.cache.weighted_size(),
    };
    let mut response = Response::new(body::full(state.metrics.render(&scrape)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn readiness(state: &AppState) -> Response<Body> {
    let mut reasons = Vec::new();
    if state.idp.current().is_none() {
        reasons.push(
            state
                .idp
                .last_error()
                .unwrap_or_else(|| "IdP keys not loaded yet".into()),
        );
    }
    if let Err(reason) = state.signing_status(&state.config()) {
        reasons.push(reason);
    }
    if reasons.is_empty() {
        body::json(StatusCode::OK, &json!({"status": "ready"}))
    } else {
        body::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "not ready", "reason": reasons.join("; ")}),
        )
    }
}

fn status(state: &AppState) -> serde_json::Value {
    let config = state.config();
    let idp = state.idp.current();
    let custom = state.custom_keys();
    json!({
        "config_generation": config.generation,
        "reload": state.reload_status(),
        "signing": {
            "active_kid": config.signing.active.kid(),
            "alg": config.signing.active.alg().name(),
            "published": state.signing_status(&config).err().map_or(json!(true), |reason| json!(reason)),
        },
        "custom_keys": {"version": custom.version, "kids": custom.keys.iter().map(|k| &k.kid).collect::<Vec<_>>()},
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
