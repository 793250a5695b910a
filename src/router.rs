//! Flat request routing for the two listeners.
//!
//! Public listener:
//! - `GET|HEAD /.well-known/jwks.json` — the aggregated JWKS (custom keys, then IdP keys);
//!   503 while no custom key set is held (the key store unreachable at start, no local copy)
//! - `GET|HEAD /.well-known/openid-configuration`, `/.well-known/oauth-authorization-server`
//!   — the issuer's discovery metadata ([`crate::discovery`]), while `[server] public_url`
//!   is set; otherwise these paths are routed like any other
//! - `POST /oauth/token` — RFC 8693 token exchange ([`crate::token_exchange`]), while
//!   `[token_exchange]` is configured; otherwise routed like any other path
//! - anything else — matched against `[[routes]]` by prefix ([`route_for`], the one route
//!   lookup) and handed with its route to [`crate::proxy::try_handle`], whose result
//!   [`crate::proxy::respond`] answers (404 without a route)
//!
//! Admin listener: see [`crate::admin`].

use std::future::Future;
use std::sync::Arc;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::app::AppState;
use crate::cache::LastToken;
use crate::config::{Config, Route};
use crate::http::body::{self, Body};
use crate::http::conn_info::ConnInfo;

pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Routes one request on the public listener, in its request id's span (see
/// [`crate::http::request_id`]): the id is forwarded upstream and echoed on every response.
/// A plain function returning [`dispatch`]'s future in the id's: each `async` layer around a
/// request keeps its own copy of it, and moves all of them (#16).
pub fn public(
    state: Arc<AppState>,
    request: Request<Incoming>,
    conn: Arc<ConnInfo<LastToken>>,
) -> impl Future<Output = Response<Body>> + Send + 'static {
    crate::http::request_id::scope(request, move |request| dispatch(state, request, conn))
}

/// [`public`] once the request has its id.
async fn dispatch(
    state: Arc<AppState>,
    request: Request<Incoming>,
    conn: Arc<ConnInfo<LastToken>>,
) -> Response<Body> {
    let state = &*state;
    if request.uri().path() == JWKS_PATH {
        let response = jwks(state, &request);
        state
            .metrics
            .record_request(crate::metrics::JWKS_ROUTE, response.status());
        return response;
    }
    let config = state.config();
    if let Some(document) = crate::discovery::Document::for_path(request.uri().path()) {
        let rendered = state.discovery.current(&config, JWKS_PATH);
        if let Some(response) = crate::discovery::response(&config, &request, document, &rendered) {
            state
                .metrics
                .record_request(crate::discovery::METRICS_ROUTE, response.status());
            return response;
        }
    }
    if config.token_exchange.is_some() && request.uri().path() == crate::token_exchange::TOKEN_PATH
    {
        // Boxed: a rare path with a large future (see `crate::service`).
        return Box::pin(crate::token_exchange::handle(state, &config, request)).await;
    }
    let route = route_for(&config, request.uri().path());
    let result = crate::proxy::try_handle(state, &config, route, request, &conn).await;
    crate::proxy::respond(state, route, result)
}

/// The route for `path`: the longest matching prefix ([`Config::route_for`]).
pub fn route_for<'a>(config: &'a Config, path: &str) -> Option<&'a Route> {
    config.route_for(path)
}

/// The JWKS document from pre-rendered bytes, with ETag / `If-None-Match` support.
pub fn jwks<B>(state: &AppState, request: &Request<B>) -> Response<Body> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = Response::new(body::empty());
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if !state.has_set() {
        return crate::proxy::error::response(&crate::proxy::ProxyError::NotReady);
    }
    let rendered = state.jwks();
    let not_modified = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|tag| tag.trim() == rendered.etag || tag.trim() == "*")
        });
    let mut response = if not_modified {
        let mut response = Response::new(body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else if request.method() == Method::HEAD {
        Response::new(body::empty())
    } else {
        Response::new(body::full(rendered.body.clone()))
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let max_age = state.config().jwks_max_age.as_secs();
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        headers.insert(header::CACHE_CONTROL, value);
    }

    if let Ok(etag) = HeaderValue::from_str(&rendered.etag) {
        headers.insert(header::ETAG, etag);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        use crate::config::runtime::prefix_matches;
        assert!(prefix_matches("/api", "/api"));
        assert!(prefix_matches("/api", "/api/x"));
        assert!(prefix_matches("/api/", "/api/x"));
        assert!(!prefix_matches("/api", "/apix"));
        assert!(prefix_matches("/", "/anything"));
    }

    #[test]
    fn the_example_config_routes_by_prefix_in_file_order() {
        let (_tmp, config) = crate::config::example_tests::load_example();
        assert_eq!(
            route_for(&config, "/orders/42").map(|r| r.id),
            Some(0),
            "route ids follow file order"
        );
        assert_eq!(route_for(&config, "/legacy").map(|r| r.id), Some(1));
        assert!(route_for(&config, "/ordersx").is_none());
    }
}
