//! `[idp]`: the issuer and where its keys come from, the algorithm allow-list (never
//! `none`, never HMAC), leeway, the key client's refresh bounds and limits, and the
//! claims a token's scopes are read from.

use std::time::Duration;

use super::MIN_TIMEOUT;
use crate::config::file;
use crate::config::problems::Problems;
use crate::config::runtime::IdpSettings;
use crate::jose::alg::Alg;

pub(super) fn settings(raw: &file::IdpSection, p: &mut Problems) -> IdpSettings {
    if raw.issuer.trim().is_empty() {
        p.push("idp.issuer", "must not be empty");
    }
    let jwks_uri = match &raw.jwks_uri {
        Some(text) => p.http_url("idp.jwks_uri", text),
        None => {
            if p.http_url("idp.issuer", &raw.issuer).is_none() {
                p.push(
                    "idp.jwks_uri",
                    "is required when idp.issuer is not an http(s) URL to discover it from",
                );
            }
            None
        }
    };
    let names = raw
        .algorithms
        .clone()
        .unwrap_or_else(|| vec!["RS256".into()]);
    if names.is_empty() {
        p.push("idp.algorithms", "must list at least one algorithm");
    }
    let mut algorithms = Vec::new();
    for name in &names {
        match Alg::parse(name) {
            Some(alg) if !algorithms.contains(&alg) => algorithms.push(alg),
            Some(_) => {}
            None if name.eq_ignore_ascii_case("none") => {
                p.push("idp.algorithms", "\"none\" is never accepted (RFC 8725 §3.2)")
            }
            None if name.starts_with("HS") => p.push(
                "idp.algorithms",
                format!("{name:?}: HMAC algorithms are not accepted; IdP tokens are verified with public keys"),
            ),
            None => p.push(
                "idp.algorithms",
                format!("unknown algorithm {name:?} (RS256/384/512, PS256/384/512, ES256/384/512, EdDSA)"),
            ),
        }
    }
    let leeway = p.duration("idp.leeway", &raw.leeway, Duration::from_secs(30));
    if leeway > Duration::from_secs(300) {
        p.push(
            "idp.leeway",
            "more than 5 minutes of clock skew is not accepted",
        );
    }
    let refresh = p.duration("idp.refresh", &raw.refresh, Duration::from_secs(600));
    let refresh_min = p.duration_min(
        "idp.refresh_min",
        &raw.refresh_min,
        Duration::from_secs(60),
        MIN_TIMEOUT,
    );
    let refresh_max = p.duration(
        "idp.refresh_max",
        &raw.refresh_max,
        Duration::from_secs(86_400),
    );
    if refresh_min > refresh_max {
        p.push("idp.refresh_min", "must not exceed idp.refresh_max");
    }
    let scope_claims = raw
        .scope_claims
        .clone()
        .unwrap_or_else(|| vec!["scope".into()]);
    if scope_claims.is_empty() || scope_claims.iter().any(|name| name.trim().is_empty()) {
        p.push(
            "idp.scope_claims",
            "must list claim names like [\"scope\"] or [\"scp\"], none empty",
        );
    }
    IdpSettings {
        issuer: raw.issuer.clone(),
        jwks_uri,
        algorithms,
        leeway,
        require_typ: raw.require_typ.clone(),
        refresh,
        refresh_min,
        refresh_max,
        unknown_kid_cooldown: p.duration(
            "idp.unknown_kid_cooldown",
            &raw.unknown_kid_cooldown,
            Duration::from_secs(30),
        ),
        max_stale: p.duration_min(
            "idp.max_stale",
            &raw.max_stale,
            Duration::from_secs(86_400),
            Duration::from_secs(1),
        ),
        fetch_timeout: p.duration(
            "idp.fetch_timeout",
            &raw.fetch_timeout,
            Duration::from_secs(5),
        ),
        max_response_bytes: 1024 * 1024,
        max_keys: 100,
        tls: None,
        scope_claims,
    }
}
