//! `[idp]` / `[[idp]]`: per IdP its name, the issuer and where its keys come from, the
//! algorithm allow-list (never `none`, never HMAC), leeway, the key client's refresh bounds
//! and limits, the claims a token's scopes are read from and its CA (its introspection
//! endpoint in [`super::introspection`]); across IdPs, distinct issuers and names; and the
//! `issuers` lists of routes and `[admin]`, resolved against them.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use super::{MIN_TIMEOUT, transport};
use crate::config::file;
use crate::config::problems::Problems;
use crate::config::runtime::IdpSettings;
use crate::jose::alg::Alg;

/// Every IdP of the file, in order. Problems name `idp.<field>` for a single IdP and
/// `idp[i].<field>` when there are several.
pub(super) fn all(raw: &[file::IdpSection], base: &Path, p: &mut Problems) -> Vec<IdpSettings> {
    if raw.is_empty() {
        p.push("idp", "at least one [idp] (or [[idp]]) is required");
    }
    let mut issuers = HashSet::new();
    let mut names = HashSet::new();
    let mut idps = Vec::new();
    for (index, section) in raw.iter().enumerate() {
        let field = match raw.len() {
            1 => "idp".to_string(),
            _ => format!("idp[{index}]"),
        };
        let mut idp = settings(section, &field, index, p);
        if let Some(ca_file) = section.ca_file.as_deref() {
            idp.tls = transport::client_tls(&field, Some(ca_file), None, base, p);
        }
        if let Some(raw) = &section.introspection {
            idp.introspection =
                super::introspection::settings(raw, &format!("{field}.introspection"), base, p);
        }
        if !issuers.insert(idp.issuer.clone()) {
            p.push(
                format!("{field}.issuer"),
                format!("{:?} is the issuer of another [[idp]]", idp.issuer),
            );
        }
        if !names.insert(idp.name.clone()) {
            p.push(
                format!("{field}.name"),
                format!(
                    "{:?} names another [[idp]] too (the default is the issuer's host): give each a distinct name",
                    idp.name
                ),
            );
        }
        idps.push(idp);
    }
    // `issuers` lists take names and issuers: one must never be the other's.
    for (index, idp) in idps.iter().enumerate() {
        if idps.iter().any(|other| other.issuer == idp.name) {
            let field = match idps.len() {
                1 => "idp".to_string(),
                _ => format!("idp[{index}]"),
            };
            p.push(
                format!("{field}.name"),
                format!("{:?} is an IdP's issuer: a name must not be one", idp.name),
            );
        }
    }
    idps
}

/// `issuers = [...]` of a route or `[admin]` (`field`): each entry an IdP's issuer or name,
/// resolved to issuers. `None` (absent): every IdP.
pub(super) fn resolve(
    p: &mut Problems,
    field: &str,
    list: &Option<Vec<String>>,
    idps: &[IdpSettings],
) -> Option<Vec<String>> {
    let list = list.as_ref()?;
    if list.is_empty() {
        p.push(
            field,
            "must name at least one IdP (leave it out to accept every IdP)",
        );
    }
    let mut issuers = Vec::new();
    for entry in list {
        let by_issuer = idps.iter().find(|idp| idp.issuer == *entry);
        match by_issuer.or_else(|| idps.iter().find(|idp| idp.name == *entry)) {
            Some(idp) if !issuers.contains(&idp.issuer) => issuers.push(idp.issuer.clone()),
            Some(_) => {}
            None => {
                let known: Vec<&str> = idps.iter().map(|idp| idp.name.as_str()).collect();
                p.push(
                    field,
                    format!(
                        "{entry:?} is neither the issuer nor the name of an [[idp]] (names: {})",
                        known.join(", ")
                    ),
                );
            }
        }
    }
    Some(issuers)
}

/// The default name: the issuer URL's host (and port), else `idp` or `idp<index>`.
fn default_name(issuer: &str, index: usize) -> String {
    issuer
        .parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.authority().map(|a| a.as_str().to_string()))
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| match index {
            0 => "idp".into(),
            _ => format!("idp{index}"),
        })
}

