//! A route's `[routes.claims]`: the output audience and the copy, rename, set and remove
//! rules, refused where they would touch a claim resigner owns ([`RESERVED`]) or carry a
//! TOML type JSON does not have.

use std::collections::HashSet;

use serde_json::Value;

use crate::config::file::{self, OneOrMany};
use crate::config::problems::Problems;
use crate::config::runtime::{ClaimMapping, RESERVED};

pub(super) fn mapping(
    p: &mut Problems,
    field: &str,
    raw: &file::ClaimsSection,
    route_audience: &str,
) -> ClaimMapping {
    let audience = match &raw.audience {
        None => Value::from(route_audience),
        Some(OneOrMany::One(aud)) => Value::from(aud.clone()),
        Some(OneOrMany::Many(list)) => {
            if list.is_empty() {
                p.push(
                    format!("{field}.claims.audience"),
                    "must not be an empty list",
                );
            }
            Value::from(list.clone())
        }
    };
    for (name, value) in &raw.set {
        if value.to_string().contains("$__toml_private_datetime") {
            p.push(
                format!("{field}.claims.set"),
                format!("{name:?} is a TOML date/time; JWT claims have no such type (quote it as a string, or use a number)"),
            );
        }
        if RESERVED.contains(&name.as_str()) {
            p.push(
                format!("{field}.claims.set"),
                format!("{name:?} is set by resigner itself and cannot be overwritten"),
            );
        }
    }
    let mut targets = HashSet::new();
    for (from, to) in &raw.rename {
        if !targets.insert(to) {
            p.push(
                format!("{field}.claims.rename"),
                format!("two claims are renamed to {to:?}"),
            );
        }
        if RESERVED.contains(&from.as_str()) || RESERVED.contains(&to.as_str()) {
            p.push(
                format!("{field}.claims.rename"),
                format!("{from:?} -> {to:?} touches a reserved claim (iss, aud, exp, iat, nbf)"),
            );
        }
    }
    for name in &raw.remove {
        if RESERVED.contains(&name.as_str()) && name != "nbf" {
            p.push(
                format!("{field}.claims.remove"),
                format!("{name:?} is always present in a re-signed token"),
            );
        }
    }
    ClaimMapping {
        audience,
        copy: raw.copy.clone(),
        rename: raw
            .rename
            .iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect(),
        set: raw.set.clone(),
        remove: raw.remove.clone(),
    }
}
