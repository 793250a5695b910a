//! `resigner token inspect` and `resigner token resign`: look at a token without trusting it,
//! and dry-run what the proxy would forward for it on a route (verified against the IdP's
//! keys unless told otherwise, mapped, and signed with the configured active key).

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::b64;
use crate::config::Config;
use crate::idp::{IdpClient, Lookup};
use crate::metrics::Metrics;
use crate::proxy::{claims, verify};

/// Why a token command failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenCliError {
    #[error("the token is not a compact JWS (header.payload.signature)")]
    Structure,
    #[error("the token {0} is not base64url JSON")]
    Segment(&'static str),
    #[error("no route has prefix {0:?} (routes: {1})")]
    NoRoute(String, String),
    #[error(
        "cannot load the IdP keys to verify the token: {0} (use --no-verify for an unverified dry run)"
    )]
    IdpKeys(String),
    #[error("the proxy would reject this token: {0}")]
    Rejected(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

fn segment(
    token: &str,
    index: usize,
    name: &'static str,
) -> Result<Map<String, Value>, TokenCliError> {
    let text = token
        .trim()
        .split('.')
        .nth(index)
        .ok_or(TokenCliError::Structure)?;
    let bytes = b64::decode(text).ok_or(TokenCliError::Segment(name))?;
    serde_json::from_slice(&bytes).map_err(|_| TokenCliError::Segment(name))
}

/// Decodes header and claims without verifying anything, with times in human form.
pub fn inspect(token: &str, now: i64) -> Result<String, TokenCliError> {
    let token = token.trim();
    if token.split('.').count() != 3 {
        return Err(TokenCliError::Structure);
    }
    let header = segment(token, 0, "header")?;
    let claims = segment(token, 1, "payload")?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "NOT VERIFIED: decoded only. SHA-256 prefix {}",
        crate::proxy::token_fingerprint(token)
    );
    let _ = writeln!(out, "header: {}", pretty(&header));
    let _ = writeln!(out, "claims: {}", pretty(&claims));
    for name in ["iat", "nbf", "exp"] {
        if let Some(at) = claims.get(name).and_then(Value::as_i64) {
            let _ = writeln!(
                out,
                "{name}: {} ({})",
                crate::time::format_utc(at),
                crate::time::describe_relative(at - now)
            );
        }
    }
    Ok(out)
}

fn pretty(map: &Map<String, Value>) -> String {
    serde_json::to_string_pretty(map).unwrap_or_default()
}

/// What the proxy would forward for `token` on the route with `prefix`.
pub async fn resign(
    config: Arc<Config>,
    prefix: &str,
    token: &str,
    verify_token: bool,
) -> Result<String, TokenCliError> {
    let token = token.trim();
    let route = config
        .routes
        .iter()
        .find(|r| r.prefix == prefix)
        .ok_or_else(|| {
            TokenCliError::NoRoute(
                prefix.into(),
                config
                    .routes
                    .iter()
                    .map(|r| r.prefix.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })?;
    let now = crate::time::now_unix();
    let mut out = String::new();
    let (incoming, exp) = if verify_token {
        let http =
            crate::http_client::fetch_client(config.idp.fetch_timeout, config.idp.tls.as_deref());
        let idp = IdpClient::new(config.idp.clone(), http, Arc::new(Metrics::default()));
        idp.fetch_now()
            .await
            .map_err(|e| TokenCliError::IdpKeys(e.to_string()))?;
        let keys = idp
            .current()
            .ok_or_else(|| TokenCliError::IdpKeys("no key set".into()))?;
        let parsed = verify::parse(token, &config.idp)
            .map_err(|e| TokenCliError::Rejected(e.to_string()))?;
        let Lookup::Found(key) = keys.find(parsed.kid.as_deref()) else {
            return Err(TokenCliError::Rejected(
                verify::VerifyError::UnknownKid.to_string(),
            ));
        };
        let verified = verify::verify(&parsed, key, &config.idp, &route.audience, now)
            .map_err(|e| TokenCliError::Rejected(e.to_string()))?;
        let _ = writeln!(
            out,
            "verified against the IdP keys for audience {:?}",
            route.audience
        );
        (verified.claims, verified.exp)
    } else {
        let claims = segment(token, 1, "payload")?;
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(now);
        let _ = writeln!(
            out,
            "NOT VERIFIED (--no-verify): mapping the claims as given"
        );
        (claims, exp)
    };
    let signing = &config.signing;
    let mapped = claims::map_claims(
        &incoming,
        exp,
        &route.claims,
        &signing.issuer,
        signing.max_ttl.as_secs() as i64,
        now,
    );
    let payload = serde_json::to_vec(&mapped).map_err(|e| TokenCliError::Sign(e.to_string()))?;
    let signed = signing
        .active
        .sign_compact(&payload)
        .map_err(|e| TokenCliError::Sign(e.to_string()))?;
    let value = if route.header == http::header::AUTHORIZATION {
        format!("Bearer {signed}")
    } else {
        signed.clone()
    };
    let _ = writeln!(
        out,
        "route {} -> {}://{}{}",
        route.prefix, route.upstream.scheme, route.upstream.authority, route.upstream.base_path
    );
    let _ = writeln!(
        out,
        "signed with kid {:?} ({})",
        signing.active.kid(),
        signing.active.alg()
    );
    let _ = writeln!(out, "forwarded claims: {}", pretty(&mapped));
    let _ = writeln!(out, "{}: {value}", route.header);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_decodes_without_verifying() {
        let header = b64::encode(br#"{"alg":"RS256","kid":"k"}"#);
        let payload = b64::encode(br#"{"sub":"u","exp":1000,"iat":400}"#);
        let text = inspect(&format!("{header}.{payload}.sig\n"), 700).unwrap();
        assert!(text.starts_with("NOT VERIFIED"));
        assert!(text.contains("\"kid\": \"k\""));
        assert!(
            text.contains("exp: 1970-01-01T00:16:40Z (in 5m 0s)"),
            "{text}"
        );
        assert!(
            text.contains("iat: 1970-01-01T00:06:40Z (5m 0s ago)"),
            "{text}"
        );
        assert!(matches!(inspect("a.b", 0), Err(TokenCliError::Structure)));
        assert!(matches!(
            inspect("!!.b.c", 0),
            Err(TokenCliError::Segment("header"))
        ));
    }
}
