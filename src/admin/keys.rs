//! `/api/v2/keys/custom-signing`, wire-compatible with Auth0's Management API v2:
//! - `GET` (scope `read:custom_signing_keys`): 200 `{"keys": [...]}`, 404 when none exist
//! - `PUT` (scopes `create:` and `update:custom_signing_keys`): body `{"keys": [JWK, ...]}`
//!   replaces the whole set; 200 `{"keys": [...]}` as stored
//! - `DELETE` (scope `delete:custom_signing_keys`): 204; the set becomes empty
//!
//! Extensions beyond Auth0: `ETag` on GET and PUT responses, and `If-Match` on PUT and DELETE
//! (412 on mismatch) so two administrators cannot silently overwrite each other. A request
//! with `If-Match` that loses a race in the store also gets 412; one without it is a
//! replace-all, applied over whatever version won (last writer wins). A store that cannot be
//! reached (PostgreSQL down) answers 503 with `Retry-After`; nothing is written. So does every
//! method while the process holds no valid set yet (started with the database down and no
//! local copy, until the synced set passes validation): there is nothing to read and no
//! version to base a change on.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};

use super::auth::{self, Caller};
use super::error::AdminError;
use crate::app::AppState;
use crate::http::body::{self, Body};
use crate::keys::CustomKeySet;
use crate::keys::import::{self, MAX_BODY_BYTES};
use crate::keys::store::StoreError;
use crate::metrics::AdminAction;

const READ: &str = "read:custom_signing_keys";
const CREATE: &str = "create:custom_signing_keys";
const UPDATE: &str = "update:custom_signing_keys";
const DELETE: &str = "delete:custom_signing_keys";

/// Handles one request on the custom signing keys endpoint.
pub async fn handle(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<Response<Body>, AdminError> {
    match *request.method() {
        Method::GET => get(state, request.headers()).await,
        Method::PUT => put(state, request).await,
        Method::DELETE => delete(state, request.headers()).await,
        _ => Err(AdminError::Method),
    }
}

async fn get(state: &AppState, headers: &HeaderMap) -> Result<Response<Body>, AdminError> {
    auth::authenticate(state, headers).await?.require(&[READ])?;
    require_set(state)?;
    let set = state.custom_keys();
    if set.keys.is_empty() {
        return Err(AdminError::NoKeys);
    }
    Ok(with_etag(
        body::json(StatusCode::OK, &json!({"keys": set.json()})),
        &set.etag,
    ))
}

async fn put(state: &AppState, request: Request<Incoming>) -> Result<Response<Body>, AdminError> {
    let caller = auth::authenticate(state, request.headers()).await?;
    caller.require(&[CREATE, UPDATE])?;
    require_set(state)?;
    let current = state.custom_keys();
    let precondition = check_if_match(request.headers(), &current)?;
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(AdminError::ContentType);
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
        return Err(AdminError::TooLarge(MAX_BODY_BYTES));
    }
    let bytes = Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|_| AdminError::TooLarge(MAX_BODY_BYTES))?
        .to_bytes();
    let imported = import::parse_body(&bytes, &state.idp_kids())?;
    let now = crate::jose::time::now_unix();
    let published_at: BTreeMap<String, i64> = imported
        .iter()
        .map(|key| {
            let kept = current
                .keys
                .iter()
                .any(|old| old.kid == key.kid && old.material == key.material);
            let since = if kept {
                current.published_at.get(&key.kid).copied().unwrap_or(now)
            } else {
                now
            };
            (key.kid.clone(), since)
        })
        .collect();
    let jsons: Vec<Map<String, Value>> = imported.iter().map(|key| key.json.clone()).collect();
    let stored = write(state, &current, precondition, jsons, published_at.clone()).await?;
    let set = CustomKeySet::new(stored.version, imported, published_at);
    audit(&caller, "PUT", &current, &set);
    state.metrics.record_admin_change(AdminAction::Put);
    let response = with_etag(
        body::json(StatusCode::OK, &json!({"keys": set.json()})),
        &set.etag,
    );
    state.install_custom(set);
    Ok(response)
}

