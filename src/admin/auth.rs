//! Who is calling the management API: a static token from the config (kept only as its
//! SHA-256, compared in constant time), or an IdP access token for `[admin] audience`,
//! verified with the IdP's keys. Tokens signed by the customer keys are never accepted:
//! only IdP keys verify here (Auth0: tokens signed by customer keys cannot be consumed by
//! Auth0 APIs).

use std::collections::HashSet;

use aws_lc_rs::{constant_time, digest};
use http::HeaderMap;
use serde_json::Value;

use super::error::AdminError;
use crate::app::AppState;
use crate::proxy::{self, ProxyError};

/// An authenticated caller and its scopes.
#[derive(Debug, Clone)]
pub struct Caller {
    /// For the audit log: `static:<name>` or the token's `sub` / `client_id`.
    pub name: String,
    pub scopes: HashSet<String>,
}

impl Caller {
    /// Requires every scope in `needed`.
    pub fn require(&self, needed: &[&'static str]) -> Result<(), AdminError> {
        if needed.iter().all(|scope| self.scopes.contains(*scope)) {
            Ok(())
        } else {
            Err(AdminError::Forbidden(needed.to_vec()))
        }
    }
}

/// Authenticates the request's bearer token.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, AdminError> {
    let token = proxy::bearer_token(headers).map_err(|_| AdminError::Unauthorized)?;
    let config = state.config();
    let presented = digest::digest(&digest::SHA256, token.as_bytes());
    let mut matched = None;
    for candidate in &config.admin.tokens {
        // Every candidate is compared, so the time taken does not reveal which one matched.
        if constant_time::verify_slices_are_equal(presented.as_ref(), &candidate.sha256).is_ok() {
            matched = Some(candidate);
        }
    }
    if let Some(token) = matched {
        return Ok(Caller {
            name: format!("static:{}", token.name),
            scopes: token.scopes.iter().cloned().collect(),
        });
    }
    let Some(audience) = &config.admin.audience else {
        return Err(AdminError::Unauthorized);
    };
    let issuers = config.admin.issuers.as_deref();
    let (verified, _) = proxy::verify_token(state, token, audience, issuers).await.map_err(|err| match err {
        ProxyError::IdpUnavailable | ProxyError::IntrospectionUnavailable => AdminError::IdpUnavailable,
        other => {
            tracing::info!(error = %other.logged(), token = %proxy::token_fingerprint(token), "management API token rejected");
            AdminError::Unauthorized
        }
    })?;
    let claims = &verified.claims;
    let mut scopes: HashSet<String> = claims
        .get("scope")
        .and_then(Value::as_str)
        .map(|scope| {
            scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Array(permissions)) = claims.get("permissions") {
        scopes.extend(
            permissions
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string),
        );
    }
    let name = claims
        .get("sub")
        .or_else(|| claims.get("client_id"))
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    Ok(Caller { name, scopes })
}