fn settings(raw: &file::IdpSection, field: &str, index: usize, p: &mut Problems) -> IdpSettings {
    let f = |name: &str| format!("{field}.{name}");
    if raw.issuer.trim().is_empty() {
        p.push(f("issuer"), "must not be empty");
    }
    let name = match &raw.name {
        Some(name) => {
            let valid = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
            if !valid {
                p.push(
                    f("name"),
                    "must be 1 to 64 letters, digits, '.', '_', '-' or ':' (it is a metrics label)",
                );
            }
            name.clone()
        }
        None => default_name(&raw.issuer, index),
    };
    let jwks_uri = match &raw.jwks_uri {
        Some(text) => p.http_url(&f("jwks_uri"), text),
        None => {
            if p.http_url(&f("issuer"), &raw.issuer).is_none() {
                p.push(
                    f("jwks_uri"),
                    format!(
                        "is required when {field}.issuer is not an http(s) URL to discover it from"
                    ),
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
        p.push(f("algorithms"), "must list at least one algorithm");
    }
    let mut algorithms = Vec::new();
    for name in &names {
        match Alg::parse(name) {
            Some(alg) if !algorithms.contains(&alg) => algorithms.push(alg),
            Some(_) => {}
            None if name.eq_ignore_ascii_case("none") => {
                p.push(f("algorithms"), "\"none\" is never accepted (RFC 8725 §3.2)")
            }
            None if name.starts_with("HS") => p.push(
                f("algorithms"),
                format!("{name:?}: HMAC algorithms are not accepted; IdP tokens are verified with public keys"),
            ),
            None => p.push(
                f("algorithms"),
                format!("unknown algorithm {name:?} (RS256/384/512, PS256/384/512, ES256/384/512, EdDSA)"),
            ),
        }
    }
    let leeway = p.duration(&f("leeway"), &raw.leeway, Duration::from_secs(30));
    if leeway > Duration::from_secs(300) {
        p.push(
            f("leeway"),
            "more than 5 minutes of clock skew is not accepted",
        );
    }
    let refresh = p.duration(&f("refresh"), &raw.refresh, Duration::from_secs(600));
    let refresh_min = p.duration_min(
        &f("refresh_min"),
        &raw.refresh_min,
        Duration::from_secs(60),
        MIN_TIMEOUT,
    );
    let refresh_max = p.duration(
        &f("refresh_max"),
        &raw.refresh_max,
        Duration::from_secs(86_400),
    );
    if refresh_min > refresh_max {
        p.push(
            f("refresh_min"),
            format!("must not exceed {field}.refresh_max"),
        );
    }
    let scope_claims = raw
        .scope_claims
        .clone()
        .unwrap_or_else(|| vec!["scope".into()]);
    if scope_claims.is_empty() || scope_claims.iter().any(|name| name.trim().is_empty()) {
        p.push(
            f("scope_claims"),
            "must list claim names like [\"scope\"] or [\"scp\"], none empty",
        );
    }
    IdpSettings {
        name,
        issuer: raw.issuer.clone(),
        jwks_uri,
        algorithms,
        leeway,
        require_typ: raw.require_typ.clone(),
        refresh,
        refresh_min,
        refresh_max,
        unknown_kid_cooldown: p.duration(
            &f("unknown_kid_cooldown"),
            &raw.unknown_kid_cooldown,
            Duration::from_secs(30),
        ),
        max_stale: p.duration_min(
            &f("max_stale"),
            &raw.max_stale,
            Duration::from_secs(86_400),
            Duration::from_secs(1),
        ),
        fetch_timeout: p.duration(
            &f("fetch_timeout"),
            &raw.fetch_timeout,
            Duration::from_secs(5),
        ),
        max_response_bytes: 1024 * 1024,
        max_keys: 100,
        tls: None,
        scope_claims,
        introspection: None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn problems(idps: &str, rest: &str) -> Vec<String> {
        let text = format!(
            "{idps}\n[server]\nlisten = \"127.0.0.1:1\"\n[signing]\nissuer = \"https://me/\"\n{rest}"
        );
        match crate::config::parse_config(&text, Path::new("/nonexistent")) {
            Ok(_) => Vec::new(),
            Err(err) => err.problems(),
        }
    }

    fn has(problems: &[String], wanted: &str) -> bool {
        problems.iter().any(|p| p.starts_with(wanted))
    }

    #[test]
    fn several_idps_need_distinct_issuers_and_names() {
        let found = problems(
            "[[idp]]\nissuer = \"https://login.test/a\"\n\
             [[idp]]\nissuer = \"https://login.test/b\"\n\
             [[idp]]\nname = \"x y\"\nissuer = \"https://login.test/a\"\nalgorithms = [\"HS256\"]\n",
            "",
        );
        assert!(
            has(
                &found,
                "idp[1].name: \"login.test\" names another [[idp]] too"
            ),
            "{found:#?}"
        );
        assert!(
            has(
                &found,
                "idp[2].issuer: \"https://login.test/a\" is the issuer of another"
            ),
            "{found:#?}"
        );
        assert!(has(&found, "idp[2].name: must be 1 to 64"), "{found:#?}");
        assert!(has(&found, "idp[2].algorithms: \"HS256\""), "{found:#?}");
        let none = problems("idp = []\n", "");
        assert!(has(&none, "idp: at least one"), "{none:#?}");
    }

    #[test]
    fn issuers_lists_name_configured_idps_by_name_or_issuer() {
        let idps = "[[idp]]\nname = \"corp\"\nissuer = \"https://corp.test/\"\n\
                    [[idp]]\nissuer = \"https://partner.test/\"\n";
        let found = problems(
            idps,
            "[admin]\nissuers = [\"nobody\"]\n\
             [[routes]]\nprefix = \"/a\"\nupstream = \"http://127.0.0.1:2\"\naudience = \"x\"\n\
             issuers = [\"corp\", \"https://partner.test/\", \"partner.test\"]\n\
             [[routes]]\nprefix = \"/b\"\nupstream = \"http://127.0.0.1:2\"\naudience = \"x\"\n\
             issuers = []\n",
        );
        assert!(
            has(
                &found,
                "admin.issuers: \"nobody\" is neither the issuer nor the name of an [[idp]] (names: corp, partner.test)"
            ),
            "{found:#?}"
        );
        assert!(
            !found.iter().any(|p| p.starts_with("routes[0]")),
            "{found:#?}"
        );
        assert!(
            has(&found, "routes[1].issuers: must name at least one IdP"),
            "{found:#?}"
        );
    }

    #[test]
    fn resolved_lists_hold_issuers_once() {
        let idps = vec![super::settings(
            &toml::from_str("name = \"corp\"\nissuer = \"https://corp.test/\"").unwrap(),
            "idp[0]",
            0,
            &mut Default::default(),
        )];
        let mut p = Default::default();
        let list = Some(vec!["corp".to_string(), "https://corp.test/".to_string()]);
        let resolved = super::resolve(&mut p, "routes[0].issuers", &list, &idps);
        assert_eq!(resolved, Some(vec!["https://corp.test/".to_string()]));
        assert!(super::resolve(&mut p, "x", &None, &idps).is_none());
    }
}
