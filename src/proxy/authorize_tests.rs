//! Rule evaluation of [`super::authorize`]: every scope shape, every rule kind, methods.

use http::Method;
use serde_json::{Map, Value, json};

use super::*;
use crate::config::runtime::{Authorization, ClaimRule, ClaimTest};

fn claims(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn scopes(required: &[&str]) -> Authorization {
    let required_scopes: Vec<String> = required.iter().map(|s| s.to_string()).collect();
    Authorization {
        scope_text: required_scopes.join(" "),
        required_scopes,
        ..Authorization::default()
    }
}

fn rule(index: usize, claim: &str, test: ClaimTest, methods: &[Method]) -> ClaimRule {
    ClaimRule {
        index,
        claim: claim.into(),
        test,
        methods: methods.to_vec(),
    }
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn scopes_are_found_in_every_claim_shape() {
    let need = scopes(&["read:orders", "write:orders"]);
    let shapes = [
        ("scope", json!({"scope": "openid read:orders write:orders"})),
        ("scp", json!({"scp": "read:orders write:orders"})),
        ("scp", json!({"scp": ["read:orders", "write:orders"]})),
        (
            "permissions",
            json!({"permissions": ["write:orders", "read:orders"]}),
        ),
    ];
    for (claim, token) in shapes {
        let token = claims(token);
        assert_eq!(
            authorize(&token, &names(&[claim]), &need, None),
            Ok(()),
            "{token:?}"
        );
        assert!(
            authorize(&token, &names(&["other"]), &need, None).is_err(),
            "only the configured claims count: {token:?}"
        );
    }
}

#[test]
fn all_required_scopes_are_needed_and_substrings_do_not_count() {
    let need = scopes(&["read:orders", "write:orders"]);
    let denied = Err(Denied::Scope {
        scope: "read:orders write:orders".into(),
    });
    let source = names(&["scope", "scp"]);
    for token in [
        json!({"scope": "read:orders"}),
        json!({"scope": "read:orders write:orders2"}),
        json!({"scope": "read:orders,write:orders"}),
        json!({"scp": ["read:orders write:orders"]}),
        json!({"scope": 7}),
        json!({}),
    ] {
        assert_eq!(
            authorize(&claims(token.clone()), &source, &need, None),
            denied,
            "{token}"
        );
    }
    // The scopes may be split over the configured claims.
    let split = claims(json!({"scope": "read:orders", "scp": ["write:orders"]}));
    assert_eq!(authorize(&split, &source, &need, None), Ok(()));
    assert_eq!(
        authorize(&claims(json!({})), &source, &scopes(&[]), None),
        Ok(())
    );
}

#[test]
fn each_rule_kind() {
    let cases = [
        (ClaimTest::Equals("acme".into()), json!("acme"), true),
        (ClaimTest::Equals("acme".into()), json!("acme2"), false),
        (ClaimTest::Equals("1".into()), json!(1), false),
        (ClaimTest::Equals("acme".into()), json!(["acme"]), false),
        (ClaimTest::OneOf(names(&["a", "b"])), json!("b"), true),
        (ClaimTest::OneOf(names(&["a", "b"])), json!("c"), false),
        (ClaimTest::OneOf(names(&["a", "b"])), json!(["a"]), false),
        (
            ClaimTest::Contains("admin".into()),
            json!(["user", "admin"]),
            true,
        ),
        (ClaimTest::Contains("admin".into()), json!(["user"]), false),
        (ClaimTest::Contains("admin".into()), json!("admin"), false),
    ];
    for (test, value, ok) in cases {
        let authorization = Authorization {
            rules: vec![rule(3, "org", test.clone(), &[])],
            ..Authorization::default()
        };
        let result = authorize(&claims(json!({ "org": value })), &[], &authorization, None);
        let expected = if ok {
            Ok(())
        } else {
            Err(Denied::Rule {
                index: 3,
                claim: "org".into(),
            })
        };
        assert_eq!(result, expected, "{test:?} on {value}");
        assert!(
            authorize(&claims(json!({})), &[], &authorization, None).is_err(),
            "a missing claim fails {test:?}"
        );
    }
}

#[test]
fn the_first_failing_rule_is_named_without_its_value() {
    let authorization = Authorization {
        rules: vec![
            rule(0, "org", ClaimTest::Equals("acme".into()), &[]),
            rule(1, "roles", ClaimTest::Contains("admin".into()), &[]),
        ],
        ..Authorization::default()
    };
    let token = claims(json!({"org": "acme", "roles": ["secret-role-name"]}));
    let denied = authorize(&token, &[], &authorization, None).unwrap_err();
    assert_eq!(
        denied,
        Denied::Rule {
            index: 1,
            claim: "roles".into()
        }
    );
    let text = denied.to_string();
    assert!(
        text.contains("require[1]") && text.contains("roles"),
        "{text}"
    );
    assert!(
        !text.contains("secret-role-name") && !text.contains("admin"),
        "{text}"
    );
}

#[test]
fn method_limited_rules_and_classes() {
    let authorization = Authorization {
        rules: vec![rule(
            0,
            "roles",
            ClaimTest::Contains("writer".into()),
            &[Method::POST, Method::DELETE],
        )],
        methods: vec![Method::POST, Method::DELETE],
        ..Authorization::default()
    };
    let reader = claims(json!({"roles": ["reader"]}));
    assert_eq!(
        authorize(&reader, &[], &authorization, Some(&Method::GET)),
        Ok(())
    );
    assert!(authorize(&reader, &[], &authorization, Some(&Method::POST)).is_err());
    assert!(authorize(&reader, &[], &authorization, Some(&Method::DELETE)).is_err());
    assert!(
        authorize(&reader, &[], &authorization, None).is_err(),
        "no method: every rule applies"
    );
    assert_eq!(method_class(&authorization, &Method::GET), 0);
    assert_eq!(method_class(&authorization, &Method::PUT), 0);
    assert_eq!(method_class(&authorization, &Method::POST), 1);
    assert_eq!(method_class(&authorization, &Method::DELETE), 2);
    assert_eq!(method_class(&Authorization::default(), &Method::POST), 0);
}
