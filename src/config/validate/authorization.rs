//! A route's `required_scopes` and `[[routes.require]]` claim rules: scope tokens of RFC 6749
//! §3.3 characters, each rule naming a claim and exactly one of `equals`, `one_of`,
//! `contains`, and its `methods` valid HTTP methods. Builds the precompiled
//! [`Authorization`] that `proxy::authorize` evaluates.

use http::Method;

use crate::config::file;
use crate::config::problems::Problems;
use crate::config::runtime::{Authorization, ClaimRule, ClaimTest};

pub(super) fn authorization(
    p: &mut Problems,
    field: &str,
    route: &file::RouteSection,
) -> Authorization {
    let required_scopes = scopes(p, field, route.required_scopes.as_deref());
    let mut methods: Vec<Method> = Vec::new();
    let mut rules = Vec::new();
    for (index, raw) in route.require.iter().enumerate() {
        let field = format!("{field}.require[{index}]");
        let rule_methods = rule_methods(p, &field, raw.methods.as_deref());
        for method in &rule_methods {
            if !methods.contains(method) {
                methods.push(method.clone());
            }
        }
        if raw.claim.trim().is_empty() {
            p.push(format!("{field}.claim"), "must name a claim");
        }
        if let Some(test) = test(p, &field, raw) {
            rules.push(ClaimRule {
                index,
                claim: raw.claim.clone(),
                test,
                methods: rule_methods,
            });
        }
    }
    Authorization {
        scope_text: required_scopes.join(" "),
        required_scopes,
        rules,
        methods,
    }
}

fn scopes(p: &mut Problems, field: &str, raw: Option<&[String]>) -> Vec<String> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    let field = format!("{field}.required_scopes");
    if raw.is_empty() {
        p.push(
            &field,
            "is empty: list at least one scope, or remove the key",
        );
    }
    let mut scopes: Vec<String> = Vec::new();
    for scope in raw {
        // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
        let valid = !scope.is_empty()
            && scope
                .bytes()
                .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E));
        if !valid {
            p.push(
                &field,
                format!(
                    "{scope:?} is not a scope token (printable ASCII without space, '\"' or '\\\\')"
                ),
            );
        } else if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    scopes
}

fn test(p: &mut Problems, field: &str, raw: &file::RequireSection) -> Option<ClaimTest> {
    let given = [
        raw.equals.is_some(),
        raw.one_of.is_some(),
        raw.contains.is_some(),
    ];
    if given.iter().filter(|given| **given).count() != 1 {
        p.push(field, "needs exactly one of equals, one_of, contains");
        return None;
    }
    if let Some(value) = &raw.equals {
        return Some(ClaimTest::Equals(value.clone()));
    }
    if let Some(value) = &raw.contains {
        return Some(ClaimTest::Contains(value.clone()));
    }
    let values = raw.one_of.clone().unwrap_or_default();
    if values.is_empty() {
        p.push(format!("{field}.one_of"), "must list at least one value");
        return None;
    }
    Some(ClaimTest::OneOf(values))
}

fn rule_methods(p: &mut Problems, field: &str, raw: Option<&[String]>) -> Vec<Method> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    let field = format!("{field}.methods");
    if raw.is_empty() {
        p.push(
            &field,
            "is empty: list methods, or remove the key so the rule applies to all",
        );
    }
    let mut methods: Vec<Method> = Vec::new();
    for name in raw {
        // Methods are case-sensitive (RFC 9110 §9.1): "post" would never match a POST.
        let method = Method::from_bytes(name.as_bytes())
            .ok()
            .filter(|_| !name.bytes().any(|b| b.is_ascii_lowercase()));
        match method {
            Some(method) if !methods.contains(&method) => methods.push(method),
            Some(_) => {}
            None => p.push(
                &field,
                format!("{name:?} is not an HTTP method in upper case like \"POST\""),
            ),
        }
    }
    methods
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(text: &str) -> (Authorization, Vec<String>) {
        let route: file::RouteSection = toml::from_str(&format!(
            "prefix = \"/o\"\nupstream = \"http://o\"\naudience = \"a\"\n{text}"
        ))
        .unwrap();
        let mut p = Problems::default();
        let authorization = authorization(&mut p, "routes[0]", &route);
        (authorization, p.into_vec())
    }

    #[test]
    fn a_valid_route_compiles_its_rules() {
        let (authorization, problems) = validate(
            r#"
            required_scopes = ["read:orders", "write:orders", "read:orders"]
            [[require]]
            claim = "org_id"
            equals = "acme"
            [[require]]
            claim = "tier"
            one_of = ["gold", "silver"]
            methods = ["POST", "DELETE"]
            [[require]]
            claim = "roles"
            contains = "admin"
            methods = ["DELETE", "PATCH"]
            "#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            authorization.required_scopes,
            ["read:orders", "write:orders"]
        );
        assert_eq!(authorization.scope_text, "read:orders write:orders");
        assert_eq!(authorization.rules.len(), 3);
        assert_eq!(authorization.rules[2].index, 2);
        assert_eq!(
            authorization.rules[1].test,
            ClaimTest::OneOf(vec!["gold".into(), "silver".into()])
        );
        assert_eq!(
            authorization.methods,
            [Method::POST, Method::DELETE, Method::PATCH]
        );
        assert!(authorization.rules[0].methods.is_empty());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let (_, problems) = validate(
            r#"
            required_scopes = ["read:orders", "", "two words", "quo\"te"]
            [[require]]
            claim = "org_id"
            [[require]]
            claim = "org_id"
            equals = "acme"
            contains = "acme"
            [[require]]
            claim = ""
            one_of = []
            [[require]]
            claim = "roles"
            contains = "admin"
            methods = ["post", "GET POST", "DELETE"]
            [[require]]
            claim = "roles"
            contains = "admin"
            methods = []
            "#,
        );
        let expected = [
            "routes[0].required_scopes: \"\" is not a scope token",
            "routes[0].required_scopes: \"two words\" is not a scope token",
            "routes[0].required_scopes: \"quo\\\"te\" is not a scope token",
            "routes[0].require[0]: needs exactly one of equals, one_of, contains",
            "routes[0].require[1]: needs exactly one of equals, one_of, contains",
            "routes[0].require[2].claim: must name a claim",
            "routes[0].require[2].one_of: must list at least one value",
            "routes[0].require[3].methods: \"post\" is not an HTTP method",
            "routes[0].require[3].methods: \"GET POST\" is not an HTTP method",
            "routes[0].require[4].methods: is empty",
        ];
        for line in expected {
            assert!(
                problems.iter().any(|problem| problem.starts_with(line)),
                "{line} missing from {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
        let (_, empty) = validate("required_scopes = []");
        assert_eq!(
            empty,
            ["routes[0].required_scopes: is empty: list at least one scope, or remove the key"]
        );
    }
}
