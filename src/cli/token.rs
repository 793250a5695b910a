//! `resigner token inspect` and `resigner token resign`: look at a token without trusting it,
//! and dry-run what the proxy would forward for it on a route: the proxy's own pipeline
//! ([`crate::proxy::pipeline::run`]: verified against the IdP's keys unless told otherwise,
//! mapped, and signed with the configured active key), without cache or publication check.
//! The route is looked up first, so a wrong `--route` fails without contacting the IdP, and
//! its `mode` decides what is shown: nothing is fetched for a passthrough route, and a
//! verify-only route forwards the IdP token unchanged.

pub mod command;

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::config::{Config, IdpSettings, Route};
use crate::idp::{IdpClient, IdpKeys, Lookup};
use crate::jose::b64;
use crate::keys::SigningKey;
use crate::metrics::Metrics;
use crate::proxy::pipeline::{self, Caller, PipelineError, Stages, TokenWork};
use crate::proxy::verify::{self, Verified};

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

/// What the proxy would forward for `token` on the route with `prefix`: the proxy's own
/// pipeline, run once with [`DryRun`] stages (no cache, no publication check).
pub async fn resign(
    config: Arc<Config>,
    prefix: &str,
    token: &str,
    verify_token: bool,
) -> Result<String, TokenCliError> {
    let token = token.trim();
    let route = find_route(&config, prefix)?;
    let mut out = String::new();
    let Some(work) = TokenWork::of(route) else {
        let _ = writeln!(
            out,
            "route {} is mode = \"passthrough\": the proxy does no token work here and forwards \
             the request, Authorization header included, as it came",
            route.prefix
        );
        let _ = writeln!(out, "route {} -> {}", route.prefix, upstream(route));
        return Ok(out);
    };
    let stages = if verify_token {
        let idp = idp_of(&config, token)?;
        let keys = fetch_keys(&idp).await?;
        DryRun::Verify { idp, keys }
    } else {
        DryRun::AsGiven(as_given(&config, token)?)
    };
    // No request, so no method: every rule applies, method-limited ones included.
    if config.signing.managed.is_some() && work == TokenWork::Resign {
        return Err(TokenCliError::Sign(
            "with [signing.managed] the signing keys live sealed in the key store and are \
             used only by the running proxy: send the request through it (`resigner keys \
             list --admin URL` shows the current kid)"
                .into(),
        ));
    }
    let active = config.signing.active().cloned();
    let outcome = pipeline::run(
        &stages,
        &config,
        route,
        work,
        token,
        Caller::Command,
        active.as_ref(),
    )
    .await?;
    if verify_token {
        let _ = writeln!(
            out,
            "verified against the IdP keys for audience {:?}",
            route.audience
        );
    } else {
        let _ = writeln!(
            out,
            "NOT VERIFIED (--no-verify): mapping the claims as given"
        );
    }
    let _ = writeln!(out, "route {} -> {}", route.prefix, upstream(route));
    match &outcome.claims {
        None => {
            let _ = writeln!(
                out,
                "mode = \"verify\": the IdP token is forwarded unchanged (no claim mapping, no signing)"
            );
        }
        Some(mapped) => {
            let signing = &config.signing;
            let alg = signing.active().map_or("?", |key| key.alg().name());
            let _ = writeln!(out, "signed with kid {:?} ({alg})", signing.active_kid);
            let _ = writeln!(out, "forwarded claims: {}", pretty(mapped));
        }
    }
    let _ = writeln!(out, "{}: {}", route.header, outcome.value);
    Ok(out)
}

fn upstream(route: &Route) -> String {
    let target = &route.upstream;
    format!(
        "{}://{}{}",
        target.scheme, target.authority, target.base_path
    )
}

