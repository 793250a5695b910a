//! Flat request routing for the two listeners.
//!
//! Public listener:
//! - `GET|HEAD /.well-known/jwks.json` — the aggregated JWKS (custom keys, then IdP keys)
//! - anything else — matched against `[[routes]]` by prefix and proxied (404 without a route)
//!
//! Admin listener: see [`crate::admin`].

use std::net::SocketAddr;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::app::AppState;
use crate::http::body::{self, Body};

pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Routes one request on the public listener, in its request id's span (see
/// [`crate::http::request_id`]): the id is forwarded upstream and echoed on every response.
pub async fn public(
    state: &AppState,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    crate::http::request_id::scope(request, |request| async move {
        if request.uri().path() == JWKS_PATH {
            let response = jwks(state, &request);
            state
                .metrics
                .record_request(crate::metrics::JWKS_ROUTE, response.status());
            return response;
        }
        crate::proxy::handle(state, request, peer).await
    })
    .await
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
