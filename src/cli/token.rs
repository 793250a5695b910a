//! `resigner token inspect` and `resigner token resign`: look at a token without trusting it,
//! and dry-run what the proxy would forward for it on a route (verified against the IdP's
//! keys unless told otherwise, mapped, and signed with the configured active key). The route
//! is looked up first, so a wrong `--route` fails without contacting the IdP, and its `mode`
//! decides what is shown: nothing is fetched for a passthrough route, and a verify-only route
//! forwards the IdP token unchanged.

pub mod command;

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::config::{Config, Route, RouteMode};
use crate::idp::{IdpClient, Lookup};
use crate::jose::b64;
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
                crate::jose::time::format_utc(at),
                crate::jose::time::describe_relative(at - now)
            );
        }
    }
    Ok(out)
}

fn pretty(map: &Map<String, Value>) -> String {
    serde_json::to_string_pretty(map).unwrap_or_default()
}

/// The route `--route` names: its prefix as in the config (a trailing `/` does not matter,
/// as for the config's own duplicate check). Checked before anything is fetched.
fn find_route<'a>(config: &'a Config, prefix: &str) -> Result<&'a Route, TokenCliError> {
    config
        .routes
        .iter()
        .find(|r| bare_prefix(&r.prefix) == bare_prefix(prefix))
        .ok_or_else(|| {
            let routes: Vec<&str> = config.routes.iter().map(|r| r.prefix.as_str()).collect();
            TokenCliError::NoRoute(prefix.into(), routes.join(", "))
        })
}

fn bare_prefix(prefix: &str) -> &str {
    match prefix.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    }
}

/// What the proxy would forward for `token` on the route with `prefix`.
pub async fn resign(
    config: Arc<Config>,
    prefix: &str,
    token: &str,
    verify_token: bool,
) -> Result<String, TokenCliError> {
    let token = token.trim();
    let route = find_route(&config, prefix)?;
    let mut out = String::new();
    if route.mode == RouteMode::Passthrough {
        let _ = writeln!(
            out,
            "route {} is mode = \"passthrough\": the proxy does no token work here and forwards \
             the request, Authorization header included, as it came",
            route.prefix
        );
        let _ = writeln!(out, "route {} -> {}", route.prefix, upstream(route));
        return Ok(out);
    }
    let now = crate::jose::time::now_unix();
    let (incoming, exp) = if verify_token {
        let verified = verified(&config, route, token, now).await?;
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
    let _ = writeln!(out, "route {} -> {}", route.prefix, upstream(route));
    let forwarded = if route.mode == RouteMode::Verify {
        let _ = writeln!(
            out,
            "mode = \"verify\": the IdP token is forwarded unchanged (no claim mapping, no signing)"
        );
        token.to_string()
    } else {
        let (signed, mapped) = sign(&config, route, &incoming, exp, now)?;
        let signing = &config.signing;
        let _ = writeln!(
            out,
            "signed with kid {:?} ({})",
            signing.active.kid(),
            signing.active.alg()
        );
        let _ = writeln!(out, "forwarded claims: {}", pretty(&mapped));
        signed
    };
    let value = if route.header == http::header::AUTHORIZATION {
        format!("Bearer {forwarded}")
    } else {
        forwarded
    };
    let _ = writeln!(out, "{}: {value}", route.header);
    Ok(out)
}

fn upstream(route: &Route) -> String {
    let target = &route.upstream;
    format!(
        "{}://{}{}",
        target.scheme, target.authority, target.base_path
    )
}

/// Verifies `token` for `route` with keys fetched from the IdP now.
async fn verified(
    config: &Config,
    route: &Route,
    token: &str,
    now: i64,
) -> Result<verify::Verified, TokenCliError> {
    let http =
        crate::http::client::fetch_client(config.idp.fetch_timeout, config.idp.tls.as_deref());
    let idp = IdpClient::new(config.idp.clone(), http, Arc::new(Metrics::default()));
    idp.fetch_now()
        .await
        .map_err(|e| TokenCliError::IdpKeys(e.to_string()))?;
    let keys = idp
        .current()
        .ok_or_else(|| TokenCliError::IdpKeys("no key set".into()))?;
    let rejected = |e: verify::VerifyError| TokenCliError::Rejected(e.logged());
    let parsed = verify::parse(token, &config.idp).map_err(rejected)?;
    let Lookup::Found(key) = keys.find(parsed.kid.as_deref()) else {
        return Err(rejected(verify::VerifyError::UnknownKid));
    };
    verify::verify(&parsed, key, &config.idp, &route.audience, now).map_err(rejected)
}

/// Maps the claims for `route` and signs them with the active key: (token, claims).
fn sign(
    config: &Config,
    route: &Route,
    incoming: &Map<String, Value>,
    exp: i64,
    now: i64,
) -> Result<(String, Map<String, Value>), TokenCliError> {
    let signing = &config.signing;
    let mapped = claims::map_claims(
        incoming,
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
    Ok((signed, mapped))
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
