//! The proxied request path: bearer token -> [`pipeline`] (verify -> authorize -> map claims
//! -> sign, cached) -> forward. [`try_handle`] does it; [`respond`] turns its result into the
//! response (any error through the one table in [`error`]) and never fails.

pub mod authorize;
pub mod claims;
pub mod error;
pub mod forward;
mod handle;
pub mod pipeline;
pub mod verify;

use std::sync::Arc;

use aws_lc_rs::digest;
use http::{HeaderMap, Response, header};

use crate::app::AppState;
use crate::config::Route;
use crate::config::runtime::accepts;
use crate::http::body::Body;
use crate::idp::{IdpClient, Lookup, introspect};
use crate::jose::b64;
use crate::metrics;
pub use error::ProxyError;
pub use handle::try_handle;
use verify::{Mismatch, VerifyError};

/// The response to one proxied request, from [`try_handle`]'s result for it on `route`:
/// an error becomes its response through the one table in [`error`]; either way the request
/// is counted. Never fails.
pub fn respond(
    state: &AppState,
    route: Option<&Route>,
    result: Result<Response<Body>, ProxyError>,
) -> Response<Body> {
    let route_label = route.map_or(metrics::NO_ROUTE, |route| route.prefix.as_str());
    let response = match result {
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
    check_b64token(bearer_unchecked(headers)?)
}

/// [`bearer_token`] without the per-character checks, for the proxy path: the token's bytes
/// as sent. A token found in the re-sign cache was checked when its entry was made (the
/// entry is keyed by the token's SHA-256, so the bytes are the same), and a miss runs
/// [`check_b64token`] before anything else ([`pipeline::resign`]). The header, scheme,
/// emptiness and size are checked here; no pass over the token's bytes (a UTF-8 check of
/// the ~1.3 KB header was ~1.5% of a hit's instructions, #16).
pub fn bearer_unchecked(headers: &HeaderMap) -> Result<&[u8], ProxyError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(ProxyError::MissingToken)?;
    if values.next().is_some() {
        return Err(ProxyError::BadRequest("more than one Authorization header"));
    }
    let value = value.as_bytes();
    let (scheme, rest) = match value.iter().position(|b| *b == b' ') {
        Some(space) => (&value[..space], &value[space + 1..]),
        None => (value, &b""[..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(ProxyError::MissingToken);
    }
    let start = rest.iter().position(|b| *b != b' ').unwrap_or(rest.len());
    let token = &rest[start..];
    if token.is_empty() {
        return Err(ProxyError::BadRequest("empty bearer token"));
    }
    if token.len() > verify::MAX_TOKEN_BYTES {
        return Err(ProxyError::InvalidToken(VerifyError::TooLarge));
    }
    Ok(token)
}

/// RFC 6750 §2.1 `b64token`: `A-Z a-z 0-9 - . _ ~ + /` then any `=` padding. The checked
/// token as text (every such byte is ASCII).
pub fn check_b64token(token: &[u8]) -> Result<&str, ProxyError> {
    let refused =
        || ProxyError::BadRequest("bearer token has characters outside RFC 6750 b64token");
    let padding = token.iter().rev().take_while(|b| **b == b'=').count();
    let valid = token[..token.len() - padding]
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'));
    if !valid {
        return Err(refused());
    }
    std::str::from_utf8(token).map_err(|_| refused())
}

/// A short, irreversible name for a token in logs: the first 12 characters of its SHA-256.
pub fn token_fingerprint(token: &str) -> String {
    let mut text = b64::encode(digest::digest(&digest::SHA256, token.as_bytes()));
    text.truncate(12);
    text
}

/// Verifies an IdP access token for `audience`: structure and header, the IdP its `iss`
/// names (exact match; an unknown issuer, or one `issuers` does not accept, is refused
/// before any key is looked up or fetched), that IdP's key (with a refetch on an unknown
/// kid), signature and claims. Shared by the proxy and the admin API. Returns the verified
/// claims and the client of the IdP whose key verified them.
pub async fn verify_token(
    state: &AppState,
    token: &str,
    audience: &str,
    issuers: Option<&[String]>,
) -> Result<(verify::Verified, Arc<IdpClient>), ProxyError> {
    if !verify::is_jws(token) {
        return introspect_token(state, token, audience, issuers).await;
    }
    let parsed = verify::parse(token)?;
    let iss = parsed.issuer()?;
    let client = state.idps.for_issuer(iss).ok_or_else(|| {
        let known: Vec<String> = state
            .idps
            .all()
            .iter()
            .map(|c| c.settings().issuer.clone())
            .collect();
        VerifyError::Issuer(Mismatch::new("iss", &known.join(" "), Some(iss)))
    })?;
    if !accepts(issuers, iss) {
        let accepted = issuers.unwrap_or_default().join(" ");
        return Err(VerifyError::Issuer(Mismatch::new("iss", &accepted, Some(iss))).into());
    }
    let settings = client.settings();
    // The IdP's allow-list and typ before any key lookup, so a refused header never fetches.
    verify::check_header(&parsed, &settings)?;
    let idp_keys = client
        .usable_keys()
        .await
        .ok_or(ProxyError::IdpUnavailable)?;
    let kid = parsed.kid.clone();
    let keys = match idp_keys.find(kid.as_deref()) {
        Lookup::Found(_) => idp_keys,
        Lookup::NoKid => return Err(VerifyError::NoKid.into()),
        Lookup::UnknownKid => client
            .refresh_for_unknown_kid(kid.as_deref().unwrap_or_default())
            .await
            .ok_or(ProxyError::IdpUnavailable)?,
    };
    let Lookup::Found(key) = keys.find(kid.as_deref()) else {
        return Err(VerifyError::UnknownKid.into());
    };
    let verified = verify::verify(
        parsed,
        key,
        &settings,
        audience,
        crate::jose::time::now_unix(),
    )?;
    Ok((verified, client))
}

/// An opaque token (not a JWS): introspected (RFC 7662) at the one IdP that `issuers`
/// accepts and that has an introspection endpoint (validation allows no more than one, so a
/// token is never sent to an IdP that did not issue it); without one, refused as not a JWS.
async fn introspect_token(
    state: &AppState,
    token: &str,
    audience: &str,
    issuers: Option<&[String]>,
) -> Result<(verify::Verified, Arc<IdpClient>), ProxyError> {
    let clients = state.idps.all();
    let mut found = clients.iter().filter_map(|client| {
        let settings = client.settings();
        let introspector = client.introspector()?;
        accepts(issuers, &settings.issuer).then(|| (client.clone(), settings, introspector))
    });
    let Some((client, settings, introspector)) = found.next() else {
        return Err(VerifyError::Structure.into());
    };
    if found.next().is_some() {
        // Only while a reload swaps the IdPs under a request of the older config: never
        // guess which IdP issued the token.
        return Err(ProxyError::IntrospectionUnavailable);
    }
    let answer = introspector
        .introspect(token)
        .await
        .map_err(|err| match err {
            introspect::IntrospectError::Inactive => {
                ProxyError::InvalidToken(VerifyError::Inactive)
            }
            introspect::IntrospectError::Unavailable(_) => ProxyError::IntrospectionUnavailable,
        })?;
    let now = crate::jose::time::now_unix();
    let verified =
        verify::check_introspected(answer.claims, &settings, audience, now, answer.valid_for)?;
    Ok((verified, client))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

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
        // Unchecked: the same answers except for the characters, checked on a miss.
        assert_eq!(bearer_unchecked(&headers(&["Bearer a b"])), Ok(&b"a b"[..]));
        for bad in [&b"a b"[..], b"a=b", b"caf\xc3\xa9", b"\xff", b"a\x7f"] {
            assert!(
                matches!(check_b64token(bad), Err(ProxyError::BadRequest(_))),
                "{bad:?}"
            );
        }
        assert_eq!(check_b64token(b"abc-._~+/=="), Ok("abc-._~+/=="));
        // A header that is not UTF-8: its scheme is not `Bearer`, or its token fails the check.
        let mut latin1 = HeaderMap::new();
        latin1.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer caf\xe9").unwrap(),
        );
        assert!(matches!(
            bearer_token(&latin1),
            Err(ProxyError::BadRequest(_))
        ));
        latin1.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(b"B\xe9arer x").unwrap(),
        );
        assert_eq!(bearer_token(&latin1), Err(ProxyError::MissingToken));
        assert_eq!(
            bearer_unchecked(&headers(&["Basic x"])),
            Err(ProxyError::MissingToken)
        );
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
