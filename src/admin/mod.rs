//! The admin listener (loopback by default).
//!
//! Endpoints:
//! - `GET|PUT|DELETE /api/v2/keys/custom-signing` — the Auth0-compatible management API for
//!   the customer's public signing keys (see [`keys`])
//! - `GET /api/v2/keys/signing`, `GET /api/v2/keys/signing/{kid}`,
//!   `POST /api/v2/keys/signing/rotate`, `PUT /api/v2/keys/signing/{kid}/revoke` — Auth0's
//!   signing keys API over the managed keys (see [`signing_keys`])
//! - `GET|HEAD /healthz` — 200 while the process runs
//! - `GET|HEAD /readyz` — 200 when the IdP keys are loaded and the active signing key is
//!   published; 503 with the reasons otherwise
//! - `GET /admin/status` — JSON: version, uptime, listeners, routes, readiness and its
//!   reasons, config generation and last reload, each signing key and whether it is
//!   published, custom key set version, IdP key age and kids, counters (see [`status`])
//! - `GET|HEAD /.well-known/jwks.json` — the same JWKS as the public listener
//! - `GET /metrics` — Prometheus text format (see [`crate::metrics`] and the README)
//! - `GET /api/v2/openapi.json` — the OpenAPI 3.1 document of these endpoints, without a
//!   token: it describes the API and holds no state (see [`openapi`])
//!
//! [`ENDPOINTS`] lists each path and its methods: another method gets 405 with `Allow`, and
//! the OpenAPI document lists exactly these (its tests check both ways).
//! Every response carries the request's `X-Request-Id` (see [`crate::http::request_id`]).

pub mod auth;
pub mod error;
pub mod keys;
pub mod openapi;
pub mod signing_keys;
pub mod status;
mod store_status;

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::json;

use crate::app::AppState;
use crate::http::body::{self, Body};
use crate::http::request_id;
use crate::metrics;
use crate::router;

pub const CUSTOM_SIGNING_PATH: &str = "/api/v2/keys/custom-signing";

/// Every path the admin listener answers and its methods (as `Allow` lists them).
pub const ENDPOINTS: &[(&str, &str)] = &[
    (CUSTOM_SIGNING_PATH, "GET, PUT, DELETE"),
    (openapi::PATH, "GET"),
    ("/healthz", "GET, HEAD"),
    ("/readyz", "GET, HEAD"),
    ("/admin/status", "GET"),
    (router::JWKS_PATH, "GET, HEAD"),
    ("/metrics", "GET"),
];

/// Handles one request on the admin listener, in its request id's span.
pub async fn handle(state: &AppState, request: Request<Incoming>) -> Response<Body> {
    request_id::scope(request, |request| route(state, request)).await
}

async fn route(state: &AppState, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path();
    if let Some((_, allow)) = ENDPOINTS.iter().find(|(known, _)| *known == path)
        && !allow.split(", ").any(|m| m == request.method().as_str())
    {
        return method_not_allowed(allow);
    }
    if let Some(target) = signing_keys::Target::parse(path) {
        let (_, allow) = target.endpoint();
        if !allow.split(", ").any(|m| m == request.method().as_str()) {
            return method_not_allowed(allow);
        }
        return signing_keys::handle(state, target, request)
            .await
            .unwrap_or_else(|err| err.response());
    }
    match path {
        CUSTOM_SIGNING_PATH => keys::handle(state, request)
            .await
            .unwrap_or_else(|err| err.response()),
        "/healthz" => body::json(StatusCode::OK, &json!({"status": "ok"})),
        "/readyz" => status::readiness(state),
        "/admin/status" => body::json(StatusCode::OK, &status::status(state)),
        router::JWKS_PATH => router::jwks(state, &request),
        "/metrics" => metrics(state).await,
        openapi::PATH => openapi::document(),
        path if path.starts_with("/api/") => error::AdminError::NoEndpoint.response(),
        _ => body::json(StatusCode::NOT_FOUND, &json!({"error": "not_found"})),
    }
}

/// 405 for a method `allow` does not list, in Auth0's error body shape.
fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = body::json(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({
            "statusCode": 405,
            "error": "Method Not Allowed",
            "message": format!("Method not allowed; use {allow}."),
            "errorCode": "method_not_allowed",
        }),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// `/metrics`: the registry in the Prometheus text format, with the state gauges read now.
async fn metrics(state: &AppState) -> Response<Body> {
    let scrape = status::scrape(state).await;
    let mut response = Response::new(body::full(state.metrics.render(&scrape)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
