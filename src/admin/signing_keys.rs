//! `/api/v2/keys/signing`, wire-compatible with Auth0's Management API v2 signing keys:
//! - `GET /api/v2/keys/signing` (`read:signing_keys`): 200, every managed key (revoked too)
//! - `GET /api/v2/keys/signing/{kid}` (`read:signing_keys`): 200 one key, 404 unknown
//! - `POST /api/v2/keys/signing/rotate` (`create:` and `update:signing_keys`): 201
//!   `{cert, kid}` of the new next key
//! - `PUT /api/v2/keys/signing/{kid}/revoke` (`update:signing_keys`): 200 `{cert, kid}`
//!
//! Extensions: `ETag` (`"sk-<version>"`) on GET and change responses; `If-Match` on rotate
//! and revoke (`*` or the current ETag; a mismatch is 412 before anything is done).
//! May use: `app` (its rotation operations), `admin::{auth, error}`.

pub mod wire;

use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::Value;

use super::auth;
use super::error::AdminError;
use crate::app::AppState;
use crate::app::rotation::ManagedKeys;
use crate::http::body::{self, Body};

pub const PATH: &str = "/api/v2/keys/signing";
/// The OpenAPI-style templates of the parameterised paths.
pub const KID_PATH: &str = "/api/v2/keys/signing/{kid}";
pub const ROTATE_PATH: &str = "/api/v2/keys/signing/rotate";
pub const REVOKE_PATH: &str = "/api/v2/keys/signing/{kid}/revoke";

/// Every endpoint under [`PATH`] (templates) and its methods, as [`Target::endpoint`] gives them.
pub const ENDPOINTS: &[(&str, &str)] = &[
    (PATH, "GET"),
    (KID_PATH, "GET"),
    (ROTATE_PATH, "POST"),
    (REVOKE_PATH, "PUT"),
];

const READ: &str = "read:signing_keys";
const CREATE: &str = "create:signing_keys";
const UPDATE: &str = "update:signing_keys";

/// Which endpoint a path under [`PATH`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    List,
    Rotate,
    One(String),
    Revoke(String),
}

impl Target {
    /// `None`: not a signing keys path (or an unknown sub-path: 404).
    pub fn parse(path: &str) -> Option<Target> {
        if path == PATH {
            return Some(Target::List);
        }
        let rest = path.strip_prefix(PATH)?.strip_prefix('/')?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            ["rotate"] => Some(Target::Rotate),
            [kid] if valid_kid(kid) => Some(Target::One((*kid).to_string())),
            [kid, "revoke"] if valid_kid(kid) => Some(Target::Revoke((*kid).to_string())),
            _ => None,
        }
    }

    /// The methods this endpoint allows (as `Allow` lists them) and its template.
    pub fn endpoint(&self) -> (&'static str, &'static str) {
        match self {
            Target::List => (PATH, "GET"),
            Target::Rotate => (ROTATE_PATH, "POST"),
            Target::One(_) => (KID_PATH, "GET"),
            Target::Revoke(_) => (REVOKE_PATH, "PUT"),
        }
    }
}

fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Handles one request (the method was checked against [`Target::endpoint`] by the router).
pub async fn handle(
    state: &AppState,
    target: Target,
    request: Request<Incoming>,
) -> Result<Response<Body>, AdminError> {
    let headers = request.headers();
    match (target, request.method().clone()) {
        (Target::List, Method::GET) => {
            auth::authenticate(state, headers).await?.require(&[READ])?;
            let managed = state.managed();
            let keys: Vec<Value> = managed.state.keys.iter().map(wire::signing_key).collect();
            Ok(super::keys::with_etag(
                body::json(StatusCode::OK, &Value::Array(keys)),
                &managed.etag,
            ))
        }
        (Target::One(kid), Method::GET) => {
            auth::authenticate(state, headers).await?.require(&[READ])?;
            let managed = state.managed();
            let key = managed
                .state
                .get(&kid)
                .ok_or(AdminError::UnknownSigningKey(kid))?;
            Ok(super::keys::with_etag(
                body::json(StatusCode::OK, &wire::signing_key(key)),
                &managed.etag,
            ))
        }
        (Target::Rotate, Method::POST) => {
            let caller = auth::authenticate(state, headers).await?;
            caller.require(&[CREATE, UPDATE])?;
            let expected = if_match(headers, &state.managed())?;
            let key = state.rotate_signing(&caller.name, expected).await?;
            let response = body::json(StatusCode::CREATED, &wire::cert_and_kid(&key));
            Ok(super::keys::with_etag(response, &state.managed().etag))
        }
        (Target::Revoke(kid), Method::PUT) => {
            let caller = auth::authenticate(state, headers).await?;
            caller.require(&[UPDATE])?;
            let expected = if_match(headers, &state.managed())?;
            let key = state.revoke_signing(&kid, &caller.name, expected).await?;
            let response = body::json(StatusCode::OK, &wire::cert_and_kid(&key));
            Ok(super::keys::with_etag(response, &state.managed().etag))
        }
        _ => Err(AdminError::NoEndpoint),
    }
}

/// `If-Match`: `None` when absent; `Some(version)` when `*` or the current ETag; else 412.
fn if_match(headers: &HeaderMap, current: &ManagedKeys) -> Result<Option<u64>, AdminError> {
    Ok(super::keys::if_match(headers, &current.etag)?.then_some(current.state.version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_is_listed_in_the_endpoints() {
        for target in [
            Target::List,
            Target::Rotate,
            Target::One("k".into()),
            Target::Revoke("k".into()),
        ] {
            assert!(ENDPOINTS.contains(&target.endpoint()), "{target:?}");
        }
    }

    #[test]
    fn paths_parse_to_their_endpoints() {
        assert_eq!(Target::parse(PATH), Some(Target::List));
        assert_eq!(Target::parse(ROTATE_PATH), Some(Target::Rotate));
        assert_eq!(
            Target::parse("/api/v2/keys/signing/abc-_1"),
            Some(Target::One("abc-_1".into()))
        );
        assert_eq!(
            Target::parse("/api/v2/keys/signing/abc/revoke"),
            Some(Target::Revoke("abc".into()))
        );
        for unknown in [
            "/api/v2/keys/signing/",
            "/api/v2/keys/signingx",
            "/api/v2/keys/signing/a/b",
            "/api/v2/keys/signing/a/revoke/x",
            "/api/v2/keys/signing//revoke",
            "/api/v2/keys/signing/a%20b",
        ] {
            assert_eq!(Target::parse(unknown), None, "{unknown}");
        }
        assert_eq!(Target::Rotate.endpoint(), (ROTATE_PATH, "POST"));
        assert_eq!(Target::Revoke("a".into()).endpoint(), (REVOKE_PATH, "PUT"));
    }
}
