//! The proxied request path: bearer token -> verify -> map claims -> sign (cached) -> forward.
//! [`handle`] never fails: it calls [`try_handle`] and turns any error into a response
//! through the one table in [`error`].

pub mod claims;
pub mod error;
pub mod forward;
pub mod verify;

use std::net::SocketAddr;
use std::sync::Arc;

use aws_lc_rs::digest;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use hyper::body::Incoming;

use crate::app::AppState;
use crate::cache::{CacheKey, Resigned};
use crate::config::{Config, Route, RouteMode};
use crate::http::body::Body;
use crate::idp::{IdpKeys, Lookup};
use crate::jose::b64;
use crate::metrics::{self, Metrics};
pub use error::ProxyError;
use verify::VerifyError;

/// Handles one request on the public listener that is not the JWKS endpoint: `route` is
/// the one the router matched in `config` (the snapshot the request uses to the end).
pub async fn handle(
    state: &AppState,
    config: &Config,
    route: Option<&Route>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let route_label = route.map_or(metrics::NO_ROUTE, |route| route.prefix.as_str());
    let response = match try_handle(state, config, route, request, peer).await {
        Ok(response) => response,
        Err(err) => {
            if !err.is_upstream() {
                state.metrics.record_failure(err.reason());
            }
            // The request's span (see `crate::http::request_id`) names its id, method and path.
            tracing::info!(reason = err.reason(), error = %err.logged(), "request rejected");
            error::response(&err)
        }
    };
    state.metrics.record_request(route_label, response.status());
    response
}

