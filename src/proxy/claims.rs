//! Claim mapping: a pure function from the verified incoming claims to the claims of the
//! re-signed token. JSON types are kept as they are (no stringification), reserved claims are
//! always set by resigner, and `exp` can only move earlier, never later. The policy it
//! applies ([`ClaimMapping`], and the [`crate::config::RESERVED`] claims validation keeps
//! out of it) is plain data of the validated config.

use serde_json::{Map, Value};

use crate::config::ClaimMapping;

/// Applies `mapping` to verified `incoming` claims. `incoming_exp` is the verified `exp`.
pub fn map_claims(
    incoming: &Map<String, Value>,
    incoming_exp: i64,
    mapping: &ClaimMapping,
    issuer: &str,
    max_ttl_secs: i64,
    now: i64,
) -> Map<String, Value> {
    let mut out = match &mapping.copy {
        None => incoming.clone(),
        Some(names) => names
            .iter()
            .filter_map(|name| {
                incoming
                    .get(name)
                    .map(|value| (name.clone(), value.clone()))
            })
            .collect(),
    };
    // All old names go first, then the new ones are written: renames read the incoming
    // claims, so `a -> b` plus `b -> c` yields b = a and c = b whatever the order.
    for (from, _) in &mapping.rename {
        out.remove(from);
    }
    for (from, to) in &mapping.rename {
        if let Some(value) = incoming.get(from) {
            out.insert(to.clone(), value.clone());
        }
    }
    for name in &mapping.remove {
        out.remove(name);
    }
    for (name, value) in &mapping.set {
        out.insert(name.clone(), value.clone());
    }
    out.insert("iss".into(), Value::from(issuer));
    out.insert("aud".into(), mapping.audience.clone());
    out.insert("iat".into(), Value::from(now));
    out.insert(
        "exp".into(),
        Value::from(incoming_exp.min(now.saturating_add(max_ttl_secs))),
    );
    out
}

#[cfg(test)]
#[path = "claims_props.rs"]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn incoming() -> Map<String, Value> {
        json!({
            "iss": "https://idp/", "aud": ["api"], "exp": 2_000, "iat": 900, "nbf": 900,
            "sub": "user-1", "jti": "j1", "scope": "read write", "client_id": "c1",
            "https://idp/roles": ["admin"], "email": "a@b", "level": 3, "flag": true
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn mapping() -> ClaimMapping {
        ClaimMapping {
            audience: json!("legacy"),
            copy: None,
            rename: vec![],
            set: Map::new(),
            remove: vec![],
        }
    }

    #[test]
    fn copies_all_keeps_types_and_owns_reserved_claims() {
        let out = map_claims(&incoming(), 2_000, &mapping(), "https://me/", 300, 1_000);
        assert_eq!(out["iss"], "https://me/");
        assert_eq!(out["aud"], "legacy");
        assert_eq!(out["iat"], 1_000);
        assert_eq!(out["exp"], 1_300, "max_ttl caps exp");
        assert_eq!(out["https://idp/roles"], json!(["admin"]));
        assert_eq!(out["level"], 3);
        assert_eq!(out["flag"], true);
        assert_eq!(out["sub"], "user-1");
        assert_eq!(out["jti"], "j1");
    }

    #[test]
    fn exp_is_never_later_than_the_original() {
        let out = map_claims(&incoming(), 1_100, &mapping(), "i", 3_600, 1_000);
        assert_eq!(out["exp"], 1_100);
    }

    #[test]
    fn copy_rename_set_remove() {
        let mut m = mapping();
        m.copy = Some(vec!["sub".into(), "scope".into(), "email".into()]);
        m.rename = vec![
            ("https://idp/roles".into(), "roles".into()),
            ("scope".into(), "scp".into()),
        ];
        m.set = json!({"tenant": "acme", "tier": 2, "beta": false})
            .as_object()
            .unwrap()
            .clone();
        m.remove = vec!["email".into()];
        m.audience = json!(["a", "b"]);
        let out = map_claims(&incoming(), 2_000, &m, "i", 300, 1_000);
        let mut names: Vec<&str> = out.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "aud", "beta", "exp", "iat", "iss", "roles", "scp", "sub", "tenant", "tier"
            ]
        );
        assert_eq!(out["roles"], json!(["admin"]));
        assert_eq!(out["scp"], "read write");
        assert_eq!(out["tier"], 2);
        assert_eq!(out["beta"], false);
        assert_eq!(out["aud"], json!(["a", "b"]));
        assert!(!out.contains_key("jti"), "copy list excludes jti");
    }
}