/// The configured IdP whose issuer is the token's `iss` (read unverified: it only picks
/// which keys to fetch; the proxy's own verification then checks everything).
fn idp_of(config: &Config, token: &str) -> Result<Arc<IdpSettings>, TokenCliError> {
    let rejected = |e: verify::VerifyError| TokenCliError::Rejected(e.logged());
    let parsed = verify::parse(token).map_err(rejected)?;
    let iss = parsed.issuer().map_err(rejected)?;
    config.idp_for(iss).cloned().ok_or_else(|| {
        let known: Vec<&str> = config.idps.iter().map(|i| i.issuer.as_str()).collect();
        let mismatch = verify::Mismatch::new("iss", &known.join(" "), Some(iss));
        rejected(verify::VerifyError::Issuer(mismatch))
    })
}

/// The IdP's key set, fetched now for this command.
async fn fetch_keys(settings: &Arc<IdpSettings>) -> Result<Arc<IdpKeys>, TokenCliError> {
    let http = crate::http::client::fetch_client(settings.fetch_timeout, settings.tls.as_deref());
    let idp = IdpClient::new(
        settings.clone(),
        http,
        Arc::new(Metrics::default()),
        Default::default(),
    );
    idp.fetch_now()
        .await
        .map_err(|e| TokenCliError::IdpKeys(e.to_string()))?;
    idp.current()
        .ok_or_else(|| TokenCliError::IdpKeys("no key set".into()))
}

/// `--no-verify`: the payload's claims taken as they are, `exp` as given (now when absent);
/// the IdP settings (scope claims, leeway) of the IdP its `iss` names, else the first.
fn as_given(config: &Config, token: &str) -> Result<Verified, TokenCliError> {
    let claims = segment(token, 1, "payload")?;
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .unwrap_or_else(crate::jose::time::now_unix);
    let idp = claims
        .get("iss")
        .and_then(Value::as_str)
        .and_then(|iss| config.idp_for(iss))
        .unwrap_or(&config.idps[0])
        .clone();
    Ok(Verified {
        claims,
        exp,
        idp,
        valid_for: None,
    })
}

/// The command's pipeline stages: the IdP keys fetched for this run (an unknown kid is a
/// rejection: they were fetched a moment ago), or with `--no-verify` the claims as given;
/// signatures in-line with the configured key.
enum DryRun {
    Verify {
        idp: Arc<IdpSettings>,
        keys: Arc<IdpKeys>,
    },
    AsGiven(Verified),
}

impl Stages for DryRun {
    type Error = TokenCliError;

    async fn verify(
        &self,
        token: &str,
        audience: &str,
        issuers: Option<&[String]>,
    ) -> Result<Verified, TokenCliError> {
        let (idp, keys) = match self {
            DryRun::AsGiven(given) => return Ok(given.clone()),
            DryRun::Verify { idp, keys } => (idp, keys),
        };
        let rejected = |e: verify::VerifyError| TokenCliError::Rejected(e.logged());
        if !crate::config::runtime::accepts(issuers, &idp.issuer) {
            let accepted = issuers.unwrap_or_default().join(" ");
            let mismatch = verify::Mismatch::new("iss", &accepted, Some(&idp.issuer));
            return Err(rejected(verify::VerifyError::Issuer(mismatch)));
        }
        let parsed = verify::parse(token).map_err(rejected)?;
        let Lookup::Found(key) = keys.find(parsed.kid.as_deref()) else {
            return Err(rejected(verify::VerifyError::UnknownKid));
        };
        let now = crate::jose::time::now_unix();
        verify::verify(parsed, key, idp, audience, now).map_err(rejected)
    }

    async fn sign(&self, key: &Arc<SigningKey>, payload: Vec<u8>) -> Result<String, TokenCliError> {
        key.sign_compact(&payload)
            .map_err(|e| TokenCliError::Sign(e.to_string()))
    }
}

impl From<PipelineError> for TokenCliError {
    fn from(err: PipelineError) -> Self {
        match err {
            PipelineError::Denied(denied) => TokenCliError::Rejected(denied.to_string()),
            other => TokenCliError::Sign(other.to_string()),
        }
    }
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
