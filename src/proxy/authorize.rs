//! The authorize stage of the pipeline: a verified token's scopes (read from the IdP's
//! `scope_claims`) must include all of the route's `required_scopes`, and its claims must pass
//! every `[[routes.require]]` rule that applies to the request's method. Pure functions over
//! the verified claims and the precompiled [`Authorization`]; nothing here allocates unless
//! the token is refused. [`method_class`] is what the re-sign cache key takes from the method.

use http::Method;
use serde_json::{Map, Value};

use crate::config::runtime::{Authorization, ClaimRule, ClaimTest};

/// Why a verified token is not authorized on a route (a 403 `insufficient_scope`). Names
/// the rule, never the claim's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// `scope`: all the route's required scopes, space-separated (the challenge's `scope`).
    #[error("the token lacks a scope this route requires")]
    Scope { scope: String },
    #[error("the token does not satisfy rule require[{index}] on claim {claim}")]
    Rule { index: usize, claim: String },
}

/// Checks `claims` against `authorization` for a request with `method`; `None` (the
/// `token resign` command) applies every rule, method-limited ones included.
pub fn authorize(
    claims: &Map<String, Value>,
    scope_claims: &[String],
    authorization: &Authorization,
    method: Option<&Method>,
) -> Result<(), Denied> {
    let has_scope = |wanted: &str| {
        scope_claims
            .iter()
            .any(|name| claims.get(name).is_some_and(|value| holds(value, wanted)))
    };
    if !authorization
        .required_scopes
        .iter()
        .all(|scope| has_scope(scope))
    {
        return Err(Denied::Scope {
            scope: authorization.scope_text.clone(),
        });
    }
    for rule in &authorization.rules {
        let applies = rule.methods.is_empty() || method.is_none_or(|m| rule.methods.contains(m));
        if applies && !passes(rule, claims.get(&rule.claim)) {
            return Err(Denied::Rule {
                index: rule.index,
                claim: rule.claim.clone(),
            });
        }
    }
    Ok(())
}

/// The class of `method` on a route: 0 unless some rule is limited to it, then its position
/// in [`Authorization::methods`] plus one. Two requests of one class meet the same rules.
pub fn method_class(authorization: &Authorization, method: &Method) -> u8 {
    authorization
        .methods
        .iter()
        .position(|m| m == method)
        .map_or(0, |position| (position + 1).min(u8::MAX as usize) as u8)
}

/// A scope claim holds `wanted`: a space-separated string (`scope`, a string `scp`) or an
/// array of strings (`scp` of Entra ID and Okta, Auth0's `permissions`).
fn holds(value: &Value, wanted: &str) -> bool {
    match value {
        Value::String(text) => text.split(' ').any(|scope| scope == wanted),
        Value::Array(items) => items.iter().any(|item| item.as_str() == Some(wanted)),
        _ => false,
    }
}

fn passes(rule: &ClaimRule, value: Option<&Value>) -> bool {
    let Some(value) = value else {
        return false;
    };
    match &rule.test {
        ClaimTest::Equals(expected) => value.as_str() == Some(expected),
        ClaimTest::OneOf(allowed) => value
            .as_str()
            .is_some_and(|text| allowed.iter().any(|a| a == text)),
        ClaimTest::Contains(wanted) => value
            .as_array()
            .is_some_and(|items| items.iter().any(|item| item.as_str() == Some(wanted))),
    }
}

#[cfg(test)]
#[path = "authorize_tests.rs"]
mod tests;