/// The fallible body of [`handle`]: `route` is the one `config` has for the request's path.
pub async fn try_handle(
    state: &AppState,
    config: &Config,
    route: Option<&Route>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, ProxyError> {
    if !is_normalized(request.uri().path()) {
        return Err(ProxyError::BadRequest(
            "path has dot segments or encoded separators",
        ));
    }
    if crate::http::headers::has_unsupported_transfer_coding(request.headers()) {
        return Err(ProxyError::BadRequest(
            "Transfer-Encoding other than chunked is not supported",
        ));
    }
    let route = route.ok_or(ProxyError::NoRoute)?;
    if route.mode == RouteMode::Passthrough {
        return forward::forward(state, route, request, None, peer).await;
    }
    let resigned = {
        let token = bearer_token(request.headers())?;
        resign(state, config, route, token).await?
    };
    forward::forward(state, route, request, Some(&resigned.header_value), peer).await
}

/// False for paths an upstream could resolve outside the matched route prefix: `.` or `..`
/// segments (also percent-encoded) and encoded `/` or `\\` inside a segment.
pub fn is_normalized(path: &str) -> bool {
    if !path.contains(['.', '%', '\\']) {
        return true; // the common case, checked without allocating
    }
    path.split('/').all(|segment| {
        let lower = segment.to_ascii_lowercase();
        let decoded = lower.replace("%2e", ".");
        decoded != "."
            && decoded != ".."
            && !lower.contains("%2f")
            && !lower.contains("%5c")
            && !segment.contains('\\')
    })
}

/// Extracts the bearer token: exactly one `Authorization` header, scheme `Bearer` in any
/// case (RFC 6750 §2.1, RFC 9110 §11.1), one token of `b64token` characters.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ProxyError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(ProxyError::MissingToken)?;
    if values.next().is_some() {
        return Err(ProxyError::BadRequest("more than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| ProxyError::BadRequest("Authorization header is not ASCII"))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ProxyError::MissingToken);
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(ProxyError::BadRequest("empty bearer token"));
    }
    if token.len() > verify::MAX_TOKEN_BYTES {
        return Err(ProxyError::InvalidToken(VerifyError::TooLarge));
    }
    let body = token.trim_end_matches('=');
    let valid = body
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'));
    if !valid {
        return Err(ProxyError::BadRequest(
            "bearer token has characters outside RFC 6750 b64token",
        ));
    }
    Ok(token)
}

/// A short, irreversible name for a token in logs: the first 12 characters of its SHA-256.
pub fn token_fingerprint(token: &str) -> String {
    let mut text = b64::encode(digest::digest(&digest::SHA256, token.as_bytes()));
    text.truncate(12);
    text
}

/// Returns the re-signed header value for `token`, from the cache or by verifying, mapping
/// and signing it (once, however many requests carry the same new token).
pub async fn resign(
    state: &AppState,
    config: &Config,
    route: &Route,
    token: &str,
) -> Result<Arc<Resigned>, ProxyError> {
    let idp_keys = state
        .idp
        .usable_keys()
        .await
        .ok_or(ProxyError::IdpUnavailable)?;
    if route.mode == RouteMode::Resign
        && let Err(reason) = state.signing_status(config)
    {
        tracing::debug!(%reason, "signing key not published");
        return Err(ProxyError::SigningUnavailable);
    }
    let key = CacheKey::new(token, route.id, config.generation, idp_keys.generation);
    let entry = state
        .cache
        .entry(key)
        .or_try_insert_with(resign_uncached(state, config, route, token, idp_keys))
        .await
        .map_err(|err| (*err).clone())?;
    if entry.is_fresh() {
        Metrics::inc(&state.metrics.cache_misses);
    } else {
        Metrics::inc(&state.metrics.cache_hits);
    }
    Ok(entry.into_value())
}

/// Verifies an IdP access token for `audience`: structure and header, key lookup (with a
/// refetch on an unknown kid), signature and claims. Shared by the proxy and the admin API.
pub async fn verify_token(
    state: &AppState,
    token: &str,
    audience: &str,
    idp_keys: Arc<IdpKeys>,
) -> Result<verify::Verified, ProxyError> {
    let settings = state.idp.settings();
    let parsed = verify::parse(token, &settings)?;
    let kid = parsed.kid.as_deref();
    let keys = match idp_keys.find(kid) {
        Lookup::Found(_) => idp_keys,
        Lookup::NoKid => return Err(VerifyError::NoKid.into()),
        Lookup::UnknownKid => state
            .idp
            .refresh_for_unknown_kid(kid.unwrap_or_default())
            .await
            .ok_or(ProxyError::IdpUnavailable)?,
    };
    let Lookup::Found(key) = keys.find(kid) else {
        return Err(VerifyError::UnknownKid.into());
    };
    Ok(verify::verify(
        &parsed,
        key,
        &settings,
        audience,
        crate::jose::time::now_unix(),
    )?)
}

async fn resign_uncached(
    state: &AppState,
    config: &Config,
    route: &Route,
    token: &str,
    idp_keys: Arc<IdpKeys>,
) -> Result<Arc<Resigned>, ProxyError> {
    let settings = state.idp.settings();
    let verified = verify_token(state, token, &route.audience, idp_keys).await?;
    let now = crate::jose::time::now_unix();
    let leeway = settings.leeway.as_secs() as i64;
    if route.mode == RouteMode::Verify {
        // Verify-only: the IdP token itself is forwarded, valid until its own exp.
        let value = if route.header == header::AUTHORIZATION {
            format!("Bearer {token}")
        } else {
            token.to_string()
        };
        let header_value = HeaderValue::from_str(&value).map_err(|_| ProxyError::SigningFailed)?;
        let ttl = (verified.exp - now - leeway).max(0) as u64;
        return Ok(Arc::new(Resigned {
            header_value,
            ttl: std::time::Duration::from_secs(ttl),
        }));
    }
    let signing = &config.signing;
    let claims = claims::map_claims(
        &verified.claims,
        verified.exp,
        &route.claims,
        &signing.issuer,
        signing.max_ttl.as_secs() as i64,
        now,
    );
    let exp = claims
        .get("exp")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(now);
    let payload = serde_json::to_vec(&claims).map_err(|_| ProxyError::SigningFailed)?;
    let signer = signing.active.clone();
    let started = std::time::Instant::now();
    let signed = if signer.is_slow() {
        // RSA: on the signing threads, below the workers' priority (see `signing_pool`); in
        // a miss storm the signatures queue there instead of delaying the hits.
        state
            .signing_pool
            .run(move || signer.sign_compact(&payload))
            .await
            .ok_or(ProxyError::SigningFailed)?
    } else {
        signer.sign_compact(&payload)
    }
    .map_err(|_| ProxyError::SigningFailed)?;
    state.metrics.record_signature(
        signing.active.kid(),
        signing.active.alg(),
        started.elapsed(),
    );
    tracing::debug!(token = %token_fingerprint(token), route = %route.prefix, kid = signing.active.kid(), "token re-signed");
    let value = if route.header == header::AUTHORIZATION {
        format!("Bearer {signed}")
    } else {
        signed
    };
    let header_value = HeaderValue::from_str(&value).map_err(|_| ProxyError::SigningFailed)?;
    let ttl = (exp - now - settings.leeway.as_secs() as i64).max(0) as u64;
    Ok(Arc::new(Resigned {
        header_value,
        ttl: std::time::Duration::from_secs(ttl),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn bearer_extraction() {
        assert_eq!(
            bearer_token(&headers(&["Bearer abc.def.ghi"])),
            Ok("abc.def.ghi")
        );
        assert_eq!(bearer_token(&headers(&["bearer abc"])), Ok("abc"));
        assert_eq!(bearer_token(&headers(&["BEARER  abc"])), Ok("abc"));
        assert_eq!(bearer_token(&headers(&[])), Err(ProxyError::MissingToken));
        assert_eq!(
            bearer_token(&headers(&["Basic dXNlcjpwYXNz"])),
            Err(ProxyError::MissingToken)
        );
        assert!(matches!(
            bearer_token(&headers(&["Bearer a", "Bearer b"])),
            Err(ProxyError::BadRequest(_))
        ));
        assert!(matches!(
            bearer_token(&headers(&["Bearer "])),
            Err(ProxyError::BadRequest(_))
        ));
        assert!(matches!(
            bearer_token(&headers(&["Bearer a b"])),
            Err(ProxyError::BadRequest(_))
        ));
        assert_eq!(token_fingerprint("abc").len(), 12);
    }

    #[test]
    fn dot_segments_and_encoded_separators_are_not_normalized() {
        assert!(is_normalized("/orders/42"));
        assert!(is_normalized("/orders/v1.2/x..y"));
        for bad in [
            "/orders/../admin",
            "/orders/./x",
            "/orders/%2e%2E/admin",
            "/orders/.%2e",
            "/orders%2f..",
            "/a/%5C..",
            "/a\\b",
        ] {
            assert!(!is_normalized(bad), "{bad}");
        }
    }
}