async fn delete(state: &AppState, headers: &HeaderMap) -> Result<Response<Body>, AdminError> {
    let caller = auth::authenticate(state, headers).await?;
    caller.require(&[DELETE])?;
    require_set(state)?;
    let current = state.custom_keys();
    let precondition = check_if_match(headers, &current)?;
    let stored = write(state, &current, precondition, Vec::new(), BTreeMap::new()).await?;
    let set = CustomKeySet::new(stored.version, Vec::new(), BTreeMap::new());
    audit(&caller, "DELETE", &current, &set);
    state.metrics.record_admin_change(AdminAction::Delete);
    state.install_custom(set);
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// 503 while no valid set from the store is installed (see the module doc).
fn require_set(state: &AppState) -> Result<(), AdminError> {
    if state.has_set() {
        return Ok(());
    }
    Err(AdminError::StoreUnavailable(state.store.status().location))
}

/// Whether the request carried `If-Match`: then a lost compare-and-set is 412, as a stale
/// ETag is; without it a PUT/DELETE is a replace-all and is applied over whatever won.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precondition {
    IfMatch,
    None,
}

/// How often a replace-all is retried over newer versions before giving up with 409 (only
/// reached when other writers win this many times in a row).
const REPLACE_ALL_ATTEMPTS: usize = 20;

async fn write(
    state: &AppState,
    current: &CustomKeySet,
    precondition: Precondition,
    keys: Vec<Map<String, Value>>,
    published_at: BTreeMap<String, i64>,
) -> Result<crate::keys::store::StoredSet, AdminError> {
    let mut expected = current.version;
    for _ in 0..REPLACE_ALL_ATTEMPTS {
        let result = state
            .store
            .compare_and_set(expected, keys.clone(), published_at.clone())
            .await;
        match result {
            Ok(stored) => return Ok(stored),
            Err(StoreError::Conflict { .. }) if precondition == Precondition::IfMatch => {
                return Err(AdminError::Precondition);
            }
            // Last writer wins: apply the same change over the version that won.
            Err(StoreError::Conflict { found, .. }) => expected = found,
            Err(StoreError::Unavailable { location, message }) => {
                tracing::warn!(store = %location, error = %message, "key store unavailable; the write was not made");
                return Err(AdminError::StoreUnavailable(location));
            }
            Err(other) => {
                tracing::error!(error = %other, "key store write failed; the stored set is unchanged");
                return Err(AdminError::Store(other.to_string()));
            }
        }
    }
    Err(AdminError::Conflict)
}

/// `If-Match` (an extension to Auth0's API): `*` or one of the listed ETags must match.
fn check_if_match(headers: &HeaderMap, current: &CustomKeySet) -> Result<Precondition, AdminError> {
    match if_match(headers, &current.etag)? {
        true => Ok(Precondition::IfMatch),
        false => Ok(Precondition::None),
    }
}

/// `If-Match` against `etag`: `Ok(false)` when absent, `Ok(true)` when it lists `*` or
/// `etag`, else 412. Shared by both key APIs.
pub(super) fn if_match(headers: &HeaderMap, etag: &str) -> Result<bool, AdminError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(false);
    };
    let value = value.to_str().map_err(|_| AdminError::Precondition)?;
    match value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag == etag)
    {
        true => Ok(true),
        false => Err(AdminError::Precondition),
    }
}

pub(super) fn with_etag(mut response: Response<Body>, etag: &str) -> Response<Body> {
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn audit(caller: &Caller, action: &str, before: &CustomKeySet, after: &CustomKeySet) {
    let kids = |set: &CustomKeySet| set.keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>();
    tracing::info!(
        target: "resigner::audit",
        who = %caller.name,
        action,
        before = ?kids(before),
        after = ?kids(after),
        version = after.version,
        "custom signing keys changed"
    );
}
